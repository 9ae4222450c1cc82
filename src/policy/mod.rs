//! The policy gate: every proposed action is decided by the Rego bundle in
//! `policies/` (plus the site's overrides), evaluated with regorus.
//!
//! The gate fails closed: an evaluation error, a timeout, a panic inside the
//! engine or a decision document of the wrong shape all become a deny whose
//! reason says what failed. Deny always wins, in the policy and again here.

mod bundle;
mod canonical;
pub mod cli;
mod compliance;
mod gate;
mod input;
mod nesting;

pub use bundle::{Bundle, EMBEDDED_POLICIES};
pub use canonical::canonical_json;
pub use cli::{policy_eval, policy_test};
pub use compliance::COMPLIANCE_RULE;
pub use gate::{DECISION_RULE, Evaluator, Gate, GateOptions, check_decision};
pub use input::{
    ActionInput, FREEZE_OVERRIDE_PARAM, PolicyInput, RateInput, RequesterInput, TargetInput,
    TimeInput,
};

use std::path::PathBuf;

/// Why a policy bundle could not be loaded or prepared.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid data document: {message}")]
    Data { path: String, message: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("policy bundle cannot be prepared: {0}")]
    Prepare(String),
    #[error("policy bundle defines no `{DECISION_RULE}` rule")]
    NoDecision,
}
