# Tests for aws.rego and the AWS rows of the risk table.
package shieldops_test

instance(action, params, env) := inp({
	"action": {"name": action, "params": params, "param_sources": recorded(params)},
	"target": {
		"id": "aws/prod/eu-west-1/ec2/i-0abc",
		"kind": "ec2_instance",
		"environment": env,
		"labels": {"team": "payments"},
	},
})

ecs_service(action, params, env) := inp({
	"action": {"name": action, "params": params, "param_sources": recorded(params)},
	"target": {
		"id": "aws/prod/eu-west-1/ecs/web/checkout",
		"kind": "ecs_service",
		"environment": env,
		"labels": {"team": "payments"},
	},
})

test_reboot_allowed_with_one_approval_in_production if {
	d := data.shieldops.decision with input as instance("reboot_instance", {}, "production")
	d.allow
	d.risk == "medium"
	d.required_approvals == 1
}

test_resize_high_risk_in_production if {
	d := data.shieldops.decision with input as instance("resize_instance", {"instance_type": "m5.xlarge", "from_instance_type": "m5.2xlarge"}, "production")
	d.allow
	d.risk == "high"
	d.required_approvals == 1
}

test_resize_without_type_denied if {
	d := data.shieldops.decision with input as instance("resize_instance", {}, "development")
	has_deny(d, "aws: resize_instance needs an instance_type")
	not d.allow
}

test_resize_with_garbage_type_denied if {
	has_deny(data.shieldops.decision, "aws: resize_instance needs") with input as instance("resize_instance", {"instance_type": "huge; rm"}, "development")
}

test_instance_action_on_a_service_denied if {
	has_deny(data.shieldops.decision, "aws: stop_instance applies to EC2") with input as ecs_service("stop_instance", {}, "development")
}

test_service_action_on_an_instance_denied if {
	has_deny(data.shieldops.decision, "aws: force_new_deployment applies to ECS") with input as instance("force_new_deployment", {}, "development")
}

test_set_desired_count_allowed_in_range if {
	d := data.shieldops.decision with input as ecs_service("set_desired_count", {"desired_count": "6"}, "staging")
	d.allow
	d.risk == "medium"
}

test_set_desired_count_zero_in_production_denied if {
	d := data.shieldops.decision with input as ecs_service("set_desired_count", {"desired_count": "0"}, "production")
	has_deny(d, "aws: set_desired_count 0")
	not d.allow
}

test_set_desired_count_zero_in_development_allowed if {
	data.shieldops.decision.allow with input as ecs_service("set_desired_count", {"desired_count": "0"}, "development")
}

test_set_desired_count_needs_a_number if {
	has_deny(data.shieldops.decision, "aws: set_desired_count needs") with input as ecs_service("set_desired_count", {"desired_count": "many"}, "development")
	has_deny(data.shieldops.decision, "aws: set_desired_count needs") with input as ecs_service("set_desired_count", {}, "development")
}

test_set_desired_count_above_limit_denied if {
	has_deny(data.shieldops.decision, "aws: desired_count 500") with input as ecs_service("set_desired_count", {"desired_count": "500"}, "development")
}

test_force_new_deployment_low_risk_outside_production if {
	d := data.shieldops.decision with input as ecs_service("force_new_deployment", {}, "staging")
	d.allow
	d.risk == "low"
}

test_resize_with_mistyped_type_denied if {
	has_deny(data.shieldops.decision, "aws: resize_instance needs") with input as instance("resize_instance", {"instance_type": 5, "from_instance_type": "m5.xlarge"}, "development")
	has_deny(data.shieldops.decision, "cost: resize_instance needs an instance_type") with input as instance("resize_instance", {"instance_type": ["m5.large"], "from_instance_type": "m5.xlarge"}, "development")
}

test_set_desired_count_negative_or_fractional_denied if {
	has_deny(data.shieldops.decision, "aws: set_desired_count needs") with input as ecs_service("set_desired_count", {"desired_count": -1}, "development")
	has_deny(data.shieldops.decision, "aws: set_desired_count needs") with input as ecs_service("set_desired_count", {"desired_count": 2.5}, "development")
	has_deny(data.shieldops.decision, "aws: set_desired_count needs") with input as ecs_service("set_desired_count", {"desired_count": "-1"}, "development")
}
