# CIS Benchmarks: Debian Linux (prefix `Linux`) and Kubernetes (prefix `K8s`),
# whose section numbers overlap, and the checks each recommendation rests on.
package shieldops.compliance

frameworks["CIS"] := {
	"Linux 1.9": {
		"title": "Updates and security patches are installed automatically",
		"checks": ["unattended_upgrades"],
	},
	"Linux 5.2.7": {
		"title": "SSH PasswordAuthentication is disabled (key-based logins only)",
		"checks": ["ssh_password_auth"],
	},
	"Linux 5.2.10": {
		"title": "SSH root login is disabled",
		"checks": ["ssh_root_login"],
	},
	"Linux 6.1.3": {
		"title": "Permissions on /etc/shadow are configured",
		"checks": ["shadow_permissions"],
	},
	"K8s 5.1.3": {
		"title": "Minimise wildcard use in Roles and ClusterRoles",
		"checks": ["rbac_wildcard"],
	},
	"K8s 5.2.2": {
		"title": "Minimise the admission of privileged containers",
		"checks": ["pod_privileged"],
	},
	"K8s 5.2.7": {
		"title": "Minimise the admission of root containers",
		"checks": ["pod_run_as_root"],
	},
}
