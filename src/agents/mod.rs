//! Agents: background workers that gather facts through connectors and record
//! what they learn as events. They never touch the projected state or the
//! screen; the supervisor hands them what they need.

pub mod cost;
pub mod discovery;
pub mod investigation;
pub mod learning;
pub mod remediation;
pub mod security;

use crate::clock::SharedClock;
use crate::connectors::Registry;
use crate::event::{Event, EventKind, NewEvent};
use crate::store::{EventLog, StoreError};

/// What every agent needs: the log to record into, the connectors, the clock.
#[derive(Clone)]
pub struct AgentContext {
    pub log: EventLog,
    pub registry: Registry,
    pub clock: SharedClock,
    /// Playbooks: matched to alerts by investigations, consulted for validation.
    pub playbooks: std::sync::Arc<crate::playbook::Library>,
}

impl AgentContext {
    /// Records a fact as `actor`; returns once it is durable.
    pub async fn record(&self, actor: &str, kind: EventKind) -> Result<Event, StoreError> {
        self.log
            .append(NewEvent::new(self.clock.now(), actor, kind))
            .await
    }

    /// Records several facts as one batch (consecutive seqs, one group commit).
    pub async fn record_many(
        &self,
        actor: &str,
        kinds: Vec<EventKind>,
    ) -> Result<Vec<Event>, StoreError> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let at = self.clock.now();
        self.log
            .append_many(
                kinds
                    .into_iter()
                    .map(|k| NewEvent::new(at, actor, k))
                    .collect(),
            )
            .await
    }

    /// Records an agent error (best effort: a failing log is already fatal elsewhere).
    pub async fn report_error(&self, agent: &str, error: impl std::fmt::Display) {
        tracing::warn!(agent, "{error}");
        let _ = self
            .record(
                &format!("agent:{agent}"),
                EventKind::AgentError {
                    agent: agent.to_string(),
                    error: error.to_string(),
                },
            )
            .await;
    }
}
