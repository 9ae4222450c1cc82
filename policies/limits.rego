# Limits on mutating actions: blast radius, change freeze windows and rate
# limits. Counts come from the caller, folded from the event log, so the
# policy needs no external store and stays a pure function of its input.
package shieldops

deny contains msg if {
	mutating
	limit := cfg.blast_radius[environment]
	n := input.affected_resources
	is_number(n)
	n > limit
	msg := sprintf(
		"blast radius: %v resources affected, the limit in %s is %v",
		[n, environment, limit],
	)
}

# Freeze windows are in UTC, from `input.time` (the caller's clock), never
# from the engine's clock, so a decision can be replayed.
in_freeze if {
	environment in cfg.freeze.environments
	some w in cfg.freeze.windows
	w.weekday == input.time.weekday
	object.get(w, "from_hour", 0) <= input.time.hour
	input.time.hour < object.get(w, "to_hour", 24)
}

deny contains msg if {
	mutating
	in_freeze
	not input.freeze_override == true
	msg := sprintf(
		"freeze: %s is in a change freeze (%s, hour %v UTC); an override needs %v extra approval(s)",
		[environment, input.time.weekday, input.time.hour, cfg.freeze.override_extra_approvals],
	)
}

# An override is recorded: it adds approvals (risk.rego) and a control
# (compliance.rego).
freeze_overridden if {
	mutating
	in_freeze
	input.freeze_override == true
}

deny contains msg if {
	mutating
	limit := cfg.rate_limits.per_minute[environment]
	n := input.rate.environment_last_minute
	is_number(n)
	n >= limit
	msg := sprintf(
		"rate limit: %v actions in %s in the last minute, the limit is %v",
		[n, environment, limit],
	)
}

deny contains msg if {
	mutating
	limit := cfg.rate_limits.per_hour[environment]
	n := input.rate.environment_last_hour
	is_number(n)
	n >= limit
	msg := sprintf(
		"rate limit: %v actions in %s in the last hour, the limit is %v",
		[n, environment, limit],
	)
}

deny contains msg if {
	mutating
	limit := cfg.rate_limits.team_per_hour
	n := input.rate.team_last_hour
	is_number(n)
	n >= limit
	msg := sprintf(
		"rate limit: %v actions by team %q in the last hour, the limit is %v",
		[n, requester_team, limit],
	)
}
