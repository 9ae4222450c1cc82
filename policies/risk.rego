# Risk per action × environment, and the approvals that risk requires.
package shieldops

# The action as the risk and compliance tables know it: connector aliases are
# mapped to canonical names and `scale` becomes `scale_down` or `scale_up`.
# A scale whose direction cannot be proven is treated as a scale-down, the
# riskier reading.
action_key := "scale_down" if {
	action_name == "scale"
	not scale_up
} else := "scale_up" if {
	action_name == "scale"
} else := k if {
	k := cfg.action_aliases[action_name]
} else := action_name

scale_up if param_number("replicas") >= param_number("current_replicas")

param_number(name) := n if {
	s := input.action.params[name]
	is_string(s)
	regex.match(`^[0-9]+$`, s)
	n := to_number(s)
}

param_number(name) := n if {
	n := input.action.params[name]
	is_number(n)
}

# Unknown actions and unknown environments fall to `critical`: fail safe.
default risk := "critical"

risk := "low" if {
	read_only
} else := "critical" if {
	action_key in cfg.risk.critical_actions
} else := level if {
	level := cfg.risk.actions[action_key][environment]
} else := level if {
	level := cfg.risk.default[environment]
}

# Approvals: by risk, at least the production minimum for any mutating
# production action and the regulated-data minimum for regulated resources,
# plus the extra approval a freeze override costs.
default required_approvals := 0

required_approvals := 0 if {
	read_only
} else := n if {
	n := max([object.get(cfg.approvals.by_risk, risk, 2), production_floor, regulated_floor]) + freeze_extra
}

default production_floor := 0

production_floor := cfg.approvals.production_minimum if environment == "production"

default freeze_extra := 0

freeze_extra := cfg.freeze.override_extra_approvals if freeze_overridden

default regulated_floor := 0

regulated_floor := cfg.approvals.regulated_minimum if regulated

regulated if cfg.compliance.regulated_labels[data_classification]
