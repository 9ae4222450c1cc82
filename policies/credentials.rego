# Credential rotation: `rotate_secret` writes a new generated version of a
# stored secret (Vault KV v2, AWS Secrets Manager). It applies only to stored
# secrets of a known store — a lease is ended by its engine, not rotated.
# Risk and approvals live in data.json (`risk.actions.rotate_secret`): a
# production rotation is high risk and so needs an approval.
package shieldops

cred_stores := {"vault", "secretsmanager"}

deny contains msg if {
	action_name == "rotate_secret"
	target_kind != "credential"
	msg := sprintf("credentials: rotate_secret applies to credentials, not %q", [target_kind])
}

deny contains "credentials: rotate_secret applies to stored secrets, not leases" if {
	action_name == "rotate_secret"
	target_kind == "credential"
	not cred_is_secret
}

deny contains "credentials: rotate_secret needs a credential of a known store (vault, secretsmanager)" if {
	action_name == "rotate_secret"
	target_kind == "credential"
	not cred_known_store
}

cred_known_store if input.target.labels.store in cred_stores

cred_is_secret if input.target.labels.credential_type == "secret"
