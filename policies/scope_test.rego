# Tests for scope.rego: team scoping, restricted kinds, protected namespaces.
package shieldops_test

test_own_team_allowed if {
	data.shieldops.decision.allow with input as base
}

test_other_team_denied if {
	d := data.shieldops.decision with input as inp({"requester": {"team": "search"}})
	has_deny(d, "scope: team \"search\" may not act")
	not d.allow
}

test_team_label_wins_over_team_field if {
	data.shieldops.decision.allow with input as inp({"target": {"team": "search"}})
	has_deny(data.shieldops.decision, "scope: team") with input as inp({"target": {"labels": {"team": "search"}}})
}

test_team_field_used_without_label if {
	data.shieldops.decision.allow with input as json.remove(base, ["target/labels/team"])
	has_deny(data.shieldops.decision, "scope: team") with input as json.remove(inp({"target": {"team": "search"}}), ["target/labels/team"])
}

test_unlabelled_target_denied if {
	has_deny(data.shieldops.decision, "scope: the target carries no team label") with input as json.remove(base, ["target/labels/team", "target/team"])
}

test_requester_without_team_denied if {
	has_deny(data.shieldops.decision, "scope: the requester has no team") with input as inp({"requester": {"team": ""}})
}

test_cross_team_site_tuned if {
	data.shieldops.decision.allow with input as inp({"requester": {"team": "sre"}})
		with data.shieldops_config.scope.cross_team_teams as ["sre"]
}

test_restricted_kind_for_team_denied if {
	frontend_db := inp({"requester": {"team": "frontend"}, "target": {"kind": "database", "team": "frontend", "labels": {"team": "frontend"}}})
	has_deny(data.shieldops.decision, "scope: resources of kind \"database\"") with input as frontend_db
}

test_restricted_kind_allowed_for_other_team if {
	data.shieldops.decision.allow with input as inp({"target": {"kind": "database"}})
}

test_default_restricted_kind_denied_for_everyone if {
	has_deny(data.shieldops.decision, "scope: resources of kind") with input as inp({"target": {"kind": "iam_role"}})
}

test_protected_namespace_denied if {
	has_deny(data.shieldops.decision, "scope: namespace \"kube-system\"") with input as inp({"target": {"labels": {"namespace": "kube-system"}}})
}

test_ordinary_namespace_allowed if {
	not has_deny(data.shieldops.decision, "scope:") with input as base
}

# The Kubernetes connector labels every namespaced resource with its namespace.
test_kubernetes_rollback_in_kube_system_denied if {
	d := data.shieldops.decision with input as inp({"action": {"name": "rollback_deployment", "params": {}}, "target": {"kind": "deployment", "labels": {"namespace": "kube-system"}}})
	has_deny(d, "scope: namespace \"kube-system\" is protected")
	not d.allow
}

test_kubernetes_restart_in_kube_public_denied if {
	d := data.shieldops.decision with input as inp({"action": {"name": "restart_pod", "params": {}}, "target": {"kind": "pod", "labels": {"namespace": "kube-public"}}})
	has_deny(d, "scope: namespace \"kube-public\" is protected")
	not d.allow
}

test_mistyped_team_label_names_no_team if {
	d := data.shieldops.decision with input as inp({"target": {"labels": {"team": true}}})
	has_deny(d, "scope: the target carries no team label")
	not d.allow
}

test_mistyped_requester_team_denied if {
	d := data.shieldops.decision with input as inp({"requester": {"team": 5}})
	has_deny(d, "scope: the requester has no team")
	has_deny(data.shieldops.decision, "scope: the requester has no team") with input as json.remove(base, ["requester/team"])
}
