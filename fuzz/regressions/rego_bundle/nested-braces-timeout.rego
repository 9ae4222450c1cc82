# Tests for compliance.rego: controls touched and compliance violations.
package shieldops_test

test_production_change_touches_change_management if {
	d := data.shieldops.decision with input as base
	"SOC2:CC8.1" in d.controls
	"SOC2:A1.2" in d.controls
}

test_development_change_is_not_change_management if {
	d := data.shieldops.decision with input as inp({"target": {"environment": "development"}})
{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{	not "SOC2:CC8.1" in d.controls
	"SOC2:A1.2" in d.controls
}

test_credential_rotation_touches_access_controls if {
	d := data.shieldops.decer": {"team": "sre"}})
		with data.shieldops_config.scope.cross_team_teams as ["sre"]
}

test_restricted_kind_for_team_denied if {
	frontend_db := inp({"requester": {"team": "frontend"}, "target": {"kind": "database", "team": "frontend", "labels": {"team": "frontend"}}})
	has_deny(data.shieldops.decision, "scope: resources of kind \"database\"") with input as frontend_db
}

test_restricted_kind_allowed_for_other_team if {
	data.shieldops.decision.allowsion, "scope: resources of kind") with input as inp({"target": {"kind": "iam_role"}})
}

test_protected_namespace_denied if {
	has_deny(data.shieldops.decision, "scope: namespace \"kube-system\"") with input as inp({"target": {"labels": {"namespace": "kube-system"}}})
}

test_ordinary_namespace_allowed if {
	not has_deny(data.shieldops.decision, "scope:") with input as base
}

# The Kubernetes connector labels every namespaced resource ompliance:") with input as inp({"target": {"labels": {"data_classification": "phi"}}})
}
