//! Rule-based analyzers. Each looks at the gathered facts, and when its
//! pattern is present proposes a hypothesis whose confidence grows with each
//! independent piece of evidence that supports it, citing exactly those pieces.

use std::collections::BTreeMap;

use crate::event::StringMap;
use crate::event::{Action, Evidence, Health, HealthStatus, Hypothesis, InfraEvent, ResourceId};

/// Everything an investigation gathered about a resource.
#[derive(Debug, Clone)]
pub struct Facts {
    pub resource: ResourceId,
    /// The resource as its connector reported it.
    pub resource_view: crate::event::Resource,
    /// The owner's attributes (e.g. a deployment's previous image), if any.
    pub owner_attributes: StringMap,
    pub kind: String,
    pub alert: String,
    pub health: Health,
    /// Non-change events (warnings, OOM kills, evictions).
    pub events: Vec<InfraEvent>,
    /// Changes to the resource or its owner (rollouts, resizes).
    pub changes: Vec<InfraEvent>,
    pub metrics: BTreeMap<String, f64>,
    pub owner: Option<ResourceId>,
    pub node: Option<(ResourceId, Health)>,
    pub attributes: StringMap,
}

/// Confidence below which a hypothesis is not worth showing.
const FLOOR: f64 = 0.05;

/// Runs every analyzer and ranks the hypotheses, most confident first.
pub fn analyze(facts: &Facts, evidence: &[Evidence]) -> Vec<Hypothesis> {
    let cite = |source: &str| -> Option<String> {
        evidence
            .iter()
            .find(|e| e.source == source)
            .map(|e| e.id.clone())
    };
    let mut out: Vec<Hypothesis> = [
        memory_limit(facts, &cite),
        recent_change(facts, &cite),
        disk_pressure(facts, &cite),
        node_trouble(facts, &cite),
        traffic_surge(facts, &cite),
    ]
    .into_iter()
    .flatten()
    .chain(super::linux::analyze(facts, &cite))
    .filter(|h| h.confidence >= FLOOR)
    .collect();
    rank(&mut out);
    out
}

/// Most confident first (ties by title, so the order is the same in every replay).
pub fn rank(hypotheses: &mut [Hypothesis]) {
    hypotheses.sort_by(|a, b| {
        b.confidence
            .partial_cmp(&a.confidence)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.title.cmp(&b.title))
    });
}

/// Finds the id of the evidence from a source.
pub(super) type Cite<'a> = dyn Fn(&str) -> Option<String> + 'a;

fn memory_limit(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    // A Linux host has no memory limit to raise; its OOM kills are analysed
    // as memory exhaustion (see `linux`).
    if f.kind == "host" && f.resource_view.provider == crate::event::Provider::Linux {
        return None;
    }
    let oom_health = f.health.message.contains("OOMKilled") || f.health.reason == "OOMKilled";
    let oom_event = f.events.iter().any(|e| e.reason == "OOMKilling");
    let ratio = f.metrics.get("memory_usage_ratio").copied().unwrap_or(0.0);
    let over = ratio >= 1.0;
    if !(oom_health || oom_event || over) {
        return None;
    }
    let mut confidence: f64 = 0.3;
    let mut cites = Vec::new();
    let mut why = Vec::new();
    if oom_health {
        confidence += 0.25;
        cites.extend(cite("health"));
        why.push("the container's last termination was OOMKilled");
    }
    if oom_event {
        confidence += 0.15;
        cites.extend(cite("events"));
        why.push("the kernel's OOM killer fired");
    }
    if over {
        confidence += 0.2;
        cites.extend(cite("metrics"));
        why.push("memory demand exceeds the limit");
    }
    let need = f.metrics.get("memory_need_mib").copied();
    let limit = f.metrics.get("memory_limit_mib").copied().unwrap_or(0.0);
    // The one computation the playbooks read too (`metrics.memory_limit_proposed_mib`).
    let proposed = crate::sizing::oom_memory_limit_mib(limit, need);
    let over = match need {
        Some(need) => format!("gives 25% headroom over the observed {need:.0}Mi"),
        None => "is one step up: no memory demand was observed".into(),
    };
    let target = f.owner.clone().unwrap_or_else(|| f.resource.clone());
    Some(Hypothesis {
        title: "Memory limit too low for the workload".into(),
        confidence: confidence.min(0.95),
        cites: dedup(cites),
        reasoning: format!(
            "{}; raising the limit from {limit:.0}Mi to {proposed}Mi {over}",
            why.join(", ")
        ),
        recommended_action: Some(
            Action::new("set_resources", target).with("memory_limit_mib", proposed.to_string()),
        ),
    })
}

fn recent_change(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    let change = f
        .changes
        .iter()
        .filter(|c| c.reason != "Restored")
        .max_by_key(|c| c.at)?;
    // `Rollout` is what the Kubernetes connector records for each ReplicaSet
    // revision; the demo fleet words it as the deployment controller's event.
    let rollout = change.reason == "Rollout"
        || change.reason == "ScalingReplicaSet"
        || change.message.contains("rollout");
    let mut confidence: f64 = if rollout { 0.4 } else { 0.3 };
    let mut cites: Vec<String> = cite("changes").into_iter().collect();
    if f.health.status != HealthStatus::Healthy {
        confidence += 0.05;
        cites.extend(cite("health"));
    }
    let action = if rollout {
        f.owner
            .clone()
            .map(|owner| Action::new("rollback_deployment", owner))
    } else {
        None
    };
    Some(Hypothesis {
        title: if rollout {
            "Regression introduced by the recent rollout".into()
        } else {
            format!("Recent change: {}", change.reason)
        },
        confidence,
        cites: dedup(cites),
        reasoning: format!(
            "{} at {} shortly before the alert: {}",
            change.reason,
            change.at.format("%H:%M:%S"),
            change.message
        ),
        recommended_action: action,
    })
}

fn disk_pressure(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    let disk = f.metrics.get("disk_used_pct").copied()?;
    let pressured = f.health.reason == "DiskPressure" || f.health.reason == "DiskAlmostFull";
    if disk < 85.0 && !pressured {
        return None;
    }
    let mut confidence: f64 = 0.5;
    let mut cites: Vec<String> = cite("metrics").into_iter().collect();
    if pressured {
        confidence += 0.25;
        cites.extend(cite("health"));
    }
    if f.events
        .iter()
        .any(|e| e.reason.contains("Eviction") || e.reason.contains("FreeDiskSpace"))
    {
        confidence += 0.1;
        cites.extend(cite("events"));
    }
    Some(Hypothesis {
        title: "Disk filled by rotated logs and unused images".into(),
        confidence: confidence.min(0.95),
        cites: dedup(cites),
        reasoning: format!(
            "{disk:.0}% of the root filesystem is used; rotated logs and unused images are reclaimable"
        ),
        recommended_action: Some(Action::new("clean_disk", f.resource.clone())),
    })
}

fn node_trouble(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    let (node, health) = f.node.as_ref()?;
    if health.status == HealthStatus::Healthy {
        return None;
    }
    Some(Hypothesis {
        title: format!("Node {} is {}", node, health.reason),
        confidence: 0.35,
        cites: dedup(cite("node").into_iter().collect()),
        reasoning: format!("the pod runs on a node reporting {}", health.reason),
        recommended_action: None,
    })
}

fn traffic_surge(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    let latency = f.metrics.get("latency_ms").copied()?;
    let slo = f.metrics.get("latency_slo_ms").copied().unwrap_or(f64::MAX);
    if latency <= slo {
        return None;
    }
    let rps = f.metrics.get("rps").copied().unwrap_or(0.0);
    // Typical request rate across the demo's services tops out near 400/s.
    let surge = rps > 1_000.0;
    let confidence: f64 = if surge { 0.55 } else { 0.25 };
    let replicas = f.metrics.get("owner_replicas").copied().unwrap_or(1.0);
    Some(Hypothesis {
        title: if surge {
            "Traffic surge beyond provisioned capacity".into()
        } else {
            "Slow dependency or saturation".into()
        },
        confidence,
        cites: dedup(cite("metrics").into_iter().chain(cite("health")).collect()),
        reasoning: format!(
            "p99 latency {latency:.0} ms over the {slo:.0} ms objective at {rps:.0} req/s; bursts like this usually pass, scaling out is the lever if it persists"
        ),
        recommended_action: f.owner.clone().map(|owner| {
            Action::new("scale", owner)
                .with("replicas", ((replicas * 1.5).ceil() as u64).to_string())
        }),
    })
}

/// Sorted, without repeats.
pub(super) fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            resource: ResourceId::new("k8s/p/pod/x"),
            resource_view: crate::event::Resource {
                id: ResourceId::new("k8s/p/pod/x"),
                name: "x".into(),
                kind: "pod".into(),
                provider: crate::event::Provider::Kubernetes,
                connector: crate::event::ConnectorId::new("sim:test"),
                environment: crate::event::Environment::Production,
                team: "t".into(),
                labels: StringMap::new(),
                attributes: StringMap::new(),
                health: Health::healthy(),
                created_at: chrono::Utc::now(),
            },
            owner_attributes: StringMap::new(),
            kind: "pod".into(),
            alert: "KubePodCrashLooping".into(),
            health: Health::healthy(),
            events: vec![],
            changes: vec![],
            metrics: BTreeMap::new(),
            owner: Some(ResourceId::new("k8s/p/deployment/x")),
            node: None,
            attributes: StringMap::new(),
        }
    }

    fn evidence() -> Vec<Evidence> {
        ["health", "events", "changes", "metrics", "node"]
            .iter()
            .enumerate()
            .map(|(i, s)| Evidence {
                id: format!("e{}", i + 1),
                source: s.to_string(),
                summary: String::new(),
                detail: vec![],
            })
            .collect()
    }

    #[test]
    fn oom_ranks_memory_limit_first_and_cites_its_evidence() {
        let mut f = facts();
        f.health = Health::new(
            HealthStatus::Unhealthy,
            "CrashLoopBackOff",
            "last terminated: OOMKilled, exit code 137",
        );
        f.metrics.insert("memory_limit_mib".into(), 256.0);
        f.metrics.insert("memory_need_mib".into(), 340.0);
        f.metrics.insert("memory_usage_ratio".into(), 340.0 / 256.0);
        f.changes.push(InfraEvent {
            at: chrono::Utc::now(),
            resource: ResourceId::new("k8s/p/deployment/x"),
            kind: "change".into(),
            reason: "ScalingReplicaSet".into(),
            message: "rollout".into(),
        });
        let h = analyze(&f, &evidence());
        assert_eq!(h[0].title, "Memory limit too low for the workload");
        assert!(h[0].confidence > h[1].confidence);
        assert_eq!(h[0].cites, vec!["e1", "e4"]);
        let action = h[0].recommended_action.as_ref().unwrap();
        assert_eq!(action.name, "set_resources");
        assert_eq!(action.target.as_str(), "k8s/p/deployment/x");
        assert_eq!(action.params["memory_limit_mib"], "448");
        assert_eq!(
            h[1].recommended_action.as_ref().unwrap().name,
            "rollback_deployment"
        );
    }

    #[test]
    fn healthy_resource_with_no_signals_has_no_hypotheses() {
        assert!(analyze(&facts(), &evidence()).is_empty());
    }

    #[test]
    fn latency_without_surge_stays_low_confidence() {
        let mut f = facts();
        f.metrics.insert("latency_ms".into(), 800.0);
        f.metrics.insert("latency_slo_ms".into(), 500.0);
        f.metrics.insert("rps".into(), 200.0);
        let h = analyze(&f, &evidence());
        assert_eq!(h.len(), 1);
        assert!(h[0].confidence < 0.5);
    }
}
