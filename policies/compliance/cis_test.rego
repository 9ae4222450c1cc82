# Tests for cis.rego.
package shieldops_test

test_comp_cis_root_login_must_be_no if {
	results := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"sshd.permit_root_login": "prohibit-password"})]})
	comp_status(results, "CIS", "Linux 5.2.10", "linux/h1") == "failing"
}

test_comp_cis_builtin_wildcard_roles_are_not_applicable if {
	results := data.shieldops.compliance.results with input as comp_inv({"roles": [
		comp_role("cluster-admin", {"rbac.wildcard": "true"}),
		comp_role("system:controller:x", {"rbac.wildcard": "true"}),
		comp_role("deployer", {"rbac.wildcard": "true", "rbac.wildcard_rules": "apps/* verbs *"}),
	]})
	comp_status(results, "CIS", "K8s 5.1.3", "k8s/role/cluster-admin") == "not_applicable"
	comp_status(results, "CIS", "K8s 5.1.3", "k8s/role/system:controller:x") == "not_applicable"
	comp_status(results, "CIS", "K8s 5.1.3", "k8s/role/deployer") == "failing"
	contains(comp_evidence(results, "CIS", "K8s 5.1.3", "k8s/role/deployer"), "apps/* verbs *")
}

test_comp_cis_root_containers if {
	root := data.shieldops.compliance.results with input as comp_inv({"pods": [comp_pod({"security.run_as_root": "true"})]})
	comp_status(root, "CIS", "K8s 5.2.7", "k8s/p1") == "failing"
	unsure := data.shieldops.compliance.results with input as comp_inv({"pods": [comp_pod({"security.run_as_root": "unknown"})]})
	comp_status(unsure, "CIS", "K8s 5.2.7", "k8s/p1") == "unknown"
}

test_comp_cis_unattended_upgrades if {
	off := data.shieldops.compliance.results with input as comp_inv({"hosts": [comp_host({"unattended_upgrades": "disabled"})]})
	comp_status(off, "CIS", "Linux 1.9", "linux/h1") == "failing"
}
