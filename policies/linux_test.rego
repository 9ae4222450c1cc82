# Tests for linux.rego and the Linux actions' risk table entries.
package shieldops_test

host(action, params) := inp({
	"action": {"name": action, "params": params},
	"target": {"kind": "host", "id": "linux/ssh/web-1", "labels": {"team": "payments"}},
})

unit_action(action) := inp({
	"action": {"name": action, "params": {}},
	"target": {"kind": "service", "id": "linux/ssh/web-1/service/nginx.service", "labels": {"team": "payments"}},
})

test_clean_disk_on_a_host_needs_globs if {
	d := data.shieldops.decision with input as host("clean_disk", {})
	not d.allow
	has_deny(d, "linux: clean_disk on a host must name the globs")
}

test_clean_disk_with_globs_is_allowed_with_medium_risk_in_production if {
	d := data.shieldops.decision with input as host("clean_disk", {"globs": "/var/log/*.gz"})
	d.allow
	d.risk == "medium"
}

test_service_action_on_a_host_needs_the_unit if {
	d := data.shieldops.decision with input as host("restart_service", {})
	not d.allow
	has_deny(d, "linux: restart_service needs a service target")
	e := data.shieldops.decision with input as host("restart_service", {"service": "nginx"})
	e.allow
}

test_service_actions_on_a_service_are_allowed if {
	data.shieldops.decision.allow with input as unit_action("restart_service")
	data.shieldops.decision.allow with input as unit_action("stop_service")
	data.shieldops.decision.allow with input as unit_action("start_service")
}

test_stopping_a_production_service_is_high_risk_and_needs_an_approval if {
	d := data.shieldops.decision with input as unit_action("stop_service")
	d.risk == "high"
	d.required_approvals == 1
	"SOC2:A1.2" in d.controls
}

test_starting_a_service_is_medium_in_production_low_in_staging if {
	data.shieldops.decision.risk == "medium" with input as unit_action("start_service")
	data.shieldops.decision.risk == "low" with input as act("start_service", "staging")
}

test_clean_disk_globs_mistyped_or_empty_denied if {
	has_deny(data.shieldops.decision, "linux: clean_disk on a host") with input as host("clean_disk", {"globs": 7})
	has_deny(data.shieldops.decision, "linux: clean_disk on a host") with input as host("clean_disk", {"globs": ""})
	has_deny(data.shieldops.decision, "linux: clean_disk on a host") with input as host("clean_disk", {"globs": null})
}

test_service_parameter_mistyped_or_empty_denied if {
	has_deny(data.shieldops.decision, "linux: stop_service needs") with input as host("stop_service", {"service": ["nginx"]})
	has_deny(data.shieldops.decision, "linux: stop_service needs") with input as host("stop_service", {"service": ""})
}

test_service_action_on_a_target_without_kind_needs_the_unit if {
	has_deny(data.shieldops.decision, "linux: restart_service needs") with input as json.remove(host("restart_service", {}), ["target/kind"])
}
