# Cost changes: rightsizing and stopping idle instances. They save money, so
# the bar is that they can never surprise anyone: a resize stays inside the
# instance family it was priced in, and nothing is stopped in production
# unless a person asked for it.
package shieldops

resize_from := input.action.params.from_instance_type

resize_to := input.action.params.instance_type

family(t) := split(t, ".")[0]

deny contains "cost: resize_instance needs an instance_type" if {
	action_name == "resize_instance"
	not is_string(resize_to)
}

deny contains msg if {
	action_name == "resize_instance"
	is_string(resize_from)
	is_string(resize_to)
	family(resize_from) != family(resize_to)
	msg := sprintf("cost: resizing %s to %s leaves the instance family", [resize_from, resize_to])
}

deny contains "cost: an agent may not stop a production instance; an operator must ask" if {
	action_name == "stop_instance"
	environment == "production"
	startswith(input.requester.name, "agent:")
}
