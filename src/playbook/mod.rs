//! Remediation playbooks: one YAML file per situation, saying which alerts
//! trigger it, which evidence to gather, a decision tree evaluated over the
//! investigation's facts, how to validate the fix and what to do on failure.
//!
//! The defaults in `playbooks/` are compiled in; a user directory overrides
//! them by playbook name and adds new ones. Every playbook is validated when
//! loaded and rejected whole, with its file and line, if anything is wrong.

pub mod catalogue;
pub mod expr;
mod facts;
mod library;
mod model;

pub use facts::{Fact, Facts};
pub use library::{EMBEDDED_PLAYBOOKS, Library, playbook_validate};
pub use model::{
    Decision, Evaluation, Evidence, FailurePlan, InvestigationStep, LabelMatcher, Playbook,
    PromqlCheck, ResourceKind, Trigger, ValidationRun, ValidationSpec, Verdict, provider_name,
};

use std::path::PathBuf;

/// Why a playbook could not be loaded or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("playbook `{playbook}` ({file}:{line}), branch `{branch}`: {message}")]
    Eval {
        playbook: String,
        file: String,
        line: u64,
        branch: String,
        message: String,
    },
}
