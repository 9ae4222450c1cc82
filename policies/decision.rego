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

default target_kind := ""

target_kind := input.target.kind if is_string(input.target.kind)

default requester_name := ""

requester_name := input.requester.name if is_string(input.requester.name)

# The action's parameters: an object, or empty when absent or malformed (a
# malformed one is denied below).
default params := {}

params := input.action.params if is_object(input.action.params)

# Read-only actions are allowed everywhere; every other action mutates.
read_only if action_name in cfg.read_only_actions

mutating if not read_only

forbidden if action_name in cfg.forbidden_actions

forbidden if action_key in cfg.forbidden_actions

deny contains sprintf("forbidden: action %q is never allowed", [action_name]) if forbidden

# -- input validation: a malformed input is denied, never guessed at --------
#
# Each check names the valid case in a helper rule and denies `not` that rule.
# Never `not f(input.x)` or `not input.x in s`: in OPA a call whose argument
# is undefined is undefined, and `not` over it never holds, so a missing field
# would slip through (regorus reads it the other way); a helper rule means the
# same in both engines.

deny contains "input: action.name is missing or not a string" if action_name == ""

deny contains sprintf("input: unknown environment %q", [environment]) if {
	not environment in cfg.environments
}

deny contains "input: action.params must be an object of parameters" if {
	not is_object(object.get(input, ["action", "params"], {}))
}

deny contains "input: affected_resources must be a non-negative number" if not valid_affected_resources

valid_affected_resources if valid_count(input.affected_resources)

deny contains "input: time.weekday must be an English weekday name" if not valid_weekday

valid_weekday if input.time.weekday in weekdays

deny contains "input: time.hour must be a number from 0 to 23" if not valid_time_hour

valid_time_hour if valid_hour(input.time.hour)

deny contains sprintf("input: rate.%s must be a non-negative number", [field]) if {
	some field in rate_fields
	not valid_rate(field)
}

valid_rate(field) if valid_count(input.rate[field])

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
	target_kind == ""
}

# Rules about who asks (an agent may not stop production) need a name.
deny contains "input: requester.name is missing or not a string" if {
	mutating
	requester_name == ""
}

# A change freeze override is asked for with `true`; anything but a boolean
# is malformed (absent means no override).
deny contains "input: freeze_override must be a boolean" if {
	not is_boolean(object.get(input, "freeze_override", false))
}
