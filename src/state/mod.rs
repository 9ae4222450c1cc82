//! Projections: everything the console shows, folded from the event log.
//!
//! [`State::apply`] is a pure fold — no I/O, no clock, no randomness — so a
//! replay, a snapshot plus the tail, and a remote console folding the same
//! stream all arrive at the same value. Collections that would otherwise grow
//! with the log (event tails, histories) are bounded so a snapshot stays small.

mod fleet;
mod incidents;
mod ops;
mod remediations;

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind};

pub use fleet::{ConnectorView, Fleet, HealthCounts, ResourceView};
pub use incidents::{Incident, IncidentStatus, Investigation, InvestigationStatus, TimelineEntry};
pub use ops::{
    AgentStatus, BudgetView, Cost, CostAnomalyView, CostEntry, CostRecommendationView, InsightView,
    Learning, MttrSample, OutcomeCounts, Posture, Security, TrackedControl, TrackedFinding,
    VulnDbView,
};
pub use remediations::{ApprovalRecord, Remediation, Stage, person, same_person};

/// How many recent events the state keeps for the live tail.
pub const RECENT_EVENTS: usize = 2_000;

/// One line of the live event tail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub summary: String,
    pub hash: String,
}

impl EventLine {
    /// The tail line for an event.
    pub fn of(event: &Event) -> Self {
        Self {
            seq: event.seq,
            at: event.at,
            actor: event.actor.clone(),
            kind: event.kind.name().to_string(),
            summary: crate::event::summary(&event.kind),
            hash: event.hash.to_hex(),
        }
    }
}

/// The whole projected state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// seq of the last event folded (0 = none).
    pub last_seq: u64,
    /// Time of the last event folded.
    pub last_at: Option<DateTime<Utc>>,
    pub event_count: u64,
    /// Events of kinds this build does not know.
    pub unknown_events: u64,
    pub fleet: Fleet,
    pub incidents: BTreeMap<u64, Incident>,
    /// Open incident per alert fingerprint, for dedup.
    pub open_fingerprints: BTreeMap<String, u64>,
    pub investigations: BTreeMap<u64, Investigation>,
    pub remediations: BTreeMap<u64, Remediation>,
    pub security: Security,
    pub cost: Cost,
    pub learning: Learning,
    pub agents: BTreeMap<String, AgentStatus>,
    pub recent: VecDeque<EventLine>,
    pub scenario_finished: bool,
    /// Who posted each firing alert not yet folded into an incident (alert seq → principal).
    #[serde(default)]
    pub alert_posters: BTreeMap<u64, String>,
}

impl State {
    /// A fresh, empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Releases spare capacity left by decoding (see `Fleet::compact`).
    pub fn compact(&mut self) {
        self.fleet.compact();
    }

    /// Folds one event into the state. Events at or below `last_seq` are ignored,
    /// so replaying an overlapping range is harmless.
    pub fn apply(&mut self, event: &Event) {
        if event.seq <= self.last_seq && self.event_count > 0 {
            return;
        }
        self.last_seq = event.seq;
        self.last_at = Some(event.at);
        self.event_count += 1;
        self.recent.push_back(EventLine::of(event));
        while self.recent.len() > RECENT_EVENTS {
            self.recent.pop_front();
        }

        let at = event.at;
        match &event.kind {
            EventKind::ResourceDiscovered { .. }
            | EventKind::ResourceChanged { .. }
            | EventKind::ResourceGone { .. }
            | EventKind::HealthChanged { .. }
            | EventKind::ConnectorStatus { .. }
            | EventKind::ResourceInspected { .. } => self.fleet.apply(event),
            EventKind::AlertReceived { .. }
            | EventKind::IncidentOpened { .. }
            | EventKind::IncidentCorrelated { .. }
            | EventKind::IncidentAcknowledged { .. }
            | EventKind::IncidentResolved { .. }
            | EventKind::InvestigationStarted { .. }
            | EventKind::EvidenceCollected { .. }
            | EventKind::HypothesesRanked { .. }
            | EventKind::InvestigationConcluded { .. } => incidents::apply(self, event),
            EventKind::RemediationProposed { .. }
            | EventKind::PolicyDecided { .. }
            | EventKind::ApprovalRequested { .. }
            | EventKind::ApprovalGranted { .. }
            | EventKind::ApprovalDenied { .. }
            | EventKind::ApprovalExpired { .. }
            | EventKind::ApprovalEscalated { .. }
            | EventKind::SnapshotTaken { .. }
            | EventKind::ActionExecuted { .. }
            | EventKind::ValidationFinished { .. }
            | EventKind::RemediationRestored { .. }
            | EventKind::RemediationFinished { .. }
            | EventKind::RemediationPreviewed { .. } => remediations::apply(self, event),
            EventKind::SecurityFinding { .. }
            | EventKind::VulnDbStatus { .. }
            | EventKind::ControlEvaluated { .. } => self.security.apply_event(event),
            EventKind::CostSample { .. }
            | EventKind::CostAnomaly { .. }
            | EventKind::CostRecommendation { .. }
            | EventKind::CostBudgetBurn { .. } => self.cost.apply(event),
            EventKind::HypothesisFeedback {
                investigation,
                hypothesis,
                confirmed,
                by,
            } => {
                if let Some(inv) = self.investigations.get_mut(investigation) {
                    inv.feedback
                        .insert(hypothesis.clone(), (*confirmed, by.clone()));
                }
            }
            EventKind::LearningInsight { .. } => self.learning.apply(event),
            EventKind::AgentHeartbeat { agent, status } => {
                let entry = self.agents.entry(agent.clone()).or_default();
                entry.last_heartbeat = Some(at);
                entry.status = status.clone();
            }
            EventKind::AgentError { agent, error } => {
                let entry = self.agents.entry(agent.clone()).or_default();
                entry.errors += 1;
                entry.last_error = Some(error.clone());
            }
            EventKind::NotificationSent { .. }
            | EventKind::NotificationFailed { .. }
            | EventKind::OperatorCommand { .. } => {}
            EventKind::ScenarioFinished { .. } => self.scenario_finished = true,
            EventKind::Unknown { .. } => self.unknown_events += 1,
        }
    }

    /// Remediations waiting for an operator's approval, oldest first.
    pub fn approval_queue(&self) -> Vec<&Remediation> {
        self.remediations
            .values()
            .filter(|r| r.stage == Stage::AwaitingApproval)
            .collect()
    }

    /// Whether anything is still in flight: an open investigation or an unfinished remediation.
    pub fn in_flight(&self) -> usize {
        self.investigations
            .values()
            .filter(|i| i.status == InvestigationStatus::Running)
            .count()
            + self
                .remediations
                .values()
                .filter(|r| !matches!(r.stage, Stage::Finished(_)))
                .count()
            + self
                .incidents
                .values()
                .filter(|i| i.status != IncidentStatus::Resolved)
                .count()
    }
}

#[cfg(test)]
mod proptests;
