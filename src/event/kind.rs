//! Every kind of fact the system records.
//!
//! Incidents, investigations and remediations are identified by the `seq` of
//! the event that created them (`incident_opened`, `investigation_started`,
//! `remediation_proposed`), so ids need no counter of their own and are the
//! same in every replay and on every attached console.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{
    Action, ActionOutcome, Alert, Evidence, Health, Hypothesis, PlaybookChoice, PolicyDecision,
    Preview, Resource, ResourceId, Severity, Snapshot,
};

/// Id of an incident: the seq of its `incident_opened` event.
pub type IncidentId = u64;
/// Id of an investigation: the seq of its `investigation_started` event.
pub type InvestigationId = u64;
/// Id of a remediation: the seq of its `remediation_proposed` event.
pub type RemediationId = u64;

/// What happened. Serialised with `kind` as the snake_case tag and the variant's
/// fields beside it; a kind this build does not know is kept as [`EventKind::Unknown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    ResourceDiscovered {
        resource: Resource,
    },
    ResourceChanged {
        resource: ResourceId,
        /// Changed attributes: name → new value (removed ones map to "").
        changes: BTreeMap<String, String>,
    },
    ResourceGone {
        resource: ResourceId,
    },
    HealthChanged {
        resource: ResourceId,
        health: Health,
    },
    AlertReceived {
        alert: Alert,
        /// The authenticated principal that posted it (an operator token's
        /// principal); none for alerts the runtime produced itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        posted_by: Option<String>,
    },
    IncidentOpened {
        title: String,
        /// Name of the alert that opened it.
        alert: String,
        /// The alert's labels (playbook triggers match on them).
        #[serde(default)]
        labels: BTreeMap<String, String>,
        severity: Severity,
        resource: ResourceId,
        fingerprint: String,
        /// seq of the alert_received event that opened it.
        alert_seq: u64,
    },
    /// An alert correlated into an already open incident.
    IncidentCorrelated {
        incident: IncidentId,
        alert_seq: u64,
    },
    IncidentAcknowledged {
        incident: IncidentId,
        by: String,
    },
    IncidentResolved {
        incident: IncidentId,
        resolution: String,
    },
    InvestigationStarted {
        incident: IncidentId,
        resource: ResourceId,
        alert: String,
        severity: Severity,
    },
    EvidenceCollected {
        investigation: InvestigationId,
        evidence: Evidence,
    },
    HypothesesRanked {
        investigation: InvestigationId,
        hypotheses: Vec<Hypothesis>,
    },
    InvestigationConcluded {
        investigation: InvestigationId,
        conclusion: String,
        /// The matching playbook's choice, when one matched and a branch held.
        #[serde(default)]
        playbook: Option<PlaybookChoice>,
    },
    RemediationProposed {
        incident: Option<IncidentId>,
        investigation: Option<InvestigationId>,
        action: Action,
        environment: super::model::Environment,
        team: String,
        reason: String,
        requested_by: String,
        /// The playbook whose validation and failure plan apply.
        #[serde(default)]
        playbook: Option<String>,
    },
    PolicyDecided {
        remediation: RemediationId,
        decision: PolicyDecision,
    },
    ApprovalRequested {
        remediation: RemediationId,
        required: u32,
        expires_at: DateTime<Utc>,
    },
    ApprovalGranted {
        remediation: RemediationId,
        by: String,
        comment: String,
        /// Where the approver connected from (`SSH_CONNECTION` source), if known.
        #[serde(default)]
        source: Option<String>,
        /// How `by` was authenticated; none in logs written before this was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<super::model::Authentication>,
        /// A name the approver declared beside the principal (`$SHIELDOPS_USER`), shown, never counted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        declared_name: Option<String>,
    },
    ApprovalDenied {
        remediation: RemediationId,
        by: String,
        reason: String,
        #[serde(default)]
        source: Option<String>,
        /// How `by` was authenticated; none in logs written before this was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<super::model::Authentication>,
        /// A name the denier declared beside the principal, shown, never counted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        declared_name: Option<String>,
    },
    ApprovalExpired {
        remediation: RemediationId,
    },
    ApprovalEscalated {
        remediation: RemediationId,
        to: String,
        level: u32,
    },
    SnapshotTaken {
        remediation: RemediationId,
        snapshot: Snapshot,
    },
    ActionExecuted {
        remediation: RemediationId,
        outcome: ActionOutcome,
    },
    ValidationFinished {
        remediation: RemediationId,
        passed: bool,
        detail: String,
    },
    RemediationRestored {
        remediation: RemediationId,
        outcome: ActionOutcome,
    },
    RemediationFinished {
        remediation: RemediationId,
        status: RemediationOutcome,
        detail: String,
    },
    SecurityFinding {
        finding: SecurityFinding,
    },
    CostSample {
        resource: ResourceId,
        service: String,
        team: String,
        environment: super::model::Environment,
        /// Cost over the sample window in US cents (integers avoid float drift in sums).
        cents: u64,
        window_hours: u32,
    },
    CostAnomaly {
        resource: ResourceId,
        service: String,
        expected_cents: u64,
        actual_cents: u64,
        window: String,
    },
    CostRecommendation {
        resource: ResourceId,
        title: String,
        monthly_savings_cents: u64,
        #[serde(default)]
        action: Option<Action>,
    },
    /// A team's monthly budget against its spend so far and its pace.
    CostBudgetBurn {
        team: String,
        budget_cents: u64,
        spent_cents: u64,
        /// Spend by the month's end at this pace.
        projected_cents: u64,
        /// Share of the budget spent over share of the month elapsed (1.0 = on pace).
        burn_rate: f64,
        /// Whether the burn rate is at or over the alert level.
        alert: bool,
        /// Where the spend figure comes from (a bill, or an estimate from the fleet).
        basis: String,
    },
    /// An operator's verdict on an investigation's hypothesis.
    HypothesisFeedback {
        investigation: InvestigationId,
        /// The hypothesis's title as ranked.
        hypothesis: String,
        confirmed: bool,
        by: String,
    },
    LearningInsight {
        topic: String,
        insight: String,
        #[serde(default)]
        metrics: BTreeMap<String, f64>,
    },
    /// One delivery attempt that succeeded. `channel` is the configured channel
    /// name; `to` says where without any secret (no URL, key or password).
    NotificationSent {
        channel: String,
        to: String,
        subject: String,
        /// seq of the event this notification was about (none for escalations).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_seq: Option<u64>,
        /// 1 for the first try.
        #[serde(default, skip_serializing_if = "is_zero")]
        attempt: u32,
    },
    /// One delivery attempt that failed; the error never carries a secret.
    NotificationFailed {
        channel: String,
        to: String,
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_seq: Option<u64>,
        #[serde(default, skip_serializing_if = "is_zero")]
        attempt: u32,
        /// No further attempt will be made for this event on this channel.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gave_up: bool,
    },
    AgentHeartbeat {
        agent: String,
        status: String,
        /// When the agent's next run is scheduled (it may run sooner when
        /// poked); absent for agents that run on events, and in older logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_run: Option<DateTime<Utc>>,
    },
    AgentError {
        agent: String,
        error: String,
    },
    OperatorCommand {
        by: String,
        command: String,
        #[serde(default)]
        accepted: bool,
        #[serde(default)]
        detail: String,
    },
    /// The scenario or an operator said the run is over; the supervisor drains.
    ScenarioFinished {
        name: String,
    },
    /// A connector's own condition changed (credentials expired, throttled,
    /// not configured): the Fleet pane shows it beside the resources.
    ConnectorStatus {
        connector: super::model::ConnectorId,
        status: super::model::ConnectorState,
        message: String,
    },
    /// The offline vulnerability database after an import or a staleness
    /// check: which sources it holds and whether they are too old to trust.
    VulnDbStatus {
        sources: Vec<VulnSource>,
        /// The configured limit; older data is stale.
        max_age_days: u32,
        /// True when any source is older than the limit, or none is loaded:
        /// the console must never show "no vulnerabilities" from stale data.
        stale: bool,
    },
    /// One compliance control evaluated against one subject.
    ControlEvaluated {
        result: ControlResult,
    },
    /// What a connector said about one resource when an operator looked at it
    /// (its recent events, a bounded and redacted log tail), or why it could not.
    ResourceInspected {
        resource: super::model::ResourceId,
        requested_by: String,
        evidence: Vec<super::model::Evidence>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The change a remediation would make (current → new), read from the
    /// live object by its connector after the policy allowed it and before
    /// anyone is asked to approve it.
    RemediationPreviewed {
        remediation: RemediationId,
        preview: Preview,
    },
    /// A kind written by a newer build: kept byte-for-byte, shown as unknown.
    #[serde(skip)]
    Unknown {
        kind: String,
        fields: serde_json::Map<String, serde_json::Value>,
    },
}

/// How a remediation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationOutcome {
    Succeeded,
    /// Validation failed and the snapshot was restored.
    RolledBack,
    /// Failed and could not be restored: a human must look.
    Failed,
    Denied,
    Expired,
    /// Abandoned safely after a crash before execution.
    Aborted,
}

impl RemediationOutcome {
    /// Lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            RemediationOutcome::Succeeded => "succeeded",
            RemediationOutcome::RolledBack => "rolled_back",
            RemediationOutcome::Failed => "failed",
            RemediationOutcome::Denied => "denied",
            RemediationOutcome::Expired => "expired",
            RemediationOutcome::Aborted => "aborted",
        }
    }
}

/// A security finding: a CVE on a package, an expiring credential, a failed control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityFinding {
    /// Stable id so rescans update rather than duplicate (`CVE-2024-6387@host-3`).
    pub id: String,
    /// `cve`, `credential`, `compliance`.
    pub category: String,
    pub severity: Severity,
    pub resource: ResourceId,
    pub title: String,
    #[serde(default)]
    pub detail: String,
    /// For credentials: when it expires.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// For compliance: `SOC2:CC6.1` etc.
    #[serde(default)]
    pub control: Option<String>,
    /// False once a rescan no longer sees it.
    #[serde(default = "yes")]
    pub open: bool,
    /// For CVEs: what matched and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<VulnerabilityMatch>,
}

/// Why a package on a resource is vulnerable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnerabilityMatch {
    pub cve: String,
    #[serde(default)]
    pub cvss_score: Option<f64>,
    /// `CVSS:3.1/AV:N/...`
    #[serde(default)]
    pub cvss_vector: Option<String>,
    pub package: String,
    pub installed_version: String,
    /// None when no fixed version is known.
    #[serde(default)]
    pub fixed_version: Option<String>,
    /// The advisory source (`debian:bookworm`, `nvd`).
    pub source: String,
    /// Human-readable reason (`installed 1.2-3 < fixed 1.2-4 (debian bookworm)`).
    pub reason: String,
}

/// One source in the offline vulnerability database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnSource {
    /// `nvd`, `debian`.
    pub name: String,
    pub records: u64,
    pub imported_at: DateTime<Utc>,
}

/// The outcome of one compliance control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    Passing,
    Failing,
    NotApplicable,
    Unknown,
}

impl ControlStatus {
    /// Lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlStatus::Passing => "passing",
            ControlStatus::Failing => "failing",
            ControlStatus::NotApplicable => "not_applicable",
            ControlStatus::Unknown => "unknown",
        }
    }
}

/// A compliance control's result for one subject, with the evidence that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlResult {
    /// `SOC2`, `PCI-DSS`, `HIPAA`, `CIS`.
    pub framework: String,
    /// The control's id within its framework (`CC6.1`, `5.2.10`).
    pub control: String,
    pub title: String,
    pub status: ControlStatus,
    /// The resource checked, or None for a fleet-wide control.
    #[serde(default)]
    pub resource: Option<ResourceId>,
    /// Facts that decided the status (`PermitRootLogin yes in /etc/ssh/sshd_config`).
    #[serde(default)]
    pub evidence: Vec<String>,
}

impl ControlResult {
    /// Stable key: one result per framework, control and subject.
    pub fn key(&self) -> String {
        format!(
            "{}:{}@{}",
            self.framework,
            self.control,
            self.resource
                .as_ref()
                .map(|r| r.as_str())
                .unwrap_or("fleet")
        )
    }
}

fn yes() -> bool {
    true
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The snake_case names of every kind this build knows, in declaration order.
pub const KNOWN_KINDS: &[&str] = &[
    "resource_discovered",
    "resource_changed",
    "resource_gone",
    "health_changed",
    "alert_received",
    "incident_opened",
    "incident_correlated",
    "incident_acknowledged",
    "incident_resolved",
    "investigation_started",
    "evidence_collected",
    "hypotheses_ranked",
    "investigation_concluded",
    "remediation_proposed",
    "policy_decided",
    "approval_requested",
    "approval_granted",
    "approval_denied",
    "approval_expired",
    "approval_escalated",
    "snapshot_taken",
    "action_executed",
    "validation_finished",
    "remediation_restored",
    "remediation_finished",
    "security_finding",
    "cost_sample",
    "cost_anomaly",
    "cost_recommendation",
    "learning_insight",
    "notification_sent",
    "notification_failed",
    "agent_heartbeat",
    "agent_error",
    "operator_command",
    "scenario_finished",
    "cost_budget_burn",
    "hypothesis_feedback",
    "connector_status",
    "vuln_db_status",
    "control_evaluated",
    "resource_inspected",
    "remediation_previewed",
];

impl EventKind {
    /// The snake_case name of this kind, as serialised.
    pub fn name(&self) -> &str {
        match self {
            EventKind::Unknown { kind, .. } => kind,
            other => {
                let idx = other.known_index();
                KNOWN_KINDS[idx]
            }
        }
    }

    fn known_index(&self) -> usize {
        match self {
            EventKind::ResourceDiscovered { .. } => 0,
            EventKind::ResourceChanged { .. } => 1,
            EventKind::ResourceGone { .. } => 2,
            EventKind::HealthChanged { .. } => 3,
            EventKind::AlertReceived { .. } => 4,
            EventKind::IncidentOpened { .. } => 5,
            EventKind::IncidentCorrelated { .. } => 6,
            EventKind::IncidentAcknowledged { .. } => 7,
            EventKind::IncidentResolved { .. } => 8,
            EventKind::InvestigationStarted { .. } => 9,
            EventKind::EvidenceCollected { .. } => 10,
            EventKind::HypothesesRanked { .. } => 11,
            EventKind::InvestigationConcluded { .. } => 12,
            EventKind::RemediationProposed { .. } => 13,
            EventKind::PolicyDecided { .. } => 14,
            EventKind::ApprovalRequested { .. } => 15,
            EventKind::ApprovalGranted { .. } => 16,
            EventKind::ApprovalDenied { .. } => 17,
            EventKind::ApprovalExpired { .. } => 18,
            EventKind::ApprovalEscalated { .. } => 19,
            EventKind::SnapshotTaken { .. } => 20,
            EventKind::ActionExecuted { .. } => 21,
            EventKind::ValidationFinished { .. } => 22,
            EventKind::RemediationRestored { .. } => 23,
            EventKind::RemediationFinished { .. } => 24,
            EventKind::SecurityFinding { .. } => 25,
            EventKind::CostSample { .. } => 26,
            EventKind::CostAnomaly { .. } => 27,
            EventKind::CostRecommendation { .. } => 28,
            EventKind::LearningInsight { .. } => 29,
            EventKind::NotificationSent { .. } => 30,
            EventKind::NotificationFailed { .. } => 31,
            EventKind::AgentHeartbeat { .. } => 32,
            EventKind::AgentError { .. } => 33,
            EventKind::OperatorCommand { .. } => 34,
            EventKind::ScenarioFinished { .. } => 35,
            EventKind::CostBudgetBurn { .. } => 36,
            EventKind::HypothesisFeedback { .. } => 37,
            EventKind::ConnectorStatus { .. } => 38,
            EventKind::VulnDbStatus { .. } => 39,
            EventKind::ControlEvaluated { .. } => 40,
            EventKind::ResourceInspected { .. } => 41,
            EventKind::RemediationPreviewed { .. } => 42,
            EventKind::Unknown { .. } => unreachable!("handled in name()"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kind_names_match_serde_tags() {
        let samples = vec![
            EventKind::AgentHeartbeat {
                agent: "a".into(),
                status: "ok".into(),
                next_run: None,
            },
            EventKind::ScenarioFinished {
                name: "demo".into(),
            },
            EventKind::ApprovalExpired { remediation: 3 },
        ];
        for kind in samples {
            let json = serde_json::to_value(&kind).unwrap();
            assert_eq!(json["kind"], kind.name());
        }
    }

    /// A heartbeat from an older log (no `next_run`) reads, and writes back
    /// byte for byte, so its hash still verifies; a new one carries the time.
    #[test]
    fn heartbeat_next_run_is_optional_and_absent_when_unknown() {
        let old = r#"{"kind":"agent_heartbeat","agent":"cost","status":"ok"}"#;
        let kind: EventKind = serde_json::from_str(old).unwrap();
        assert!(matches!(
            &kind,
            EventKind::AgentHeartbeat { next_run: None, .. }
        ));
        assert_eq!(serde_json::to_string(&kind).unwrap(), old);
        let at: DateTime<Utc> = "2026-06-03T10:00:05Z".parse().unwrap();
        let new = EventKind::AgentHeartbeat {
            agent: "cost".into(),
            status: "ok".into(),
            next_run: Some(at),
        };
        let json = serde_json::to_value(&new).unwrap();
        assert_eq!(json["next_run"], "2026-06-03T10:00:05Z");
        assert_eq!(serde_json::from_value::<EventKind>(json).unwrap(), new);
    }
}
