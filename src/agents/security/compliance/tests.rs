use std::sync::Arc;

use chrono::{Duration, TimeZone};

use super::*;
use crate::clock::ManualClock;
use crate::connectors::Registry;
use crate::event::{ConnectorId, Environment, Health, Provider, ResourceId, Severity};
use crate::policy::Gate;
use crate::store::EventLog;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn resource(id: &str, kind: &str, attrs: &[(&str, &str)]) -> Resource {
    Resource {
        id: ResourceId::new(id),
        name: id.rsplit('/').next().unwrap_or(id).into(),
        kind: kind.into(),
        provider: Provider::Linux,
        connector: ConnectorId::new("linux:local"),
        environment: Environment::Production,
        team: "ops".into(),
        labels: Default::default(),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        health: Health::healthy(),
        created_at: now(),
    }
}

fn hardened_host(id: &str, root_login: &str) -> Resource {
    resource(
        id,
        "host",
        &[
            ("sshd.permit_root_login", root_login),
            ("sshd.password_authentication", "no"),
            ("sshd.source", "sshd -T"),
            ("file./etc/shadow.mode", "0640"),
            ("file./etc/shadow.owner", "root:shadow"),
            ("unattended_upgrades", "enabled"),
            ("pkg:openssh-server", "1:9.2p1-2+deb12u3"),
        ],
    )
}

fn cve(host: &str) -> SecurityFinding {
    SecurityFinding {
        id: format!("CVE-2024-6387@{host}"),
        category: "cve".into(),
        severity: Severity::Critical,
        resource: ResourceId::new(host),
        title: "CVE-2024-6387 in openssh-server".into(),
        detail: String::new(),
        expires_at: None,
        control: None,
        open: true,
        vulnerability: None,
    }
}

fn intact() -> AuditCheck {
    AuditCheck {
        intact: Some(true),
        detail: "hash chain intact from the first event to the head".into(),
    }
}

fn fresh_db() -> VulnDbView {
    VulnDbView {
        sources: vec![crate::event::VulnSource {
            name: "debian".into(),
            records: 1200,
            imported_at: now() - Duration::days(1),
        }],
        max_age_days: 7,
        stale: false,
        reported_at: now(),
    }
}

fn status(
    results: &[ControlResult],
    framework: &str,
    control: &str,
    subject: &str,
) -> ControlStatus {
    results
        .iter()
        .find(|r| {
            r.framework == framework
                && r.control == control
                && r.resource.as_ref().map(|x| x.as_str()) == Some(subject)
        })
        .map(|r| r.status)
        .unwrap_or_else(|| panic!("no {framework} {control} for {subject}: {results:#?}"))
}

#[test]
fn inventory_carries_facts_ages_and_leaves_packages_out() {
    let cred = resource(
        "vault/db",
        "credential",
        &[("rotated_at", "2025-11-01T00:00:00Z"), ("store", "vault")],
    );
    let undated = resource("vault/api", "credential", &[("rotated_at", "yesterday")]);
    let findings = BTreeMap::from([("CVE-2024-6387@linux/h1".to_string(), cve("linux/h1"))]);
    let first_seen = BTreeMap::from([(
        "CVE-2024-6387@linux/h1".to_string(),
        now() - Duration::days(40),
    )]);
    let doc = inventory(
        &[hardened_host("linux/h1", "no"), cred, undated],
        &findings,
        &first_seen,
        None,
        &intact(),
        now(),
    );
    let host = &doc["hosts"][0];
    assert_eq!(host["attributes"]["sshd.permit_root_login"], "no");
    assert!(host["attributes"].get("pkg:openssh-server").is_none());
    assert_eq!(doc["credentials"][0]["rotated_age_days"], 121);
    assert!(doc["credentials"][1]["rotated_age_days"].is_null());
    assert_eq!(doc["vulnerabilities"][0]["age_days"], 40);
    assert_eq!(doc["vulnerabilities"][0]["cve"], "CVE-2024-6387");
    assert_eq!(doc["vulndb"]["loaded"], false);
    assert_eq!(doc["vulndb"]["stale"], true);
    assert_eq!(doc["audit_log"]["intact"], true);
}

#[test]
fn the_embedded_bundle_decides_controls_from_the_inventory() {
    let gate = Gate::load(None).unwrap();
    let findings = BTreeMap::from([("CVE-2024-6387@linux/h2".to_string(), cve("linux/h2"))]);
    let first_seen = BTreeMap::from([(
        "CVE-2024-6387@linux/h2".to_string(),
        now() - Duration::days(45),
    )]);
    let db = fresh_db();
    let doc = inventory(
        &[
            hardened_host("linux/h1", "no"),
            hardened_host("linux/h2", "yes"),
        ],
        &findings,
        &first_seen,
        Some(&db),
        &intact(),
        now(),
    );
    let results = gate.evaluate_compliance(&doc).unwrap();
    assert_eq!(
        status(&results, "CIS", "Linux 5.2.10", "linux/h1"),
        ControlStatus::Passing
    );
    assert_eq!(
        status(&results, "CIS", "Linux 5.2.10", "linux/h2"),
        ControlStatus::Failing
    );
    assert_eq!(
        status(&results, "PCI-DSS", "6.3.3", "linux/h1"),
        ControlStatus::Passing
    );
    assert_eq!(
        status(&results, "PCI-DSS", "6.3.3", "linux/h2"),
        ControlStatus::Failing
    );
    let hipaa = results
        .iter()
        .find(|r| r.framework == "HIPAA" && r.control == "164.312(b)")
        .unwrap();
    assert_eq!(hipaa.status, ControlStatus::Passing);
    assert_eq!(hipaa.resource, None);
    assert!(hipaa.evidence[0].contains("hash chain intact"), "{hipaa:?}");
    // Without vulnerability data the patching control cannot pass.
    let doc = inventory(
        &[hardened_host("linux/h1", "no")],
        &BTreeMap::new(),
        &BTreeMap::new(),
        None,
        &intact(),
        now(),
    );
    let results = gate.evaluate_compliance(&doc).unwrap();
    assert_eq!(
        status(&results, "PCI-DSS", "6.3.3", "linux/h1"),
        ControlStatus::Unknown
    );
}

/// A gate whose compliance evaluation always fails.
struct BrokenGate;

impl PolicyGate for BrokenGate {
    fn decide(&self, _: &State, _: u64, _: &str, _: DateTime<Utc>) -> crate::event::PolicyDecision {
        crate::runtime::policy::deny("test gate")
    }
    fn evaluate_compliance(&self, _: &Value) -> Result<Vec<ControlResult>, String> {
        Err("engine exploded".into())
    }
}

fn context(dir: &std::path::Path) -> AgentContext {
    AgentContext {
        log: EventLog::open(dir).unwrap(),
        registry: Registry::new(),
        clock: Arc::new(ManualClock::new(now())),
        playbooks: Arc::new(crate::playbook::Library::load(None).unwrap()),
    }
}

fn controls_in(log: &EventLog) -> Vec<ControlResult> {
    log.scan(1)
        .filter_map(Result::ok)
        .filter_map(|e| match e.kind {
            EventKind::ControlEvaluated { result } => Some(result),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn results_are_recorded_on_change_only_and_a_failed_evaluation_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let gate: Arc<dyn PolicyGate> = Arc::new(Gate::load(None).unwrap());
    let mut compliance = Compliance::new(gate, &State::new());
    let hosts = [hardened_host("linux/h1", "no")];
    let first = compliance
        .evaluate(&ctx, &hosts, &BTreeMap::new(), true)
        .await;
    assert!(first > 0);
    let recorded = controls_in(&ctx.log);
    assert_eq!(recorded.len(), first);
    // The log it verified is the one holding these results.
    let audit = recorded
        .iter()
        .find(|r| r.framework == "SOC2" && r.control == "CC7.2")
        .unwrap();
    assert_eq!(audit.status, ControlStatus::Passing);

    // Nothing changed (the log grew, but its chain is still intact).
    let again = compliance
        .evaluate(&ctx, &hosts, &BTreeMap::new(), true)
        .await;
    assert_eq!(again, 0);
    assert_eq!(controls_in(&ctx.log).len(), first);

    // A host changing one fact changes only its results that rest on it.
    let hosts = [hardened_host("linux/h1", "yes")];
    let before = controls_in(&ctx.log).len();
    compliance
        .evaluate(&ctx, &hosts, &BTreeMap::new(), true)
        .await;
    let changed: Vec<_> = controls_in(&ctx.log)[before..]
        .iter()
        .filter(|r| r.resource.is_some())
        .cloned()
        .collect();
    assert!(!changed.is_empty());
    assert!(
        changed.iter().all(|r| r.status == ControlStatus::Failing),
        "{changed:#?}"
    );

    // A gate that cannot evaluate turns every known control unknown.
    let mut state = State::new();
    for e in ctx.log.scan(1).filter_map(Result::ok) {
        state.apply(&e);
    }
    let known = state.security.controls.len();
    let mut broken = Compliance::new(Arc::new(BrokenGate), &state);
    let n = broken.evaluate(&ctx, &hosts, &BTreeMap::new(), true).await;
    assert_eq!(n, known);
    for e in ctx.log.scan(state.last_seq + 1).filter_map(Result::ok) {
        state.apply(&e);
    }
    assert!(
        state
            .security
            .controls
            .values()
            .all(|t| t.result.status == ControlStatus::Unknown
                && t.result.evidence[0].contains("engine exploded"))
    );
}

#[tokio::test]
async fn before_any_result_a_failed_evaluation_records_one_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let mut broken = Compliance::new(Arc::new(BrokenGate), &State::new());
    broken
        .evaluate(
            &ctx,
            &[hardened_host("linux/h1", "no")],
            &BTreeMap::new(),
            true,
        )
        .await;
    let recorded = controls_in(&ctx.log);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].status, ControlStatus::Unknown);
}

#[tokio::test]
async fn a_vanished_subject_is_retired_only_after_a_complete_scan() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let gate: Arc<dyn PolicyGate> = Arc::new(Gate::load(None).unwrap());
    let mut compliance = Compliance::new(gate, &State::new());
    let both = [
        hardened_host("linux/h1", "no"),
        hardened_host("linux/h2", "no"),
    ];
    compliance
        .evaluate(&ctx, &both, &BTreeMap::new(), true)
        .await;
    let before = controls_in(&ctx.log).len();
    compliance
        .evaluate(&ctx, &both[..1], &BTreeMap::new(), false)
        .await;
    assert!(
        controls_in(&ctx.log)[before..]
            .iter()
            .all(|r| r.resource.as_ref().map(|x| x.as_str()) != Some("linux/h2"))
    );
    let before = controls_in(&ctx.log).len();
    compliance
        .evaluate(&ctx, &both[..1], &BTreeMap::new(), true)
        .await;
    let retired: Vec<_> = controls_in(&ctx.log)[before..]
        .iter()
        .filter(|r| r.resource.as_ref().map(|x| x.as_str()) == Some("linux/h2"))
        .cloned()
        .collect();
    assert!(!retired.is_empty());
    assert!(
        retired
            .iter()
            .all(|r| r.status == ControlStatus::NotApplicable)
    );
}
