# AWS actions: parameters that must be present and sane before an EC2 or
# ECS action may run. Risk and approvals per action live in data.json
# (`risk.actions`), like every other action's.
package shieldops

aws_instance_actions := {"reboot_instance", "stop_instance", "start_instance", "resize_instance"}

aws_service_actions := {"force_new_deployment", "set_desired_count"}

deny contains msg if {
	action_name in aws_instance_actions
	target_kind != "ec2_instance"
	msg := sprintf("aws: %s applies to EC2 instances, not %q", [action_name, target_kind])
}

deny contains msg if {
	action_name in aws_service_actions
	target_kind != "ecs_service"
	msg := sprintf("aws: %s applies to ECS services, not %q", [action_name, target_kind])
}

deny contains "aws: resize_instance needs an instance_type parameter" if {
	action_name == "resize_instance"
	not aws_instance_type
}

aws_instance_type if instance_type_valid(params.instance_type)

# An EC2 instance type: family, a dot, size (`m5.xlarge`).
instance_type_valid(t) if {
	is_string(t)
	regex.match(`^[a-z0-9-]+\.[a-z0-9]+$`, t)
}

deny contains "aws: set_desired_count needs a whole-number desired_count" if {
	action_name == "set_desired_count"
	not param_number("desired_count")
}

# Scaling a production service to zero is an outage, not a remediation.
deny contains "aws: set_desired_count 0 would take a production service down" if {
	action_name == "set_desired_count"
	environment == "production"
	param_number("desired_count") == 0
}

# At most this many tasks in one step; larger jumps are capacity planning.
deny contains msg if {
	action_name == "set_desired_count"
	n := param_number("desired_count")
	n > cfg.aws.max_desired_count
	msg := sprintf("aws: desired_count %v is above the limit of %v", [n, cfg.aws.max_desired_count])
}
