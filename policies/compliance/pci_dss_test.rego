# Tests for pci_dss.rego.
package shieldops_test

test_comp_pci_633_fails_past_the_patch_sla if {
	results := data.shieldops.compliance.results with input as comp_inv({"vulnerabilities": [comp_vuln(45)]})
	comp_status(results, "PCI-DSS", "6.3.3", "linux/h1") == "failing"
	contains(comp_evidence(results, "PCI-DSS", "6.3.3", "linux/h1"), "CVE-2024-6387 open 45 days (SLA 30)")
}

test_comp_pci_633_passes_within_the_sla if {
	results := data.shieldops.compliance.results with input as comp_inv({"vulnerabilities": [comp_vuln(5)]})
	comp_status(results, "PCI-DSS", "6.3.3", "linux/h1") == "passing"
}

test_comp_pci_633_sla_comes_from_policy_data if {
	results := data.shieldops.compliance.results with input as comp_inv({"vulnerabilities": [comp_vuln(5)]})
		with data.shieldops_config.compliance_checks.critical_patch_sla_days as 3
	comp_status(results, "PCI-DSS", "6.3.3", "linux/h1") == "failing"
}

test_comp_pci_633_ignores_non_critical if {
	results := data.shieldops.compliance.results with input as comp_inv({"vulnerabilities": [object.union(comp_vuln(90), {"severity": "high"})]})
	comp_status(results, "PCI-DSS", "6.3.3", "linux/h1") == "passing"
}

test_comp_pci_633_overdue_fails_even_with_stale_data if {
	results := data.shieldops.compliance.results with input as comp_inv({"vulnerabilities": [comp_vuln(45)], "vulndb": {"stale": true}})
	comp_status(results, "PCI-DSS", "6.3.3", "linux/h1") == "failing"
}

test_comp_pci_839_and_863_fail_on_old_credentials if {
	results := data.shieldops.compliance.results with input as comp_inv({"credentials": [comp_cred(120)]})
	comp_status(results, "PCI-DSS", "8.3.9", "vault/db") == "failing"
	comp_status(results, "PCI-DSS", "8.6.3", "vault/db") == "failing"
	contains(comp_evidence(results, "PCI-DSS", "8.3.9", "vault/db"), "120 days ago (at most 90)")
}

test_comp_pci_839_unknown_without_a_rotation_date if {
	results := data.shieldops.compliance.results with input as comp_inv({"credentials": [comp_cred(null)]})
	comp_status(results, "PCI-DSS", "8.3.9", "vault/db") == "unknown"
}

test_comp_pci_1032_fails_on_a_broken_audit_chain if {
	results := data.shieldops.compliance.results with input as comp_inv({"audit_log": {"intact": false}})
	comp_status(results, "PCI-DSS", "10.3.2", null) == "failing"
}

# A credential whose age field is missing or not a number is unknown, never
# passing (in both engines).
test_comp_pci_839_unknown_when_the_age_is_missing_or_mistyped if {
	missing := object.remove(comp_cred(10), ["rotated_age_days"])
	r1 := data.shieldops.compliance.results with input as comp_inv({"credentials": [missing]})
	comp_status(r1, "PCI-DSS", "8.3.9", "vault/db") == "unknown"
	r2 := data.shieldops.compliance.results with input as comp_inv({"credentials": [comp_cred("10")]})
	comp_status(r2, "PCI-DSS", "8.3.9", "vault/db") == "unknown"
}
