# The single decision document the gate reads: data.shieldops.decision.
#
# Every other file in this package contributes deny reasons, the risk, the
# required approvals or the compliance controls; this file assembles them and
# validates the input's shape. Deny always wins: `allow` is true only when no
# deny rule fired. Thresholds live in data.shieldops_config (data.json) so a
# site tunes them without editing Rego.
package shieldops

cfg := data.shieldops_config

decision := {
	"allow": count(deny) == 0,
	"deny": sort(deny),
	"required_approvals": required_approvals,
	"risk": risk,
	"controls": sort(controls),
}

# Input fields, with empty defaults so a missing field produces a deny reason
# below instead of leaving the decision undefined.
default action_name := ""

action_name := input.action.name if is_string(input.action.name)

default environment := ""

environment := input.target.environment if is_string(input.target.environment)

# Read-only actions are allowed everywhere; every other action mutates.
read_only if action_name in cfg.read_only_actions

mutating if not read_only

forbidden if action_name in cfg.forbidden_actions

forbidden if action_key in cfg.forbidden_actions

deny contains sprintf("forbidden: action %q is never allowed", [action_name]) if forbidden

# -- input validation: a malformed input is denied, never guessed at --------

deny contains "input: action.name is missing or not a string" if action_name == ""

deny contains sprintf("input: unknown environment %q", [environment]) if {
	not environment in cfg.environments
}

deny contains "input: affected_resources must be a non-negative number" if {
	not valid_count(input.affected_resources)
}

deny contains "input: time.weekday must be an English weekday name" if {
	not input.time.weekday in weekdays
}

deny contains "input: time.hour must be a number from 0 to 23" if {
	not valid_hour(input.time.hour)
}

deny contains sprintf("input: rate.%s must be a non-negative number", [field]) if {
	some field in rate_fields
	not valid_count(object.get(input, ["rate", field], null))
}

rate_fields := ["environment_last_minute", "environment_last_hour", "team_last_hour"]

weekdays := {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

valid_count(n) if {
	is_number(n)
	n >= 0
}

valid_hour(h) if {
	is_number(h)
	h >= 0
	h < 24
}

# Kind-based rules (restricted kinds) cannot be checked without a kind.
deny contains "input: target.kind is missing" if {
	mutating
	not valid_kind(input.target.kind)
}

valid_kind(k) if {
	is_string(k)
	k != ""
}
