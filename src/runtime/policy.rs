//! The policy seam: the supervisor asks a [`PolicyGate`] about every proposal
//! and records the answer. The gate never touches infrastructure.

use chrono::{DateTime, Utc};

use crate::event::{ControlResult, PolicyDecision, Risk};
use crate::state::State;

/// Decides whether a proposed remediation may run and what it needs.
pub trait PolicyGate: Send + Sync {
    /// The decision for remediation `id` as the state stands at `now`, its
    /// requester acting for `requester_team` ("" when the requester has none).
    /// Implementations fail closed: any error is a deny that says what failed.
    fn decide(
        &self,
        state: &State,
        id: u64,
        requester_team: &str,
        now: DateTime<Utc>,
    ) -> PolicyDecision;

    /// Every compliance control's result over an inventory document. A gate
    /// without compliance rules says so as an error, which makes every
    /// control `unknown` (never `passing`).
    fn evaluate_compliance(
        &self,
        _inventory: &serde_json::Value,
    ) -> Result<Vec<ControlResult>, String> {
        Err("this policy gate evaluates no compliance controls".into())
    }
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

/// The Rego bundle decides, on the input built from the projected state.
impl PolicyGate for crate::policy::Gate {
    fn decide(
        &self,
        state: &State,
        id: u64,
        requester_team: &str,
        now: DateTime<Utc>,
    ) -> PolicyDecision {
        if !state.remediations.contains_key(&id) {
            return deny(format!("remediation #{id} is not in the state"));
        }
        match crate::policy::PolicyInput::for_remediation(state, id, requester_team, now) {
            Some(input) => crate::policy::Gate::decide(self, &input),
            None => deny(format!(
                "cannot build the policy input for remediation #{id}"
            )),
        }
    }

    fn evaluate_compliance(
        &self,
        inventory: &serde_json::Value,
    ) -> Result<Vec<ControlResult>, String> {
        crate::policy::Gate::evaluate_compliance(self, inventory)
    }
}
