//! The supervisor: folds the log, routes work between agents, checks operator
//! commands, runs timers (approval TTLs, escalation), and on start-up resumes
//! or safely finishes whatever was in flight when the process stopped.
//!
//! It reacts to each event exactly once: events reach it through one ordered
//! subscription; when it records something itself it catches up on that
//! subscription before handling anything else, so its view of the state is
//! never behind its own decisions (two approvals of the same remediation are
//! judged one after the other, against the state the first produced).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::approvals;
use super::command::{Command, CommandEnvelope, CommandReply, Identity};
use super::policy::PolicyGate;
use super::preview::{self, Previewed};
use super::provenance::{self, Proposer};
use super::{Intake, RuntimeOptions, RuntimeStatus};
use crate::agents::AgentContext;
use crate::agents::investigation::{InvestigationJob, investigate};
use crate::agents::remediation::{ExecutionJob, Resume, execute};
use crate::event::{Action, Alert, AlertStatus, Event, EventKind, RemediationOutcome};
use crate::state::{IncidentStatus, InvestigationStatus, Stage, State};
use crate::store::Subscription;

const ACTOR: &str = "supervisor";
/// How long an inspection may wait on a connector.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connector may take to say which object an action changes.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Supervisor {
    pub ctx: AgentContext,
    pub state: State,
    pub sub: Subscription,
    pub policy: Arc<dyn PolicyGate>,
    pub opts: RuntimeOptions,
    pub cancel: CancellationToken,
    pub status: watch::Sender<RuntimeStatus>,
    pub learning_poke: Arc<tokio::sync::Notify>,
    pending: VecDeque<Event>,
    investigating: HashSet<u64>,
    executing: HashSet<u64>,
    /// Allowed remediations whose preview is being read.
    previewing: HashSet<u64>,
    previews_tx: mpsc::Sender<Previewed>,
    previews_rx: Option<mpsc::Receiver<Previewed>>,
    snapshot_at: u64,
    failed: Option<String>,
}

impl Supervisor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: AgentContext,
        state: State,
        sub: Subscription,
        policy: Arc<dyn PolicyGate>,
        opts: RuntimeOptions,
        cancel: CancellationToken,
        status: watch::Sender<RuntimeStatus>,
        learning_poke: Arc<tokio::sync::Notify>,
    ) -> Self {
        let snapshot_at = state.last_seq;
        let (previews_tx, previews_rx) = mpsc::channel(64);
        Self {
            ctx,
            state,
            sub,
            policy,
            opts,
            cancel,
            status,
            learning_poke,
            pending: VecDeque::new(),
            investigating: HashSet::new(),
            executing: HashSet::new(),
            previewing: HashSet::new(),
            previews_tx,
            previews_rx: Some(previews_rx),
            snapshot_at,
            failed: None,
        }
    }

    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<CommandEnvelope>,
        mut intake: mpsc::Receiver<Intake>,
    ) -> anyhow::Result<()> {
        let mut previews = self
            .previews_rx
            .take()
            .ok_or_else(|| anyhow::anyhow!("the supervisor runs once"))?;
        self.resume().await;
        let tick = Duration::from_secs(1);
        let mut next_tick = self.ctx.clock.now();
        loop {
            while let Some(event) = self.pending.pop_front() {
                self.react(event).await;
            }
            if let Some(e) = self.failed.take() {
                self.cancel.cancel();
                anyhow::bail!("the event log failed: {e}");
            }
            self.maybe_snapshot();
            self.publish_status();
            let now = self.ctx.clock.now();
            if now >= next_tick {
                self.on_tick(now).await;
                next_tick = now + chrono::Duration::from_std(tick).unwrap_or_default();
                continue;
            }
            let wait = (next_tick - now).to_std().unwrap_or_default();
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                event = self.sub.next() => match event {
                    Some(Ok(event)) => self.fold(event),
                    Some(Err(e)) => { self.failed = Some(e.to_string()); }
                    None => break,
                },
                Some(envelope) = commands.recv() => self.handle(envelope).await,
                Some(item) = intake.recv() => self.intake(item).await,
                Some(answer) = previews.recv() => self.previewed(answer).await,
                _ = self.ctx.clock.sleep(wait) => {}
            }
        }
        self.save_snapshot();
        Ok(())
    }

    fn fold(&mut self, event: Event) {
        if event.seq > self.state.last_seq {
            self.state.apply(&event);
            self.pending.push_back(event);
        }
    }

    /// Records a fact and catches the projection up to it.
    async fn record(&mut self, actor: &str, kind: EventKind) -> Option<Event> {
        match self.ctx.record(actor, kind).await {
            Ok(event) => {
                while self.state.last_seq < event.seq {
                    match self.sub.next().await {
                        Some(Ok(e)) => self.fold(e),
                        Some(Err(e)) => {
                            self.failed = Some(e.to_string());
                            return None;
                        }
                        None => return None,
                    }
                }
                Some(event)
            }
            Err(e) => {
                tracing::error!("cannot record: {e}");
                self.failed = Some(e.to_string());
                None
            }
        }
    }

    /// Records several facts as one durable batch (all or none), then catches up.
    /// Used where a crash between two facts would leave a step half-done.
    async fn record_batch(&mut self, facts: Vec<(&str, EventKind)>) -> bool {
        let at = self.ctx.clock.now();
        let drafts = facts
            .into_iter()
            .map(|(actor, kind)| crate::event::NewEvent::new(at, actor, kind))
            .collect();
        match self.ctx.log.append_many(drafts).await {
            Ok(events) => {
                let last = events.last().map_or(0, |e| e.seq);
                while self.state.last_seq < last {
                    match self.sub.next().await {
                        Some(Ok(e)) => self.fold(e),
                        Some(Err(e)) => {
                            self.failed = Some(e.to_string());
                            return false;
                        }
                        None => return false,
                    }
                }
                true
            }
            Err(e) => {
                tracing::error!("cannot record: {e}");
                self.failed = Some(e.to_string());
                false
            }
        }
    }

    async fn intake(&mut self, item: Intake) {
        match item {
            Intake::Alert {
                alert,
                recorded,
                posted_by,
            } => {
                let event = self
                    .record("intake", EventKind::AlertReceived { alert, posted_by })
                    .await;
                if let (Some(_), Some(ack)) = (event, recorded) {
                    let _ = ack.send(());
                }
            }
            Intake::ScenarioFinished(name) => {
                self.record(ACTOR, EventKind::ScenarioFinished { name })
                    .await;
            }
        }
    }

    /// The one place where the supervisor decides what follows from a fact.
    async fn react(&mut self, event: Event) {
        match &event.kind {
            EventKind::AlertReceived { alert, .. } => {
                if alert.status == AlertStatus::Resolved {
                    if let Some(&id) = self.state.open_fingerprints.get(&alert.fingerprint) {
                        self.resolve_if_idle(id, "alert resolved by itself").await;
                    }
                    return;
                }
                // Same fingerprint while open, or the same resource within the
                // correlation window: one incident, not a new one per alert.
                let window =
                    chrono::Duration::from_std(self.opts.correlation_window).unwrap_or_default();
                let related = self
                    .state
                    .open_fingerprints
                    .get(&alert.fingerprint)
                    .copied()
                    .or_else(|| {
                        self.state
                            .incidents
                            .values()
                            .find(|i| {
                                i.status != IncidentStatus::Resolved
                                    && i.resource == alert.resource
                                    && event.at - i.opened_at <= window
                            })
                            .map(|i| i.id)
                    });
                if let Some(incident) = related {
                    self.record(
                        ACTOR,
                        EventKind::IncidentCorrelated {
                            incident,
                            alert_seq: event.seq,
                        },
                    )
                    .await;
                    return;
                }
                let name = self
                    .state
                    .fleet
                    .get(&alert.resource)
                    .map(|v| v.resource.name.clone())
                    .unwrap_or_else(|| alert.resource.to_string());
                self.record(
                    ACTOR,
                    EventKind::IncidentOpened {
                        title: format!("{} on {name}", alert.name),
                        alert: alert.name.clone(),
                        labels: alert.labels.clone(),
                        severity: alert.severity,
                        resource: alert.resource.clone(),
                        fingerprint: alert.fingerprint.clone(),
                        alert_seq: event.seq,
                    },
                )
                .await;
            }
            EventKind::IncidentOpened { .. } => self.start_investigation(event.seq).await,
            EventKind::InvestigationStarted { .. } => self.spawn_investigation(event.seq, 0),
            EventKind::InvestigationConcluded { investigation, .. } => {
                self.investigating.remove(investigation);
                self.maybe_propose(*investigation).await;
            }
            EventKind::RemediationProposed { .. } => self.decide(event.seq).await,
            EventKind::PolicyDecided { remediation, .. }
            | EventKind::ApprovalGranted { remediation, .. } => {
                self.maybe_execute(*remediation).await;
            }
            EventKind::ApprovalDenied {
                remediation,
                by,
                reason,
                ..
            } => {
                self.record(
                    ACTOR,
                    EventKind::RemediationFinished {
                        remediation: *remediation,
                        status: RemediationOutcome::Denied,
                        detail: format!("denied by {by}: {reason}"),
                    },
                )
                .await;
            }
            EventKind::RemediationFinished {
                remediation,
                status,
                ..
            } => {
                self.executing.remove(remediation);
                let incident = self
                    .state
                    .remediations
                    .get(remediation)
                    .and_then(|r| r.incident);
                if let Some(incident) = incident {
                    match status {
                        RemediationOutcome::Succeeded => {
                            let action = self.state.remediations[remediation].action.name.clone();
                            self.resolve(
                                incident,
                                &format!("remediated by #{remediation} ({action})"),
                            )
                            .await;
                        }
                        _ => self.resolve_if_idle(incident, "alert resolved").await,
                    }
                }
            }
            EventKind::IncidentResolved { .. } => self.learning_poke.notify_one(),
            _ => {}
        }
    }

    async fn start_investigation(&mut self, incident: u64) {
        let Some(inc) = self.state.incidents.get(&incident) else {
            return;
        };
        if inc.investigation.is_some() || inc.status == IncidentStatus::Resolved {
            return;
        }
        let alert = inc.alert.clone();
        let kind = EventKind::InvestigationStarted {
            incident,
            resource: inc.resource.clone(),
            alert,
            severity: inc.severity,
        };
        self.record("agent:investigation", kind).await;
    }

    fn spawn_investigation(&mut self, investigation: u64, evidence_so_far: usize) {
        let Some(inv) = self.state.investigations.get(&investigation) else {
            return;
        };
        if !self.investigating.insert(investigation) {
            return;
        }
        let Some(view) = self.state.fleet.get(&inv.resource) else {
            let ctx = self.ctx.clone();
            tokio::spawn(async move {
                let _ = ctx
                    .record(
                        "agent:investigation",
                        EventKind::InvestigationConcluded {
                            investigation,
                            conclusion: "resource is not in the fleet; nothing to investigate"
                                .into(),
                            playbook: None,
                        },
                    )
                    .await;
            });
            return;
        };
        let labels = self
            .state
            .incidents
            .get(&inv.incident)
            .map(|i| (i.labels.clone(), i.fingerprint.clone()))
            .unwrap_or_default();
        let job = InvestigationJob {
            investigation,
            incident: inv.incident,
            resource: inv.resource.clone(),
            alert: Alert {
                name: inv.alert.clone(),
                severity: inv.severity,
                resource: inv.resource.clone(),
                fingerprint: labels.1,
                summary: String::new(),
                labels: labels.0,
                status: AlertStatus::Firing,
                source: String::new(),
            },
            connector: view.resource.connector.clone(),
            evidence_so_far,
        };
        tokio::spawn(investigate(self.ctx.clone(), job));
    }

    /// Aims a proposed action at the object it should change (a pod's
    /// controller, say), asking the target's connector within a bounded
    /// time; the note says what changed. An error is the connector's refusal.
    async fn resolve_target(&self, action: Action) -> Result<(Action, Option<String>), String> {
        let Some(connector) = self
            .state
            .fleet
            .get(&action.target)
            .and_then(|view| self.ctx.registry.get(&view.resource.connector))
        else {
            // Not in the fleet: the caller says so.
            return Ok((action, None));
        };
        match tokio::time::timeout(RESOLVE_TIMEOUT, connector.resolve_target(&action)).await {
            Ok(Ok(resolved)) if resolved.target != action.target => {
                let note = format!("target {} resolved to {}", action.target, resolved.target);
                Ok((resolved, Some(note)))
            }
            Ok(Ok(resolved)) => Ok((resolved, None)),
            Ok(Err(e)) => Err(format!("{} on {} refused: {e}", action.name, action.target)),
            Err(_) => Err(format!(
                "{} on {} refused: the connector did not say within {}s which object the action changes",
                action.name,
                action.target,
                RESOLVE_TIMEOUT.as_secs()
            )),
        }
    }

    async fn maybe_propose(&mut self, investigation: u64) {
        let Some(inv) = self.state.investigations.get(&investigation) else {
            return;
        };
        let Some(inc) = self.state.incidents.get(&inv.incident) else {
            return;
        };
        if inc.status == IncidentStatus::Resolved || !inc.remediations.is_empty() {
            return;
        }
        let incident = inc.id;
        let alert_firing = inc.alert_firing;
        // A playbook whose branch held is the site's own rule and comes first;
        // otherwise the best analyzer hypothesis, if it is confident enough.
        let top = inv.hypotheses.first();
        let from_playbook = inv.playbook.as_ref().map(|choice| {
            (
                choice.action.clone(),
                format!(
                    "playbook {} › {}: {}{}",
                    choice.playbook,
                    choice.branch,
                    choice.description,
                    top.map(|h| format!(
                        " (top hypothesis: {}, {:.0}%)",
                        h.title,
                        h.confidence * 100.0
                    ))
                    .unwrap_or_default()
                ),
                Some(choice.playbook.clone()),
            )
        });
        let from_analyzers = || {
            inv.hypotheses
                .iter()
                .find(|h| h.recommended_action.is_some())
                .filter(|h| h.confidence >= self.opts.auto_propose_confidence)
                .and_then(|h| {
                    h.recommended_action.clone().map(|a| {
                        (
                            a,
                            format!(
                                "{} ({:.0}%): {}",
                                h.title,
                                h.confidence * 100.0,
                                h.reasoning
                            ),
                            None,
                        )
                    })
                })
        };
        let Some((action, reason, playbook)) = from_playbook.or_else(from_analyzers) else {
            if !alert_firing {
                self.resolve(incident, "alert resolved by itself").await;
            }
            return;
        };
        let (action, reason) = match self.resolve_target(action).await {
            Ok((action, None)) => (action, reason),
            Ok((action, Some(note))) => (action, format!("{reason} [{note}]")),
            Err(detail) => {
                self.record(
                    ACTOR,
                    EventKind::AgentError {
                        agent: "remediation".into(),
                        error: format!("investigation #{investigation}: {detail}"),
                    },
                )
                .await;
                if !alert_firing {
                    self.resolve(incident, "alert resolved by itself").await;
                }
                return;
            }
        };
        let Some(target) = self.state.fleet.get(&action.target) else {
            let detail = format!(
                "investigation #{investigation} recommends {} on {}, which is not in the fleet",
                action.name, action.target
            );
            self.record(
                ACTOR,
                EventKind::AgentError {
                    agent: "remediation".into(),
                    error: detail,
                },
            )
            .await;
            if !alert_firing {
                self.resolve(incident, "alert resolved by itself").await;
            }
            return;
        };
        // Each parameter's source is recorded by the runtime; only an
        // operator can ask for a change-freeze override, never a playbook or
        // an analyzer.
        let proposer = if playbook.is_some() {
            Proposer::Playbook
        } else {
            Proposer::Computed
        };
        let action = provenance::prepare(action, proposer, &self.state);
        let kind = EventKind::RemediationProposed {
            incident: Some(incident),
            investigation: Some(investigation),
            environment: target.resource.environment,
            team: target.resource.team.clone(),
            reason,
            requested_by: "agent:remediation".into(),
            playbook,
            action,
        };
        self.record("agent:remediation", kind).await;
    }

    /// Asks the policy about a new proposal and records the decision together
    /// with what follows from it (a deny's finish, or the approval request), so
    /// a crash never leaves a decided proposal without its next step.
    async fn decide(&mut self, remediation: u64) {
        let fresh = self
            .state
            .remediations
            .get(&remediation)
            .is_some_and(|r| r.stage == Stage::Proposed && r.decision.is_none());
        if !fresh {
            return;
        }
        let now = self.ctx.clock.now();
        // Guardrails come before the policy gate: a destructive command is
        // refused whatever the policy or the approvers would say.
        let refused = self
            .state
            .remediations
            .get(&remediation)
            .and_then(|r| crate::connectors::linux::guardrails::check(&r.action));
        let decision = match refused {
            Some(why) => super::policy::deny(why),
            None => {
                let team = self.requester_team(remediation);
                self.policy.decide(&self.state, remediation, &team, now)
            }
        };
        let allow = decision.allow && decision.deny.is_empty();
        if allow {
            // An allowed change is shown before anyone is asked: the
            // connector reads the live object off the supervisor's loop and
            // the decision is recorded with what it found.
            if !self.previewing.insert(remediation) {
                return;
            }
            let connector = preview::connector_of(&self.state, remediation);
            let action = self.state.remediations[&remediation].action.clone();
            let registry = self.ctx.registry.clone();
            let tx = self.previews_tx.clone();
            tokio::spawn(async move {
                // A connector that panics answers too: with a refusal, so the
                // proposal is not left undecided.
                let ask =
                    tokio::spawn(async move { preview::ask(&registry, connector, &action).await });
                let result = ask
                    .await
                    .unwrap_or_else(|e| Err(format!("the connector failed: {e}")));
                let _ = tx
                    .send(Previewed {
                        remediation,
                        decision,
                        result,
                    })
                    .await;
            });
            return;
        }
        let reasons = decision.deny.join("; ");
        self.record_batch(vec![
            (
                "policy",
                EventKind::PolicyDecided {
                    remediation,
                    decision,
                },
            ),
            (
                ACTOR,
                EventKind::RemediationFinished {
                    remediation,
                    status: RemediationOutcome::Denied,
                    detail: format!("policy denied: {reasons}"),
                },
            ),
        ])
        .await;
    }

    /// Records an allow together with its preview and the approval request,
    /// or, when no preview could be had, with the refusal and its reason
    /// (nobody approves what they cannot see). One batch, so a crash never
    /// leaves an allowed proposal without its preview or its next step.
    async fn previewed(&mut self, answer: Previewed) {
        let Previewed {
            remediation,
            decision,
            result,
        } = answer;
        self.previewing.remove(&remediation);
        let fresh = self
            .state
            .remediations
            .get(&remediation)
            .is_some_and(|r| r.stage == Stage::Proposed && r.decision.is_none());
        if !fresh {
            return;
        }
        let required = decision.required_approvals;
        let mut facts = vec![(
            "policy",
            EventKind::PolicyDecided {
                remediation,
                decision,
            },
        )];
        match result {
            Ok(preview) => {
                facts.push((
                    ACTOR,
                    EventKind::RemediationPreviewed {
                        remediation,
                        preview,
                    },
                ));
                if required > 0 {
                    facts.push((
                        ACTOR,
                        EventKind::ApprovalRequested {
                            remediation,
                            required,
                            expires_at: self.expiry(self.ctx.clock.now()),
                        },
                    ));
                }
            }
            Err(why) => facts.push((
                ACTOR,
                EventKind::RemediationFinished {
                    remediation,
                    status: RemediationOutcome::Denied,
                    detail: format!("refused before approval: no preview of the change: {why}"),
                },
            )),
        }
        self.record_batch(facts).await;
    }

    /// When an approval request made at `now` expires.
    fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        chrono::Duration::from_std(self.opts.approval_ttl)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Hands a remediation to the executor only with a recorded allow, every
    /// required approval from distinct non-requesters, no denial, and not in
    /// read-only mode — and only if the policy, asked again now, still agrees
    /// (a freeze may have begun or a rate limit filled while approvals came in).
    async fn maybe_execute(&mut self, remediation: u64) {
        let Some(rem) = self.state.remediations.get(&remediation) else {
            return;
        };
        if !approvals::cleared_for_execution(rem, self.opts.read_only)
            || self.executing.contains(&remediation)
        {
            return;
        }
        let before = rem.decision.clone();
        let now = self.ctx.clock.now();
        let team = self.requester_team(remediation);
        let (again, why) =
            match approvals::recheck(&self.state, remediation, &*self.policy, &team, now) {
                approvals::Recheck::Start => {
                    self.spawn_execution(remediation, Resume::Start);
                    return;
                }
                approvals::Recheck::Stop { decision, why } => (decision, why),
            };
        tracing::warn!(remediation, ?before, "{why}");
        self.record_batch(vec![
            (
                "policy",
                EventKind::PolicyDecided {
                    remediation,
                    decision: again,
                },
            ),
            (
                ACTOR,
                EventKind::RemediationFinished {
                    remediation,
                    status: RemediationOutcome::Denied,
                    detail: format!("re-checked before execution: {why}"),
                },
            ),
        ])
        .await;
    }

    fn spawn_execution(&mut self, remediation: u64, resume: Resume) {
        let Some(rem) = self.state.remediations.get(&remediation) else {
            return;
        };
        if self.opts.read_only || !self.executing.insert(remediation) {
            return;
        }
        // A target the action replaced (a restarted pod) may be gone from the
        // fleet when an execution resumes after a restart: the snapshot
        // recorded before the action names its connector.
        let connector = match (self.state.fleet.get(&rem.action.target), &rem.snapshot) {
            (Some(view), _) => Some(view.resource.connector.clone()),
            (None, Some(snapshot)) if resume != Resume::Start => Some(snapshot.connector.clone()),
            (None, _) => None,
        };
        let Some(connector) = connector else {
            self.executing.remove(&remediation);
            let ctx = self.ctx.clone();
            tokio::spawn(async move {
                let _ = ctx
                    .record(
                        ACTOR,
                        EventKind::RemediationFinished {
                            remediation,
                            status: RemediationOutcome::Aborted,
                            detail: "target is no longer in the fleet".into(),
                        },
                    )
                    .await;
            });
            return;
        };
        let playbook = rem
            .playbook
            .as_ref()
            .and_then(|name| self.ctx.playbooks.get(name));
        let job = ExecutionJob {
            remediation,
            action: rem.action.clone(),
            connector,
            resume,
            snapshot: rem.snapshot.clone(),
            validation: playbook
                .map(|p| p.validation.clone())
                .unwrap_or_else(|| self.opts.validation.clone()),
            on_failure: playbook.map(|p| p.on_failure.clone()),
        };
        tokio::spawn(execute(self.ctx.clone(), job));
    }

    async fn resolve(&mut self, incident: u64, resolution: &str) {
        if self
            .state
            .incidents
            .get(&incident)
            .is_some_and(|i| i.status != IncidentStatus::Resolved)
        {
            self.record(
                ACTOR,
                EventKind::IncidentResolved {
                    incident,
                    resolution: resolution.to_string(),
                },
            )
            .await;
        }
    }

    /// Resolves an incident whose alert has cleared if nothing is still working on it.
    async fn resolve_if_idle(&mut self, incident: u64, resolution: &str) {
        let Some(inc) = self.state.incidents.get(&incident) else {
            return;
        };
        let busy = inc
            .investigation
            .and_then(|i| self.state.investigations.get(&i))
            .is_some_and(|i| i.status == InvestigationStatus::Running)
            || inc.remediations.iter().any(|r| {
                self.state
                    .remediations
                    .get(r)
                    .is_some_and(|r| !matches!(r.stage, Stage::Finished(_)))
            });
        if !busy && !inc.alert_firing {
            self.resolve(incident, resolution).await;
        }
    }

    async fn handle(&mut self, envelope: CommandEnvelope) {
        let CommandEnvelope { command, by, reply } = envelope;
        let description = command.describe();
        let result = self.check_and_apply(command, &by).await;
        let (accepted, detail) = match &result {
            Ok(text) => (true, text.clone()),
            Err(text) => (false, text.clone()),
        };
        self.record(
            &format!("operator:{}", by.name),
            EventKind::OperatorCommand {
                by: by.name.clone(),
                command: description,
                accepted,
                detail,
            },
        )
        .await;
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    async fn check_and_apply(&mut self, command: Command, by: &Identity) -> CommandReply {
        if by.name.trim().is_empty() {
            return Err("an operator identity is required".into());
        }
        match command {
            Command::Approve {
                remediation,
                comment,
            } => {
                approvals::check_approval(
                    &self.state,
                    remediation,
                    by,
                    self.on_simulated_fleet(remediation),
                    self.opts.read_only,
                )?;
                self.record(
                    &format!("operator:{}", by.name),
                    EventKind::ApprovalGranted {
                        remediation,
                        by: by.name.clone(),
                        comment,
                        source: by.source.clone(),
                        auth: Some(by.auth),
                        declared_name: by.declared_name.clone(),
                    },
                )
                .await
                .map(|_| format!("approved #{remediation}"))
                .ok_or_else(|| "could not record it: the event log failed".to_string())
            }
            Command::Deny {
                remediation,
                reason,
            } => {
                approvals::check_denial(&self.state, remediation, &reason, self.opts.read_only)?;
                self.record(
                    &format!("operator:{}", by.name),
                    EventKind::ApprovalDenied {
                        remediation,
                        by: by.name.clone(),
                        reason,
                        source: by.source.clone(),
                        auth: Some(by.auth),
                        declared_name: by.declared_name.clone(),
                    },
                )
                .await
                .map(|_| format!("denied #{remediation}"))
                .ok_or_else(|| "could not record it: the event log failed".to_string())
            }
            Command::OverrideFreeze {
                remediation,
                reason,
            } => {
                let rem = approvals::check_freeze_override(
                    &self.state,
                    remediation,
                    &reason,
                    self.opts.read_only,
                )?;
                let action = provenance::with_operator_param(
                    rem.action.clone(),
                    crate::policy::FREEZE_OVERRIDE_PARAM,
                    "true",
                );
                let kind = EventKind::RemediationProposed {
                    incident: rem.incident,
                    investigation: rem.investigation,
                    environment: rem.environment,
                    team: rem.team.clone(),
                    reason: format!(
                        "change-freeze override of #{remediation} by {}: {reason}",
                        by.name
                    ),
                    // The operator asks now, so the operator cannot also approve it.
                    requested_by: by.name.clone(),
                    playbook: rem.playbook.clone(),
                    action,
                };
                match self.record(&format!("operator:{}", by.name), kind).await {
                    Some(event) => Ok(format!(
                        "re-proposed #{remediation} as #{} with a freeze override",
                        event.seq
                    )),
                    None => Err("could not record the override".into()),
                }
            }
            Command::Acknowledge { incident } => {
                let inc = self
                    .state
                    .incidents
                    .get(&incident)
                    .ok_or_else(|| format!("no incident #{incident}"))?;
                if inc.status != IncidentStatus::Open {
                    return Err(format!("incident #{incident} is not open"));
                }
                self.record(
                    &format!("operator:{}", by.name),
                    EventKind::IncidentAcknowledged {
                        incident,
                        by: by.name.clone(),
                    },
                )
                .await
                .map(|_| format!("acknowledged incident #{incident}"))
                .ok_or_else(|| "could not record it: the event log failed".to_string())
            }
            Command::Rescan => {
                self.opts.rescan.notify_one();
                Ok("security scan requested".into())
            }
            Command::Learn => {
                self.learning_poke.notify_one();
                Ok("learning cycle requested".into())
            }
            Command::Inspect { resource } => self.inspect(resource, by),
            Command::ApplyRecommendation { resource } => {
                self.apply_recommendation(resource, by).await
            }
            Command::HypothesisFeedback {
                investigation,
                hypothesis,
                confirmed,
            } => {
                let inv = self
                    .state
                    .investigations
                    .get(&investigation)
                    .ok_or_else(|| format!("no investigation #{investigation}"))?;
                if !inv.hypotheses.iter().any(|h| h.title == hypothesis) {
                    return Err(format!(
                        "investigation #{investigation} has no hypothesis \"{hypothesis}\""
                    ));
                }
                let verdict = if confirmed { "confirmed" } else { "refuted" };
                self.record(
                    &format!("operator:{}", by.name),
                    EventKind::HypothesisFeedback {
                        investigation,
                        hypothesis: hypothesis.clone(),
                        confirmed,
                        by: by.name.clone(),
                    },
                )
                .await
                .map(|_| format!("{verdict} \"{hypothesis}\""))
                .ok_or_else(|| "could not record it: the event log failed".to_string())
            }
            Command::Shutdown => {
                self.cancel.cancel();
                Ok("shutting down".into())
            }
        }
    }

    /// The team the requester of remediation `id` acts for: an agent acts
    /// for the team that owns the target; a person (or token) for the team
    /// `[teams]` maps the principal to, and for none when it is not mapped.
    fn requester_team(&self, id: u64) -> String {
        let Some(rem) = self.state.remediations.get(&id) else {
            return String::new();
        };
        if rem.requested_by.starts_with("agent:") {
            return self
                .state
                .fleet
                .get(&rem.action.target)
                .map_or_else(|| rem.team.clone(), |v| v.resource.team.clone());
        }
        team_of(&self.opts.teams, &rem.requested_by)
    }

    /// Whether remediation `id` targets the demo's simulated fleet, the only
    /// place a declared approver name counts (nothing real changes there).
    fn on_simulated_fleet(&self, id: u64) -> bool {
        self.state
            .remediations
            .get(&id)
            .and_then(|r| self.state.fleet.get(&r.action.target))
            .and_then(|v| self.ctx.registry.get(&v.resource.connector))
            .is_some_and(|c| c.simulated())
    }

    /// Asks the resource's connector what it can show (events, log tail) on a
    /// task of its own, so a slow API server never holds up the supervisor;
    /// the answer, or why there is none, is recorded as `resource_inspected`.
    /// Allowed in read-only mode: it changes nothing.
    fn inspect(&mut self, resource: crate::event::ResourceId, by: &Identity) -> CommandReply {
        let view = self
            .state
            .fleet
            .get(&resource)
            .ok_or_else(|| format!("no resource {resource} in the fleet"))?;
        let connector = self
            .ctx
            .registry
            .get(&view.resource.connector)
            .ok_or_else(|| format!("connector {} is not running here", view.resource.connector))?;
        let ctx = self.ctx.clone();
        let requested_by = by.name.clone();
        let timeout = INSPECT_TIMEOUT;
        let reply = format!("inspecting {resource}");
        tokio::spawn(async move {
            let answer = tokio::time::timeout(timeout, connector.inspect(&resource)).await;
            let (evidence, error) = match answer {
                Ok(Ok(found)) => (
                    found
                        .into_iter()
                        .enumerate()
                        .map(|(i, e)| crate::event::Evidence {
                            id: format!("e{}", i + 1),
                            source: e.source,
                            summary: e.summary,
                            detail: e.detail,
                        })
                        .collect(),
                    None,
                ),
                Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
                Err(_) => (
                    Vec::new(),
                    Some(format!("no answer within {}s", timeout.as_secs())),
                ),
            };
            let kind = EventKind::ResourceInspected {
                resource,
                requested_by,
                evidence,
                error,
            };
            if let Err(e) = ctx.record("runtime", kind).await {
                tracing::warn!("could not record an inspection: {e}");
            }
        });
        Ok(reply)
    }

    /// Proposes the resource's cost recommendation as a remediation requested
    /// by the operator; the policy and approvals decide from there as for any
    /// other proposal (the operator cannot approve their own request).
    async fn apply_recommendation(
        &mut self,
        resource: crate::event::ResourceId,
        by: &Identity,
    ) -> CommandReply {
        if self.opts.read_only {
            return Err("read-only mode: nothing is proposed".into());
        }
        let rec = self
            .state
            .cost
            .recommendations
            .get(&resource)
            .ok_or_else(|| format!("no cost recommendation for {resource}"))?;
        let action = rec
            .action
            .clone()
            .ok_or_else(|| format!("the recommendation for {resource} has no action"))?;
        let target = self
            .state
            .fleet
            .get(&action.target)
            .ok_or_else(|| format!("{} is no longer in the fleet", action.target))?;
        let pending =
            self.state.remediations.values().any(|r| {
                r.action.target == action.target && !matches!(r.stage, Stage::Finished(_))
            });
        if pending {
            return Err(format!(
                "{} already has a remediation in flight",
                action.target
            ));
        }
        let playbook = if action.name == "stop_instance" {
            "cost-idle-instance"
        } else {
            "cost-rightsizing"
        };
        // The operator chose to propose it; the cost agent computed its parameters.
        let action = provenance::prepare(action, Proposer::Computed, &self.state);
        let kind = EventKind::RemediationProposed {
            incident: None,
            investigation: None,
            environment: target.resource.environment,
            team: target.resource.team.clone(),
            reason: format!(
                "cost recommendation: {} (saves ${:.2}/month)",
                rec.title,
                rec.monthly_savings_cents as f64 / 100.0
            ),
            requested_by: by.name.clone(),
            playbook: Some(playbook.to_string()),
            action,
        };
        match self.record(&format!("operator:{}", by.name), kind).await {
            Some(event) => Ok(format!("proposed as remediation #{}", event.seq)),
            None => Err("could not record the proposal".into()),
        }
    }

    async fn on_tick(&mut self, now: DateTime<Utc>) {
        let expired: Vec<(u64, usize)> = self
            .state
            .remediations
            .values()
            .filter(|r| r.stage == Stage::AwaitingApproval)
            .filter(|r| r.expires_at.is_some_and(|t| t <= now))
            .map(|r| (r.id, r.escalations.len()))
            .collect();
        for (id, level) in expired {
            let required = self
                .state
                .remediations
                .get(&id)
                .map_or(1, |r| r.required_approvals);
            // Each escalation (or the expiry) is one batch: a crash between its
            // parts must not skip a contact or a whole TTL. The notifier
            // delivers `approval_escalated` through the channels the contact
            // is mapped to and records each delivery as it happens.
            let facts = match self.opts.escalation_chain.get(level).cloned() {
                Some(contact) => vec![
                    (
                        ACTOR,
                        EventKind::ApprovalEscalated {
                            remediation: id,
                            to: contact,
                            level: level as u32 + 1,
                        },
                    ),
                    (
                        ACTOR,
                        EventKind::ApprovalRequested {
                            remediation: id,
                            required,
                            expires_at: self.expiry(now),
                        },
                    ),
                ],
                None => vec![
                    (ACTOR, EventKind::ApprovalExpired { remediation: id }),
                    (
                        ACTOR,
                        EventKind::RemediationFinished {
                            remediation: id,
                            status: RemediationOutcome::Expired,
                            detail: "no approval before the escalation chain was exhausted".into(),
                        },
                    ),
                ],
            };
            self.record_batch(facts).await;
        }
        let heartbeat_due = self
            .state
            .agents
            .get("supervisor")
            .and_then(|a| a.last_heartbeat)
            .is_none_or(|t| {
                now - t
                    >= chrono::Duration::from_std(self.opts.heartbeat_interval).unwrap_or_default()
            });
        if heartbeat_due {
            let status = format!(
                "ok: {} investigating, {} executing, {} awaiting approval",
                self.investigating.len(),
                self.executing.len(),
                self.state.approval_queue().len()
            );
            self.record(
                ACTOR,
                EventKind::AgentHeartbeat {
                    agent: "supervisor".into(),
                    status,
                },
            )
            .await;
        }
    }

    /// Picks up whatever was in flight when the process stopped.
    async fn resume(&mut self) {
        let incidents: Vec<u64> = self
            .state
            .incidents
            .values()
            .filter(|i| i.status != IncidentStatus::Resolved && i.investigation.is_none())
            .map(|i| i.id)
            .collect();
        for id in incidents {
            self.start_investigation(id).await;
        }
        let running: Vec<(u64, usize)> = self
            .state
            .investigations
            .values()
            .filter(|i| i.status == InvestigationStatus::Running)
            .map(|i| (i.id, i.evidence.len()))
            .collect();
        for (id, n) in running {
            self.spawn_investigation(id, n);
        }
        let concluded: Vec<u64> = self
            .state
            .investigations
            .values()
            .filter(|i| i.status == InvestigationStatus::Concluded)
            .map(|i| i.id)
            .collect();
        for id in concluded {
            self.maybe_propose(id).await;
        }
        let remediations: Vec<(u64, Stage)> = self
            .state
            .remediations
            .values()
            .map(|r| (r.id, r.stage))
            .collect();
        for (id, stage) in remediations {
            let Some(rem) = self.state.remediations.get(&id) else {
                continue;
            };
            if rem.denial.is_some() && !matches!(stage, Stage::Finished(_)) {
                self.record(
                    ACTOR,
                    EventKind::RemediationFinished {
                        remediation: id,
                        status: RemediationOutcome::Denied,
                        detail: "denied before the restart".into(),
                    },
                )
                .await;
                continue;
            }
            let restored = rem.restore.as_ref().map(|o| o.success);
            match stage {
                Stage::Proposed => self.decide(id).await,
                Stage::Approved => self.maybe_execute(id).await,
                // Whether the action ran before the stop is unknown: never run
                // it again; validate, and restore if the target is not healthy.
                Stage::Executing => self.spawn_execution(id, Resume::AfterSnapshot),
                Stage::Validating => self.spawn_execution(id, Resume::Validate),
                // The restore already ran: only its outcome is left to record.
                Stage::Restoring if restored.is_some() => {
                    self.record(
                        ACTOR,
                        EventKind::RemediationFinished {
                            remediation: id,
                            status: crate::agents::remediation::after_restore(
                                restored == Some(true),
                            ),
                            detail: "finished after a restart; the restore was recorded".into(),
                        },
                    )
                    .await;
                }
                Stage::Restoring => self.spawn_execution(id, Resume::Restore),
                Stage::AwaitingApproval | Stage::Finished(_) => {}
            }
        }
        // A remediation that succeeded before the stop resolves its incident,
        // as it would have had the process kept running.
        let remediated: Vec<(u64, u64)> = self
            .state
            .incidents
            .values()
            .filter(|i| i.status != IncidentStatus::Resolved)
            .filter_map(|i| {
                i.remediations
                    .iter()
                    .find(|r| {
                        self.state.remediations.get(r).is_some_and(|r| {
                            r.stage == Stage::Finished(RemediationOutcome::Succeeded)
                        })
                    })
                    .map(|r| (i.id, *r))
            })
            .collect();
        for (incident, rem) in remediated {
            self.resolve(incident, &format!("remediated by #{rem}"))
                .await;
        }
        let idle: Vec<u64> = self
            .state
            .incidents
            .values()
            .filter(|i| i.status != IncidentStatus::Resolved && !i.alert_firing)
            .map(|i| i.id)
            .collect();
        for id in idle {
            self.resolve_if_idle(id, "alert resolved").await;
        }
    }

    fn maybe_snapshot(&mut self) {
        if self.state.last_seq >= self.snapshot_at + self.opts.snapshot_every {
            self.save_snapshot();
        }
    }

    fn save_snapshot(&mut self) {
        if self.state.last_seq == 0 || self.state.last_seq == self.snapshot_at {
            return;
        }
        match super::snapshots::save(&self.ctx.log, &self.state) {
            Ok(()) => self.snapshot_at = self.state.last_seq,
            Err(e) => tracing::warn!("could not save a state snapshot: {e}"),
        }
        super::memory::give_back();
    }

    fn publish_status(&self) {
        let status = RuntimeStatus {
            last_seq: self.state.last_seq,
            in_flight: self.state.in_flight(),
            awaiting_approval: self.state.approval_queue().iter().map(|r| r.id).collect(),
            scenario_finished: self.state.scenario_finished,
            read_only: self.opts.read_only,
        };
        self.status.send_if_modified(|old| {
            if *old == status {
                false
            } else {
                *old = status;
                true
            }
        });
    }
}

/// The team `[teams]` maps `principal` to (names compared as people are), or "".
pub(super) fn team_of(
    teams: &std::collections::BTreeMap<String, String>,
    principal: &str,
) -> String {
    teams
        .iter()
        .find(|(p, _)| crate::state::same_person(p, principal))
        .map(|(_, t)| t.clone())
        .unwrap_or_default()
}
