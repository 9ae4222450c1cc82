# Tests for risk.rego: risk per action × environment and required approvals.
package shieldops_test

scale(env, replicas, current) := inp({
	"action": {"name": "scale", "params": {"replicas": replicas, "current_replicas": current}},
	"target": {"environment": env},
})

critical_two_approvals(d) if {
	d.risk == "critical"
	d.required_approvals == 2
}

test_critical_actions_critical_in_development if {
	critical_two_approvals(data.shieldops.decision) with input as act("drain_node", "development")
	critical_two_approvals(data.shieldops.decision) with input as act("modify_network_policy", "development")
	critical_two_approvals(data.shieldops.decision) with input as act("modify_iam_policy", "development")
}

test_critical_actions_critical_in_staging_and_production if {
	critical_two_approvals(data.shieldops.decision) with input as act("drain_node", "staging")
	critical_two_approvals(data.shieldops.decision) with input as act("drain_node", "production")
	critical_two_approvals(data.shieldops.decision) with input as act("modify_network_policy", "production")
	critical_two_approvals(data.shieldops.decision) with input as act("modify_iam_policy", "staging")
}

test_delete_namespace_critical_and_forbidden if {
	d := data.shieldops.decision with input as act("delete_namespace", "development")
	d.risk == "critical"
	not d.allow
}

test_connector_alias_maps_to_canonical_action if {
	data.shieldops.decision.risk == "critical" with input as act("drain", "development")
	data.shieldops.decision.risk == "high" with input as act("rollback", "production")
}

test_rollback_high_in_production_only if {
	p := data.shieldops.decision with input as act("rollback_deployment", "production")
	p.risk == "high"
	p.required_approvals == 1
	d := data.shieldops.decision with input as act("rollback_deployment", "development")
	d.risk == "low"
	d.required_approvals == 0
}

test_credential_rotation_high_in_production_only if {
	data.shieldops.decision.risk == "high" with input as act("rotate_credential", "production")
	data.shieldops.decision.risk == "medium" with input as act("rotate_credential", "staging")
}

test_scale_down_high_in_production if {
	d := data.shieldops.decision with input as scale("production", "2", "4")
	d.risk == "high"
	d.required_approvals == 1
}

test_scale_up_medium_in_production if {
	data.shieldops.decision.risk == "medium" with input as scale("production", "6", "4")
}

test_scale_down_not_high_in_staging if {
	data.shieldops.decision.risk == "medium" with input as scale("staging", "2", "4")
}

test_scale_without_current_replicas_treated_as_scale_down if {
	data.shieldops.decision.risk == "high" with input as inp({"action": {"name": "scale", "params": {"replicas": "9"}}})
}

test_scale_with_non_numeric_replicas_treated_as_scale_down if {
	data.shieldops.decision.risk == "high" with input as scale("production", "lots", "4")
}

test_scale_with_numeric_params if {
	data.shieldops.decision.risk == "medium" with input as scale("production", 6, 4)
}

test_unknown_action_uses_environment_default if {
	data.shieldops.decision.risk == "high" with input as act("frobnicate", "production")
	data.shieldops.decision.risk == "medium" with input as act("frobnicate", "development")
}

test_read_only_is_low if {
	data.shieldops.decision.risk == "low" with input as act("query_metrics", "production")
}

test_low_and_medium_need_no_approval_outside_production if {
	d := data.shieldops.decision with input as act("restart_pod", "development")
	d.risk == "low"
	d.required_approvals == 0
	s := data.shieldops.decision with input as act("rollout_restart", "staging")
	s.risk == "medium"
	s.required_approvals == 0
}

test_any_mutating_production_action_needs_one_approval if {
	d := data.shieldops.decision with input as act("restart_pod", "production")
	d.risk == "medium"
	d.required_approvals == 1
	data.shieldops.decision.required_approvals == 1 with input as act("uncordon_node", "production")
}

test_approvals_site_tuned if {
	d := data.shieldops.decision with input as act("rollback_deployment", "production")
		with data.shieldops_config.approvals.by_risk.high as 3
	d.required_approvals == 3
}

test_risk_site_tuned if {
	d := data.shieldops.decision with input as act("restart_pod", "development")
		with data.shieldops_config.risk.actions.restart_pod.development as "high"
	d.risk == "high"
	d.required_approvals == 1
}

test_regulated_resource_needs_an_approval_outside_production if {
	d := data.shieldops.decision with input as inp({"target": {"environment": "development", "labels": {"data_classification": "phi"}}})
	d.required_approvals == 1
	d.allow
}

test_unregulated_resource_needs_none_outside_production if {
	data.shieldops.decision.required_approvals == 0 with input as inp({"target": {"environment": "development", "labels": {"data_classification": "public"}}})
}
