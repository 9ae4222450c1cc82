# Linux host actions: a clean-up of a host must say what it may remove, and a
# service action must say which service. Destructive commands never get this
# far: the guardrails refuse them before the policy gate is asked.
package shieldops

service_actions := {"restart_service", "stop_service", "start_service"}

deny contains "linux: clean_disk on a host must name the globs it may remove" if {
	mutating
	action_name == "clean_disk"
	target_kind == "host"
	not linux_globs_named
}

linux_globs_named if non_empty_string(params.globs)

deny contains msg if {
	mutating
	action_name in service_actions
	target_kind != "service"
	not linux_service_named
	msg := sprintf("linux: %s needs a service target or a `service` parameter", [action_name])
}

linux_service_named if non_empty_string(params.service)

non_empty_string(s) if {
	is_string(s)
	s != ""
}
