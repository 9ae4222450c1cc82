# Tests for decision.rego: the document's shape, deny-wins, read-only and
# forbidden actions, input validation. Shared fixtures live here.
#
# Every `with` sits in a test rule's own body and names the decision by its
# full path (`data.shieldops.decision`): regorus 0.14 does not re-evaluate a
# rule under `with` inside a helper function, an `every` body, or through an
# import alias. So helpers only build inputs.
package shieldops_test

# A baseline that passes every rule: a production pod restart by its own
# team on a Wednesday morning, well inside every limit.
base := {
	"action": {"name": "restart_pod", "params": {}, "param_sources": {}},
	"target": {
		"id": "k8s/prod-eu/payments/pod/checkout-7d9f",
		"kind": "pod",
		"environment": "production",
		"team": "payments",
		"labels": {"team": "payments", "namespace": "payments"},
	},
	"requester": {"name": "remediation-agent", "team": "payments"},
	"affected_resources": 1,
	"time": {"rfc3339": "2025-01-15T10:00:00.000Z", "weekday": "Wednesday", "hour": 10},
	"rate": {"environment_last_minute": 0, "environment_last_hour": 0, "team_last_hour": 0},
	"freeze_override": false,
}

# The baseline deep-merged with `patch`.
inp(patch) := object.union(base, patch)

# Sources for `params` as the runtime records them: every parameter a
# playbook constant, except the current instance type, read from the live
# instance.
recorded(params) := {k: param_source_of(k) | some k, _ in params}

param_source_of(k) := "live" if k == "from_instance_type"

param_source_of(k) := "playbook" if k != "from_instance_type"

# The baseline with another action in another environment.
act(action, env) := inp({"action": {"name": action}, "target": {"environment": env}})

# Whether some deny reason of `d` starts with `prefix`.
has_deny(d, prefix) if {
	some r in d.deny
	startswith(r, prefix)
}

# Conditions that deny any mutating action: a Saturday in production, rate
# limits exhausted, another team's resource, a huge blast radius.
hostile(action, env) := object.union(act(action, env), {
	"target": {"team": "search", "labels": {"team": "search"}},
	"affected_resources": 500,
	"time": {"weekday": "Saturday", "hour": 12},
	"rate": {"environment_last_minute": 1000, "environment_last_hour": 1000, "team_last_hour": 1000},
})

allowed_read_only(d) if {
	d.allow
	d.risk == "low"
	d.required_approvals == 0
	count(d.controls) == 0
}

test_decision_has_every_field if {
	d := data.shieldops.decision with input as base
	is_boolean(d.allow)
	is_array(d.deny)
	is_number(d.required_approvals)
	d.risk in {"low", "medium", "high", "critical"}
	is_array(d.controls)
}

test_baseline_is_allowed if {
	d := data.shieldops.decision with input as base
	d.allow
	count(d.deny) == 0
}

test_any_deny_makes_allow_false if {
	d := data.shieldops.decision with input as inp({"affected_resources": 4})
	count(d.deny) == 1
	not d.allow
}

test_read_only_allowed_in_production_under_hostile_conditions if {
	allowed_read_only(data.shieldops.decision) with input as hostile("query_logs", "production")
	allowed_read_only(data.shieldops.decision) with input as hostile("query_metrics", "production")
	allowed_read_only(data.shieldops.decision) with input as hostile("query_events", "production")
	allowed_read_only(data.shieldops.decision) with input as hostile("get_health", "production")
	allowed_read_only(data.shieldops.decision) with input as hostile("list_resources", "production")
}

test_read_only_allowed_in_every_environment if {
	allowed_read_only(data.shieldops.decision) with input as hostile("get_health", "development")
	allowed_read_only(data.shieldops.decision) with input as hostile("get_health", "staging")
	allowed_read_only(data.shieldops.decision) with input as hostile("list_resources", "development")
	allowed_read_only(data.shieldops.decision) with input as hostile("query_logs", "staging")
}

test_mutating_denied_under_hostile_conditions if {
	d := data.shieldops.decision with input as hostile("restart_pod", "production")
	not d.allow
	has_deny(d, "blast radius:")
	has_deny(d, "freeze:")
	has_deny(d, "rate limit:")
	has_deny(d, "scope:")
}

test_forbidden_actions_denied_in_production if {
	has_deny(data.shieldops.decision, "forbidden:") with input as act("delete_database", "production")
	has_deny(data.shieldops.decision, "forbidden:") with input as act("drop_table", "production")
	has_deny(data.shieldops.decision, "forbidden:") with input as act("delete_namespace", "production")
	has_deny(data.shieldops.decision, "forbidden:") with input as act("modify_iam_root", "production")
	has_deny(data.shieldops.decision, "forbidden:") with input as act("disable_logging", "production")
	has_deny(data.shieldops.decision, "forbidden:") with input as act("disable_monitoring", "production")
}

test_forbidden_actions_denied_outside_production if {
	d := data.shieldops.decision with input as act("drop_table", "development")
	not d.allow
	has_deny(d, "forbidden:")
	has_deny(data.shieldops.decision, "forbidden:") with input as act("disable_logging", "staging")
	has_deny(data.shieldops.decision, "forbidden:") with input as act("delete_database", "development")
}

test_ordinary_action_is_not_forbidden if {
	not has_deny(data.shieldops.decision, "forbidden:") with input as base
}

test_forbidden_site_tuned if {
	has_deny(data.shieldops.decision, "forbidden:") with input as base
		with data.shieldops_config.forbidden_actions as ["restart_pod"]
}

test_baseline_has_no_input_errors if {
	not has_deny(data.shieldops.decision, "input:") with input as base
}

test_missing_action_name_denied if {
	d := data.shieldops.decision with input as object.remove(base, ["action"])
	has_deny(d, "input: action.name")
	not d.allow
}

test_non_string_action_name_denied if {
	has_deny(data.shieldops.decision, "input: action.name") with input as inp({"action": {"name": 7}})
}

test_unknown_environment_denied if {
	d := data.shieldops.decision with input as inp({"target": {"environment": "prod"}})
	has_deny(d, "input: unknown environment")
	not d.allow
}

test_unknown_environment_denied_for_read_only if {
	d := data.shieldops.decision with input as act("get_health", "moon")
	not d.allow
}

test_missing_affected_resources_denied if {
	d := data.shieldops.decision with input as object.remove(base, ["affected_resources"])
	has_deny(d, "input: affected_resources")
}

test_negative_affected_resources_denied if {
	has_deny(data.shieldops.decision, "input: affected_resources") with input as inp({"affected_resources": -1})
}

test_bad_weekday_denied if {
	has_deny(data.shieldops.decision, "input: time.weekday") with input as inp({"time": {"weekday": "Caturday"}})
}

test_missing_time_denied if {
	d := data.shieldops.decision with input as object.remove(base, ["time"])
	has_deny(d, "input: time.weekday")
	has_deny(d, "input: time.hour")
}

test_bad_hour_denied if {
	has_deny(data.shieldops.decision, "input: time.hour") with input as inp({"time": {"hour": 24}})
	has_deny(data.shieldops.decision, "input: time.hour") with input as inp({"time": {"hour": "10"}})
}

test_missing_rate_count_denied if {
	d := data.shieldops.decision with input as inp({"rate": {"team_last_hour": null}})
	has_deny(d, "input: rate.team_last_hour")
	not has_deny(d, "input: rate.environment_last_minute")
}

test_missing_kind_denied_for_mutating_actions if {
	has_deny(data.shieldops.decision, "input: target.kind") with input as inp({"target": {"kind": ""}})
	not has_deny(data.shieldops.decision, "input: target.kind") with input as inp({"action": {"name": "get_health"}, "target": {"kind": ""}})
}

# -- fail closed on every malformed field, in both engines ------------------
# Each check is tested with the field missing and with the wrong type: in OPA
# `not f(input.x)` never holds when x is missing, so the missing case is the
# one that proves the helper-rule form.

test_mistyped_affected_resources_denied if {
	has_deny(data.shieldops.decision, "input: affected_resources") with input as inp({"affected_resources": "500"})
	has_deny(data.shieldops.decision, "input: affected_resources") with input as inp({"affected_resources": null})
}

test_missing_or_mistyped_weekday_denied if {
	has_deny(data.shieldops.decision, "input: time.weekday") with input as json.remove(base, ["time/weekday"])
	has_deny(data.shieldops.decision, "input: time.weekday") with input as inp({"time": {"weekday": 3}})
	not data.shieldops.decision.allow with input as json.remove(base, ["time/weekday"])
}

test_missing_or_null_hour_denied if {
	has_deny(data.shieldops.decision, "input: time.hour") with input as json.remove(base, ["time/hour"])
	has_deny(data.shieldops.decision, "input: time.hour") with input as inp({"time": {"hour": null}})
}

test_missing_or_mistyped_rate_denied if {
	has_deny(data.shieldops.decision, "input: rate.environment_last_minute") with input as json.remove(base, ["rate/environment_last_minute"])
	has_deny(data.shieldops.decision, "input: rate.environment_last_hour") with input as inp({"rate": {"environment_last_hour": "1000"}})
	d := data.shieldops.decision with input as object.remove(base, ["rate"])
	has_deny(d, "input: rate.team_last_hour")
	not has_deny(d, "rate limit:")
}

test_missing_or_mistyped_kind_denied if {
	has_deny(data.shieldops.decision, "input: target.kind") with input as json.remove(base, ["target/kind"])
	has_deny(data.shieldops.decision, "input: target.kind") with input as inp({"target": {"kind": 7}})
}

test_missing_environment_denied if {
	d := data.shieldops.decision with input as json.remove(base, ["target/environment"])
	has_deny(d, "input: unknown environment")
	has_deny(data.shieldops.decision, "input: unknown environment") with input as inp({"target": {"environment": 1}})
}

test_missing_or_mistyped_requester_name_denied if {
	d := data.shieldops.decision with input as json.remove(base, ["requester/name"])
	has_deny(d, "input: requester.name")
	not d.allow
	has_deny(data.shieldops.decision, "input: requester.name") with input as inp({"requester": {"name": ["agent:cost"]}})
	not has_deny(data.shieldops.decision, "input: requester.name") with input as base
}

test_mistyped_params_denied if {
	has_deny(data.shieldops.decision, "input: action.params") with input as inp({"action": {"params": "instance_type=m5.large"}})
	has_deny(data.shieldops.decision, "input: action.params") with input as inp({"action": {"params": null}})
	not has_deny(data.shieldops.decision, "input: action.params") with input as json.remove(base, ["action/params"])
}

test_mistyped_freeze_override_denied if {
	has_deny(data.shieldops.decision, "input: freeze_override") with input as inp({"freeze_override": "true"})
	not has_deny(data.shieldops.decision, "input: freeze_override") with input as object.remove(base, ["freeze_override"])
}

# A string override does not override a freeze.
test_string_freeze_override_does_not_override if {
	d := data.shieldops.decision with input as inp({"time": {"weekday": "Saturday"}, "freeze_override": "true"})
	has_deny(d, "freeze:")
	not d.allow
}
