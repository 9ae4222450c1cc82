//! Investigation: gathers evidence about an incident's resource through its
//! connector (health with reason, events, recent changes, metrics, owner chain,
//! node), runs rule-based analyzers over it, and records ranked hypotheses,
//! each citing the evidence it rests on.

mod analyzers;

use std::collections::BTreeMap;

use chrono::Duration;

use super::AgentContext;
use crate::event::{EventKind, Evidence, Health, InfraEvent, ResourceId};
pub use analyzers::{Facts, analyze};

const ACTOR: &str = "agent:investigation";

/// What the supervisor hands the investigation agent.
#[derive(Debug, Clone)]
pub struct InvestigationJob {
    pub investigation: u64,
    pub incident: u64,
    pub resource: ResourceId,
    pub alert: String,
    /// The connector that owns the resource (from the fleet projection).
    pub connector: crate::event::ConnectorId,
    /// Evidence ids already used (a resumed investigation continues numbering).
    pub evidence_so_far: usize,
}

/// Runs one investigation to its conclusion.
pub async fn investigate(ctx: AgentContext, job: InvestigationJob) {
    if let Err(e) = run(&ctx, &job).await {
        ctx.report_error(
            "investigation",
            format!("investigation #{}: {e}", job.investigation),
        )
        .await;
        let _ = ctx
            .record(
                ACTOR,
                EventKind::InvestigationConcluded {
                    investigation: job.investigation,
                    conclusion: format!("could not complete: {e}"),
                },
            )
            .await;
    }
}

async fn run(ctx: &AgentContext, job: &InvestigationJob) -> anyhow::Result<()> {
    let facts = gather(ctx, job).await?;
    let mut n = job.evidence_so_far;
    let mut record_evidence = |source: &str, summary: String, detail: Vec<String>| {
        n += 1;
        Evidence {
            id: format!("e{n}"),
            source: source.to_string(),
            summary,
            detail,
        }
    };

    // Evidence is recorded before any hypothesis that cites it.
    let mut evidence = Vec::new();
    evidence.push(record_evidence(
        "health",
        describe_health(&facts.resource, &facts.health),
        vec![facts.health.message.clone()],
    ));
    if !facts.events.is_empty() {
        evidence.push(record_evidence(
            "events",
            format!("{} event(s) in the last hour", facts.events.len()),
            facts.events.iter().map(line).collect(),
        ));
    }
    if !facts.changes.is_empty() {
        evidence.push(record_evidence(
            "changes",
            format!("{} change(s) in the last hour", facts.changes.len()),
            facts.changes.iter().map(line).collect(),
        ));
    }
    if !facts.metrics.is_empty() {
        evidence.push(record_evidence(
            "metrics",
            summarize_metrics(&facts.metrics),
            facts
                .metrics
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect(),
        ));
    }
    if let Some(owner) = &facts.owner {
        evidence.push(record_evidence(
            "owner",
            format!("{} is owned by {owner}", facts.resource),
            vec![],
        ));
    }
    if let Some((node, health)) = &facts.node {
        evidence.push(record_evidence(
            "node",
            describe_health(node, health),
            vec![health.message.clone()],
        ));
    }
    for e in &evidence {
        ctx.record(
            ACTOR,
            EventKind::EvidenceCollected {
                investigation: job.investigation,
                evidence: e.clone(),
            },
        )
        .await?;
    }

    let hypotheses = analyze(&facts, &evidence);
    let conclusion = match hypotheses.first() {
        Some(top) => format!(
            "most likely: {} ({:.0}%){}",
            top.title,
            top.confidence * 100.0,
            match &top.recommended_action {
                Some(a) => format!("; recommends {} on {}", a.name, a.target),
                None => "; no automatic action".to_string(),
            }
        ),
        None => "no hypothesis".to_string(),
    };
    ctx.record(
        ACTOR,
        EventKind::HypothesesRanked {
            investigation: job.investigation,
            hypotheses,
        },
    )
    .await?;
    ctx.record(
        ACTOR,
        EventKind::InvestigationConcluded {
            investigation: job.investigation,
            conclusion,
        },
    )
    .await?;
    Ok(())
}

async fn gather(ctx: &AgentContext, job: &InvestigationJob) -> anyhow::Result<Facts> {
    let connector = ctx
        .registry
        .get(&job.connector)
        .ok_or_else(|| anyhow::anyhow!("connector {} is not configured", job.connector))?;
    let now = ctx.clock.now();
    let window = crate::connectors::TimeWindow {
        from: now - Duration::hours(1),
        to: now,
    };
    let resources = connector
        .list_resources(&crate::connectors::Scope::default())
        .await?;
    let resource = resources
        .iter()
        .find(|r| r.id == job.resource)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{} is gone", job.resource))?;
    let health = connector.health(&job.resource).await?;
    let mut events = connector.events(&job.resource, window).await?;
    let owner = resource
        .attributes
        .get("owner")
        .map(|o| ResourceId::new(o.clone()));
    let mut changes: Vec<InfraEvent> = Vec::new();
    for id in std::iter::once(&job.resource).chain(owner.iter()) {
        let evs = if id == &job.resource {
            events.clone()
        } else {
            connector.events(id, window).await.unwrap_or_default()
        };
        changes.extend(evs.into_iter().filter(|e| e.kind == "change"));
    }
    events.retain(|e| e.kind != "change");
    let mut metrics = connector.metrics(&job.resource).await?;
    if let Some(owner) = &owner
        && let Ok(m) = connector.metrics(owner).await
        && let Some(r) = m.get("replicas")
    {
        metrics.insert("owner_replicas".into(), *r);
    }
    let node = match (
        resource.attributes.get("node"),
        resource.attributes.get("context"),
    ) {
        (Some(node), Some(ctx_name)) => {
            let id = ResourceId::new(format!("k8s/{ctx_name}/node/{node}"));
            connector.health(&id).await.ok().map(|h| (id, h))
        }
        _ => None,
    };
    Ok(Facts {
        resource: job.resource.clone(),
        kind: resource.kind.clone(),
        alert: job.alert.clone(),
        health,
        events,
        changes,
        metrics,
        owner,
        node,
        attributes: resource.attributes.clone(),
    })
}

fn describe_health(id: &ResourceId, h: &Health) -> String {
    if h.reason.is_empty() {
        format!("{id} is {}", h.status.as_str())
    } else {
        format!("{id} is {}: {}", h.status.as_str(), h.reason)
    }
}

fn line(e: &InfraEvent) -> String {
    format!(
        "{} {} {}: {}",
        e.at.format("%H:%M:%S"),
        e.kind,
        e.reason,
        e.message
    )
}

fn summarize_metrics(m: &BTreeMap<String, f64>) -> String {
    let mut parts = Vec::new();
    if let Some(r) = m.get("memory_usage_ratio") {
        parts.push(format!("memory at {:.0}% of limit", r * 100.0));
    }
    if let Some(r) = m.get("restarts") {
        parts.push(format!("{r:.0} restarts"));
    }
    if let (Some(l), Some(s)) = (m.get("latency_ms"), m.get("latency_slo_ms")) {
        parts.push(format!("p99 {l:.0} ms (objective {s:.0} ms)"));
    }
    if let Some(d) = m.get("disk_used_pct") {
        parts.push(format!("disk {d:.0}% used"));
    }
    if let Some(c) = m.get("cpu_util_pct") {
        parts.push(format!("cpu {c:.0}%"));
    }
    if parts.is_empty() {
        format!("{} metric(s)", m.len())
    } else {
        parts.join(", ")
    }
}
