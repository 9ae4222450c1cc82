//! The learning tally: a fold over the event log that keeps only what the
//! insights need (incident open/resolve times, remediation milestones,
//! ranked hypotheses and operators' verdicts). Pure and incremental: feed it
//! events in seq order, from the start or from where it stopped.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::event::{Event, EventKind, RemediationOutcome};
use crate::store::EventLog;

/// One incident's lifetime.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentTally {
    pub alert: String,
    pub fingerprint: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub investigation: Option<u64>,
}

/// One remediation's milestones.
#[derive(Debug, Clone, PartialEq)]
pub struct RemediationTally {
    pub action: String,
    pub playbook: Option<String>,
    pub executed_at: Option<DateTime<Utc>>,
    /// When validation finished, and whether it passed.
    pub validated: Option<(DateTime<Utc>, bool)>,
    pub restored: bool,
    pub outcome: Option<RemediationOutcome>,
}

impl RemediationTally {
    /// What the remediation is learned under: its playbook, else its action.
    pub fn key(&self) -> String {
        match &self.playbook {
            Some(p) => format!("playbook {p}"),
            None => format!("action {}", self.action),
        }
    }
}

/// Everything the insights are computed from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub incidents: BTreeMap<u64, IncidentTally>,
    pub remediations: BTreeMap<u64, RemediationTally>,
    /// Per investigation: the latest ranking, (title, confidence), best first.
    pub rankings: BTreeMap<u64, Vec<(String, f64)>>,
    /// Per (investigation, hypothesis title): confirmed or refuted (the latest verdict).
    pub feedback: BTreeMap<(u64, String), bool>,
    /// The last seq folded in.
    pub last_seq: u64,
}

impl Tally {
    /// The kinds the tally reads; a scan decodes only these.
    pub const KINDS: &'static [&'static str] = &[
        "incident_opened",
        "incident_resolved",
        "investigation_started",
        "hypotheses_ranked",
        "hypothesis_feedback",
        "remediation_proposed",
        "action_executed",
        "validation_finished",
        "remediation_restored",
        "remediation_finished",
    ];

    /// Folds stored records from `from` on (see [`EventLog::scan_raw`]),
    /// fully decoding only the kinds in [`Tally::KINDS`]: the others are
    /// recognised from the top-level `kind` field alone, which is several
    /// times cheaper than decoding them.
    pub fn fold_log(&mut self, log: &EventLog, from: u64) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        for item in log.scan_raw(from) {
            let (seq, bytes) = item.map_err(|e| e.to_string())?;
            let body = bytes.get(32..).unwrap_or_default();
            let head: Head = serde_json::from_slice(body)
                .map_err(|e| format!("event {seq}: no readable kind: {e}"))?;
            if Self::KINDS.contains(&head.kind.as_ref()) {
                let event = Event::decode(&bytes).map_err(|e| format!("event {seq}: {e}"))?;
                self.add(&event);
            }
            self.last_seq = self.last_seq.max(seq);
        }
        Ok(())
    }

    /// Folds one event in (events must arrive in seq order).
    pub fn add(&mut self, event: &Event) {
        self.last_seq = self.last_seq.max(event.seq);
        let at = event.at;
        match &event.kind {
            EventKind::IncidentOpened {
                alert, fingerprint, ..
            } => {
                self.incidents.insert(
                    event.seq,
                    IncidentTally {
                        alert: alert.clone(),
                        fingerprint: fingerprint.clone(),
                        opened_at: at,
                        resolved_at: None,
                        investigation: None,
                    },
                );
            }
            EventKind::IncidentResolved { incident, .. } => {
                if let Some(i) = self.incidents.get_mut(incident)
                    && i.resolved_at.is_none()
                {
                    i.resolved_at = Some(at);
                }
            }
            EventKind::InvestigationStarted { incident, .. } => {
                if let Some(i) = self.incidents.get_mut(incident) {
                    i.investigation = Some(event.seq);
                }
            }
            EventKind::HypothesesRanked {
                investigation,
                hypotheses,
            } => {
                self.rankings.insert(
                    *investigation,
                    hypotheses
                        .iter()
                        .map(|h| (h.title.clone(), h.confidence))
                        .collect(),
                );
            }
            EventKind::HypothesisFeedback {
                investigation,
                hypothesis,
                confirmed,
                ..
            } => {
                self.feedback
                    .insert((*investigation, hypothesis.clone()), *confirmed);
            }
            EventKind::RemediationProposed {
                action, playbook, ..
            } => {
                self.remediations.insert(
                    event.seq,
                    RemediationTally {
                        action: action.name.clone(),
                        playbook: playbook.clone(),
                        executed_at: None,
                        validated: None,
                        restored: false,
                        outcome: None,
                    },
                );
            }
            EventKind::ActionExecuted { remediation, .. } => {
                if let Some(r) = self.remediations.get_mut(remediation) {
                    r.executed_at = Some(at);
                }
            }
            EventKind::ValidationFinished {
                remediation,
                passed,
                ..
            } => {
                if let Some(r) = self.remediations.get_mut(remediation) {
                    r.validated = Some((at, *passed));
                }
            }
            EventKind::RemediationRestored { remediation, .. } => {
                if let Some(r) = self.remediations.get_mut(remediation) {
                    r.restored = true;
                }
            }
            EventKind::RemediationFinished {
                remediation,
                status,
                ..
            } => {
                if let Some(r) = self.remediations.get_mut(remediation) {
                    r.outcome = Some(*status);
                }
            }
            _ => {}
        }
    }
}
