//! Incidents and investigations.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::State;
use crate::event::{
    AlertStatus, Event, EventKind, Evidence, Hypothesis, PlaybookChoice, ResourceId, Severity,
};

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
}

/// An incident: one or more correlated alerts about a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub title: String,
    /// Name of the alert that opened it.
    pub alert: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub severity: Severity,
    pub resource: ResourceId,
    pub fingerprint: String,
    pub status: IncidentStatus,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    /// seqs of the alert_received events folded into it.
    pub alerts: Vec<u64>,
    /// Whether its alert is still firing (a resolved alert may close it).
    pub alert_firing: bool,
    pub investigation: Option<u64>,
    pub remediations: Vec<u64>,
    /// Principals that posted any of its alerts: they caused whatever is
    /// proposed for it, so they count as its requesters, never its approvers.
    #[serde(default)]
    pub alert_posters: std::collections::BTreeSet<String>,
}

/// Where an investigation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvestigationStatus {
    Running,
    Concluded,
}

/// One step in an investigation's reasoning timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub seq: u64,
    pub text: String,
}

/// An investigation of an incident: evidence, ranked hypotheses, conclusion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Investigation {
    pub id: u64,
    pub incident: u64,
    pub resource: ResourceId,
    pub alert: String,
    pub severity: Severity,
    pub status: InvestigationStatus,
    pub started_at: DateTime<Utc>,
    pub concluded_at: Option<DateTime<Utc>>,
    pub evidence: Vec<Evidence>,
    pub hypotheses: Vec<Hypothesis>,
    pub conclusion: Option<String>,
    pub playbook: Option<PlaybookChoice>,
    pub timeline: Vec<TimelineEntry>,
    /// Operators' verdicts by hypothesis title: confirmed (true) or refuted, and by whom.
    #[serde(default)]
    pub feedback: std::collections::BTreeMap<String, (bool, String)>,
}

impl Investigation {
    /// The best-ranked hypothesis, if any.
    pub fn top(&self) -> Option<&Hypothesis> {
        self.hypotheses.first()
    }

    fn note(&mut self, event: &Event) {
        self.timeline.push(TimelineEntry {
            at: event.at,
            seq: event.seq,
            text: crate::event::summary(&event.kind),
        });
    }
}

pub(super) fn apply(state: &mut State, event: &Event) {
    let at = event.at;
    let seq = event.seq;
    match &event.kind {
        EventKind::AlertReceived { alert, posted_by } => {
            state
                .fleet
                .note(&alert.resource, seq, crate::event::summary(&event.kind));
            // Kept until the alert is folded into an incident (the next step
            // the supervisor records for a firing alert).
            if let Some(by) = posted_by
                && alert.status != AlertStatus::Resolved
            {
                state.alert_posters.insert(seq, by.clone());
            }
            if alert.status == AlertStatus::Resolved
                && let Some(id) = state.open_fingerprints.get(&alert.fingerprint)
                && let Some(incident) = state.incidents.get_mut(id)
            {
                incident.alert_firing = false;
            }
        }
        EventKind::IncidentOpened {
            title,
            alert,
            labels,
            severity,
            resource,
            fingerprint,
            alert_seq,
        } => {
            state.incidents.insert(
                seq,
                Incident {
                    id: seq,
                    title: title.clone(),
                    alert: alert.clone(),
                    labels: labels.clone(),
                    severity: *severity,
                    resource: resource.clone(),
                    fingerprint: fingerprint.clone(),
                    status: IncidentStatus::Open,
                    opened_at: at,
                    acknowledged_by: None,
                    resolved_at: None,
                    resolution: None,
                    alerts: vec![*alert_seq],
                    alert_firing: true,
                    investigation: None,
                    remediations: Vec::new(),
                    alert_posters: state.alert_posters.remove(alert_seq).into_iter().collect(),
                },
            );
            state.open_fingerprints.insert(fingerprint.clone(), seq);
            if let Some(view) = state.fleet.resources.get_mut(resource).map(Arc::make_mut) {
                view.incidents.push(seq);
            }
        }
        EventKind::IncidentCorrelated {
            incident,
            alert_seq,
        } => {
            let poster = state.alert_posters.remove(alert_seq);
            if let Some(inc) = state.incidents.get_mut(incident) {
                inc.alerts.push(*alert_seq);
                inc.alert_firing = true;
                inc.alert_posters.extend(poster);
            }
        }
        EventKind::IncidentAcknowledged { incident, by } => {
            if let Some(inc) = state.incidents.get_mut(incident) {
                if inc.status == IncidentStatus::Open {
                    inc.status = IncidentStatus::Acknowledged;
                }
                inc.acknowledged_by = Some(by.clone());
            }
        }
        EventKind::IncidentResolved {
            incident,
            resolution,
        } => {
            if let Some(inc) = state.incidents.get_mut(incident)
                && inc.status != IncidentStatus::Resolved
            {
                inc.status = IncidentStatus::Resolved;
                inc.resolved_at = Some(at);
                inc.resolution = Some(resolution.clone());
                state.open_fingerprints.remove(&inc.fingerprint);
                let minutes = (at - inc.opened_at).num_milliseconds() as f64 / 60_000.0;
                state
                    .learning
                    .record_mttr(at, inc.title.clone(), minutes.max(0.0));
            }
        }
        EventKind::InvestigationStarted {
            incident,
            resource,
            alert,
            severity,
        } => {
            let mut inv = Investigation {
                id: seq,
                incident: *incident,
                resource: resource.clone(),
                alert: alert.clone(),
                severity: *severity,
                status: InvestigationStatus::Running,
                started_at: at,
                concluded_at: None,
                evidence: Vec::new(),
                hypotheses: Vec::new(),
                conclusion: None,
                playbook: None,
                timeline: Vec::new(),
                feedback: Default::default(),
            };
            inv.note(event);
            state.investigations.insert(seq, inv);
            if let Some(inc) = state.incidents.get_mut(incident) {
                inc.investigation = Some(seq);
            }
        }
        EventKind::EvidenceCollected {
            investigation,
            evidence,
        } => {
            if let Some(inv) = state.investigations.get_mut(investigation) {
                inv.evidence.push(evidence.clone());
                inv.note(event);
            }
        }
        EventKind::HypothesesRanked {
            investigation,
            hypotheses,
        } => {
            if let Some(inv) = state.investigations.get_mut(investigation) {
                inv.hypotheses = hypotheses.clone();
                inv.note(event);
            }
        }
        EventKind::InvestigationConcluded {
            investigation,
            conclusion,
            playbook,
        } => {
            if let Some(inv) = state.investigations.get_mut(investigation) {
                inv.status = InvestigationStatus::Concluded;
                inv.concluded_at = Some(at);
                inv.conclusion = Some(conclusion.clone());
                inv.playbook = playbook.clone();
                inv.note(event);
            }
        }
        _ => {}
    }
}
