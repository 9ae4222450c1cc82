//! Connectors: the only code that talks to infrastructure.
//!
//! A connector is called; it never calls back into the runtime, the store or
//! the console. Each instance has a [`ConnectorId`]; the registry routes every
//! action to the connector that owns the target resource, never to a default.

pub mod aws;
pub mod credentials;
pub mod kubernetes;
pub mod linux;
pub mod sim;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::event::{
    Action, ActionOutcome, ConnectorId, ConnectorState, Health, InfraEvent, Provider, Resource,
    ResourceId, Snapshot,
};

/// One day's billed cost of one service (for one team, when the bill is
/// tagged): what a billing source such as a cloud provider's cost API
/// answers, and what the cost agent reads.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingLine {
    pub day: chrono::NaiveDate,
    pub service: String,
    /// `None` when the spend carries no team tag.
    pub team: Option<String>,
    pub amount: f64,
    pub currency: String,
}

/// Which resources a listing covers.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only resources of these kinds (empty = all).
    pub kinds: Vec<String>,
}

/// A time window for event queries.
#[derive(Debug, Clone, Copy)]
pub struct TimeWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// What a discovery poll got from a connector.
#[derive(Debug)]
pub enum Listing {
    /// A fresh listing of every resource in scope.
    Fresh(Vec<Resource>),
    /// The connector has not looked again since the last listing (its own poll
    /// interval has not passed): everything it listed then still stands.
    Unchanged,
}

/// Evidence a connector gathered about a resource beyond health, events and
/// metrics (logs, owner chain, rollout history), and the causes its analyzers
/// read from it. Each finding names the evidence sources it rests on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnosis {
    pub evidence: Vec<DiagnosisEvidence>,
    pub findings: Vec<DiagnosisFinding>,
}

/// One piece of connector evidence (`source` is unique within a diagnosis).
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosisEvidence {
    pub source: String,
    pub summary: String,
    pub detail: Vec<String>,
}

/// A cause an analyzer read from the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosisFinding {
    pub title: String,
    pub confidence: f64,
    pub reasoning: String,
    /// Sources of the evidence this rests on.
    pub sources: Vec<String>,
    pub action: Option<Action>,
}

/// What can go wrong talking to infrastructure.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("resource {0} not found")]
    NotFound(ResourceId),
    #[error("action `{action}` is not supported on {resource}")]
    Unsupported {
        action: String,
        resource: ResourceId,
    },
    #[error("bad parameter `{param}` for `{action}`: {reason}")]
    BadParam {
        action: String,
        param: String,
        reason: String,
    },
    #[error("snapshot of {0} cannot be restored by this connector: {1}")]
    BadSnapshot(ResourceId, String),
    #[error("{0}")]
    Backend(String),
}

/// Refuses a snapshot that another connector took: only the connector that
/// recorded a resource's state knows how to put it back.
pub fn check_snapshot_owner(snapshot: &Snapshot, connector: &ConnectorId) -> Result<()> {
    if &snapshot.connector == connector {
        return Ok(());
    }
    Err(ConnectorError::BadSnapshot(
        snapshot.resource.clone(),
        format!("taken by {}, not {connector}", snapshot.connector),
    ))
}

/// The state a snapshot recorded, when `connector` took it and it parses.
pub fn recorded_state<T: serde::de::DeserializeOwned>(
    snapshot: &Snapshot,
    connector: &ConnectorId,
) -> Result<T> {
    check_snapshot_owner(snapshot, connector)?;
    serde_json::from_value(snapshot.data.clone())
        .map_err(|e| ConnectorError::BadSnapshot(snapshot.resource.clone(), e.to_string()))
}

/// Result alias for connector calls.
pub type Result<T> = std::result::Result<T, ConnectorError>;

/// The contract every infrastructure connector fulfils.
#[async_trait]
pub trait InfraConnector: Send + Sync {
    /// This instance's id (routing key).
    fn id(&self) -> &ConnectorId;
    /// The infrastructure family.
    fn provider(&self) -> Provider;
    /// Every resource in scope.
    async fn list_resources(&self, scope: &Scope) -> Result<Vec<Resource>>;
    /// Current health with its reason.
    async fn health(&self, id: &ResourceId) -> Result<Health>;
    /// Infrastructure events about a resource in a window (k8s events, changes, journal lines).
    async fn events(&self, id: &ResourceId, window: TimeWindow) -> Result<Vec<InfraEvent>>;
    /// Metrics relevant to a resource (name → value), for evidence.
    async fn metrics(&self, id: &ResourceId) -> Result<BTreeMap<String, f64>>;
    /// Connector-specific evidence and findings (none by default).
    async fn diagnose(&self, _id: &ResourceId) -> Result<Diagnosis> {
        Ok(Diagnosis::default())
    }
    /// What an operator sees on drill-down when asking for more: recent
    /// events and a bounded, redacted log tail where the connector has them
    /// (by default the evidence of `diagnose`). Reads only.
    async fn inspect(&self, id: &ResourceId) -> Result<Vec<DiagnosisEvidence>> {
        Ok(self.diagnose(id).await?.evidence)
    }
    /// The health that validates an action on `id`. `before` is the snapshot
    /// recorded before the action (kept in the event log, so this holds
    /// across a restart): it lets a connector judge a resource the action
    /// replaced, e.g. a restarted pod on its controller's replacement.
    async fn validation_health(
        &self,
        id: &ResourceId,
        _before: Option<&Snapshot>,
    ) -> Result<Health> {
        self.health(id).await
    }
    /// The action aimed at the object it should change, where the
    /// connector's resources form owner chains (a pod's controller); an error
    /// says why no object fits. By default the action as asked.
    async fn resolve_target(&self, action: &Action) -> Result<Action> {
        Ok(action.clone())
    }
    /// Captures enough state to restore the resource.
    async fn snapshot(&self, id: &ResourceId) -> Result<Snapshot>;
    /// Executes an action.
    async fn execute(&self, action: &Action) -> Result<ActionOutcome>;
    /// Puts a resource back as the snapshot recorded it.
    async fn restore(&self, snapshot: &Snapshot) -> Result<ActionOutcome>;
    /// For discovery: a fresh listing, or `Unchanged` when a connector with its
    /// own poll schedule has nothing new (so an idle poll copies nothing).
    async fn refresh(&self, scope: &Scope) -> Result<Listing> {
        self.list_resources(scope).await.map(Listing::Fresh)
    }
    /// The connector's own condition, for connectors that can be throttled or
    /// lose their credentials; `None` when it has nothing to say.
    fn status(&self) -> Option<(ConnectorState, String)> {
        None
    }
}

/// All configured connectors, by id.
#[derive(Clone, Default)]
pub struct Registry {
    connectors: BTreeMap<ConnectorId, Arc<dyn InfraConnector>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a connector under its own id.
    pub fn add(&mut self, connector: Arc<dyn InfraConnector>) {
        self.connectors.insert(connector.id().clone(), connector);
    }
    /// The connector with this id, if configured.
    pub fn get(&self, id: &ConnectorId) -> Option<Arc<dyn InfraConnector>> {
        self.connectors.get(id).cloned()
    }
    /// Every connector.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn InfraConnector>> {
        self.connectors.values()
    }
}
