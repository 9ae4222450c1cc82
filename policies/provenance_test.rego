# Tests for provenance.rego and the provenance bounds of cost.rego: an
# alert-chosen parameter costs an approval, a missing or malformed record of
# sources reads as alert-chosen, and an alert-chosen resize stays in its
# family and within one size step unless two people approve.
package shieldops_test

# A development rollback (low risk, no approvals by itself) with one parameter
# from `source`.
sourced(source) := inp({
	"action": {"name": "rollback_deployment", "params": {"revision": "3"}, "param_sources": {"revision": source}},
	"target": {"environment": "development"},
})

test_prov_trusted_sources_need_no_approval if {
	data.shieldops.decision.required_approvals == 0 with input as sourced("playbook")
	data.shieldops.decision.required_approvals == 0 with input as sourced("facts")
	data.shieldops.decision.required_approvals == 0 with input as sourced("live")
	data.shieldops.decision.required_approvals == 0 with input as sourced("operator")
}

test_prov_alert_parameter_needs_an_approval if {
	d := data.shieldops.decision with input as sourced("alert")
	d.allow
	d.risk == "low"
	d.required_approvals == 1
}

test_prov_unknown_or_mistyped_source_reads_as_alert if {
	data.shieldops.decision.required_approvals == 1 with input as sourced("ALERT")
	data.shieldops.decision.required_approvals == 1 with input as sourced("")
	data.shieldops.decision.required_approvals == 1 with input as sourced(7)
	data.shieldops.decision.required_approvals == 1 with input as sourced(null)
}

test_prov_unrecorded_parameter_reads_as_alert if {
	d := data.shieldops.decision with input as inp({
		"action": {"name": "rollback_deployment", "params": {"revision": "3"}, "param_sources": {"other": "playbook"}},
		"target": {"environment": "development"},
	})
	d.required_approvals == 1
}

test_prov_missing_or_malformed_sources_read_as_alert if {
	no_params := act("rollback_deployment", "development")
	data.shieldops.decision.required_approvals == 0 with input as no_params
	data.shieldops.decision.required_approvals == 1 with input as json.remove(no_params, ["action/param_sources"])
	data.shieldops.decision.required_approvals == 1 with input as json.remove(sourced("playbook"), ["action/param_sources"])
	data.shieldops.decision.required_approvals == 1 with input as object.union(sourced("playbook"), {"action": {"param_sources": "playbook"}})
	data.shieldops.decision.required_approvals == 1 with input as object.union(sourced("playbook"), {"action": {"param_sources": null}})
}

test_prov_alert_floor_site_tuned if {
	data.shieldops.decision.required_approvals == 2 with input as sourced("alert")
		with data.shieldops_config.provenance.alert_minimum_approvals as 2
}

# Read-only actions need no approval whatever their parameters' sources.
test_prov_read_only_needs_no_approval if {
	d := data.shieldops.decision with input as inp({"action": {"name": "query_logs", "params": {"query": "x"}, "param_sources": {"query": "alert"}}})
	d.required_approvals == 0
	d.allow
}

# A resize in development whose target type came from `source`.
alert_resize(from, to, source) := inp({
	"action": {
		"name": "resize_instance",
		"params": {"instance_type": to, "from_instance_type": from},
		"param_sources": {"instance_type": source, "from_instance_type": "live"},
	},
	"target": {"kind": "ec2_instance", "environment": "development"},
})

test_prov_alert_resize_one_step_needs_one_approval if {
	d := data.shieldops.decision with input as alert_resize("m5.xlarge", "m5.2xlarge", "alert")
	d.allow
	d.required_approvals == 1
	data.shieldops.decision.required_approvals == 1 with input as alert_resize("m5.2xlarge", "m5.xlarge", "alert")
}

test_prov_alert_resize_beyond_one_step_needs_two if {
	d := data.shieldops.decision with input as alert_resize("m5.xlarge", "m5.4xlarge", "alert")
	d.allow
	d.required_approvals == 2
	data.shieldops.decision.required_approvals == 2 with input as alert_resize("m5.4xlarge", "m5.large", "alert")
}

test_prov_alert_resize_to_an_unknown_size_needs_two if {
	data.shieldops.decision.required_approvals == 2 with input as alert_resize("m5.xlarge", "m5.metal", "alert")
}

test_prov_unrecorded_resize_target_is_bounded_like_an_alert if {
	data.shieldops.decision.required_approvals == 2 with input as alert_resize("m5.xlarge", "m5.4xlarge", "ALERT")
	data.shieldops.decision.required_approvals == 2 with input as json.remove(alert_resize("m5.xlarge", "m5.4xlarge", "playbook"), ["action/param_sources"])
}

test_prov_operator_resize_beyond_one_step_needs_no_extra if {
	d := data.shieldops.decision with input as alert_resize("m5.xlarge", "m5.4xlarge", "operator")
	d.allow
	d.required_approvals == 0
}

test_prov_alert_resize_across_families_denied if {
	d := data.shieldops.decision with input as alert_resize("m5.xlarge", "c5.xlarge", "alert")
	has_deny(d, "cost: resizing m5.xlarge to c5.xlarge leaves the instance family")
	not d.allow
}

test_prov_resize_without_the_live_type_denied if {
	d := data.shieldops.decision with input as json.remove(alert_resize("m5.xlarge", "m5.2xlarge", "playbook"), ["action/params/from_instance_type"])
	has_deny(d, "cost: resize_instance needs from_instance_type")
	not d.allow
	has_deny(data.shieldops.decision, "cost: resize_instance needs from_instance_type") with input as object.union(alert_resize("m5.xlarge", "m5.2xlarge", "playbook"), {"action": {"params": {"from_instance_type": null}}})
	has_deny(data.shieldops.decision, "cost: resize_instance needs from_instance_type") with input as object.union(alert_resize("m5.xlarge", "m5.2xlarge", "playbook"), {"action": {"params": {"from_instance_type": "xlarge"}}})
}

# The current type is the runtime's reading of the live instance; one the
# proposer (or an alert) supplied is refused, since a forged current type
# would move the family and step checks.
test_prov_resize_with_a_proposed_current_type_denied if {
	forged := object.union(alert_resize("c5.xlarge", "c5.2xlarge", "alert"), {"action": {"param_sources": {"from_instance_type": "alert"}}})
	d := data.shieldops.decision with input as forged
	has_deny(d, "cost: from_instance_type must be read from the live instance")
	not d.allow
	has_deny(data.shieldops.decision, "cost: from_instance_type must be read from the live instance") with input as json.remove(alert_resize("m5.xlarge", "m5.2xlarge", "playbook"), ["action/param_sources"])
}

test_prov_resize_step_bound_site_tuned if {
	data.shieldops.decision.required_approvals == 1 with input as alert_resize("m5.xlarge", "m5.4xlarge", "alert")
		with data.shieldops_config.provenance.alert_resize_max_factor as 4
}
