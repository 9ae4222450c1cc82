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

    /// The tally of everything `state` has folded (a state is a pure fold of
    /// the same log, so this equals folding the log up to `state.last_seq`
    /// without reading it again).
    pub fn from_state(state: &crate::state::State) -> Self {
        let incidents = state
            .incidents
            .values()
            .map(|i| {
                (
                    i.id,
                    IncidentTally {
                        alert: i.alert.clone(),
                        fingerprint: i.fingerprint.clone(),
                        opened_at: i.opened_at,
                        resolved_at: i.resolved_at,
                        investigation: i.investigation,
                    },
                )
            })
            .collect();
        let remediations = state
            .remediations
            .values()
            .map(|r| {
                (
                    r.id,
                    RemediationTally {
                        action: r.action.name.clone(),
                        playbook: r.playbook.clone(),
                        executed_at: r.executed_at,
                        validated: r.validated_at.zip(r.validation.as_ref().map(|v| v.0)),
                        restored: r.restore.is_some(),
                        outcome: match r.stage {
                            crate::state::Stage::Finished(o) => Some(o),
                            _ => None,
                        },
                    },
                )
            })
            .collect();
        let mut rankings = BTreeMap::new();
        let mut feedback = BTreeMap::new();
        for inv in state.investigations.values() {
            if !inv.hypotheses.is_empty() {
                rankings.insert(
                    inv.id,
                    inv.hypotheses
                        .iter()
                        .map(|h| (h.title.clone(), h.confidence))
                        .collect(),
                );
            }
            for (title, (confirmed, _)) in &inv.feedback {
                feedback.insert((inv.id, title.clone()), *confirmed);
            }
        }
        Self {
            incidents,
            remediations,
            rankings,
            feedback,
            last_seq: state.last_seq,
        }
    }

    /// Folds stored records from `from` on (see [`EventLog::scan_raw`]),
    /// fully decoding only the kinds in [`Tally::KINDS`]: the others are
    /// recognised from the top-level `kind` field alone, which is several
    /// times cheaper than decoding them.
    pub fn fold_log(&mut self, log: &EventLog, from: u64) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(borrow)]
            kind: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            at: std::borrow::Cow<'a, str>,
        }
        for item in log.scan_raw(from) {
            let (seq, bytes) = item.map_err(|e| e.to_string())?;
            let body = bytes.get(32..).unwrap_or_default();
            let head: Head = serde_json::from_slice(body)
                .map_err(|e| format!("event {seq}: no readable kind and time: {e}"))?;
            if Self::KINDS.contains(&head.kind.as_ref()) {
                let at = DateTime::parse_from_rfc3339(&head.at)
                    .map_err(|e| format!("event {seq}: time `{}`: {e}", head.at))?
                    .with_timezone(&Utc);
                // The kind's own fields, straight from the bytes (the
                // envelope's other fields are ignored by the tagged enum).
                let kind: EventKind = serde_json::from_slice(body)
                    .map_err(|e| format!("event {seq} ({}): {e}", head.kind))?;
                self.add_kind(seq, at, &kind);
            }
            self.last_seq = self.last_seq.max(seq);
        }
        Ok(())
    }

    /// Folds one event in (events must arrive in seq order).
    pub fn add(&mut self, event: &Event) {
        self.add_kind(event.seq, event.at, &event.kind);
    }

    fn add_kind(&mut self, seq: u64, at: DateTime<Utc>, kind: &EventKind) {
        self.last_seq = self.last_seq.max(seq);
        match kind {
            EventKind::IncidentOpened {
                alert, fingerprint, ..
            } => {
                self.incidents.insert(
                    seq,
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
                    i.investigation = Some(seq);
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
                    seq,
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
