//! The facts a playbook sees, named as the catalogue (`crate::playbook::catalogue`)
//! names them, computed from what the investigation gathered. Only the
//! evidence the playbook's `investigate` steps ask for becomes facts, each
//! over its step's `window_mins`; evidence that was not gathered or could not
//! be read leaves its facts absent (unknown), never false or zero.

use chrono::{DateTime, Duration, Utc};

use crate::connectors::DiagnosisEvidence;
use crate::event::{InfraEvent, Provider, Resource, ResourceId};
#[cfg(test)]
use crate::playbook::Fact;
use crate::playbook::catalogue::config_error_line;
use crate::playbook::{Evidence, Facts as PlaybookFacts, InvestigationStep};

/// The window a step looks back over when it names none.
pub const DEFAULT_WINDOW: Duration = Duration::hours(1);

/// What the playbook facts are computed from.
pub struct FactInput<'a> {
    pub alert: &'a crate::event::Alert,
    pub resource: &'a Resource,
    pub health: &'a crate::event::Health,
    /// Every resource the connector lists (owner chain, ReplicaSets, nodes).
    pub listing: &'a [Resource],
    /// Non-change events about the resource (`None`: could not be read),
    /// over the widest window asked for.
    pub events: Option<&'a [InfraEvent]>,
    /// Change events about the resource and its owner (`None`: not read).
    pub changes: Option<&'a [InfraEvent]>,
    /// Events of the workload at the top of a Kubernetes owner chain and of
    /// its current pods (`None`: not read).
    pub workload_events: Option<&'a [InfraEvent]>,
    pub metrics: Option<&'a std::collections::BTreeMap<String, f64>>,
    pub diagnosis: &'a [DiagnosisEvidence],
    pub steps: &'a [InvestigationStep],
    pub now: DateTime<Utc>,
}

/// The step gathering `evidence`, if the playbook has one.
fn step(steps: &[InvestigationStep], evidence: Evidence) -> Option<&InvestigationStep> {
    steps.iter().find(|s| s.evidence == evidence)
}

/// A step's look-back window.
pub fn window_of(step: Option<&InvestigationStep>) -> Duration {
    step.and_then(|s| s.window)
        .and_then(|w| Duration::from_std(w).ok())
        .unwrap_or(DEFAULT_WINDOW)
}

/// The widest window any step asks for (what the connector is asked for).
pub fn widest_window(steps: &[InvestigationStep]) -> Duration {
    steps
        .iter()
        .filter(|s| matches!(s.evidence, Evidence::Events | Evidence::Changes))
        .map(|s| window_of(Some(s)))
        .max()
        .unwrap_or(DEFAULT_WINDOW)
        .max(DEFAULT_WINDOW)
}

/// Computes the facts for the playbook whose steps are `input.steps`.
pub fn playbook_facts(input: &FactInput) -> PlaybookFacts {
    let mut pf = PlaybookFacts::new();
    pf.add_alert(input.alert);
    pf.add_resource(input.resource);
    pf.add_health(input.health);
    if input.resource.provider == Provider::Kubernetes
        && let Some(r) = input.resource.attributes.get("last_termination_reason")
    {
        pf.set("health.last_termination_reason", r.as_str());
    }
    let chain = OwnerChain::of(input.resource, input.listing);
    if let Some(s) = step(input.steps, Evidence::Events) {
        events_facts(input, &chain, s, &mut pf);
    }
    if let Some(s) = step(input.steps, Evidence::Changes) {
        changes_facts(input, &chain, s, &mut pf);
    }
    if let Some(s) = step(input.steps, Evidence::Metrics) {
        metrics_facts(input, &chain, s, &mut pf);
    }
    if let Some(s) = step(input.steps, Evidence::Logs) {
        logs_facts(input.diagnosis, s, &mut pf);
    }
    pf
}

fn since(events: &[InfraEvent], now: DateTime<Utc>, window: Duration) -> Vec<&InfraEvent> {
    events
        .iter()
        .filter(|e| e.at >= now - window && e.at <= now)
        .collect()
}

fn events_facts(
    input: &FactInput,
    chain: &OwnerChain,
    s: &InvestigationStep,
    pf: &mut PlaybookFacts,
) {
    let window = window_of(Some(s));
    // The restart count is the source's own counter (a pod's restartCount,
    // a unit's NRestarts), read with the metrics; absent when it reports none.
    if let Some(r) = input.metrics.and_then(|m| m.get("restarts")) {
        pf.set("events.restarts", *r);
    }
    let Some(events) = input.events else { return };
    let own = since(events, input.now, window);
    pf.set("events.count", own.len() as f64);
    if input.resource.provider == Provider::Kubernetes {
        let pod_events = match input.resource.kind.as_str() {
            "pod" => Some(own),
            "deployment" if chain.current.is_some() => {
                input.workload_events.map(|w| since(w, input.now, window))
            }
            _ => None,
        };
        if let Some(evs) = pod_events {
            let count = |f: fn(&InfraEvent) -> bool| evs.iter().filter(|e| f(e)).count() as f64;
            pf.set(
                "events.failed_scheduling",
                count(|e| e.reason == "FailedScheduling"),
            );
            pf.set("events.image_pull_failures", count(image_pull_failure));
        }
    }
}

/// The kubelet's words for an image it cannot pull: reason `Failed` with
/// `Failed to pull image …` or `Error: ErrImagePull` / `ImagePullBackOff`,
/// reason `BackOff` with `Back-off pulling image …`.
fn image_pull_failure(e: &InfraEvent) -> bool {
    matches!(
        e.reason.as_str(),
        "Failed" | "BackOff" | "ErrImagePull" | "ImagePullBackOff"
    ) && (e.message.contains("pull image")
        || e.message.contains("pulling image")
        || e.message.contains("ErrImagePull")
        || e.message.contains("ImagePullBackOff"))
}

fn changes_facts(
    input: &FactInput,
    chain: &OwnerChain,
    s: &InvestigationStep,
    pf: &mut PlaybookFacts,
) {
    let window = window_of(Some(s));
    if let Some(changes) = input.changes {
        pf.set(
            "changes.count",
            since(changes, input.now, window).len() as f64,
        );
    }
    if input.resource.provider != Provider::Kubernetes {
        return;
    }
    let Some(current) = chain.current.as_ref() else {
        return;
    };
    let deployed = current.created_at;
    let recent = deployed >= input.now - window;
    pf.set("changes.recent_deploy", recent);
    pf.set(
        "changes.minutes_since_deploy",
        ((input.now - deployed).num_seconds().max(0) as f64 / 60.0).round(),
    );
    pf.set(
        "changes.previous_revision_available",
        chain.previous.is_some(),
    );
    match &chain.previous {
        Some(prev) => pf.set(
            "changes.recent_config_change",
            recent && prev.images == current.images && !current.images.is_empty(),
        ),
        // A first revision: nothing to compare with; a new workload is a deploy,
        // not a configuration change.
        None => pf.set("changes.recent_config_change", false),
    };
    if let Some(w) = input.workload_events {
        scale_up_facts(&since(w, input.now, window), current, recent, pf);
    }
}

/// `Scaled up replica set <rs> to <n> from <m>` (the deployment controller's
/// wording) of the current ReplicaSet with m > 0 is a scale-up of a running
/// revision; during a new revision's rollout the same words describe the
/// rollout itself, so a recent deploy leaves the facts unknown.
fn scale_up_facts(
    events: &[&InfraEvent],
    current: &Revision,
    recent_deploy: bool,
    pf: &mut PlaybookFacts,
) {
    if recent_deploy {
        return;
    }
    let mut first: Option<(DateTime<Utc>, f64)> = None;
    for e in events.iter().filter(|e| e.reason == "ScalingReplicaSet") {
        let Some(rest) = e.message.strip_prefix("Scaled up replica set ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(rs), Some("to"), Some(_), Some("from"), Some(from)) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            // An older controller does not say from how many: unknown.
            return;
        };
        let Ok(from) = from.parse::<f64>() else {
            return;
        };
        if rs == current.name && from > 0.0 && first.is_none_or(|(at, _)| e.at < at) {
            first = Some((e.at, from));
        }
    }
    pf.set("changes.recent_scale_up", first.is_some());
    if let Some((_, from)) = first {
        pf.set("changes.previous_replicas", from);
    }
}

fn metrics_facts(
    input: &FactInput,
    chain: &OwnerChain,
    s: &InvestigationStep,
    pf: &mut PlaybookFacts,
) {
    let wanted = |name: &str| s.metrics.is_empty() || s.metrics.iter().any(|m| m == name);
    let set = |pf: &mut PlaybookFacts, name: &str, v: f64| {
        if wanted(name) {
            pf.set(format!("metrics.{name}"), v);
        }
    };
    if let Some(m) = input.metrics {
        for (k, v) in m {
            set(pf, k, *v);
        }
        // The limit an OOM fix raises to, computed once (`sizing`), so
        // the hypothesis, the playbook's action and the preview quote one value.
        if let Some(limit) = m.get("memory_limit_mib") {
            let demand = m.get("memory_need_mib").copied();
            let proposed = crate::sizing::oom_memory_limit_mib(*limit, demand);
            set(pf, "memory_limit_proposed_mib", proposed as f64);
        }
        // The demo fleet's names for what the Linux connector calls disk_usage_ratio.
        if let Some(d) = m.get("disk_used_pct")
            && !m.contains_key("disk_usage_ratio")
        {
            set(pf, "disk_usage_ratio", d / 100.0);
        }
    }
    let num = |r: &Resource, key: &str| r.attributes.get(key).and_then(|v| v.parse::<f64>().ok());
    if let Some(d) = &chain.workload {
        if let Some(r) = num(d, "replicas") {
            set(pf, "replicas", r);
        }
    } else if let Some(r) = chain.owner.and_then(|o| num(o, "replicas")) {
        set(pf, "replicas", r);
    }
    if input.resource.provider == Provider::Kubernetes && input.resource.kind == "pod" {
        for key in ["memory_request_mib", "cpu_request_millicores"] {
            if let Some(v) = num(input.resource, key) {
                set(pf, key, v);
            }
        }
        let context = input.resource.attributes.get("context");
        let nodes: Vec<&Resource> = input
            .listing
            .iter()
            .filter(|r| r.kind == "node" && r.provider == Provider::Kubernetes)
            .filter(|r| r.attributes.get("context") == context)
            .filter(|r| r.attributes.get("cordoned").map(String::as_str) != Some("true"))
            .collect();
        for (attr, fact) in [
            (
                "allocatable_memory_mib",
                "largest_node_allocatable_memory_mib",
            ),
            (
                "allocatable_cpu_millicores",
                "largest_node_allocatable_cpu_millicores",
            ),
        ] {
            if let Some(max) = nodes.iter().filter_map(|n| num(n, attr)).reduce(f64::max) {
                set(pf, fact, max);
            }
        }
    }
}

fn logs_facts(diagnosis: &[DiagnosisEvidence], s: &InvestigationStep, pf: &mut PlaybookFacts) {
    let Some(logs) = diagnosis.iter().find(|e| e.source == "previous_logs") else {
        return;
    };
    let mut lines: Vec<&str> = logs
        .detail
        .iter()
        .map(String::as_str)
        .filter(|l| !l.contains("] previous log unavailable: "))
        .collect();
    if lines.is_empty() {
        return;
    }
    if let Some(n) = s.lines {
        let skip = lines.len().saturating_sub(n as usize);
        lines.drain(..skip);
    }
    pf.set("logs.lines", lines.len() as f64);
    pf.set(
        "logs.config_error",
        lines.iter().any(|l| config_error_line(l)),
    );
    if let Some(grep) = &s.grep {
        pf.set(
            "logs.grep_matches",
            lines.iter().filter(|l| l.contains(grep.as_str())).count() as f64,
        );
    }
}

/// One revision of a Deployment: a ReplicaSet it owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub id: ResourceId,
    pub name: String,
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub images: String,
}

/// A Kubernetes resource's owner chain as the connector reports it: pod →
/// ReplicaSet → Deployment, and the Deployment's revisions (what
/// `kubectl rollout history` reads: each ReplicaSet's
/// `deployment.kubernetes.io/revision` and creationTimestamp).
#[derive(Debug, Default)]
pub struct OwnerChain<'a> {
    /// The resource's direct controller.
    pub owner: Option<&'a Resource>,
    /// The Deployment at the top of the chain.
    pub workload: Option<&'a Resource>,
    /// Its newest revision.
    pub current: Option<Revision>,
    /// The revision before it, when the Deployment still keeps one.
    pub previous: Option<Revision>,
}

impl<'a> OwnerChain<'a> {
    /// The chain of `resource` within `listing` (empty outside Kubernetes).
    pub fn of(resource: &'a Resource, listing: &'a [Resource]) -> OwnerChain<'a> {
        let mut chain = OwnerChain::default();
        if resource.provider != Provider::Kubernetes {
            return chain;
        }
        let find = |id: &str| listing.iter().find(|r| r.id.as_str() == id);
        chain.owner = resource.attributes.get("owner").and_then(|o| find(o));
        chain.workload = match resource.kind.as_str() {
            "deployment" => Some(resource),
            "replicaset" => chain.owner.filter(|o| o.kind == "deployment"),
            _ => chain
                .owner
                .filter(|o| o.kind == "replicaset")
                .and_then(|rs| rs.attributes.get("owner"))
                .and_then(|d| find(d))
                .filter(|d| d.kind == "deployment"),
        };
        let Some(deployment) = chain.workload else {
            return chain;
        };
        let mut revisions: Vec<Revision> = listing
            .iter()
            .filter(|r| r.kind == "replicaset")
            .filter(|r| {
                r.attributes.get("owner").map(String::as_str) == Some(deployment.id.as_str())
            })
            .filter_map(|r| {
                Some(Revision {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    revision: r.attributes.get("revision")?.parse().ok()?,
                    created_at: r.created_at,
                    images: r.attributes.get("images").cloned().unwrap_or_default(),
                })
            })
            .collect();
        revisions.sort_by_key(|r| std::cmp::Reverse(r.revision));
        let mut it = revisions.into_iter();
        chain.current = it.next();
        chain.previous = it.next();
        chain
    }

    /// The pods of the current revision.
    pub fn current_pods(&self, listing: &'a [Resource]) -> Vec<&'a Resource> {
        let Some(current) = &self.current else {
            return Vec::new();
        };
        listing
            .iter()
            .filter(|r| r.kind == "pod")
            .filter(|r| r.attributes.get("owner").map(String::as_str) == Some(current.id.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Alert, AlertStatus, ConnectorId, Environment, Health, Severity, StringMap};

    fn at(mins_ago: i64) -> DateTime<Utc> {
        now() - Duration::minutes(mins_ago)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn k8s(kind: &str, name: &str, created_mins_ago: i64, attrs: &[(&str, &str)]) -> Resource {
        let mut attributes = StringMap::new();
        for (k, v) in attrs {
            attributes.insert(k.to_string(), v.to_string());
        }
        Resource {
            id: ResourceId::new(format!("k8s/c/shop/{kind}/{name}")),
            name: name.into(),
            kind: kind.into(),
            provider: Provider::Kubernetes,
            connector: ConnectorId::new("k8s:c"),
            environment: Environment::Production,
            team: "shop".into(),
            labels: StringMap::new(),
            attributes,
            health: Health::healthy(),
            created_at: at(created_mins_ago),
        }
    }

    /// web: revision 3 (10 min old, image web:3) and revision 2 (image web:2); a pod of 3.
    fn fleet(current_image: &str) -> Vec<Resource> {
        vec![
            k8s("deployment", "web", 900, &[("replicas", "4")]),
            k8s(
                "replicaset",
                "web-3",
                10,
                &[
                    ("owner", "k8s/c/shop/deployment/web"),
                    ("revision", "3"),
                    ("images", current_image),
                ],
            ),
            k8s(
                "replicaset",
                "web-2",
                600,
                &[
                    ("owner", "k8s/c/shop/deployment/web"),
                    ("revision", "2"),
                    ("images", "web:2"),
                ],
            ),
            k8s(
                "pod",
                "web-3-x",
                5,
                &[("owner", "k8s/c/shop/replicaset/web-3"), ("restarts", "4")],
            ),
        ]
    }

    fn steps(evidence: &[(Evidence, u32)]) -> Vec<InvestigationStep> {
        evidence
            .iter()
            .map(|(e, mins)| InvestigationStep {
                evidence: *e,
                why: String::new(),
                window: Some(std::time::Duration::from_secs(u64::from(*mins) * 60)),
                metrics: vec![],
                lines: None,
                grep: None,
            })
            .collect()
    }

    fn facts_of(
        listing: &[Resource],
        steps: &[InvestigationStep],
        events: Option<&[InfraEvent]>,
        workload: Option<&[InfraEvent]>,
    ) -> PlaybookFacts {
        let alert = Alert {
            name: "A".into(),
            severity: Severity::High,
            resource: listing[3].id.clone(),
            fingerprint: String::new(),
            summary: String::new(),
            labels: Default::default(),
            status: AlertStatus::Firing,
            source: String::new(),
        };
        let metrics: std::collections::BTreeMap<String, f64> =
            [("restarts".to_string(), 4.0)].into();
        playbook_facts(&FactInput {
            alert: &alert,
            resource: &listing[3],
            health: &Health::healthy(),
            listing,
            events,
            changes: events,
            workload_events: workload,
            metrics: Some(&metrics),
            diagnosis: &[],
            steps,
            now: now(),
        })
    }

    fn scaled(msg: &str, mins_ago: i64) -> InfraEvent {
        InfraEvent {
            at: at(mins_ago),
            resource: ResourceId::new("k8s/c/shop/deployment/web"),
            kind: "Normal".into(),
            reason: "ScalingReplicaSet".into(),
            message: msg.into(),
        }
    }

    #[test]
    fn deploys_are_read_from_replicaset_revisions_within_the_window() {
        let listing = fleet("web:3");
        let f = facts_of(
            &listing,
            &steps(&[(Evidence::Changes, 30)]),
            Some(&[]),
            Some(&[]),
        );
        assert_eq!(f.get("changes.recent_deploy"), Some(&Fact::Bool(true)));
        assert_eq!(
            f.get("changes.minutes_since_deploy"),
            Some(&Fact::Number(10.0))
        );
        assert_eq!(
            f.get("changes.previous_revision_available"),
            Some(&Fact::Bool(true))
        );
        assert_eq!(
            f.get("changes.recent_config_change"),
            Some(&Fact::Bool(false))
        );
        // A five-minute window does not reach the ten-minute-old revision.
        let f = facts_of(
            &listing,
            &steps(&[(Evidence::Changes, 5)]),
            Some(&[]),
            Some(&[]),
        );
        assert_eq!(f.get("changes.recent_deploy"), Some(&Fact::Bool(false)));
        // Same image, new template: a configuration change.
        let listing = fleet("web:2");
        let f = facts_of(
            &listing,
            &steps(&[(Evidence::Changes, 30)]),
            Some(&[]),
            Some(&[]),
        );
        assert_eq!(
            f.get("changes.recent_config_change"),
            Some(&Fact::Bool(true))
        );
    }

    #[test]
    fn absent_evidence_leaves_facts_unknown_never_false_or_zero() {
        let listing = fleet("web:3");
        // No steps: nothing but the alert, the resource and its health.
        let f = facts_of(&listing, &[], Some(&[]), Some(&[]));
        assert!(f.iter().all(|(k, _)| k.starts_with("alert.")
            || k.starts_with("resource.")
            || k.starts_with("health.")));
        // Events unreadable: no count, no scheduling failures.
        let f = facts_of(&listing, &steps(&[(Evidence::Events, 30)]), None, None);
        assert!(f.get("events.count").is_none());
        assert!(f.get("events.failed_scheduling").is_none());
        assert_eq!(f.get("events.restarts"), Some(&Fact::Number(4.0)));
        // A pod without its ReplicaSet in the listing: no deploy facts.
        let orphaned = vec![
            listing[0].clone(),
            listing[0].clone(),
            listing[0].clone(),
            listing[3].clone(),
        ];
        let f = facts_of(
            &orphaned,
            &steps(&[(Evidence::Changes, 30)]),
            Some(&[]),
            Some(&[]),
        );
        assert!(f.get("changes.recent_deploy").is_none());
        assert!(f.get("changes.previous_revision_available").is_none());
    }

    #[test]
    fn scale_ups_need_the_controllers_from_count_and_no_rollout() {
        let mut listing = fleet("web:3");
        listing[1].created_at = at(600);
        let ev = [scaled("Scaled up replica set web-3 to 4 from 2", 20)];
        let f = facts_of(
            &listing,
            &steps(&[(Evidence::Changes, 60)]),
            Some(&[]),
            Some(&ev),
        );
        assert_eq!(f.get("changes.recent_scale_up"), Some(&Fact::Bool(true)));
        assert_eq!(f.get("changes.previous_replicas"), Some(&Fact::Number(2.0)));
        // No scale-up events: definitely none.
        let f = facts_of(
            &listing,
            &steps(&[(Evidence::Changes, 60)]),
            Some(&[]),
            Some(&[]),
        );
        assert_eq!(f.get("changes.recent_scale_up"), Some(&Fact::Bool(false)));
        // An older controller's wording says not from how many: unknown.
        let old = [scaled("Scaled up replica set web-3 to 4", 20)];
        let f = facts_of(
            &listing,
            &steps(&[(Evidence::Changes, 60)]),
            Some(&[]),
            Some(&old),
        );
        assert!(f.get("changes.recent_scale_up").is_none());
        // During a new revision's rollout the same words are the rollout.
        let listing = fleet("web:3");
        let f = facts_of(
            &listing,
            &steps(&[(Evidence::Changes, 60)]),
            Some(&[]),
            Some(&ev),
        );
        assert!(f.get("changes.recent_scale_up").is_none());
    }
}
