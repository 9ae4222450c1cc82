//! Security, cost, learning and agent projections.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{
    Action, ControlResult, ControlStatus, Environment, Event, EventKind, RemediationOutcome,
    ResourceId, SecurityFinding, Severity, VulnSource,
};

/// Cost history kept per resource (samples).
const COST_HISTORY: usize = 48;
/// Anomalies and insights kept.
const KEPT: usize = 200;

/// An agent's liveness as last reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub status: String,
    pub errors: u64,
    pub last_error: Option<String>,
    /// When the last error was recorded.
    #[serde(default)]
    pub last_error_at: Option<DateTime<Utc>>,
    /// When the agent said, at its last heartbeat, it would run next;
    /// `None` for agents that run on events (and before any such heartbeat).
    #[serde(default)]
    pub next_run: Option<DateTime<Utc>>,
}

/// A finding with when it was first and last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedFinding {
    pub finding: SecurityFinding,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// Security findings by stable id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Security {
    pub findings: BTreeMap<String, TrackedFinding>,
    /// The offline vulnerability database as last reported; None before any report.
    #[serde(default)]
    pub vulndb: Option<VulnDbView>,
    /// Compliance results by `ControlResult::key`, with when each was evaluated.
    #[serde(default)]
    pub controls: BTreeMap<String, TrackedControl>,
}

/// The vulnerability database's sources and freshness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnDbView {
    pub sources: Vec<VulnSource>,
    pub max_age_days: u32,
    pub stale: bool,
    pub reported_at: DateTime<Utc>,
}

/// A control's latest result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedControl {
    pub result: ControlResult,
    pub evaluated_at: DateTime<Utc>,
}

impl Security {
    pub(super) fn apply_event(&mut self, event: &Event) {
        let at = event.at;
        match &event.kind {
            EventKind::SecurityFinding { finding } => self.apply(finding, at),
            EventKind::VulnDbStatus {
                sources,
                max_age_days,
                stale,
            } => {
                self.vulndb = Some(VulnDbView {
                    sources: sources.clone(),
                    max_age_days: *max_age_days,
                    stale: *stale,
                    reported_at: at,
                })
            }
            EventKind::ControlEvaluated { result } => {
                self.controls.insert(
                    result.key(),
                    TrackedControl {
                        result: result.clone(),
                        evaluated_at: at,
                    },
                );
            }
            _ => {}
        }
    }

    fn apply(&mut self, finding: &SecurityFinding, at: DateTime<Utc>) {
        self.findings
            .entry(finding.id.clone())
            .and_modify(|t| {
                t.finding = finding.clone();
                t.last_seen = at;
            })
            .or_insert_with(|| TrackedFinding {
                finding: finding.clone(),
                first_seen: at,
                last_seen: at,
            });
    }

    /// Open findings, most severe first.
    pub fn open(&self) -> Vec<&TrackedFinding> {
        let mut open: Vec<_> = self.findings.values().filter(|t| t.finding.open).collect();
        open.sort_by(|a, b| {
            b.finding
                .severity
                .cmp(&a.finding.severity)
                .then(a.finding.id.cmp(&b.finding.id))
        });
        open
    }

    /// Posture score 0–100, the figure the Security pane headlines.
    ///
    /// `score = max(0, 100 − findings − controls)`, where
    /// - `findings` = Σ over open findings of critical 20, high 10, medium 4, low 1, info 0;
    /// - `controls` = 40 × (failing + ½ × unknown) ÷ (passing + failing + unknown),
    ///   rounded to the nearest integer, over the latest result of every
    ///   control and subject, and 0 when no control has been evaluated.
    ///   Not-applicable results do not count.
    ///
    /// An unknown result costs half a failing one: a fact nobody could read
    /// must lower the score (it is never passing), but less than a proven
    /// failure. Findings dominate (one critical finding costs half of a
    /// completely failing compliance posture) because they are concrete
    /// exploitable exposure; the control term is a ratio so a large fleet is
    /// not punished for its size. Simple on purpose: an operator can recompute
    /// it by hand from the pane's counts.
    pub fn posture_score(&self) -> u32 {
        self.posture().score
    }

    /// The posture score with the counts it was computed from.
    pub fn posture(&self) -> Posture {
        let finding_penalty: u32 = self
            .findings
            .values()
            .filter(|t| t.finding.open)
            .map(|t| match t.finding.severity {
                Severity::Critical => 20,
                Severity::High => 10,
                Severity::Medium => 4,
                Severity::Low => 1,
                Severity::Info => 0,
            })
            .sum();
        let mut p = Posture {
            finding_penalty,
            ..Posture::default()
        };
        for t in self.controls.values() {
            match t.result.status {
                ControlStatus::Passing => p.passing += 1,
                ControlStatus::Failing => p.failing += 1,
                ControlStatus::Unknown => p.unknown += 1,
                ControlStatus::NotApplicable => p.not_applicable += 1,
            }
        }
        let counted = p.passing + p.failing + p.unknown;
        let control_penalty = if counted == 0 {
            0.0
        } else {
            40.0 * (p.failing as f64 + 0.5 * p.unknown as f64) / counted as f64
        };
        p.control_penalty = control_penalty.round() as u32;
        p.score = 100u32
            .saturating_sub(finding_penalty)
            .saturating_sub(p.control_penalty);
        p
    }
}

/// How the posture score was reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Posture {
    pub score: u32,
    /// Points lost to open findings.
    pub finding_penalty: u32,
    /// Points lost to failing and unknown controls (rounded).
    pub control_penalty: u32,
    pub passing: usize,
    pub failing: usize,
    pub unknown: usize,
    pub not_applicable: usize,
}

/// The latest cost figures for one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEntry {
    pub service: String,
    pub team: String,
    pub environment: Environment,
    pub window_hours: u32,
    /// Most recent samples in cents, newest last.
    pub history: VecDeque<u64>,
}

impl CostEntry {
    /// The latest sample in cents.
    pub fn latest(&self) -> u64 {
        self.history.back().copied().unwrap_or(0)
    }
}

/// A recorded cost anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostAnomalyView {
    pub at: DateTime<Utc>,
    pub resource: ResourceId,
    pub service: String,
    pub expected_cents: u64,
    pub actual_cents: u64,
    pub window: String,
}

/// A cost recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostRecommendationView {
    pub resource: ResourceId,
    pub title: String,
    pub monthly_savings_cents: u64,
    /// The change that realises the saving (applied through the safety path).
    #[serde(default)]
    pub action: Option<Action>,
}

/// A team budget's latest burn figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetView {
    pub at: DateTime<Utc>,
    pub budget_cents: u64,
    pub spent_cents: u64,
    pub projected_cents: u64,
    pub burn_rate: f64,
    pub alert: bool,
    pub basis: String,
}

/// Cost projection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub resources: BTreeMap<ResourceId, CostEntry>,
    pub anomalies: VecDeque<CostAnomalyView>,
    /// One per resource (the best one): a newer recommendation replaces the
    /// old, a zero-saving one without an action withdraws it, so savings are
    /// never counted twice.
    pub recommendations: BTreeMap<ResourceId, CostRecommendationView>,
    /// Budget burn per team.
    pub budgets: BTreeMap<String, BudgetView>,
}

impl Cost {
    pub(super) fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::CostSample {
                resource,
                service,
                team,
                environment,
                cents,
                window_hours,
            } => {
                let entry = self
                    .resources
                    .entry(resource.clone())
                    .or_insert_with(|| CostEntry {
                        service: service.clone(),
                        team: team.clone(),
                        environment: *environment,
                        window_hours: *window_hours,
                        history: VecDeque::new(),
                    });
                entry.history.push_back(*cents);
                while entry.history.len() > COST_HISTORY {
                    entry.history.pop_front();
                }
            }
            EventKind::CostAnomaly {
                resource,
                service,
                expected_cents,
                actual_cents,
                window,
            } => {
                self.anomalies.push_back(CostAnomalyView {
                    at: event.at,
                    resource: resource.clone(),
                    service: service.clone(),
                    expected_cents: *expected_cents,
                    actual_cents: *actual_cents,
                    window: window.clone(),
                });
                while self.anomalies.len() > KEPT {
                    self.anomalies.pop_front();
                }
            }
            EventKind::CostRecommendation {
                resource,
                title,
                monthly_savings_cents,
                action,
            } => {
                if *monthly_savings_cents == 0 && action.is_none() {
                    self.recommendations.remove(resource);
                } else {
                    self.recommendations.insert(
                        resource.clone(),
                        CostRecommendationView {
                            resource: resource.clone(),
                            title: title.clone(),
                            monthly_savings_cents: *monthly_savings_cents,
                            action: action.clone(),
                        },
                    );
                }
            }
            EventKind::CostBudgetBurn {
                team,
                budget_cents,
                spent_cents,
                projected_cents,
                burn_rate,
                alert,
                basis,
            } => {
                self.budgets.insert(
                    team.clone(),
                    BudgetView {
                        at: event.at,
                        budget_cents: *budget_cents,
                        spent_cents: *spent_cents,
                        projected_cents: *projected_cents,
                        burn_rate: *burn_rate,
                        alert: *alert,
                        basis: basis.clone(),
                    },
                );
            }
            _ => {}
        }
    }

    /// Latest spend summed by a grouping key, largest first.
    pub fn spend_by(&self, key: impl Fn(&CostEntry) -> String) -> Vec<(String, u64)> {
        let mut sums: BTreeMap<String, u64> = BTreeMap::new();
        for entry in self.resources.values() {
            *sums.entry(key(entry)).or_default() += entry.latest();
        }
        let mut out: Vec<_> = sums.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Total monthly savings across recommendations (each counted once).
    pub fn total_savings_cents(&self) -> u64 {
        self.recommendations
            .values()
            .map(|r| r.monthly_savings_cents)
            .sum()
    }
}

/// Outcome counts for one action type (a playbook's success rate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub succeeded: u32,
    pub rolled_back: u32,
    pub failed: u32,
    pub not_run: u32,
}

impl OutcomeCounts {
    /// Success rate among remediations that ran, if any ran.
    pub fn success_rate(&self) -> Option<f64> {
        let ran = self.succeeded + self.rolled_back + self.failed;
        (ran > 0).then(|| self.succeeded as f64 / ran as f64)
    }
}

/// Time to resolve one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MttrSample {
    pub at: DateTime<Utc>,
    pub title: String,
    pub minutes: f64,
}

/// A learning insight as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightView {
    pub at: DateTime<Utc>,
    pub topic: String,
    pub insight: String,
    pub metrics: BTreeMap<String, f64>,
}

/// Learning projection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Learning {
    pub by_action: BTreeMap<String, OutcomeCounts>,
    pub mttr: VecDeque<MttrSample>,
    pub insights: VecDeque<InsightView>,
    /// The latest insight per topic (what the Learning pane's charts show).
    #[serde(default)]
    pub latest: BTreeMap<String, InsightView>,
}

impl Learning {
    pub(super) fn apply(&mut self, event: &Event) {
        if let EventKind::LearningInsight {
            topic,
            insight,
            metrics,
        } = &event.kind
        {
            let view = InsightView {
                at: event.at,
                topic: topic.clone(),
                insight: insight.clone(),
                metrics: metrics.clone(),
            };
            self.latest.insert(topic.clone(), view.clone());
            self.insights.push_back(view);
            while self.insights.len() > KEPT {
                self.insights.pop_front();
            }
        }
    }

    pub(super) fn record_mttr(&mut self, at: DateTime<Utc>, title: String, minutes: f64) {
        self.mttr.push_back(MttrSample { at, title, minutes });
        while self.mttr.len() > KEPT {
            self.mttr.pop_front();
        }
    }

    pub(super) fn record_outcome(&mut self, action: &str, outcome: RemediationOutcome) {
        let counts = self.by_action.entry(action.to_string()).or_default();
        match outcome {
            RemediationOutcome::Succeeded => counts.succeeded += 1,
            RemediationOutcome::RolledBack => counts.rolled_back += 1,
            RemediationOutcome::Failed => counts.failed += 1,
            RemediationOutcome::Denied
            | RemediationOutcome::Expired
            | RemediationOutcome::Aborted => counts.not_run += 1,
        }
    }
}

#[cfg(test)]
mod posture_tests {
    use chrono::TimeZone;

    use super::*;
    use crate::event::ResourceId;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    }

    fn with(findings: &[(Severity, bool)], controls: &[ControlStatus]) -> Security {
        let mut s = Security::default();
        for (i, (severity, open)) in findings.iter().enumerate() {
            s.apply(
                &SecurityFinding {
                    id: format!("f{i}"),
                    category: "cve".into(),
                    severity: *severity,
                    resource: ResourceId::new("h"),
                    title: String::new(),
                    detail: String::new(),
                    expires_at: None,
                    control: None,
                    open: *open,
                    vulnerability: None,
                },
                at(),
            );
        }
        for (i, status) in controls.iter().enumerate() {
            let result = ControlResult {
                framework: "CIS".into(),
                control: format!("c{i}"),
                title: String::new(),
                status: *status,
                resource: None,
                evidence: vec![],
            };
            s.controls.insert(
                result.key(),
                TrackedControl {
                    result,
                    evaluated_at: at(),
                },
            );
        }
        s
    }

    #[test]
    fn findings_alone_subtract_by_severity() {
        use Severity::*;
        assert_eq!(with(&[], &[]).posture_score(), 100);
        let s = with(
            &[
                (Critical, true),
                (High, true),
                (Medium, true),
                (Low, true),
                (Info, true),
                (Critical, false),
            ],
            &[],
        );
        assert_eq!(s.posture_score(), 100 - 20 - 10 - 4 - 1);
        assert_eq!(with(&[(Critical, true); 6], &[]).posture_score(), 0);
    }

    #[test]
    fn failing_controls_subtract_a_share_of_forty() {
        use ControlStatus::*;
        // 1 failing of 4 counted: 40 × 1/4 = 10.
        let s = with(&[], &[Passing, Passing, Passing, Failing, NotApplicable]);
        let p = s.posture();
        assert_eq!((p.score, p.control_penalty), (90, 10));
        assert_eq!(
            (p.passing, p.failing, p.unknown, p.not_applicable),
            (3, 1, 0, 1)
        );
        // Everything failing costs 40, plus findings.
        let s = with(&[(Severity::High, true)], &[Failing, Failing]);
        assert_eq!(s.posture_score(), 100 - 10 - 40);
    }

    #[test]
    fn unknown_is_never_as_good_as_passing() {
        use ControlStatus::*;
        let passing = with(&[], &[Passing, Passing]).posture_score();
        let unknown = with(&[], &[Passing, Unknown]).posture_score();
        let failing = with(&[], &[Passing, Failing]).posture_score();
        assert!(
            failing < unknown && unknown < passing,
            "{failing} {unknown} {passing}"
        );
        // 40 × ½ / 2 = 10.
        assert_eq!(unknown, 90);
        // Only not-applicable results: nothing counted, nothing lost.
        assert_eq!(with(&[], &[NotApplicable]).posture_score(), 100);
    }
}
