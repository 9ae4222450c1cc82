# Tests for hipaa.rego.
package shieldops_test

test_comp_hipaa_312b_audit_controls if {
	ok := data.shieldops.compliance.results with input as comp_inv({})
	comp_status(ok, "HIPAA", "164.312(b)", null) == "passing"
	broken := data.shieldops.compliance.results with input as comp_inv({"audit_log": {"intact": false}})
	comp_status(broken, "HIPAA", "164.312(b)", null) == "failing"
	unchecked := data.shieldops.compliance.results with input as comp_inv({"audit_log": {"intact": null}})
	comp_status(unchecked, "HIPAA", "164.312(b)", null) == "unknown"
}

test_comp_hipaa_312a1_fails_on_wildcard_role if {
	results := data.shieldops.compliance.results with input as comp_inv({"roles": [comp_role("ops", {"rbac.wildcard": "true", "rbac.wildcard_rules": "*/* on *"})]})
	comp_status(results, "HIPAA", "164.312(a)(1)", "k8s/role/ops") == "failing"
}

test_comp_hipaa_312d_fails_on_password_ssh if {
	results := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"sshd.password_authentication": "yes"})]})
	comp_status(results, "HIPAA", "164.312(d)", "linux/h1") == "failing"
}

test_comp_hipaa_308_fails_without_unattended_upgrades if {
	results := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"unattended_upgrades": "not_installed"})]})
	comp_status(results, "HIPAA", "164.308(a)(1)(ii)(B)", "linux/h1") == "failing"
}
