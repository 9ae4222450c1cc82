//! Investigation: gathers evidence about an incident's resource through its
//! connector (health with reason, events, recent changes, metrics, owner chain,
//! node), runs rule-based analyzers over it, and records ranked hypotheses,
//! each citing the evidence it rests on.

mod analyzers;
mod linux;

use std::collections::BTreeMap;

use chrono::Duration;

use super::AgentContext;
use crate::event::StringMap;
use crate::event::{
    Alert, EventKind, Evidence, Health, Hypothesis, InfraEvent, PlaybookChoice, ResourceId,
};
use crate::playbook::Facts as PlaybookFacts;
pub use analyzers::{Facts, analyze, rank};

const ACTOR: &str = "agent:investigation";

/// What the supervisor hands the investigation agent.
#[derive(Debug, Clone)]
pub struct InvestigationJob {
    pub investigation: u64,
    pub incident: u64,
    pub resource: ResourceId,
    /// The alert as the incident recorded it (playbooks match on it).
    pub alert: Alert,
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
                    playbook: None,
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
    // Connector-specific evidence (Kubernetes logs, owner chain, rollouts, …).
    let diagnosis = match ctx.registry.get(&job.connector) {
        Some(c) => match c.diagnose(&job.resource).await {
            Ok(d) => d,
            Err(e) => {
                ctx.report_error("investigation", format!("diagnose {}: {e}", job.resource))
                    .await;
                Default::default()
            }
        },
        None => Default::default(),
    };
    let mut cited: Vec<(String, String)> = Vec::new();
    for e in &diagnosis.evidence {
        let recorded = record_evidence(&e.source, e.summary.clone(), e.detail.clone());
        cited.push((e.source.clone(), recorded.id.clone()));
        evidence.push(recorded);
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

    let mut hypotheses = analyze(&facts, &evidence);
    hypotheses.extend(diagnosis.findings.iter().map(|f| {
        Hypothesis {
            title: f.title.clone(),
            confidence: f.confidence.clamp(0.0, 1.0),
            cites: f
                .sources
                .iter()
                .filter_map(|s| {
                    cited
                        .iter()
                        .find(|(src, _)| src == s)
                        .map(|(_, id)| id.clone())
                })
                .chain(evidence.first().map(|e| e.id.clone()))
                .collect(),
            reasoning: f.reasoning.clone(),
            recommended_action: f.action.clone(),
        }
    }));
    rank(&mut hypotheses);
    let playbook = match consult_playbook(ctx, job, &facts) {
        Ok(choice) => choice,
        Err(e) => {
            // A broken playbook never blocks the investigation: say so and go on without it.
            ctx.report_error("investigation", format!("playbook: {e}"))
                .await;
            None
        }
    };
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
    let conclusion = match &playbook {
        Some(choice) => format!(
            "{conclusion}; playbook {} › {} chose {}",
            choice.playbook, choice.branch, choice.action.name
        ),
        None => conclusion,
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
            playbook,
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
    let owner_attributes = match &owner {
        Some(o) => resources
            .iter()
            .find(|r| &r.id == o)
            .map(|r| r.attributes.clone())
            .unwrap_or_default(),
        None => StringMap::new(),
    };
    Ok(Facts {
        resource: job.resource.clone(),
        resource_view: resource.clone(),
        owner_attributes,
        kind: resource.kind.clone(),
        alert: job.alert.name.clone(),
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

/// Asks the playbook that matches the alert, if any, what it would do given
/// the gathered facts. The facts are named as playbooks document them
/// (`health.*`, `metrics.*`, `changes.*`, `events.*`, `resource.*`, `alert.*`).
fn consult_playbook(
    ctx: &AgentContext,
    job: &InvestigationJob,
    facts: &Facts,
) -> anyhow::Result<Option<PlaybookChoice>> {
    let Some(playbook) = ctx.playbooks.matching(&job.alert) else {
        return Ok(None);
    };
    let pf = playbook_facts(job, facts, ctx.clock.now());
    let target = facts
        .owner
        .clone()
        .unwrap_or_else(|| facts.resource.clone());
    let decision = playbook.decide(&pf, &target)?;
    Ok(decision.map(|d| PlaybookChoice {
        playbook: playbook.name.clone(),
        branch: d.branch,
        description: d.description,
        action: d.action,
    }))
}

fn playbook_facts(
    job: &InvestigationJob,
    f: &Facts,
    now: chrono::DateTime<chrono::Utc>,
) -> PlaybookFacts {
    let mut pf = PlaybookFacts::new();
    pf.add_alert(&job.alert);
    pf.add_resource(&f.resource_view);
    pf.add_health(&f.health);
    for (k, v) in &f.metrics {
        pf.set(format!("metrics.{k}"), *v);
    }
    // Aliases under the names the playbooks use.
    let m = |k: &str| f.metrics.get(k).copied();
    if let Some(need) = m("memory_need_mib") {
        pf.set("metrics.memory_peak_mib", need);
    }
    // The limit an OOM hypothesis proposes, so a playbook acting on the
    // same evidence sets the same value (computed once, in `sizing`).
    if let Some(limit) = m("memory_limit_mib") {
        let proposed = crate::agents::sizing::oom_memory_limit_mib(limit, m("memory_need_mib"));
        pf.set("metrics.memory_limit_proposed_mib", proposed as f64);
    }
    if let Some(l) = m("latency_ms") {
        pf.set("metrics.latency_p99_ms", l);
    }
    if let Some(d) = m("disk_used_pct") {
        pf.set("metrics.disk_usage_ratio", d / 100.0);
    }
    if let Some(r) = f
        .attributes
        .get("reclaimable_pct")
        .and_then(|v| v.parse::<f64>().ok())
    {
        pf.set("metrics.disk_reclaimable_ratio", r / 100.0);
    }
    if let Some(c) = m("cpu_util_pct") {
        pf.set("metrics.cpu_usage_ratio", c / 100.0);
    }
    if let Some(r) = m("owner_replicas") {
        pf.set("metrics.replicas", r);
    }
    pf.set("events.count", f.events.len() as f64);
    pf.set("events.restarts", m("restarts").unwrap_or(0.0));
    let deploy = f
        .changes
        .iter()
        .filter(|c| c.reason == "ScalingReplicaSet" || c.message.contains("rollout"))
        .max_by_key(|c| c.at);
    pf.set("changes.count", f.changes.len() as f64);
    pf.set("changes.recent_deploy", deploy.is_some());
    if let Some(d) = deploy {
        pf.set(
            "changes.minutes_since_deploy",
            ((now - d.at).num_seconds() as f64 / 60.0).round(),
        );
    }
    pf.set(
        "changes.previous_revision_available",
        f.owner_attributes
            .get("previous_image")
            .is_some_and(|v| !v.is_empty()),
    );
    pf
}
