# PCI-DSS v4.0 requirements and the checks each rests on.
package shieldops.compliance

frameworks["PCI-DSS"] := {
	"2.2.6": {
		"title": "System security parameters configured to prevent misuse (SSH daemon, /etc/shadow)",
		"checks": ["ssh_root_login", "ssh_password_auth", "shadow_permissions"],
	},
	"6.3.3": {
		"title": "Critical security patches installed within the patching SLA",
		"checks": ["critical_patch_sla"],
	},
	"7.2.2": {
		"title": "Access assigned on least privilege: no wildcard RBAC rules",
		"checks": ["rbac_wildcard"],
	},
	"8.3.9": {
		"title": "Passwords and secrets changed at least every 90 days",
		"checks": ["credential_rotation"],
	},
	"8.6.3": {
		"title": "System and application account credentials changed periodically",
		"checks": ["credential_rotation"],
	},
	"10.3.2": {
		"title": "Audit logs protected from modification (hash chain verified)",
		"checks": ["audit_chain"],
	},
}
