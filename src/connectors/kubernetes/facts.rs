//! Compliance facts read from objects, as resource attributes the security
//! agent's controls match on: a pod spec's privilege, root and limits facts
//! and its images; a Role's or ClusterRole's wildcard rules. A fact that
//! cannot be read from the object is `unknown`, never a guess.

use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec, SecurityContext};
use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::event::StringMap;

/// Longest `rbac.wildcard_rules` text kept.
const WILDCARD_TEXT_CHARS: usize = 200;

/// Sets `security.privileged`, `security.run_as_root`, `resources.limits` and
/// `images` for a pod spec (a pod's own or a workload's template); without a
/// spec every fact is `unknown`.
pub fn pod_spec_facts(spec: Option<&PodSpec>, out: &mut StringMap) {
    let Some(spec) = spec else {
        for key in [
            "security.privileged",
            "security.run_as_root",
            "resources.limits",
            "images",
        ] {
            out.insert(key.into(), "unknown".into());
        }
        return;
    };
    let all: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let privileged = all.iter().any(|c| {
        c.security_context
            .as_ref()
            .and_then(|s| s.privileged)
            .unwrap_or(false)
    });
    out.insert("security.privileged".into(), privileged.to_string());
    out.insert(
        "security.run_as_root".into(),
        run_as_root(spec.security_context.as_ref(), &all).into(),
    );
    // Limits are judged on the long-running containers: both cpu and memory,
    // as the usual benchmarks ask.
    let limited = !spec.containers.is_empty()
        && spec.containers.iter().all(|c| {
            c.resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .is_some_and(|l| l.contains_key("cpu") && l.contains_key("memory"))
        });
    out.insert(
        "resources.limits".into(),
        if limited { "set" } else { "missing" }.into(),
    );
    let mut images: Vec<&str> = Vec::new();
    for image in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let image = image.image.as_deref().unwrap_or("unknown");
        if !images.contains(&image) {
            images.push(image);
        }
    }
    out.insert("images".into(), images.join(","));
}

/// `true` when some container runs as uid 0 or may run as root
/// (`runAsNonRoot: false` with no uid); `false` when every container is held
/// to a non-root uid; `unknown` when it depends on the image's `USER`, which
/// the object does not say.
fn run_as_root(pod: Option<&PodSecurityContext>, containers: &[&Container]) -> &'static str {
    let mut unknown = false;
    for c in containers {
        let own: Option<&SecurityContext> = c.security_context.as_ref();
        let uid = own
            .and_then(|s| s.run_as_user)
            .or_else(|| pod.and_then(|p| p.run_as_user));
        let non_root = own
            .and_then(|s| s.run_as_non_root)
            .or_else(|| pod.and_then(|p| p.run_as_non_root));
        match (uid, non_root) {
            (Some(0), _) => return "true",
            (Some(_), _) | (None, Some(true)) => {}
            (None, Some(false)) | (None, None) => unknown = true,
        }
    }
    if unknown { "unknown" } else { "false" }
}

/// Sets `rbac.wildcard` and `rbac.wildcard_rules` for a Role's or
/// ClusterRole's rules: a rule is a wildcard when its verbs, resources, API
/// groups or non-resource URLs hold `*`.
pub fn rbac_facts(rules: Option<&[PolicyRule]>, out: &mut StringMap) {
    let offending: Vec<String> = rules
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            let star = |v: Option<&Vec<String>>| v.is_some_and(|v| v.iter().any(|s| s == "*"));
            r.verbs.iter().any(|s| s == "*")
                || star(r.resources.as_ref())
                || star(r.api_groups.as_ref())
                || star(r.non_resource_urls.as_ref())
        })
        .map(describe_rule)
        .collect();
    out.insert("rbac.wildcard".into(), (!offending.is_empty()).to_string());
    let mut text = offending.join("; ");
    if text.chars().count() > WILDCARD_TEXT_CHARS {
        text = text.chars().take(WILDCARD_TEXT_CHARS).collect::<String>() + "…";
    }
    out.insert("rbac.wildcard_rules".into(), text);
}

/// A rule as `verbs on group/resources` (or on URLs), e.g. `* on apps/*`.
fn describe_rule(r: &PolicyRule) -> String {
    let verbs = r.verbs.join(",");
    if let Some(urls) = r.non_resource_urls.as_ref().filter(|u| !u.is_empty()) {
        return format!("{verbs} on {}", urls.join(","));
    }
    let groups = r
        .api_groups
        .as_ref()
        .map(|g| {
            g.iter()
                .map(|g| if g.is_empty() { "core" } else { g.as_str() })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_else(|| "core".into());
    let resources = r
        .resources
        .as_ref()
        .map(|r| r.join(","))
        .unwrap_or_default();
    format!("{verbs} on {groups}/{resources}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::rbac::v1::ClusterRole;

    fn facts(pod: serde_json::Value) -> StringMap {
        let pod: Pod = serde_json::from_value(pod).unwrap();
        let mut out = StringMap::new();
        pod_spec_facts(pod.spec.as_ref(), &mut out);
        out
    }

    fn pod(spec: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn privileged_root_and_limits_are_read_from_the_spec() {
        let f = facts(pod(serde_json::json!({
            "initContainers": [{"name": "init", "image": "busybox:1.36",
                "securityContext": {"privileged": true}}],
            "containers": [
                {"name": "app", "image": "ghcr.io/acme/app:1.2",
                 "securityContext": {"runAsUser": 0},
                 "resources": {"limits": {"cpu": "1", "memory": "256Mi"}}},
                {"name": "side", "image": "envoy:1.30",
                 "resources": {"limits": {"memory": "64Mi"}}}
            ]
        })));
        assert_eq!(f["security.privileged"], "true");
        assert_eq!(f["security.run_as_root"], "true");
        assert_eq!(f["resources.limits"], "missing", "side has no cpu limit");
        assert_eq!(f["images"], "ghcr.io/acme/app:1.2,envoy:1.30,busybox:1.36");
    }

    #[test]
    fn non_root_needs_every_container_held_to_a_uid() {
        let held = facts(pod(serde_json::json!({
            "securityContext": {"runAsNonRoot": true},
            "containers": [
                {"name": "a", "image": "a:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "b", "image": "b:1", "securityContext": {"runAsUser": 1000},
                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
            ]
        })));
        assert_eq!(held["security.run_as_root"], "false");
        assert_eq!(held["security.privileged"], "false");
        assert_eq!(held["resources.limits"], "set");
        // The image's USER decides: the object cannot say.
        let open = facts(pod(
            serde_json::json!({"containers": [{"name": "a", "image": "a:1"}]}),
        ));
        assert_eq!(open["security.run_as_root"], "unknown");
        assert_eq!(open["resources.limits"], "missing");
        let mut none = StringMap::new();
        pod_spec_facts(None, &mut none);
        assert_eq!(none["images"], "unknown");
    }

    #[test]
    fn wildcard_rules_are_named() {
        let role: ClusterRole = serde_json::from_value(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "too-broad"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]},
                {"nonResourceURLs": ["*"], "verbs": ["get"]}
            ]
        }))
        .unwrap();
        let mut out = StringMap::new();
        rbac_facts(role.rules.as_deref(), &mut out);
        assert_eq!(out["rbac.wildcard"], "true");
        assert_eq!(out["rbac.wildcard_rules"], "get on apps/*; get on *");
        let mut out = StringMap::new();
        rbac_facts(Some(&role.rules.unwrap()[..1]), &mut out);
        assert_eq!(out["rbac.wildcard"], "false");
        assert_eq!(out["rbac.wildcard_rules"], "");
    }
}
