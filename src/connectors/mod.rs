//! Connectors: the only code that talks to infrastructure.
//!
//! A connector is called; it never calls back into the runtime, the store or
//! the console. Each instance has a [`ConnectorId`]; the registry routes every
//! action to the connector that owns the target resource, never to a default.

pub mod aws;
pub mod credentials;
pub mod kubernetes;
pub mod linux;
pub mod prometheus;
pub mod sim;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::event::{
    Action, ActionOutcome, ConnectorId, ConnectorState, Health, InfraEvent, Preview, Provider,
    Resource, ResourceId, Snapshot,
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
    #[error(
        "no preview of `{action}` on {resource}: this connector cannot show what it would change"
    )]
    NoPreview {
        action: String,
        resource: ResourceId,
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

/// Parameters that explain a change rather than shape it (the reason shown
/// to approvers, an operator's freeze override, which the policy reads):
/// every action accepts them and no connector acts on them.
pub const NOTE_PARAMS: &[&str] = &["reason", crate::policy::FREEZE_OVERRIDE_PARAM];

/// Refuses every parameter of `action` that it does not take: a parameter the
/// connector would ignore is refused, never dropped, so what is approved is
/// what runs. `takes` lists the parameters the action uses on this connector.
pub fn check_params(action: &Action, takes: &[&str]) -> Result<()> {
    let ignored: Vec<&str> = action
        .params
        .keys()
        .map(String::as_str)
        .filter(|k| !takes.contains(k) && !NOTE_PARAMS.contains(k))
        .collect();
    if ignored.is_empty() {
        return Ok(());
    }
    let uses = if takes.is_empty() {
        "no parameters".to_string()
    } else {
        takes.join(", ")
    };
    Err(ConnectorError::BadParam {
        action: action.name.clone(),
        param: ignored.join(", "),
        reason: format!("not used by this action here, so it would be ignored (it takes {uses})"),
    })
}

/// Refuses an action whose `param` states a current value the live object
/// does not have (`current_replicas`, `from_instance_type`): the policy judged
/// the change from the stated value, so a stale one must not pass.
pub fn check_stated(action: &Action, param: &str, live: &str) -> Result<()> {
    // `4.0` from a template states the same count as the live `4`.
    let same = |stated: &str| match (stated.trim().parse::<f64>(), live.trim().parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => stated.trim() == live.trim(),
    };
    match action.params.get(param) {
        Some(stated) if !same(stated) => Err(ConnectorError::BadParam {
            action: action.name.clone(),
            param: param.to_string(),
            reason: format!("states {stated} but the live value is {live}"),
        }),
        _ => Ok(()),
    }
}

/// A preview of `object` with `changes`, carrying the action's note
/// parameters (its reason) as notes for the approver.
pub fn preview_of(
    action: &Action,
    object: impl Into<String>,
    changes: Vec<crate::event::Change>,
) -> Preview {
    let notes = NOTE_PARAMS
        .iter()
        .filter_map(|k| action.params.get(*k).map(|v| format!("{k}: {v}")))
        .collect();
    Preview {
        object: object.into(),
        changes,
        notes,
    }
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
    /// What `action` would change, as current → new values read from the live
    /// object, before anyone approves it. Fails when a parameter would be
    /// ignored or the live values cannot be read; a connector without a
    /// preview fails too, so its proposals are refused rather than approved blind.
    async fn preview(&self, action: &Action) -> Result<Preview> {
        Err(ConnectorError::NoPreview {
            action: action.name.clone(),
            resource: action.target.clone(),
        })
    }
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
    /// Whether this is the demo's simulated fleet, where a declared approver
    /// name may stand in for an authenticated principal (nothing real changes).
    fn simulated(&self) -> bool {
        false
    }
}

/// All configured connectors, by id.
#[derive(Clone, Default)]
pub struct Registry {
    connectors: BTreeMap<ConnectorId, Arc<dyn InfraConnector>>,
    /// `[prometheus]`, when configured: metrics evidence for any resource.
    prometheus: Option<Arc<prometheus::Prometheus>>,
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
    /// Sets the Prometheus server investigations and validations read.
    pub fn set_prometheus(&mut self, prometheus: Arc<prometheus::Prometheus>) {
        self.prometheus = Some(prometheus);
    }
    /// The Prometheus server, if configured.
    pub fn prometheus(&self) -> Option<Arc<prometheus::Prometheus>> {
        self.prometheus.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Change, Health};

    /// A connector that implements only what the contract requires.
    struct Bare(ConnectorId);

    #[async_trait]
    impl InfraConnector for Bare {
        fn id(&self) -> &ConnectorId {
            &self.0
        }
        fn provider(&self) -> Provider {
            Provider::Linux
        }
        async fn list_resources(&self, _: &Scope) -> Result<Vec<Resource>> {
            Ok(Vec::new())
        }
        async fn health(&self, _: &ResourceId) -> Result<Health> {
            Ok(Health::healthy())
        }
        async fn events(&self, _: &ResourceId, _: TimeWindow) -> Result<Vec<InfraEvent>> {
            Ok(Vec::new())
        }
        async fn metrics(&self, _: &ResourceId) -> Result<BTreeMap<String, f64>> {
            Ok(BTreeMap::new())
        }
        async fn snapshot(&self, id: &ResourceId) -> Result<Snapshot> {
            Err(ConnectorError::NotFound(id.clone()))
        }
        async fn execute(&self, a: &Action) -> Result<ActionOutcome> {
            Err(ConnectorError::NotFound(a.target.clone()))
        }
        async fn restore(&self, s: &Snapshot) -> Result<ActionOutcome> {
            Err(ConnectorError::NotFound(s.resource.clone()))
        }
    }

    #[tokio::test]
    async fn a_connector_without_a_preview_says_so() {
        let c = Bare(ConnectorId::new("bare"));
        let err = c
            .preview(&Action::new("restart_service", ResourceId::new("h")))
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectorError::NoPreview { .. }), "{err}");
        assert!(err.to_string().contains("no preview of `restart_service`"));
    }

    #[test]
    fn ignored_parameters_are_named_and_notes_pass() {
        let a = Action::new("scale", ResourceId::new("d"))
            .with("replicas", "2")
            .with("reason", "traffic")
            .with(crate::policy::FREEZE_OVERRIDE_PARAM, "true");
        check_params(&a, &["replicas"]).unwrap();
        let err = check_params(
            &a.clone().with("zone", "b").with("force", "1"),
            &["replicas"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`force, zone`") && err.contains("it takes replicas"),
            "{err}"
        );
        let err = check_params(&Action::new("x", ResourceId::new("d")).with("y", "1"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no parameters"), "{err}");
        let p = preview_of(&a, "deployment d", vec![Change::new("replicas", "4", "2")]);
        assert_eq!(p.notes, ["reason: traffic", "freeze_override: true"]);
        assert_eq!(p.one_line(), "deployment d: replicas: 4 → 2");
    }

    #[test]
    fn a_stated_current_value_must_be_the_live_one() {
        let a = Action::new("scale", ResourceId::new("d")).with("current_replicas", "4");
        check_stated(&a, "current_replicas", "4").unwrap();
        let rendered = Action::new("scale", ResourceId::new("d")).with("current_replicas", "4.0");
        check_stated(&rendered, "current_replicas", "4").unwrap();
        let err = check_stated(&a, "current_replicas", "6")
            .unwrap_err()
            .to_string();
        assert!(err.contains("states 4 but the live value is 6"), "{err}");
        check_stated(
            &Action::new("scale", ResourceId::new("d")),
            "current_replicas",
            "6",
        )
        .unwrap();
    }
}
