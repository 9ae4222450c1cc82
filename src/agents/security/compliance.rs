//! Compliance: each scan builds an inventory document from the connectors'
//! resources, the open CVE findings (with how long each has been open), the
//! vulnerability data's freshness and the event log's chain check, and has
//! the policy gate evaluate the SOC 2 / PCI-DSS / HIPAA / CIS controls in
//! `policies/compliance/` over it. A result is recorded only when it changed.
//!
//! Fail closed: when the evaluation fails, every control already known (or,
//! before any is known, one placeholder) becomes `unknown` with the error as
//! its evidence — never `passing`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::AgentContext;
use crate::event::{ControlResult, ControlStatus, EventKind, Resource, SecurityFinding};
use crate::runtime::policy::PolicyGate;
use crate::state::{State, VulnDbView};

const ACTOR: &str = "agent:security";

/// Resource kinds listed as roles in the inventory.
const ROLE_KINDS: &[&str] = &["role", "clusterrole"];

/// What the compliance evaluation remembers between scans.
pub(super) struct Compliance {
    policy: Arc<dyn PolicyGate>,
    /// The last log seq folded into `first_seen` and `vulndb`.
    folded: u64,
    /// When each finding was first recorded (the state's `first_seen`).
    first_seen: BTreeMap<String, DateTime<Utc>>,
    vulndb: Option<VulnDbView>,
    /// The results last recorded, by `ControlResult::key`.
    recorded: BTreeMap<String, ControlResult>,
    /// The head the last audit check verified, and how many scans ago the
    /// whole chain was last read.
    audited: AuditProgress,
}

/// Where the chain check stands. The first scan verifies from where the
/// store's own check at open began (the newest state snapshot, or the first
/// event); each later scan verifies what was appended since (and that the
/// last verified record is unchanged). Reading a long log in full inside the
/// running process cost seconds of CPU every scan and left tens of megabytes
/// of the storage engine's page metadata resident for good (README,
/// Performance › console memory); the whole chain is `shieldops log verify`'s.
#[derive(Debug, Default)]
struct AuditProgress {
    head: Option<crate::store::Anchor>,
}

/// The event log's chain check as the controls see it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AuditCheck {
    /// None when the check could not run.
    pub intact: Option<bool>,
    pub detail: String,
}

impl Compliance {
    /// Starts from what `state` already holds.
    pub(super) fn new(policy: Arc<dyn PolicyGate>, state: &State) -> Self {
        Self {
            policy,
            folded: state.last_seq,
            first_seen: state
                .security
                .findings
                .iter()
                .map(|(id, t)| (id.clone(), t.first_seen))
                .collect(),
            vulndb: state.security.vulndb.clone(),
            recorded: state
                .security
                .controls
                .iter()
                .map(|(k, t)| (k.clone(), t.result.clone()))
                .collect(),
            audited: AuditProgress::default(),
        }
    }

    /// Evaluates every control over this scan's resources; returns how many
    /// results changed. `complete` is false when some connector did not
    /// answer (then no result is retired for a resource that went missing).
    pub(super) async fn evaluate(
        &mut self,
        ctx: &AgentContext,
        resources: &[Resource],
        findings: &BTreeMap<String, SecurityFinding>,
        complete: bool,
    ) -> usize {
        let now = ctx.clock.now();
        self.fold(ctx).await;
        let audit = audit_check(ctx, &mut self.audited).await;
        let inventory = self.inventory(resources, findings, &audit, now);
        let policy = self.policy.clone();
        let evaluated = tokio::task::spawn_blocking(move || policy.evaluate_compliance(&inventory))
            .await
            .unwrap_or_else(|e| Err(format!("compliance evaluation task failed: {e}")));
        let results = match evaluated {
            Ok(results) => self.with_retired(results, complete),
            Err(e) => {
                ctx.report_error("security", format!("compliance: {e}"))
                    .await;
                self.failed_closed(&e)
            }
        };
        let changed: Vec<ControlResult> = results
            .into_iter()
            .filter(|r| self.recorded.get(&r.key()) != Some(r))
            .collect();
        if changed.is_empty() {
            return 0;
        }
        let kinds = changed
            .iter()
            .map(|r| EventKind::ControlEvaluated { result: r.clone() })
            .collect();
        match ctx.record_many(ACTOR, kinds).await {
            Ok(_) => {
                for r in &changed {
                    self.recorded.insert(r.key(), r.clone());
                }
                changed.len()
            }
            Err(e) => {
                ctx.report_error("security", format!("compliance results not recorded: {e}"))
                    .await;
                0
            }
        }
    }

    /// Folds the events recorded since the last scan: when findings were
    /// first seen, and the vulnerability data's latest status.
    async fn fold(&mut self, ctx: &AgentContext) {
        let log = ctx.log.clone();
        let from = self.folded + 1;
        let end = ctx.log.last_seq();
        let scanned = tokio::task::spawn_blocking(move || {
            log.scan(from)
                .take_while(|e| e.as_ref().map_or(true, |e| e.seq <= end))
                .filter_map(Result::ok)
                .filter(|e| {
                    matches!(
                        e.kind,
                        EventKind::SecurityFinding { .. } | EventKind::VulnDbStatus { .. }
                    )
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for event in scanned {
            match event.kind {
                EventKind::SecurityFinding { finding } => {
                    self.first_seen.entry(finding.id).or_insert(event.at);
                }
                EventKind::VulnDbStatus {
                    sources,
                    max_age_days,
                    stale,
                } => {
                    self.vulndb = Some(VulnDbView {
                        sources,
                        max_age_days,
                        stale,
                        reported_at: event.at,
                    })
                }
                _ => {}
            }
        }
        self.folded = self.folded.max(end);
    }

    /// The document the compliance rules read (see `policies/compliance/checks.rego`).
    fn inventory(
        &self,
        resources: &[Resource],
        findings: &BTreeMap<String, SecurityFinding>,
        audit: &AuditCheck,
        now: DateTime<Utc>,
    ) -> Value {
        inventory(
            resources,
            findings,
            &self.first_seen,
            self.vulndb.as_ref(),
            audit,
            now,
        )
    }

    /// Adds a `not_applicable` result for every recorded one whose subject
    /// is no longer in the inventory (only after a complete scan).
    fn with_retired(&self, mut results: Vec<ControlResult>, complete: bool) -> Vec<ControlResult> {
        if !complete {
            return results;
        }
        let current: std::collections::BTreeSet<String> =
            results.iter().map(ControlResult::key).collect();
        for (key, old) in &self.recorded {
            if current.contains(key) || old.status == ControlStatus::NotApplicable {
                continue;
            }
            let mut retired = old.clone();
            retired.status = ControlStatus::NotApplicable;
            retired.evidence = vec!["the subject is no longer in the inventory".into()];
            results.push(retired);
        }
        results
    }

    /// Every known control `unknown`, carrying the error.
    fn failed_closed(&self, error: &str) -> Vec<ControlResult> {
        let evidence = vec![format!("compliance evaluation failed: {error}")];
        let mut out: Vec<ControlResult> = self
            .recorded
            .values()
            .map(|r| ControlResult {
                status: ControlStatus::Unknown,
                evidence: evidence.clone(),
                ..r.clone()
            })
            .collect();
        if out.is_empty() {
            out.push(ControlResult {
                framework: "ShieldOps".into(),
                control: "compliance".into(),
                title: "Compliance controls could not be evaluated".into(),
                status: ControlStatus::Unknown,
                resource: None,
                evidence,
            });
        }
        out
    }
}

/// Verifies the event log's chain from where it was last verified (see
/// [`AuditProgress`]).
async fn audit_check(ctx: &AgentContext, progress: &mut AuditProgress) -> AuditCheck {
    let log = ctx.log.clone();
    let from = log.verified_from();
    let known = progress.head;
    let result = tokio::task::spawn_blocking(move || log.verify_since(known)).await;
    progress.head = match &result {
        Ok(Ok((_, head))) => *head,
        _ => None,
    };
    match result.map(|r| r.map(|(report, _)| report)) {
        Ok(Ok(report)) => match report.first_bad {
            // No event count here: it grows every scan, and evidence that
            // changes every scan would record a new result every scan.
            None if from <= 1 => AuditCheck {
                intact: Some(true),
                detail: "hash chain intact from the first event to the head".into(),
            },
            None => AuditCheck {
                intact: Some(true),
                detail: format!(
                    "hash chain intact from seq {from} (the newest state snapshot when the log was opened) to the head; `shieldops log verify` checks the records before it"
                ),
            },
            Some((seq, why)) => AuditCheck {
                intact: Some(false),
                detail: format!(
                    "hash chain broken at seq {seq}: {why} ({} events verified before it)",
                    report.checked
                ),
            },
        },
        Ok(Err(e)) => AuditCheck {
            intact: None,
            detail: format!("verify failed: {e}"),
        },
        Err(e) => AuditCheck {
            intact: None,
            detail: format!("verify task failed: {e}"),
        },
    }
}

/// Builds the inventory document. Package attributes (`pkg:*`) are left out:
/// the rules do not read them and a host has thousands.
pub(super) fn inventory(
    resources: &[Resource],
    findings: &BTreeMap<String, SecurityFinding>,
    first_seen: &BTreeMap<String, DateTime<Utc>>,
    vulndb: Option<&VulnDbView>,
    audit: &AuditCheck,
    now: DateTime<Utc>,
) -> Value {
    let entry = |r: &Resource| {
        let attributes: serde_json::Map<String, Value> = r
            .attributes
            .iter()
            .filter(|(k, _)| !k.starts_with("pkg:"))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({
            "id": r.id.as_str(),
            "name": r.name,
            "kind": r.kind,
            "environment": r.environment.as_str(),
            "team": r.team,
            "attributes": attributes,
        })
    };
    let is_workload = |r: &Resource| {
        r.kind == "pod"
            || r.attributes.contains_key("security.privileged")
            || r.attributes.contains_key("resources.limits")
    };
    let hosts: Vec<Value> = resources
        .iter()
        .filter(|r| r.kind == "host")
        .map(entry)
        .collect();
    let pods: Vec<Value> = resources
        .iter()
        .filter(|r| is_workload(r))
        .map(entry)
        .collect();
    let roles: Vec<Value> = resources
        .iter()
        .filter(|r| ROLE_KINDS.contains(&r.kind.as_str()))
        .map(entry)
        .collect();
    let credentials: Vec<Value> = resources
        .iter()
        .filter(|r| r.kind == "credential")
        .map(|r| {
            let mut v = entry(r);
            let rotated = ["rotated_at", "created_at"].iter().find_map(|k| {
                r.attributes
                    .get(k)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            });
            v["rotated_age_days"] = match rotated {
                Some(t) => json!((now - t.with_timezone(&Utc)).num_days()),
                None => Value::Null,
            };
            v
        })
        .collect();
    let vulnerabilities: Vec<Value> = findings
        .values()
        .filter(|f| f.open && f.category == "cve")
        .map(|f| {
            let since = first_seen.get(&f.id).copied().unwrap_or(now);
            let cve = f
                .vulnerability
                .as_ref()
                .map(|v| v.cve.clone())
                .unwrap_or_else(|| f.id.split('@').next().unwrap_or(&f.id).to_string());
            json!({
                "id": f.id,
                "cve": cve,
                "resource": f.resource.as_str(),
                "severity": f.severity.as_str(),
                "first_seen": crate::event::rfc3339(&since),
                "age_days": (now - since).num_days(),
            })
        })
        .collect();
    json!({
        "time": {"rfc3339": crate::event::rfc3339(&now)},
        "hosts": hosts,
        "pods": pods,
        "roles": roles,
        "credentials": credentials,
        "vulnerabilities": vulnerabilities,
        "vulndb": vulndb_summary(vulndb, now),
        "audit_log": {
            "intact": audit.intact,
            "detail": audit.detail,
        },
    })
}

/// The vulnerability data's state as the patching controls read it.
fn vulndb_summary(vulndb: Option<&VulnDbView>, now: DateTime<Utc>) -> Value {
    match vulndb {
        None => json!({
            "loaded": false,
            "stale": true,
            "summary": "not loaded (run `shieldops cve import`)",
        }),
        Some(v) => {
            let sources: Vec<String> = v
                .sources
                .iter()
                .map(|s| {
                    format!(
                        "{} {} records, {} days old",
                        s.name,
                        s.records,
                        (now - s.imported_at).num_days()
                    )
                })
                .collect();
            let loaded = !v.sources.is_empty();
            json!({
                "loaded": loaded,
                "stale": v.stale || !loaded,
                "summary": format!(
                    "{}{} (limit {} days)",
                    if v.stale { "STALE: " } else { "" },
                    if loaded { sources.join("; ") } else { "no sources".into() },
                    v.max_age_days
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests;
