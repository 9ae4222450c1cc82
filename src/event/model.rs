//! The vocabulary that events carry: resources, health, alerts, evidence,
//! hypotheses, actions. Every other module speaks in these types, so they live
//! here, beside the event model, and depend on nothing else of ours.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StringMap;

/// A globally unique resource identifier, e.g. `k8s/prod-eu/payments/pod/checkout-7d9f`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceId(pub String);

impl ResourceId {
    /// Builds an id from anything string-like.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which connector instance owns a resource (`sim:demo`, `k8s:prod-eu`, `aws:default/eu-west-1`).
/// Actions are routed by this, never to a default connector.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectorId(pub String);

impl ConnectorId {
    /// Builds a connector id from anything string-like.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
}

impl fmt::Display for ConnectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a connector itself is doing, apart from the resources it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    /// Answering normally.
    Ok,
    /// Answering late (throttled, backing off); the last known fleet is kept.
    Degraded,
    /// Not answering (expired credentials, no permission); the last known fleet is kept.
    Failing,
    /// Not configured: the message says how to add it.
    Absent,
}

impl ConnectorState {
    /// Lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorState::Ok => "ok",
            ConnectorState::Degraded => "degraded",
            ConnectorState::Failing => "failing",
            ConnectorState::Absent => "absent",
        }
    }
}

/// The infrastructure family a resource belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Kubernetes,
    Aws,
    Linux,
    Gcp,
    Azure,
    /// HashiCorp Vault or OpenBao.
    Vault,
}

impl Provider {
    /// Short lowercase label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Provider::Kubernetes => "k8s",
            Provider::Aws => "aws",
            Provider::Linux => "linux",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
            Provider::Vault => "vault",
        }
    }
}

/// Deployment environment, ordered from least to most critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Development,
    Staging,
    Production,
}

impl Environment {
    /// The canonical lowercase name (as used in policies and labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }
    /// Short label for narrow tables.
    pub fn short(self) -> &'static str {
        match self {
            Environment::Development => "dev",
            Environment::Staging => "stg",
            Environment::Production => "prod",
        }
    }
}

/// Coarse health status; the reason travels beside it in [`Health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
    Unknown,
}

impl HealthStatus {
    /// Lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
            HealthStatus::Unknown => "unknown",
        }
    }
}

/// Health with the reason that explains it (a condition's reason, a failing check's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    /// Machine-readable reason, e.g. `OOMKilled`, `DiskPressure`, `instance_status_check`.
    #[serde(default)]
    pub reason: String,
    /// Human-readable detail, e.g. `last terminated: OOMKilled, exit code 137`.
    #[serde(default)]
    pub message: String,
}

impl Health {
    /// A healthy status with no reason.
    pub fn healthy() -> Self {
        Self {
            status: HealthStatus::Healthy,
            reason: String::new(),
            message: String::new(),
        }
    }
    /// Builds a health value.
    pub fn new(
        status: HealthStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The attribute a connector sets on a resource, instead of usage figures
/// (`cpu_util_pct`, `cpu_usage_millicores`, `memory_usage_mib`), saying why
/// it could not measure them: unknown usage is never written as zero.
pub const USAGE_UNKNOWN: &str = "usage_unknown";

/// Whether a usage figure moved enough to be published again: by more than a
/// tenth of the old figure and by more than one unit. Connectors keep the old
/// figure through smaller wobbles, so sampling every minute or every period
/// does not become one `resource_changed` event per resource per sample.
pub fn usage_moved(old: f64, new: f64) -> bool {
    let d = (new - old).abs();
    d > 1.0 && d > old.abs() / 10.0
}

/// `usage unknown for N resource(s): <commonest reason>` over the reasons
/// resources give (the agent's status and the Cost pane say it the same way).
pub fn usage_unknown_summary<'a>(reasons: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for why in reasons {
        *counts.entry(why).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let (why, _) = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))?;
    let why = why.strip_prefix("usage unknown: ").unwrap_or(why);
    Some(format!("usage unknown for {total} resource(s): {why}"))
}

/// A resource as a connector sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub id: ResourceId,
    pub name: String,
    /// `pod`, `deployment`, `node`, `ec2_instance`, `host`, `service`, `credential`, …
    pub kind: String,
    pub provider: Provider,
    pub connector: ConnectorId,
    pub environment: Environment,
    pub team: String,
    #[serde(default)]
    pub labels: StringMap,
    /// Provider-specific facts worth showing (image, instance type, memory limit, …).
    #[serde(default)]
    pub attributes: StringMap,
    pub health: Health,
    pub created_at: DateTime<Utc>,
}

/// Alert or finding severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// An alert as received from a source (Alertmanager, the scenario, an agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Alert name, e.g. `KubePodCrashLooping`.
    pub name: String,
    pub severity: Severity,
    pub resource: ResourceId,
    /// Stable identity of the alert across firings (dedup key).
    pub fingerprint: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `firing` or `resolved`.
    #[serde(default = "firing")]
    pub status: AlertStatus,
    /// Where it came from: `scenario`, `alertmanager`, …
    #[serde(default)]
    pub source: String,
}

fn firing() -> AlertStatus {
    AlertStatus::Firing
}

/// Whether an alert is firing or has resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// A timestamped event reported by infrastructure (a k8s Event, a journal line, a CloudTrail record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfraEvent {
    pub at: DateTime<Utc>,
    pub resource: ResourceId,
    /// `Warning`, `Normal`, `change`, …
    pub kind: String,
    pub reason: String,
    pub message: String,
}

/// One piece of evidence an investigation gathered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Id unique within the investigation (`e1`, `e2`, …) so hypotheses can cite it.
    pub id: String,
    /// Where it came from: `health`, `events`, `changes`, `metrics`, `logs`, …
    pub source: String,
    pub summary: String,
    #[serde(default)]
    pub detail: Vec<String>,
}

/// A ranked explanation of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    pub title: String,
    /// 0.0 ..= 1.0
    pub confidence: f64,
    /// Ids of the evidence this hypothesis rests on.
    pub cites: Vec<String>,
    pub reasoning: String,
    /// The action that would address this cause, if any.
    #[serde(default)]
    pub recommended_action: Option<Action>,
}

/// A request to do something to a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Snake-case action name: `set_resources`, `restart_pod`, `clean_disk`, …
    pub name: String,
    pub target: ResourceId,
    /// Action parameters (`memory_limit_mib`, `replicas`, …).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Where each parameter came from, set by the runtime when it proposes
    /// (never taken from whoever built the action); a parameter missing here
    /// has no recorded source and the policy treats it as such.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub param_sources: BTreeMap<String, ParamSource>,
}

/// Where an action parameter's value came from (the policy bounds some sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamSource {
    /// A constant written in the playbook.
    Playbook,
    /// Computed from facts a connector observed (health, metrics, events).
    Facts,
    /// Read by the runtime from the live object (the fleet's recorded state).
    Live,
    /// Taken from an alert's labels or text: chosen by whoever posted the alert.
    Alert,
    /// Chosen by the operator who asked for the proposal.
    Operator,
}

impl ParamSource {
    /// The name the policy input uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamSource::Playbook => "playbook",
            ParamSource::Facts => "facts",
            ParamSource::Live => "live",
            ParamSource::Alert => "alert",
            ParamSource::Operator => "operator",
        }
    }
}

/// How the runtime knows who a principal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Authentication {
    /// The OS account of the console process's real uid.
    OsAccount,
    /// The principal of a bearer token checked by the listener.
    Token,
    /// A name the caller declared and nobody checked (the demo's `--approve-as`).
    Declared,
}

impl Authentication {
    /// Lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            Authentication::OsAccount => "os_account",
            Authentication::Token => "token",
            Authentication::Declared => "declared",
        }
    }
}

/// Names of actions that only read; everything else mutates.
pub const READ_ONLY_ACTIONS: &[&str] = &[
    "query_logs",
    "query_metrics",
    "query_events",
    "get_health",
    "list_resources",
];

impl Action {
    /// Builds an action with no parameters.
    pub fn new(name: impl Into<String>, target: ResourceId) -> Self {
        Self {
            name: name.into(),
            target,
            params: BTreeMap::new(),
            param_sources: BTreeMap::new(),
        }
    }
    /// Adds a parameter.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.params.insert(key.to_string(), value.into());
        self
    }
    /// Whether this action changes anything.
    pub fn is_mutating(&self) -> bool {
        !READ_ONLY_ACTIONS.contains(&self.name.as_str())
    }
}

/// What an action would change, read from the live object before anyone is
/// asked to approve it: each field as it is now and as the action would set it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    /// The object the connector read (`deployment checkout-api, container app`).
    pub object: String,
    pub changes: Vec<Change>,
    /// What else the approver should know (files to be moved, pods replaced).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One field an action changes: its live value and the value it would get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    /// The live value (`unset` when the object has none).
    pub current: String,
    pub new: String,
}

impl Preview {
    /// `field: current → new` for each change, in order.
    pub fn lines(&self) -> Vec<String> {
        self.changes.iter().map(Change::line).collect()
    }

    /// The object and its changes on one line, for the event list.
    pub fn one_line(&self) -> String {
        format!("{}: {}", self.object, self.lines().join("; "))
    }
}

impl Change {
    /// `field: current → new`.
    pub fn line(&self) -> String {
        format!("{}: {} → {}", self.field, self.current, self.new)
    }

    /// A field going from `current` to `new`.
    pub fn new(
        field: impl Into<String>,
        current: impl Into<String>,
        new: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            current: current.into(),
            new: new.into(),
        }
    }
}

/// State captured before an action, enough for the owning connector to restore it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub resource: ResourceId,
    pub connector: ConnectorId,
    pub taken_at: DateTime<Utc>,
    /// Connector-specific captured state.
    pub data: serde_json::Value,
    /// One line saying what was captured.
    pub summary: String,
}

/// What an action or restore did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionOutcome {
    pub success: bool,
    pub message: String,
    /// Steps performed, in order, for the execution log.
    #[serde(default)]
    pub steps: Vec<String>,
}

/// What a playbook's decision tree chose for an investigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookChoice {
    pub playbook: String,
    /// Path of branch ids taken, e.g. `oom-crash-loop`.
    pub branch: String,
    pub description: String,
    pub action: Action,
}

/// A risk level as decided by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

impl Risk {
    /// Lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }
}

/// The policy gate's decision about one proposed action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDecision {
    pub allow: bool,
    pub deny: Vec<String>,
    pub required_approvals: u32,
    pub risk: Risk,
    #[serde(default)]
    pub controls: Vec<String>,
    /// Hash of the policy bundle that decided.
    #[serde(default)]
    pub bundle_hash: String,
    /// Digest of the input document the bundle saw.
    #[serde(default)]
    pub input_digest: String,
}
