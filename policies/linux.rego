# Linux host actions: a clean-up of a host must say what it may remove, and a
# service action must say which service. Destructive commands never get this
# far: the guardrails refuse them before the policy gate is asked.
package shieldops

service_actions := {"restart_service", "stop_service", "start_service"}

deny contains "linux: clean_disk on a host must name the globs it may remove" if {
	mutating
	action_name == "clean_disk"
	input.target.kind == "host"
	not is_string(input.action.params.globs)
}

deny contains msg if {
	mutating
	action_name in service_actions
	input.target.kind != "service"
	not is_string(input.action.params.service)
	msg := sprintf("linux: %s needs a service target or a `service` parameter", [action_name])
}
