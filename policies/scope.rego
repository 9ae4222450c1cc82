# Team scoping: a team acts only on resources labelled with its team, never
# on resource kinds restricted for it, and never in protected namespaces.
package shieldops

# The owning team: the team label if present, else the resource's team field.
# A label that is present but not a string names no team (denied below).
resource_team := t if {
	t := input.target.labels[cfg.scope.team_label]
	non_empty_string(t)
}

resource_team := t if {
	not team_labelled
	t := input.target.team
	non_empty_string(t)
}

team_labelled if input.target.labels[cfg.scope.team_label] != ""

default requester_team := ""

requester_team := input.requester.team if is_string(input.requester.team)

deny contains "scope: the requester has no team" if {
	mutating
	requester_team == ""
}

deny contains "scope: the target carries no team label" if {
	mutating
	not resource_team
}

deny contains msg if {
	mutating
	requester_team != ""
	requester_team != resource_team
	not requester_team in cfg.scope.cross_team_teams
	msg := sprintf("scope: team %q may not act on resources of team %q", [requester_team, resource_team])
}

restricted_kinds contains k if {
	some k in cfg.scope.restricted_kinds["default"]
}

restricted_kinds contains k if {
	some k in cfg.scope.restricted_kinds[requester_team]
}

deny contains msg if {
	mutating
	target_kind in restricted_kinds
	msg := sprintf("scope: resources of kind %q are restricted for team %q", [target_kind, requester_team])
}

deny contains msg if {
	mutating
	ns := input.target.labels.namespace
	ns in cfg.scope.protected_namespaces
	msg := sprintf("scope: namespace %q is protected", [ns])
}
