# Cost changes: rightsizing and stopping idle instances. They save money, so
# the bar is that they can never surprise anyone: a resize stays inside the
# instance family it was priced in, and nothing is stopped in production
# unless a person asked for it.
package shieldops

resize if action_name == "resize_instance"

# The type to resize to (proposed) and the current type, which the runtime
# reads from the live instance (source "live"), never from the proposer.
resize_to := params.instance_type

resize_from := params.from_instance_type

instance_family(t) := split(t, ".")[0]

instance_size(t) := split(t, ".")[1]

deny contains "cost: resize_instance needs an instance_type" if {
	resize
	not resize_to_valid
}

resize_to_valid if instance_type_valid(resize_to)

# The family rule always applies: a resize without the current type cannot
# be checked, so it is denied.
deny contains "cost: resize_instance needs from_instance_type, the live instance's current type" if {
	resize
	not resize_from_valid
}

resize_from_valid if instance_type_valid(resize_from)

deny contains "cost: from_instance_type must be read from the live instance (param source \"live\")" if {
	resize
	resize_from_valid
	not resize_from_live
}

resize_from_live if param_sources.from_instance_type == "live"

deny contains msg if {
	resize
	resize_from_valid
	resize_to_valid
	instance_family(resize_from) != instance_family(resize_to)
	msg := sprintf("cost: resizing %s to %s leaves the instance family", [resize_from, resize_to])
}

# An alert-chosen size may move at most one size step (a factor of
# `alert_resize_max_factor` in normalized units) without more approvals; an
# unknown size counts as beyond the bound.
default resize_floor := 0

resize_floor := cfg.provenance.alert_resize_beyond_approvals if {
	resize
	"instance_type" in alert_params
	not resize_within_alert_bound
}

resize_within_alert_bound if {
	resize_from_valid
	resize_to_valid
	a := cfg.aws.instance_size_units[instance_size(resize_from)]
	b := cfg.aws.instance_size_units[instance_size(resize_to)]
	max([a, b]) <= min([a, b]) * cfg.provenance.alert_resize_max_factor
}

deny contains "cost: an agent may not stop a production instance; an operator must ask" if {
	action_name == "stop_instance"
	environment == "production"
	startswith(requester_name, "agent:")
}
