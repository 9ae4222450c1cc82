//! Facts read from objects, as resource attributes: the compliance facts the
//! security agent's controls match on (a pod spec's privilege, root and
//! limits facts and its images; a Role's or ClusterRole's wildcard rules), and
//! the facts playbooks read (a pod spec's effective requests, a ReplicaSet's
//! revision, a node's allocatable capacity). A fact that cannot be read from
//! the object is `unknown` or absent, never a guess.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{
    Container, Node, PodSecurityContext, PodSpec, PodStatus, ResourceRequirements, SecurityContext,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

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
    requests(spec, out);
}

/// Sets `memory_request_mib` and `cpu_request_millicores`: what the
/// scheduler reserves for the pod — per container its request, or its limit
/// when only a limit is set (the API server defaults the request to it); the
/// containers summed, or the largest init container when that is more.
/// Absent when a quantity does not parse.
fn requests(spec: &PodSpec, out: &mut StringMap) {
    let one = |c: &Container, key: &str, parse: fn(&str) -> Option<f64>| -> Option<f64> {
        let r: Option<&ResourceRequirements> = c.resources.as_ref();
        let q = r
            .and_then(|r| r.requests.as_ref())
            .and_then(|m| m.get(key))
            .or_else(|| r.and_then(|r| r.limits.as_ref()).and_then(|m| m.get(key)));
        match q {
            Some(Quantity(q)) => parse(q),
            None => Some(0.0),
        }
    };
    for (key, attr, parse) in [
        (
            "memory",
            "memory_request_mib",
            memory_mib as fn(&str) -> Option<f64>,
        ),
        ("cpu", "cpu_request_millicores", cpu_millicores),
    ] {
        let sum: Option<f64> = spec.containers.iter().map(|c| one(c, key, parse)).sum();
        let init: Option<Vec<f64>> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| one(c, key, parse))
            .collect();
        if let (Some(sum), Some(init)) = (sum, init) {
            let v = init.into_iter().fold(sum, f64::max);
            out.insert(attr.into(), format_amount(v));
        }
    }
}

fn format_amount(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// A memory quantity (`512Mi`, `1G`, `1e9`) in MiB, to the KiB.
fn memory_mib(q: &str) -> Option<f64> {
    super::quantity::mib(q).map(|mib| (mib * 1000.0).round() / 1000.0)
}

/// A CPU quantity (`250m`, `1`, `0.5`) in millicores.
fn cpu_millicores(q: &str) -> Option<f64> {
    super::quantity::millicores(q)
}

/// Sets `last_termination_reason`: why a container last stopped, as the
/// kubelet recorded it (`OOMKilled`, `Error`, `Completed`), from each
/// container's current or last terminated state; `OOMKilled` when any
/// container was OOM-killed (a crash-looping pod's health reason is
/// `CrashLoopBackOff` whatever the cause), `none` when no container has
/// terminated. Absent without a status.
pub fn pod_status_facts(status: Option<&PodStatus>, out: &mut StringMap) {
    let Some(status) = status else { return };
    let reasons: Vec<String> = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .flat_map(|c| {
            [
                c.state.as_ref().and_then(|s| s.terminated.as_ref()),
                c.last_state.as_ref().and_then(|s| s.terminated.as_ref()),
            ]
        })
        .flatten()
        .map(|t| t.reason.clone().unwrap_or_else(|| "Error".into()))
        .collect();
    let reason = if reasons.iter().any(|r| r == "OOMKilled") {
        "OOMKilled".to_string()
    } else {
        reasons.into_iter().next().unwrap_or_else(|| "none".into())
    };
    out.insert("last_termination_reason".into(), reason);
}

/// Sets `revision` (the `deployment.kubernetes.io/revision` annotation the
/// deployment controller writes; what `kubectl rollout history` lists).
pub fn replicaset_facts(rs: &ReplicaSet, out: &mut StringMap) {
    if let Some(rev) = rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .filter(|r| r.parse::<u64>().is_ok())
    {
        out.insert("revision".into(), rev.clone());
    }
}

/// Sets `allocatable_memory_mib` and `allocatable_cpu_millicores` from
/// `status.allocatable` (what the scheduler can place on the node).
pub fn node_facts(node: &Node, out: &mut StringMap) {
    node_pricing_facts(node, out);
    let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let Some(a) = allocatable else { return };
    if let Some(m) = a.get("memory").and_then(|q| memory_mib(&q.0)) {
        out.insert("allocatable_memory_mib".into(), format_amount(m));
    }
    if let Some(c) = a.get("cpu").and_then(|q| cpu_millicores(&q.0)) {
        out.insert("allocatable_cpu_millicores".into(), format_amount(c));
    }
}

/// Sets what the cost agent prices a node by: `cpu_capacity_millicores` and
/// `memory_capacity_mib` from `status.capacity`, and `instance_type`,
/// `region` and `az` from the well-known labels the cloud provider's node
/// controller sets (`node.kubernetes.io/instance-type`, `topology.kubernetes.io/*`).
fn node_pricing_facts(node: &Node, out: &mut StringMap) {
    if let Some(c) = node.status.as_ref().and_then(|s| s.capacity.as_ref()) {
        if let Some(m) = c.get("memory").and_then(|q| memory_mib(&q.0)) {
            out.insert("memory_capacity_mib".into(), format_amount(m));
        }
        if let Some(v) = c.get("cpu").and_then(|q| cpu_millicores(&q.0)) {
            out.insert("cpu_capacity_millicores".into(), format_amount(v));
        }
    }
    let Some(labels) = node.metadata.labels.as_ref() else {
        return;
    };
    for (attr, keys) in [
        (
            "instance_type",
            [
                "node.kubernetes.io/instance-type",
                "beta.kubernetes.io/instance-type",
            ],
        ),
        (
            "region",
            [
                "topology.kubernetes.io/region",
                "failure-domain.beta.kubernetes.io/region",
            ],
        ),
        (
            "az",
            [
                "topology.kubernetes.io/zone",
                "failure-domain.beta.kubernetes.io/zone",
            ],
        ),
    ] {
        if let Some(v) = keys.iter().find_map(|k| labels.get(*k)) {
            out.insert(attr.into(), v.clone());
        }
    }
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
    fn requests_are_what_the_scheduler_reserves() {
        let f = facts(pod(serde_json::json!({
            "initContainers": [{"name": "migrate", "image": "m:1",
                "resources": {"requests": {"memory": "2Gi", "cpu": "100m"}}}],
            "containers": [
                {"name": "app", "image": "a:1",
                 "resources": {"requests": {"memory": "512Mi", "cpu": "250m"},
                               "limits": {"memory": "1Gi", "cpu": "1"}}},
                {"name": "side", "image": "s:1",
                 "resources": {"limits": {"memory": "64Mi", "cpu": "0.5"}}},
                {"name": "bare", "image": "b:1"}
            ]
        })));
        // memory: the init container's 2Gi is more than 512Mi + 64Mi.
        assert_eq!(f["memory_request_mib"], "2048");
        // cpu: 250m + the side car's limit 500m (its request defaults to it).
        assert_eq!(f["cpu_request_millicores"], "750");
        let bad = facts(pod(serde_json::json!({"containers": [
            {"name": "a", "image": "a:1", "resources": {"requests": {"memory": "lots"}}}]})));
        assert!(!bad.contains_key("memory_request_mib"));
    }

    #[test]
    fn the_last_termination_reason_prefers_an_oom_kill() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"containerStatuses": [
                {"name": "side", "image": "s", "imageID": "", "ready": true, "restartCount": 1,
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}},
                {"name": "app", "image": "a", "imageID": "", "ready": false, "restartCount": 7,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}
        }))
        .unwrap();
        let mut out = StringMap::new();
        pod_status_facts(pod.status.as_ref(), &mut out);
        assert_eq!(out["last_termination_reason"], "OOMKilled");
        let fresh: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"containerStatuses": [{"name": "app", "image": "a", "imageID": "",
                "ready": true, "restartCount": 0, "state": {"running": {}}}]}
        }))
        .unwrap();
        let mut out = StringMap::new();
        pod_status_facts(fresh.status.as_ref(), &mut out);
        assert_eq!(out["last_termination_reason"], "none");
    }

    #[test]
    fn revision_and_allocatable_are_read_from_the_objects() {
        let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-7d9c", "annotations": {"deployment.kubernetes.io/revision": "7"}}
        }))
        .unwrap();
        let mut out = StringMap::new();
        replicaset_facts(&rs, &mut out);
        assert_eq!(out["revision"], "7");
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "status": {"allocatable": {"cpu": "3920m", "memory": "15991852Ki", "pods": "110"}}
        }))
        .unwrap();
        let mut out = StringMap::new();
        node_facts(&node, &mut out);
        assert_eq!(out["allocatable_cpu_millicores"], "3920");
        assert_eq!(out["allocatable_memory_mib"], "15617.043");
    }

    #[test]
    fn a_node_is_priced_by_its_capacity_and_well_known_labels() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {
                "node.kubernetes.io/instance-type": "m5.xlarge",
                "topology.kubernetes.io/region": "us-east-1",
                "topology.kubernetes.io/zone": "us-east-1a"}},
            "status": {"capacity": {"cpu": "4", "memory": "16Gi"}}
        }))
        .unwrap();
        let mut out = StringMap::new();
        node_facts(&node, &mut out);
        assert_eq!(out["cpu_capacity_millicores"], "4000");
        assert_eq!(out["memory_capacity_mib"], "16384");
        assert_eq!(out["instance_type"], "m5.xlarge");
        assert_eq!(out["region"], "us-east-1");
        assert_eq!(out["az"], "us-east-1a");
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
