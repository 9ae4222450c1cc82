# Compliance checks over the inventory document the security agent builds
# each scan (hosts, pods, roles, credentials, open CVEs, vulnerability data
# freshness, the audit log check).
#
# Each subject (a resource, or "" for fleet-wide facts) gets one outcome per
# check that applies to it; the framework files (soc2, pci_dss, hipaa, cis)
# map their controls onto checks, and `results` folds a control's outcomes
# per subject: failing beats unknown beats passing beats not_applicable, so an
# unreadable fact never reads as passing. Outcomes are built per subject (not
# as one flat set searched per subject) so evaluation stays linear in the
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
	"critical_patch_sla": patch_check(h),
} if {
	some h in input.hosts
}

subject_checks[p.id] := {
	"pod_privileged": flag_check(p, "security.privileged", "privileged"),
	"pod_run_as_root": flag_check(p, "security.run_as_root", "runs as root"),
	"workload_limits": limits_check(p),
} if {
	some p in input.pods
}

subject_checks[r.id] := {"rbac_wildcard": rbac_check(r)} if {
	some r in input.roles
}

subject_checks[c.id] := {"credential_rotation": rotation_check(c)} if {
	some c in input.credentials
}

# Fleet-wide: the audit log, and every check with nothing to look at.
subject_checks[""] := object.union(nothing_to_check, {"audit_chain": audit_check})

nothing_to_check := {check: outcome("not_applicable", [sprintf("%s: no %s in the inventory", [check, kind])]) |
	some check, kind in check_subjects
	count(object.get(input, kind, [])) == 0
}

# --- hosts: SSH daemon --------------------------------------------------------

sshd_check(h, name, keyword) := outcome(sshd_status(v), [sprintf("%s: %s %s (from %s)", [h.name, keyword, v, attr(h, "sshd.source")])]) if {
	v := attr(h, name)
}

sshd_status(v) := "not_applicable" if v == "not_installed"

else := "unknown" if v == "unknown"

else := "passing" if v == "no"

else := "failing"

# --- hosts: /etc/shadow ---------------------------------------------------------

shadow_check(h) := outcome(shadow_status(mode, owner), [e]) if {
	mode := attr(h, "file./etc/shadow.mode")
	owner := attr(h, "file./etc/shadow.owner")
	e := sprintf("%s: /etc/shadow mode %s owner %s (at most 0640, owner root, group root or shadow)", [h.name, mode, owner])
}

shadow_status(mode, owner) := "unknown" if {
	"unknown" in {mode, owner}
} else := "passing" if {
	shadow_mode_ok(mode)
	owner in {"root:root", "root:shadow"}
} else := "failing"

# No setuid/setgid/sticky, owner at most rw, group at most r, others nothing.
shadow_mode_ok(mode) if {
	d := split(mode, "")
	count(d) == 4
	d[0] == "0"
	d[1] in {"0", "4", "6"}
	d[2] in {"0", "4"}
	d[3] == "0"
}

# --- hosts: patching ------------------------------------------------------------

upgrades_check(h) := outcome(upgrades_status(v), [sprintf("%s: unattended upgrades %s", [h.name, v])]) if {
	v := attr(h, "unattended_upgrades")
}

upgrades_status(v) := "passing" if v == "enabled"

else := "failing" if v in {"disabled", "not_installed"}

else := "unknown"

# Open critical CVEs by resource, each with days since first seen.
critical_by_resource := {res: [v | some v in input.vulnerabilities; v.resource == res; v.severity == "critical"] |
	some w in input.vulnerabilities
	res := w.resource
}

overdue(h) := [v |
	some v in object.get(critical_by_resource, h.id, [])
	v.age_days > cc.critical_patch_sla_days
]

vulndb_trusted if {
	input.vulndb.loaded
	not input.vulndb.stale
}

patch_check(h) := outcome("failing", evidence) if {
	late := overdue(h)
	count(late) > 0
	evidence := [sprintf("%s: %s open %d days (SLA %d)", [h.name, v.cve, v.age_days, cc.critical_patch_sla_days]) | some v in late]
} else := outcome("unknown", [e]) if {
	# Stale or missing vulnerability data never reads as "nothing to patch".
	not vulndb_trusted
	# From `input` down, so a missing `vulndb` still yields evidence (an
	# undefined one would fall through to "passing").
	e := sprintf("%s: vulnerability data %v", [h.name, object.get(input, ["vulndb", "summary"], "not loaded")])
} else := outcome("passing", [e]) if {
	open := count(object.get(critical_by_resource, h.id, []))
	e := sprintf("%s: no critical CVE open past %d days (%d within the SLA)", [h.name, cc.critical_patch_sla_days, open])
}

# --- credentials ------------------------------------------------------------------

rotation_check(c) := outcome(rotation_status(c), [e]) if {
	e := sprintf("%s (%s %s): last rotated %s, %s days ago (at most %d); automatic rotation %s", [
		c.name, attr(c, "store"), attr(c, "path"), attr(c, "rotated_at"),
		rotation_age_text(c), cc.credential_max_age_days, attr(c, "rotation_enabled"),
	])
}

# `not rotation_age_known(c)`, never `not is_number(c.rotated_age_days)`: in
# OPA a call on a missing field is undefined and `not` over it never holds.
rotation_status(c) := "unknown" if {
	not rotation_age_known(c)
} else := "failing" if {
	c.rotated_age_days > cc.credential_max_age_days
} else := "passing"

rotation_age_known(c) if is_number(c.rotated_age_days)

rotation_age_text(c) := sprintf("%v", [c.rotated_age_days]) if rotation_age_known(c)

else := "unknown"

# --- Kubernetes ---------------------------------------------------------------------

# A true flag fails the check.
flag_check(p, name, what) := outcome(flag_status(v), [sprintf("%s %s: %s %s", [p.kind, p.name, what, v])]) if {
	v := attr(p, name)
}

flag_status(v) := "failing" if v == "true"

else := "passing" if v == "false"

else := "unknown"

limits_check(p) := outcome(limits_status(v), [sprintf("%s %s: resource limits %s", [p.kind, p.name, v])]) if {
	v := attr(p, "resources.limits")
}

limits_status(v) := "passing" if v == "set"

else := "failing" if v == "missing"

else := "unknown"

rbac_check(r) := outcome("not_applicable", [sprintf("%s %s: built-in role, wildcards by design", [r.kind, r.name])]) if {
	rbac_exempt(r.name)
} else := outcome(flag_status(v), [e]) if {
	v := attr(r, "rbac.wildcard")
	e := sprintf("%s %s: wildcard %s %s", [r.kind, r.name, v, attr(r, "rbac.wildcard_rules")])
}

rbac_exempt(name) if name in cc.rbac_wildcard_exempt

rbac_exempt(name) if {
	some prefix in cc.rbac_wildcard_exempt_prefixes
	startswith(name, prefix)
}

# --- the audit log ------------------------------------------------------------------

audit_check := outcome(audit_status(log), [sprintf("event log: %s", [object.get(log, "detail", "not checked")])]) if {
	log := object.get(input, "audit_log", {})
}

audit_status(log) := "passing" if log.intact == true

else := "failing" if log.intact == false

else := "unknown"

# --- results --------------------------------------------------------------------------

# The result of one control for one subject (a resource id, or null: fleet-wide).
results contains r if {
	some subject, checks in subject_checks
	some framework, controls in frameworks
	some id, control in controls
	mine := [checks[c] | some c in control.checks]
	count(mine) > 0
	r := {
		"framework": framework,
		"control": id,
		"title": control.title,
		"status": worst({o.status | some o in mine}),
		"resource": subject_ref(subject),
		"evidence": sort({e | some o in mine; some e in o.evidence}),
	}
}

subject_ref(s) := null if s == ""

else := s

worst(statuses) := "failing" if "failing" in statuses

else := "unknown" if "unknown" in statuses

else := "passing" if "passing" in statuses

else := "not_applicable"
