# Parameter provenance: where each action parameter came from, in
# `input.action.param_sources` (parameter name -> "playbook", "facts", "live",
# "alert" or "operator"). An alert's labels are chosen by whoever can post an
# alert, so an action with an alert-chosen parameter needs at least
# `provenance.alert_minimum_approvals` approvals, and rules bound such
# parameters further (cost.rego: the instance size step).
#
# Fail closed: a parameter with no recorded source or an unknown one, and
# every action whose `param_sources` is missing or not an object, read as
# alert-sourced.
package shieldops

trusted_param_sources := {"playbook", "facts", "live", "operator"}

default param_sources := {}

param_sources := input.action.param_sources if is_object(input.action.param_sources)

# Parameters an alert chose, or may have.
alert_params contains name if {
	some name, _ in params
	not param_trusted(name)
}

param_trusted(name) if param_sources[name] in trusted_param_sources

alert_sourced if count(alert_params) > 0

alert_sourced if not param_sources_recorded

param_sources_recorded if is_object(input.action.param_sources)

default alert_floor := 0

alert_floor := cfg.provenance.alert_minimum_approvals if alert_sourced
