# Tests for credentials.rego and the rotate_secret row of the risk table.
package shieldops_test

cred_target(env, labels) := inp({
	"action": {"name": "rotate_secret", "params": {"reason": "expires in 3 days"}, "param_sources": {"reason": "facts"}},
	"target": {
		"id": "vault/secret/secret/payments/db",
		"kind": "credential",
		"environment": env,
		"labels": object.union({"team": "payments"}, labels),
	},
})

cred_secret(env) := cred_target(env, {"store": "vault", "credential_type": "secret"})

test_cred_production_rotation_needs_an_approval if {
	d := data.shieldops.decision with input as cred_secret("production")
	d.allow
	d.risk == "high"
	d.required_approvals == 1
}

test_cred_staging_rotation_needs_no_approval if {
	d := data.shieldops.decision with input as cred_secret("staging")
	d.allow
	d.risk == "medium"
	d.required_approvals == 0
}

test_cred_rotation_touches_access_controls if {
	d := data.shieldops.decision with input as cred_secret("production")
	"SOC2:CC6.1" in d.controls
}

test_cred_secrets_manager_rotation_allowed if {
	d := data.shieldops.decision with input as cred_target("development", {"store": "secretsmanager", "credential_type": "secret"})
	d.allow
	d.risk == "low"
}

test_cred_lease_rotation_denied if {
	d := data.shieldops.decision with input as cred_target("development", {"store": "vault", "credential_type": "lease"})
	has_deny(d, "credentials: rotate_secret applies to stored secrets")
	not d.allow
}

test_cred_unknown_store_denied if {
	d := data.shieldops.decision with input as cred_target("development", {"credential_type": "secret"})
	has_deny(d, "credentials: rotate_secret needs a credential of a known store")
	not d.allow
}

test_cred_rotation_of_a_non_credential_denied if {
	d := data.shieldops.decision with input as inp({
		"action": {"name": "rotate_secret"},
		"target": {"kind": "deployment", "environment": "development"},
	})
	has_deny(d, "credentials: rotate_secret applies to credentials")
	not d.allow
}

test_cred_mistyped_store_denied if {
	has_deny(data.shieldops.decision, "credentials: rotate_secret needs a credential of a known store") with input as cred_target("development", {"store": 5, "credential_type": "secret"})
	has_deny(data.shieldops.decision, "credentials: rotate_secret needs a credential of a known store") with input as cred_target("development", {"store": ["vault"], "credential_type": "secret"})
}

test_cred_missing_credential_type_denied if {
	has_deny(data.shieldops.decision, "credentials: rotate_secret applies to stored secrets") with input as cred_target("development", {"store": "vault"})
}

test_cred_rotation_of_a_target_with_mistyped_kind_denied if {
	d := data.shieldops.decision with input as inp({"action": {"name": "rotate_secret"}, "target": {"kind": 7}})
	has_deny(d, "credentials: rotate_secret applies to credentials")
	not d.allow
}
