//! Remediations and their safety path: proposal, decision, approvals, snapshot,
//! execution, validation, restore, outcome.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::State;
use crate::event::{
    Action, ActionOutcome, Environment, Event, EventKind, PolicyDecision, Preview,
    RemediationOutcome, Snapshot,
};

/// Where a remediation stands on the safety path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Proposed; the policy has not decided yet.
    Proposed,
    /// Allowed, waiting for approvals.
    AwaitingApproval,
    /// Allowed and approved: ready for the snapshot.
    Approved,
    /// Snapshot taken; the action is being executed.
    Executing,
    /// Action executed; validation is polling health.
    Validating,
    /// Validation failed or the action failed; restoring the snapshot.
    Restoring,
    Finished(RemediationOutcome),
}

impl Stage {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Proposed => "proposed",
            Stage::AwaitingApproval => "awaiting approval",
            Stage::Approved => "approved",
            Stage::Executing => "executing",
            Stage::Validating => "validating",
            Stage::Restoring => "restoring",
            Stage::Finished(outcome) => outcome.as_str(),
        }
    }
}

/// The form of an operator name used to tell people apart.
pub fn person(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Whether two recorded names are the same person.
pub fn same_person(a: &str, b: &str) -> bool {
    person(a) == person(b)
}

/// One approval or denial as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub by: String,
    pub comment: String,
    pub source: Option<String>,
    /// How `by` was authenticated (none in logs from before it was recorded).
    #[serde(default)]
    pub auth: Option<crate::event::Authentication>,
    pub at: DateTime<Utc>,
    pub seq: u64,
}

/// A remediation and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    pub id: u64,
    pub incident: Option<u64>,
    pub investigation: Option<u64>,
    pub action: Action,
    pub environment: Environment,
    pub team: String,
    pub reason: String,
    pub requested_by: String,
    /// Principals that posted the alerts of its incident: requesters too, so
    /// none of them can approve it.
    #[serde(default)]
    pub alert_posters: BTreeSet<String>,
    /// The playbook whose validation and failure plan apply.
    pub playbook: Option<String>,
    pub proposed_at: DateTime<Utc>,
    pub decision: Option<PolicyDecision>,
    /// What the action would change, read from the live object before approval.
    #[serde(default)]
    pub preview: Option<Preview>,
    pub required_approvals: u32,
    pub expires_at: Option<DateTime<Utc>>,
    pub approvals: Vec<ApprovalRecord>,
    pub denial: Option<ApprovalRecord>,
    /// (contact, level, when)
    pub escalations: Vec<(String, u32, DateTime<Utc>)>,
    pub snapshot: Option<Snapshot>,
    pub execution: Option<ActionOutcome>,
    pub executed_at: Option<DateTime<Utc>>,
    /// When it was cleared to run (every approval in, or none needed).
    #[serde(default)]
    pub approved_at: Option<DateTime<Utc>>,
    pub validation: Option<(bool, String)>,
    /// When validation finished (time to validation is learned from it).
    #[serde(default)]
    pub validated_at: Option<DateTime<Utc>>,
    pub restore: Option<ActionOutcome>,
    pub stage: Stage,
    pub finished_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
}

impl Remediation {
    /// Distinct approvers who count: the requester never does. Names are
    /// compared as [`same_person`] does, so `Alice` and `alice ` are one person.
    pub fn counted_approvers(&self) -> BTreeSet<String> {
        self.approvals
            .iter()
            .filter(|a| !self.is_requester(&a.by))
            .map(|a| person(&a.by))
            .collect()
    }

    /// Whether `name` asked for this remediation: its requester, or a
    /// principal that posted an alert it answers.
    pub fn is_requester(&self, name: &str) -> bool {
        same_person(&self.requested_by, name)
            || self.alert_posters.iter().any(|p| same_person(p, name))
    }

    /// How many more approvals are needed.
    pub fn approvals_missing(&self) -> u32 {
        self.required_approvals
            .saturating_sub(self.counted_approvers().len() as u32)
    }

    /// Whether the policy allowed it. Deny wins: a decision that carries any
    /// deny reason counts as a deny even if it also says allow.
    pub fn allowed(&self) -> bool {
        self.decision
            .as_ref()
            .is_some_and(|d| d.allow && d.deny.is_empty())
    }

    fn approved_now(&self) -> bool {
        self.allowed() && self.approvals_missing() == 0 && self.denial.is_none()
    }
}

pub(super) fn apply(state: &mut State, event: &Event) {
    let at = event.at;
    let seq = event.seq;
    if let EventKind::RemediationProposed {
        incident,
        investigation,
        action,
        environment,
        team,
        reason,
        requested_by,
        playbook,
    } = &event.kind
    {
        let alert_posters = incident
            .and_then(|id| state.incidents.get(&id))
            .map(|inc| inc.alert_posters.clone())
            .unwrap_or_default();
        state.remediations.insert(
            seq,
            Remediation {
                id: seq,
                incident: *incident,
                investigation: *investigation,
                action: action.clone(),
                environment: *environment,
                team: team.clone(),
                reason: reason.clone(),
                requested_by: requested_by.clone(),
                alert_posters,
                playbook: playbook.clone(),
                proposed_at: at,
                decision: None,
                preview: None,
                required_approvals: 0,
                expires_at: None,
                approvals: Vec::new(),
                denial: None,
                escalations: Vec::new(),
                snapshot: None,
                execution: None,
                executed_at: None,
                approved_at: None,
                validation: None,
                validated_at: None,
                restore: None,
                stage: Stage::Proposed,
                finished_at: None,
                detail: None,
            },
        );
        if let Some(inc) = incident.and_then(|id| state.incidents.get_mut(&id)) {
            inc.remediations.push(seq);
        }
        if let Some(view) = state
            .fleet
            .resources
            .get_mut(&action.target)
            .map(Arc::make_mut)
        {
            view.remediations.push(seq);
        }
        state
            .fleet
            .note(&action.target, seq, crate::event::summary(&event.kind));
        return;
    }

    let Some(id) = remediation_of(&event.kind) else {
        return;
    };
    let Some(rem) = state.remediations.get_mut(&id) else {
        return;
    };
    // The first finish is final: nothing recorded after it moves the stage back
    // or is counted again.
    if matches!(rem.stage, Stage::Finished(_)) {
        return;
    }
    match &event.kind {
        EventKind::PolicyDecided { decision, .. } => {
            rem.required_approvals = decision.required_approvals;
            rem.decision = Some(decision.clone());
            if rem.approved_now() && rem.stage == Stage::Proposed {
                rem.stage = Stage::Approved;
                rem.approved_at = Some(at);
            }
        }
        EventKind::ApprovalRequested {
            required,
            expires_at,
            ..
        } => {
            // A request never lowers what the policy decided.
            let decided = rem.decision.as_ref().map_or(0, |d| d.required_approvals);
            rem.required_approvals = (*required).max(decided);
            rem.expires_at = Some(*expires_at);
            if rem.stage == Stage::Proposed && rem.allowed() {
                rem.stage = if rem.approved_now() {
                    rem.approved_at = Some(at);
                    Stage::Approved
                } else {
                    Stage::AwaitingApproval
                };
            }
        }
        EventKind::ApprovalGranted {
            by,
            comment,
            source,
            auth,
            ..
        } => {
            rem.approvals.push(ApprovalRecord {
                by: by.clone(),
                comment: comment.clone(),
                source: source.clone(),
                auth: *auth,
                at,
                seq,
            });
            if rem.stage == Stage::AwaitingApproval && rem.approved_now() {
                rem.stage = Stage::Approved;
                rem.approved_at = Some(at);
            }
        }
        EventKind::ApprovalDenied {
            by,
            reason,
            source,
            auth,
            ..
        } => {
            rem.denial = Some(ApprovalRecord {
                by: by.clone(),
                comment: reason.clone(),
                source: source.clone(),
                auth: *auth,
                at,
                seq,
            });
        }
        EventKind::RemediationPreviewed { preview, .. } => {
            rem.preview = Some(preview.clone());
        }
        EventKind::ApprovalExpired { .. } => {}
        EventKind::ApprovalEscalated { to, level, .. } => {
            rem.escalations.push((to.clone(), *level, at));
        }
        EventKind::SnapshotTaken { snapshot, .. } => {
            rem.snapshot = Some(snapshot.clone());
            rem.stage = Stage::Executing;
        }
        EventKind::ActionExecuted { outcome, .. } => {
            rem.execution = Some(outcome.clone());
            rem.executed_at = Some(at);
            rem.stage = if outcome.success {
                Stage::Validating
            } else {
                Stage::Restoring
            };
        }
        EventKind::ValidationFinished { passed, detail, .. } => {
            rem.validation = Some((*passed, detail.clone()));
            rem.validated_at = Some(at);
            if !passed {
                rem.stage = Stage::Restoring;
            }
        }
        EventKind::RemediationRestored { outcome, .. } => {
            rem.restore = Some(outcome.clone());
        }
        EventKind::RemediationFinished { status, detail, .. } => {
            rem.stage = Stage::Finished(*status);
            rem.finished_at = Some(at);
            rem.detail = Some(detail.clone());
            let action = rem.action.name.clone();
            let target = rem.action.target.clone();
            state.learning.record_outcome(&action, *status);
            state
                .fleet
                .note(&target, seq, crate::event::summary(&event.kind));
        }
        _ => {}
    }
}

fn remediation_of(kind: &EventKind) -> Option<u64> {
    match kind {
        EventKind::PolicyDecided { remediation, .. }
        | EventKind::ApprovalRequested { remediation, .. }
        | EventKind::ApprovalGranted { remediation, .. }
        | EventKind::ApprovalDenied { remediation, .. }
        | EventKind::ApprovalExpired { remediation }
        | EventKind::ApprovalEscalated { remediation, .. }
        | EventKind::SnapshotTaken { remediation, .. }
        | EventKind::ActionExecuted { remediation, .. }
        | EventKind::ValidationFinished { remediation, .. }
        | EventKind::RemediationRestored { remediation, .. }
        | EventKind::RemediationFinished { remediation, .. }
        | EventKind::RemediationPreviewed { remediation, .. } => Some(*remediation),
        _ => None,
    }
}
