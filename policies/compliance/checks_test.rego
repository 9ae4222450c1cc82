# Tests for checks.rego: outcomes per check and how results fold them.
package shieldops_test

comp_host_attrs := {
	"sshd.permit_root_login": "no",
	"sshd.password_authentication": "no",
	"sshd.source": "sshd -T",
	"file./etc/shadow.mode": "0640",
	"file./etc/shadow.owner": "root:shadow",
	"unattended_upgrades": "enabled",
}

comp_host(attrs) := {"id": "linux/h1", "name": "h1", "kind": "host", "attributes": object.union(comp_host_attrs, attrs)}

comp_pod(attrs) := {"id": "k8s/p1", "name": "p1", "kind": "pod", "attributes": object.union(
	{"security.privileged": "false", "security.run_as_root": "false", "resources.limits": "set"},
	attrs,
)}

comp_role(name, attrs) := {"id": sprintf("k8s/role/%s", [name]), "name": name, "kind": "clusterrole", "attributes": object.union(
	{"rbac.wildcard": "false", "rbac.wildcard_rules": ""},
	attrs,
)}

comp_cred(age) := {"id": "vault/db", "name": "db", "kind": "credential", "rotated_age_days": age, "attributes": {
	"store": "vault", "path": "secret/db", "rotated_at": "2025-01-01T00:00:00Z", "rotation_enabled": "true",
}}

comp_vuln(age) := {"cve": "CVE-2024-6387", "resource": "linux/h1", "severity": "critical", "age_days": age}

# A compliant inventory; each test changes one thing.
comp_inv(over) := object.union(
	{
		"hosts": [comp_host({})],
		"pods": [comp_pod({})],
		"roles": [comp_role("reader", {})],
		"credentials": [comp_cred(10)],
		"vulnerabilities": [],
		"vulndb": {"loaded": true, "stale": false, "summary": "debian 1200 records, 1 day old"},
		"audit_log": {"intact": true, "detail": "1200 events verified"},
	},
	over,
)

comp_status(results, framework, control, subject) := r.status if {
	some r in results
	r.framework == framework
	r.control == control
	r.resource == subject
}

comp_evidence(results, framework, control, subject) := concat("\n", r.evidence) if {
	some r in results
	r.framework == framework
	r.control == control
	r.resource == subject
}

test_comp_compliant_inventory_passes_every_control if {
	results := data.shieldops.compliance.results with input as comp_inv({})
	count(results) > 0
	every r in results {
		r.status == "passing"
	}
}

test_comp_every_framework_is_evaluated if {
	results := data.shieldops.compliance.results with input as comp_inv({})
	{r.framework | some r in results} == {"SOC2", "PCI-DSS", "HIPAA", "CIS"}
}

test_comp_empty_inventory_is_never_passing if {
	results := data.shieldops.compliance.results with input as {"audit_log": {}}
	count(results) > 0
	every r in results {
		r.status in {"not_applicable", "unknown"}
	}
	comp_status(results, "CIS", "K8s 5.2.2", null) == "not_applicable"
	comp_status(results, "HIPAA", "164.312(b)", null) == "unknown"
}

test_comp_unreadable_fact_is_unknown_not_passing if {
	results := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"sshd.permit_root_login": "unknown"})]})
	comp_status(results, "CIS", "Linux 5.2.10", "linux/h1") == "unknown"
	comp_status(results, "SOC2", "CC6.1", "linux/h1") == "unknown"
}

test_comp_failing_beats_unknown if {
	results := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({
		"sshd.permit_root_login": "unknown",
		"sshd.password_authentication": "yes",
	})]})
	comp_status(results, "SOC2", "CC6.1", "linux/h1") == "failing"
}

test_comp_shadow_modes if {
	ok := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"file./etc/shadow.mode": "0600", "file./etc/shadow.owner": "root:root"})]})
	comp_status(ok, "CIS", "Linux 6.1.3", "linux/h1") == "passing"
	world := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"file./etc/shadow.mode": "0644"})]})
	comp_status(world, "CIS", "Linux 6.1.3", "linux/h1") == "failing"
	contains(comp_evidence(world, "CIS", "Linux 6.1.3", "linux/h1"), "mode 0644")
	setgid := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"file./etc/shadow.mode": "2640"})]})
	comp_status(setgid, "CIS", "Linux 6.1.3", "linux/h1") == "failing"
	owner := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"file./etc/shadow.owner": "alice:shadow"})]})
	comp_status(owner, "CIS", "Linux 6.1.3", "linux/h1") == "failing"
}

test_comp_no_ssh_daemon_is_not_applicable if {
	results := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({
		"sshd.permit_root_login": "not_installed",
		"sshd.password_authentication": "not_installed",
	})]})
	comp_status(results, "CIS", "Linux 5.2.10", "linux/h1") == "not_applicable"
	comp_status(results, "CIS", "Linux 5.2.7", "linux/h1") == "not_applicable"
}
