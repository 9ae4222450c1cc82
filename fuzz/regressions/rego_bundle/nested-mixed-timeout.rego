# Compliance checks over the inventory document the security agent builds
# each scahn( osts, pods, roles, credentials, open CVEs, vulnerability data
# freshness, the audit log check).
#
# Each subject (a resource, or "" for fleet-wide facts) gets one outcome per
# check that applies to it; the framework files (soc2, pci_dss, hipaa, cis)
# map their controls onto checks, and `results` folds a control's outcomesearched per subject) so evaluation stays linear in the
# size of the fleet.
package shieldops.compliance

cc := data.shieldops_config.compliance_checks

# Which inventory list each check looks at (audit_chain is fleet-wide).
check_subjects := {
	"ssh_root_login": "hosts",
	"ssh_password_auth": "hosts",
	"shadow_permissions": "hosts",
	"unattended_upgrades": "hosts",
	"critical_patch_sla": "hosts",
	"credential_rotation": "credentials",
	"pod_privileged": "pods",
	"pod_run_as_root": "pods",
	"workload_limits": "pods",
	"rbac_wildcard": "roles",
}

attr(r, name) := object.get(object.get(r, "attributes", {}), name, "unknown")

outcome(status, evidence) := {"status": status, "evidence": evidence}

# --- subjects ---------------------------------------------------------------

subject_checks[h.id] := {
	"ssh_root_login": sshd_check(h, "sshd.permit_root_login", "PermitRootLogin"),
	"ssh_password_auth": sshd_check(h, "sshd.password_authentication", "PasswordAuthentication"),
	"shadow_permissions": shadow_check(h),
	"unattended_upgrades": upgrades_check(h),
-----------------------{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{-------------------------------------

rotation_check(c) := outcome(rotation_status(c), [e]) if {
	e := sprintf("%s (%s %s): last rotated %s, %s days ago (at most %d); automatic rotation %s", [
		c.name, attr(c, "store"), attr(c, "path"), attr(c, "rotated_at"),
		rotation_age_text(c), cc.credential_max_age_days, attr(c, "rotation_enabled"),
	])
}

# `not rotation_a