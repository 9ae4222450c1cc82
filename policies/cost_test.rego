# Tests for cost.rego: rightsizing within a family, no unattended production stops.
package shieldops_test

resize(from, to, env) := inp({
	"action": {
		"name": "resize_instance",
		"params": {"instance_type": to, "from_instance_type": from},
		"param_sources": {"instance_type": "playbook", "from_instance_type": "live"},
	},
	"target": {"kind": "ec2_instance", "environment": env},
})

stop(env, requester) := inp({
	"action": {"name": "stop_instance"},
	"target": {"kind": "ec2_instance", "environment": env},
	"requester": {"name": requester},
})

test_resize_within_family_allowed if {
	d := data.shieldops.decision with input as resize("m5.8xlarge", "m5.2xlarge", "staging")
	d.allow
	d.risk == "medium"
}

test_resize_in_production_needs_an_approval if {
	d := data.shieldops.decision with input as resize("m5.8xlarge", "m5.2xlarge", "production")
	d.allow
	d.risk == "high"
	d.required_approvals >= 1
}

test_resize_across_families_denied if {
	d := data.shieldops.decision with input as resize("m5.xlarge", "t3.small", "development")
	has_deny(d, "cost: resizing m5.xlarge to t3.small leaves the instance family")
	not d.allow
}

test_resize_without_a_type_denied if {
	d := data.shieldops.decision with input as inp({"action": {"name": "resize_instance", "params": {}}})
	has_deny(d, "cost: resize_instance needs an instance_type")
}

test_agent_may_not_stop_production if {
	d := data.shieldops.decision with input as stop("production", "agent:cost")
	has_deny(d, "cost: an agent may not stop")
	not d.allow
}

test_operator_may_ask_to_stop_production_with_approval if {
	d := data.shieldops.decision with input as stop("production", "alice")
	d.allow
	d.required_approvals >= 1
}

test_agent_may_stop_in_development if {
	data.shieldops.decision.allow with input as stop("development", "agent:cost")
}
