# Compliance mapping: the SOC 2, PCI-DSS, HIPAA and CIS controls an action
# touches, and the violations that deny it.
package shieldops

comp := cfg.compliance

controls contains c if {
	mutating
	some category in comp.action_categories[action_key]
	some c in comp.categories[category]
}

# Any change to production is a change-management event.
controls contains c if {
	mutating
	environment == "production"
	some c in comp.categories.change
}

controls contains c if {
	freeze_overridden
	some c in comp.categories.freeze_override
}

# Resources holding regulated data bring that regime's controls in.
controls contains c if {
	mutating
	some c in comp.regulated_labels[data_classification]
}

data_classification := input.target.labels[comp.classification_label]

deny contains msg if {
	mutating
	environment == "production"
	required_approvals < comp.min_production_approvals
	msg := sprintf(
		"compliance: a mutating production action needs at least %v approval(s) (%s)",
		[comp.min_production_approvals, concat(", ", comp.categories.change)],
	)
}

deny contains msg if {
	mutating
	regulated
	required_approvals < comp.min_regulated_approvals
	msg := sprintf(
		"compliance: a change to %s-regulated data needs at least %v approval(s) (%s)",
		[data_classification, comp.min_regulated_approvals, concat(", ", comp.regulated_labels[data_classification])],
	)
}
