# Tests for limits.rego: blast radius, freeze windows and rate limits.
package shieldops_test

blast(env, n) := inp({"target": {"environment": env}, "affected_resources": n})

at(env, weekday, hour, override) := inp({
	"target": {"environment": env},
	"time": {"weekday": weekday, "hour": hour},
	"freeze_override": override,
})

rate(counts) := inp({"rate": counts})

test_blast_radius_at_limit_allowed if {
	data.shieldops.decision.allow with input as blast("development", 10)
	data.shieldops.decision.allow with input as blast("staging", 5)
	data.shieldops.decision.allow with input as blast("production", 3)
}

test_blast_radius_over_limit_denied if {
	has_deny(data.shieldops.decision, "blast radius:") with input as blast("development", 11)
	has_deny(data.shieldops.decision, "blast radius:") with input as blast("staging", 6)
	d := data.shieldops.decision with input as blast("production", 4)
	has_deny(d, "blast radius:")
	not d.allow
}

test_blast_radius_site_tuned if {
	has_deny(data.shieldops.decision, "blast radius:") with input as blast("production", 2)
		with data.shieldops_config.blast_radius.production as 1
}

test_freeze_denies_weekend_production_changes if {
	has_deny(data.shieldops.decision, "freeze:") with input as at("production", "Saturday", 10, false)
	has_deny(data.shieldops.decision, "freeze:") with input as at("production", "Sunday", 23, false)
	not data.shieldops.decision.allow with input as at("production", "Sunday", 0, false)
}

test_no_freeze_on_weekdays if {
	d := data.shieldops.decision with input as at("production", "Friday", 23, false)
	d.allow
	not has_deny(d, "freeze:")
}

test_no_freeze_outside_production if {
	data.shieldops.decision.allow with input as at("staging", "Saturday", 10, false)
}

test_freeze_override_allows_with_one_extra_approval if {
	d := data.shieldops.decision with input as at("production", "Saturday", 10, true)
	d.allow
	d.required_approvals == 2
	"SHIELDOPS:FREEZE-OVERRIDE" in d.controls
}

test_override_outside_freeze_costs_nothing if {
	d := data.shieldops.decision with input as at("production", "Wednesday", 10, true)
	d.required_approvals == 1
	not "SHIELDOPS:FREEZE-OVERRIDE" in d.controls
}

test_override_must_be_true_not_truthy if {
	has_deny(data.shieldops.decision, "freeze:") with input as at("production", "Saturday", 10, "yes")
}

test_freeze_window_hours_site_tuned if {
	windows := [{"weekday": "Friday", "from_hour": 18, "to_hour": 24}]
	data.shieldops.decision.allow with input as at("production", "Friday", 17, false)
		with data.shieldops_config.freeze.windows as windows
	has_deny(data.shieldops.decision, "freeze:") with input as at("production", "Friday", 18, false)
		with data.shieldops_config.freeze.windows as windows
	data.shieldops.decision.allow with input as at("production", "Saturday", 10, false)
		with data.shieldops_config.freeze.windows as windows
}

test_rate_per_minute if {
	data.shieldops.decision.allow with input as rate({"environment_last_minute": 2})
	has_deny(data.shieldops.decision, "rate limit:") with input as rate({"environment_last_minute": 3})
}

test_rate_per_minute_depends_on_environment if {
	data.shieldops.decision.allow with input as inp({"target": {"environment": "development"}, "rate": {"environment_last_minute": 3}})
}

test_rate_per_hour if {
	data.shieldops.decision.allow with input as rate({"environment_last_hour": 19})
	has_deny(data.shieldops.decision, "rate limit:") with input as rate({"environment_last_hour": 20})
}

test_rate_team_per_hour if {
	data.shieldops.decision.allow with input as rate({"team_last_hour": 29})
	has_deny(data.shieldops.decision, "rate limit:") with input as rate({"team_last_hour": 30})
}

test_rate_site_tuned if {
	has_deny(data.shieldops.decision, "rate limit:") with input as rate({"team_last_hour": 1})
		with data.shieldops_config.rate_limits.team_per_hour as 1
}

test_freeze_window_end_hour_is_exclusive if {
	windows := [{"weekday": "Saturday", "from_hour": 0, "to_hour": 12}]
	has_deny(data.shieldops.decision, "freeze:") with input as at("production", "Saturday", 11, false)
		with data.shieldops_config.freeze.windows as windows
	data.shieldops.decision.allow with input as at("production", "Saturday", 12, false)
		with data.shieldops_config.freeze.windows as windows
}
