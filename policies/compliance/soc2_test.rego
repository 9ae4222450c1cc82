# Tests for soc2.rego.
package shieldops_test

test_comp_soc2_cc61_fails_on_root_ssh_login_with_evidence if {
	results := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"sshd.permit_root_login": "yes"})]})
	comp_status(results, "SOC2", "CC6.1", "linux/h1") == "failing"
	contains(comp_evidence(results, "SOC2", "CC6.1", "linux/h1"), "h1: PermitRootLogin yes (from sshd -T)")
}

test_comp_soc2_cc68_fails_on_privileged_pod if {
	results := data.shieldops.compliance.results with input as comp_inv({"pods": [comp_pod({"security.privileged": "true"})]})
	comp_status(results, "SOC2", "CC6.8", "k8s/p1") == "failing"
}

test_comp_soc2_cc71_is_unknown_on_stale_vulnerability_data if {
	results := data.shieldops.compliance.results with input as comp_inv({"vulndb": {"stale": true, "summary": "debian 20 days old (limit 7)"}})
	comp_status(results, "SOC2", "CC7.1", "linux/h1") == "unknown"
	contains(comp_evidence(results, "SOC2", "CC7.1", "linux/h1"), "20 days old")
}

test_comp_soc2_cc72_fails_on_a_broken_audit_chain if {
	results := data.shieldops.compliance.results with input as comp_inv({"audit_log": {"intact": false, "detail": "hash mismatch at seq 42"}})
	comp_status(results, "SOC2", "CC7.2", null) == "failing"
	contains(comp_evidence(results, "SOC2", "CC7.2", null), "seq 42")
}

test_comp_soc2_a11_fails_without_limits if {
	results := data.shieldops.compliance.results with input as comp_inv({"pods": [comp_pod({"resources.limits": "missing"})]})
	comp_status(results, "SOC2", "A1.1", "k8s/p1") == "failing"
}

# No vulnerability data at all is unknown, never "nothing to patch".
test_comp_soc2_cc71_is_unknown_without_vulnerability_data if {
	results := data.shieldops.compliance.results with input as object.remove(comp_inv({}), ["vulndb"])
	comp_status(results, "SOC2", "CC7.1", "linux/h1") == "unknown"
	contains(comp_evidence(results, "SOC2", "CC7.1", "linux/h1"), "not loaded")
}
