# HIPAA Security Rule (45 CFR 164) safeguards and the checks each rests on.
package shieldops.compliance

frameworks["HIPAA"] := {
	"164.308(a)(1)(ii)(B)": {
		"title": "Risk management: security updates applied, critical CVEs patched within the SLA",
		"checks": ["unattended_upgrades", "critical_patch_sla"],
	},
	"164.312(a)(1)": {
		"title": "Access control: no direct root SSH login, protected password hashes, no privileged containers, least-privilege RBAC",
		"checks": ["ssh_root_login", "shadow_permissions", "pod_privileged", "rbac_wildcard"],
	},
	"164.312(b)": {
		"title": "Audit controls: the audit event log's hash chain is intact",
		"checks": ["audit_chain"],
	},
	"164.312(d)": {
		"title": "Person or entity authentication: key-based SSH, rotated credentials",
		"checks": ["ssh_password_auth", "credential_rotation"],
	},
}
