# Risk per action × environment, and the approvals that risk requires.
package shieldops

# The action as the risk and compliance tables know it: connector aliases are
# mapped to canonical names and `scale` becomes `scale_down` or `scale_up`.
# A scale whose direction cannot be proven is treated as a scale-down, the
# riskier reading.
#
# Rules here are disjoint complete definitions rather than `else` chains: the
# regorus RVM (which the gate runs) does not fall through an `else` branch
# whose body is undefined, so `else` is avoided throughout the bundle.
action_key := "scale_down" if {
	action_name == "scale"
	not scale_up
}

action_key := "scale_up" if {
	action_name == "scale"
	scale_up
}

action_key := cfg.action_aliases[action_name] if action_name != "scale"

action_key := action_name if {
	action_name != "scale"
	not cfg.action_aliases[action_name]
}

scale_up if param_number("replicas") >= param_number("current_replicas")

param_number(name) := n if {
	s := params[name]
	is_string(s)
	regex.match(`^[0-9]+$`, s)
	n := to_number(s)
}

param_number(name) := n if {
	n := params[name]
	is_number(n)
	n >= 0
	floor(n) == n
}

# Unknown actions and unknown environments fall to `critical`: fail safe.
default risk := "critical"

risk := "low" if read_only

risk := "critical" if {
	mutating
	critical_action
}

risk := cfg.risk.actions[action_key][environment] if {
	mutating
	not critical_action
}

risk := cfg.risk.default[environment] if {
	mutating
	not critical_action
	not cfg.risk.actions[action_key][environment]
}

critical_action if action_key in cfg.risk.critical_actions

# Approvals: by risk, at least the production minimum for any mutating
# production action, the regulated-data minimum for regulated resources and
# the provenance floors (provenance.rego, cost.rego) for alert-chosen
# parameters, plus the extra approval a freeze override costs.
default required_approvals := 0

required_approvals := n if {
	mutating
	n := max([object.get(cfg.approvals.by_risk, risk, 2), production_floor, regulated_floor, alert_floor, resize_floor]) + freeze_extra
}

default production_floor := 0

production_floor := cfg.approvals.production_minimum if environment == "production"

default freeze_extra := 0

freeze_extra := cfg.freeze.override_extra_approvals if freeze_overridden

default regulated_floor := 0

regulated_floor := cfg.approvals.regulated_minimum if regulated

regulated if cfg.compliance.regulated_labels[data_classification]
