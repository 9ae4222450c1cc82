# Tests for compliance.rego: controls touched and compliance violations.
package shieldops_test

test_production_change_touches_change_management if {
	d := data.shieldops.decision with input as base
	"SOC2:CC8.1" in d.controls
	"SOC2:A1.2" in d.controls
}

test_development_change_is_not_change_management if {
	d := data.shieldops.decision with input as inp({"target": {"environment": "development"}})
	not "SOC2:CC8.1" in d.controls
	"SOC2:A1.2" in d.controls
}

test_credential_rotation_touches_access_controls if {
	d := data.shieldops.decision with input as inp({"action": {"name": "rotate_credential"}})
	"PCI-DSS:8.3.9" in d.controls
	"HIPAA:164.312(a)(1)" in d.controls
	"CIS:5.2" in d.controls
}

test_read_only_touches_no_controls if {
	count(data.shieldops.decision.controls) == 0 with input as inp({"action": {"name": "query_logs"}})
}

test_regulated_label_adds_its_controls if {
	"PCI-DSS:10.2.1" in data.shieldops.decision.controls with input as inp({"target": {"labels": {"data_classification": "pci"}}})
	not "PCI-DSS:10.2.1" in data.shieldops.decision.controls with input as base
}

test_unapproved_production_change_is_a_violation if {
	d := data.shieldops.decision with input as base
		with data.shieldops_config.approvals.production_minimum as 0
	has_deny(d, "compliance: a mutating production action")
	not d.allow
}

test_unapproved_development_change_is_not_a_violation if {
	d := data.shieldops.decision with input as inp({"target": {"environment": "development"}})
		with data.shieldops_config.approvals.production_minimum as 0
	not has_deny(d, "compliance:")
	d.allow
}

test_unapproved_regulated_change_is_a_violation if {
	d := data.shieldops.decision with input as inp({"target": {"environment": "development", "labels": {"data_classification": "phi"}}})
		with data.shieldops_config.approvals.regulated_minimum as 0
	has_deny(d, "compliance: a change to phi-regulated data")
}

test_approved_regulated_change_is_not_a_violation if {
	not has_deny(data.shieldops.decision, "compliance:") with input as inp({"target": {"labels": {"data_classification": "phi"}}})
}
