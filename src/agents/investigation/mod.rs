//! Investigation: gathers evidence about an incident's resource through its
//! connector (health with reason, events, recent changes, metrics, owner chain,
//! node), runs rule-based analyzers over it, and records ranked hypotheses,
//! each citing the evidence it rests on.

mod analyzers;
pub mod facts;
mod linux;
pub mod prometheus;

use std::collections::BTreeMap;

use chrono::Duration;

use super::AgentContext;
use crate::event::StringMap;
use crate::event::{
    Alert, EventKind, Evidence, Health, Hypothesis, InfraEvent, PlaybookChoice, ResourceId,
};
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
    let gathered = gather(ctx, job).await?;
    let facts = &gathered.facts;
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
    let minutes = gathered.window.num_minutes();
    if !facts.events.is_empty() {
        evidence.push(record_evidence(
            "events",
            format!("{} event(s) in the last {minutes} min", facts.events.len()),
            facts.events.iter().map(line).collect(),
        ));
    }
    if !facts.changes.is_empty() {
        evidence.push(record_evidence(
            "changes",
            format!(
                "{} change(s) in the last {minutes} min",
                facts.changes.len()
            ),
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
    // A site without Prometheus, or a resource no PromQL is written for,
    // says so only when the playbook asked for the evidence.
    let prometheus_said = match &gathered.prometheus {
        prometheus::Gathered::Read(_) => true,
        prometheus::Gathered::NotAsked(_) => gathered.prometheus_asked,
    };
    if prometheus_said {
        for (summary, detail) in
            prometheus::evidence(&gathered.prometheus, gathered.prometheus_window)
        {
            evidence.push(record_evidence(prometheus::SOURCE, summary, detail));
        }
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
    // Each piece of evidence says why the playbook asked for it.
    if let Some(p) = playbook_for(ctx, job, &facts.resource_view) {
        for e in evidence.iter_mut() {
            let step = match e.source.as_str() {
                "health" => crate::playbook::Evidence::Health,
                "events" | "k8s_events" => crate::playbook::Evidence::Events,
                "changes" | "rollouts" => crate::playbook::Evidence::Changes,
                "metrics" => crate::playbook::Evidence::Metrics,
                "previous_logs" | "logs" => crate::playbook::Evidence::Logs,
                prometheus::SOURCE => crate::playbook::Evidence::Prometheus,
                _ => continue,
            };
            if let Some(why) = p
                .investigate
                .iter()
                .find(|s| s.evidence == step)
                .map(|s| s.why.trim())
                .filter(|w| !w.is_empty())
            {
                e.summary = format!("{} — {why}", e.summary);
            }
        }
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

    let mut hypotheses = analyze(facts, &evidence);
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
    let (playbook, why_not) = match consult_playbook(ctx, job, &gathered, &diagnosis.evidence) {
        Ok(found) => found,
        Err(e) => {
            // A broken playbook never blocks the investigation: say so and go on without it.
            ctx.report_error("investigation", format!("playbook: {e}"))
                .await;
            (None, None)
        }
    };
    if let Some(NotActed::Undecided(_)) = &why_not {
        // The site's playbook for this alert could not decide for want of
        // evidence: no analyzer's action is proposed in its place.
        for h in hypotheses.iter_mut() {
            h.recommended_action = None;
        }
    }
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
    let conclusion = match (&playbook, why_not) {
        (Some(choice), _) => format!(
            "{conclusion}; playbook {} › {} chose {}",
            choice.playbook, choice.branch, choice.action.name
        ),
        (None, Some(NotActed::Undecided(why) | NotActed::NoBranch(why))) => {
            format!("{conclusion}; {why}")
        }
        (None, None) => conclusion,
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

/// What [`gather`] read: the analyzers' facts, and what the playbook facts
/// are computed from.
struct Gathered {
    facts: Facts,
    /// Every resource the connector listed.
    listing: Vec<crate::event::Resource>,
    /// Whether the resource's events (and so its changes) could be read.
    events_read: bool,
    /// Events of the Kubernetes workload over the resource and of its
    /// current pods (`None`: not a Kubernetes workload, or not readable).
    workload_events: Option<Vec<InfraEvent>>,
    /// Whether metrics could be read.
    metrics_read: bool,
    /// The window events and changes were read over.
    window: Duration,
    /// What Prometheus answered for the resource, and over which window.
    prometheus: prometheus::Gathered,
    prometheus_window: Duration,
    /// Whether the playbook has a `prometheus` step.
    prometheus_asked: bool,
}

/// The playbook for the job's alert and resource, if any.
fn playbook_for<'a>(
    ctx: &'a AgentContext,
    job: &InvestigationJob,
    resource: &crate::event::Resource,
) -> Option<&'a crate::playbook::Playbook> {
    ctx.playbooks
        .matching_resource(&job.alert, resource.provider, &resource.kind)
}

async fn gather(ctx: &AgentContext, job: &InvestigationJob) -> anyhow::Result<Gathered> {
    let connector = ctx
        .registry
        .get(&job.connector)
        .ok_or_else(|| anyhow::anyhow!("connector {} is not configured", job.connector))?;
    let now = ctx.clock.now();
    let resources = connector
        .list_resources(&crate::connectors::Scope::default())
        .await?;
    let resource = resources
        .iter()
        .find(|r| r.id == job.resource)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{} is gone", job.resource))?;
    // The playbook's steps say how far back to look (the widest of them).
    let playbook = playbook_for(ctx, job, &resource);
    let window_len = playbook
        .map(|p| facts::widest_window(&p.investigate))
        .unwrap_or(facts::DEFAULT_WINDOW);
    // The PromQL runs at once with the connector's reads: each query is
    // bounded by its own timeout, so Prometheus never holds up the rest.
    let prometheus_step = playbook.and_then(|p| {
        p.investigate
            .iter()
            .find(|s| s.evidence == crate::playbook::Evidence::Prometheus)
    });
    let prometheus_window = facts::window_of(prometheus_step);
    let prom = ctx.registry.prometheus();
    let prom_reading = prometheus::gather(prom.as_deref(), &resource, prometheus_window, now);
    let (connector_reads, prometheus) = tokio::join!(
        read_connector(
            ctx,
            job,
            &*connector,
            &resource,
            &resources,
            now,
            window_len
        ),
        prom_reading
    );
    let (facts, workload_events, events_read, metrics_read) = connector_reads?;
    Ok(Gathered {
        facts,
        listing: resources,
        events_read,
        workload_events,
        metrics_read,
        window: window_len,
        prometheus,
        prometheus_window,
        prometheus_asked: prometheus_step.is_some(),
    })
}

/// What the resource's own connector says: health, events, changes, metrics,
/// owner and node.
async fn read_connector(
    ctx: &AgentContext,
    job: &InvestigationJob,
    connector: &dyn crate::connectors::InfraConnector,
    resource: &crate::event::Resource,
    resources: &[crate::event::Resource],
    now: chrono::DateTime<chrono::Utc>,
    window_len: Duration,
) -> anyhow::Result<(Facts, Option<Vec<InfraEvent>>, bool, bool)> {
    let window = crate::connectors::TimeWindow {
        from: now - window_len,
        to: now,
    };
    let health = connector.health(&job.resource).await?;
    // Evidence that cannot be read stays unknown: an empty list would say
    // "nothing happened", which is not what we know.
    let read_events = connector.events(&job.resource, window).await;
    let events_read = read_events.is_ok();
    let mut events = match read_events {
        Ok(e) => e,
        Err(e) => {
            ctx.report_error("investigation", format!("events of {}: {e}", job.resource))
                .await;
            Vec::new()
        }
    };
    let owner = resource
        .attributes
        .get("owner")
        .map(|o| ResourceId::new(o.clone()));
    let mut changes: Vec<InfraEvent> = events
        .iter()
        .filter(|e| e.kind == "change")
        .cloned()
        .collect();
    if let Some(owner) = &owner {
        changes.extend(
            connector
                .events(owner, window)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.kind == "change"),
        );
    }
    events.retain(|e| e.kind != "change");
    let chain = facts::OwnerChain::of(resource, resources);
    let workload_events = match chain.workload {
        Some(w) => {
            let mut all = Vec::new();
            let mut ok = true;
            let ids = std::iter::once(&w.id).chain(
                chain
                    .current_pods(resources)
                    .into_iter()
                    .filter(|p| resource.kind == "deployment" || p.id == resource.id)
                    .map(|p| &p.id),
            );
            for id in ids {
                match connector.events(id, window).await {
                    Ok(evs) => all.extend(evs),
                    Err(_) => ok = false,
                }
            }
            ok.then_some(all)
        }
        None => None,
    };
    let read_metrics = connector.metrics(&job.resource).await;
    let metrics_read = read_metrics.is_ok();
    let mut metrics = read_metrics.unwrap_or_default();
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
    let facts = Facts {
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
    };
    Ok((facts, workload_events, events_read, metrics_read))
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

/// Why the matching playbook chose nothing.
enum NotActed {
    /// A condition depended on facts not observed (the text names them).
    Undecided(String),
    /// Every condition was decided, and none held.
    NoBranch(String),
}

/// Asks the playbook written for the alert and the resource, if any, what
/// it would do given the facts its `investigate` steps gathered. Returns the
/// choice, or why the playbook did not act when it depended on facts that
/// were not observed.
fn consult_playbook(
    ctx: &AgentContext,
    job: &InvestigationJob,
    gathered: &Gathered,
    diagnosis: &[crate::connectors::DiagnosisEvidence],
) -> anyhow::Result<(Option<PlaybookChoice>, Option<NotActed>)> {
    let f = &gathered.facts;
    let Some(playbook) = playbook_for(ctx, job, &f.resource_view) else {
        return Ok((None, None));
    };
    let input = facts::FactInput {
        alert: &job.alert,
        resource: &f.resource_view,
        health: &f.health,
        listing: &gathered.listing,
        events: gathered.events_read.then_some(f.events.as_slice()),
        changes: gathered.events_read.then_some(f.changes.as_slice()),
        workload_events: gathered.workload_events.as_deref(),
        metrics: gathered.metrics_read.then_some(&f.metrics),
        diagnosis,
        steps: &playbook.investigate,
        now: ctx.clock.now(),
    };
    let mut pf = facts::playbook_facts(&input);
    if playbook
        .investigate
        .iter()
        .any(|s| s.evidence == crate::playbook::Evidence::Prometheus)
    {
        prometheus::add_facts(&gathered.prometheus, &mut pf);
    }
    let target = f.owner.clone().unwrap_or_else(|| f.resource.clone());
    let evaluation = playbook.evaluate(&pf, &target)?;
    let why_not = match (&evaluation.decision, &evaluation.undecided) {
        (Some(_), _) => None,
        (None, Some(_)) => Some(NotActed::Undecided(evaluation.why_not(playbook))),
        (None, None) => Some(NotActed::NoBranch(evaluation.why_not(playbook))),
    };
    Ok((
        evaluation.decision.map(|d| {
            let mut action = d.action;
            // A pod restart acts on the pod itself, never on its owner.
            if action.name == "restart_pod" {
                action.target = f.resource.clone();
            }
            PlaybookChoice {
                playbook: playbook.name.clone(),
                branch: d.branch,
                description: d.description,
                action,
            }
        }),
        why_not,
    ))
}
