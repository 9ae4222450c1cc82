# SOC 2 (Trust Services Criteria 2017) controls and the checks each rests on.
package shieldops.compliance

frameworks["SOC2"] := {
	"CC6.1": {
		"title": "Logical access security: no direct root or password SSH logins, protected password hashes, rotated credentials, least-privilege RBAC",
		"checks": ["ssh_root_login", "ssh_password_auth", "shadow_permissions", "credential_rotation", "rbac_wildcard"],
	},
	"CC6.8": {
		"title": "Unauthorised software prevented: no privileged or root containers",
		"checks": ["pod_privileged", "pod_run_as_root"],
	},
	"CC7.1": {
		"title": "Vulnerabilities detected and remediated: automatic updates, critical CVEs patched within the SLA",
		"checks": ["unattended_upgrades", "critical_patch_sla"],
	},
	"CC7.2": {
		"title": "System activity monitored: the audit event log's hash chain is intact",
		"checks": ["audit_chain"],
	},
	"A1.1": {
		"title": "Capacity managed: workloads declare resource limits",
		"checks": ["workload_limits"],
	},
}
