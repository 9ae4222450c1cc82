//! The policy seam: the supervisor asks a [`PolicyGate`] about every proposal
//! and records the answer. The gate never touches infrastructure.

use chrono::{DateTime, Utc};

use crate::event::{PolicyDecision, Risk};
use crate::state::State;

/// Decides whether a proposed remediation may run and what it needs.
pub trait PolicyGate: Send + Sync {
    /// The decision for remediation `id` as the state stands at `now`.
    /// Implementations fail closed: any error is a deny that says what failed.
    fn decide(&self, state: &State, id: u64, now: DateTime<Utc>) -> PolicyDecision;
}

/// A deny decision carrying one reason (used for fail-closed paths).
pub fn deny(reason: impl Into<String>) -> PolicyDecision {
    PolicyDecision {
        allow: false,
        deny: vec![reason.into()],
        required_approvals: 0,
        risk: Risk::Critical,
        controls: vec![],
        bundle_hash: String::new(),
        input_digest: String::new(),
    }
}

/// A minimal rule set for tests and for embedding without the Rego bundle
/// (the console always loads the bundle): forbidden actions are denied, and
/// every mutating action in production needs one approval.
pub struct BaselinePolicy;

/// Actions no automation may take.
const FORBIDDEN: &[&str] = &[
    "delete_database",
    "drop_table",
    "delete_namespace",
    "modify_iam_root",
    "disable_logging",
    "disable_monitoring",
];

impl PolicyGate for BaselinePolicy {
    fn decide(&self, state: &State, id: u64, _now: DateTime<Utc>) -> PolicyDecision {
        let Some(rem) = state.remediations.get(&id) else {
            return deny(format!("remediation #{id} is not in the state"));
        };
        let action = &rem.action;
        let production = rem.environment == crate::event::Environment::Production;
        let mut decision = PolicyDecision {
            allow: true,
            deny: vec![],
            required_approvals: 0,
            risk: if production { Risk::High } else { Risk::Medium },
            controls: vec![],
            bundle_hash: "baseline".into(),
            input_digest: String::new(),
        };
        if FORBIDDEN.contains(&action.name.as_str()) {
            decision.allow = false;
            decision
                .deny
                .push(format!("{} is a forbidden action", action.name));
        }
        if !action.is_mutating() {
            decision.risk = Risk::Low;
        } else if production {
            decision.required_approvals = 1;
        }
        decision
    }
}

/// The Rego bundle decides. The requester acts for the team that owns the
/// target (agents propose on a team's behalf), so team scoping applies to it.
impl PolicyGate for crate::policy::Gate {
    fn decide(&self, state: &State, id: u64, now: DateTime<Utc>) -> PolicyDecision {
        let Some(rem) = state.remediations.get(&id) else {
            return deny(format!("remediation #{id} is not in the state"));
        };
        match crate::policy::PolicyInput::for_remediation(state, id, &rem.team, now) {
            Some(input) => crate::policy::Gate::decide(self, &input),
            None => deny(format!(
                "cannot build the policy input for remediation #{id}"
            )),
        }
    }
}
