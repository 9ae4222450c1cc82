//! Deterministic fixtures for the console's snapshot tests and benchmarks:
//! a hand-built, realistic event sequence with fixed timestamps, folded into
//! a [`State`], and a fixed "now" to render with.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::event::StringMap;
use crate::event::*;
use crate::state::State;

/// The instant the fixture is rendered at: 2026-03-02 09:30:00 UTC.
pub fn fixture_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0)
        .single()
        .expect("valid date")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("valid date")
}

/// Seals drafts into a hash-chained event list starting at seq 1.
pub fn seal_all(drafts: Vec<NewEvent>) -> Vec<Event> {
    let mut prev = ChainHash::GENESIS;
    drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let (event, _) = Event::seal(i as u64 + 1, prev, d);
            prev = event.hash;
            event
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn resource(
    id: &str,
    name: &str,
    kind: &str,
    provider: Provider,
    env: Environment,
    team: &str,
    created: DateTime<Utc>,
    attrs: &[(&str, &str)],
) -> Resource {
    Resource {
        id: ResourceId::new(id),
        name: name.into(),
        kind: kind.into(),
        provider,
        connector: ConnectorId::new(format!("sim:{}", provider.label())),
        environment: env,
        team: team.into(),
        labels: StringMap::from([(
            "app".to_string(),
            name.split('-').next().unwrap_or(name).to_string(),
        )]),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        health: Health::healthy(),
        created_at: created,
    }
}

const CHECKOUT_DEPLOY: &str = "k8s/prod-eu/payments/deployment/checkout";
const CHECKOUT_POD: &str = "k8s/prod-eu/payments/pod/checkout-7d9f8";
const SEARCH: &str = "k8s/staging-eu/search/deployment/search-api";
const ORDERS_DB: &str = "aws/eu-west-1/rds/orders-db";
const BUILD: &str = "linux/ci/build-07";
const BASTION: &str = "linux/prod/bastion-1";
const WORKER: &str = "aws/eu-west-1/ec2/i-0a1b2c3d4e";
const NODE: &str = "k8s/prod-eu/node/ip-10-0-3-17";
const REPORTING: &str = "azure/westeurope/vm/reporting-1";
const DEPLOY_KEY: &str = "aws/iam/access-key/deploy-bot";

/// The fixture's events: a fleet across environments and teams, an OOM
/// incident with evidence and ranked hypotheses and a remediation awaiting
/// approval, finished, denied and rolled-back remediations, security
/// findings, cost samples with an anomaly and recommendations, learning
/// insights and agent heartbeats.
pub fn fixture_events() -> Vec<Event> {
    let t = t0();
    let at = |m: i64, s: i64| t + Duration::minutes(m) + Duration::seconds(s);
    let mut d: Vec<NewEvent> = Vec::new();
    let mut push = |when: DateTime<Utc>, actor: &str, kind: EventKind| {
        d.push(NewEvent::new(when, actor, kind))
    };
    let day = |n: i64| t - Duration::days(n);

    let fleet = vec![
        resource(
            CHECKOUT_DEPLOY,
            "checkout",
            "deployment",
            Provider::Kubernetes,
            Environment::Production,
            "payments",
            day(120),
            &[
                ("image", "checkout:v2.14.0"),
                ("images", "checkout:v2.14.0,envoyproxy/envoy:v1.29.1"),
                ("replicas", "3"),
                ("memory_limit", "512Mi"),
            ],
        ),
        resource(
            CHECKOUT_POD,
            "checkout-7d9f8",
            "pod",
            Provider::Kubernetes,
            Environment::Production,
            "payments",
            t - Duration::minutes(25),
            &[("node", "ip-10-0-3-17"), ("restarts", "3")],
        ),
        resource(
            "k8s/prod-eu/payments/deployment/ledger",
            "ledger",
            "deployment",
            Provider::Kubernetes,
            Environment::Production,
            "payments",
            day(300),
            &[("image", "ledger:v5.2.1")],
        ),
        resource(
            "k8s/staging-eu/payments/deployment/checkout",
            "checkout",
            "deployment",
            Provider::Kubernetes,
            Environment::Staging,
            "payments",
            day(60),
            &[("image", "checkout:v2.15.0-rc1")],
        ),
        resource(
            SEARCH,
            "search-api",
            "deployment",
            Provider::Kubernetes,
            Environment::Staging,
            "search",
            day(45),
            &[("image", "search-api:v8.0.3")],
        ),
        resource(
            NODE,
            "ip-10-0-3-17",
            "node",
            Provider::Kubernetes,
            Environment::Production,
            "platform",
            day(12),
            &[("instance_type", "m6i.2xlarge")],
        ),
        resource(
            ORDERS_DB,
            "orders-db",
            "rds_instance",
            Provider::Aws,
            Environment::Production,
            "orders",
            day(700),
            &[("engine", "postgres 15.6"), ("class", "db.r6g.xlarge")],
        ),
        resource(
            WORKER,
            "batch-worker-1",
            "ec2_instance",
            Provider::Aws,
            Environment::Production,
            "data",
            day(200),
            &[("instance_type", "m5.2xlarge")],
        ),
        resource(
            DEPLOY_KEY,
            "deploy-bot",
            "credential",
            Provider::Aws,
            Environment::Production,
            "platform",
            day(85),
            &[],
        ),
        resource(
            BASTION,
            "bastion-1",
            "host",
            Provider::Linux,
            Environment::Production,
            "platform",
            day(400),
            &[("os", "ubuntu 22.04"), ("openssh", "8.9p1")],
        ),
        resource(
            BUILD,
            "build-07",
            "host",
            Provider::Linux,
            Environment::Development,
            "ci",
            day(30),
            &[("disk", "/var 200G")],
        ),
        resource(
            "gcp/analytics/bigquery/events",
            "events-warehouse",
            "bigquery_dataset",
            Provider::Gcp,
            Environment::Development,
            "data",
            day(90),
            &[],
        ),
        resource(
            REPORTING,
            "reporting-1",
            "vm",
            Provider::Azure,
            Environment::Staging,
            "finance",
            day(150),
            &[("size", "Standard_D4s_v5")],
        ),
    ];
    for r in fleet {
        push(
            t - Duration::minutes(20),
            "discovery",
            EventKind::ResourceDiscovered { resource: r },
        );
    }
    for agent in [
        "supervisor",
        "investigation",
        "remediation",
        "security",
        "cost",
        "learning",
    ] {
        push(
            t - Duration::minutes(19),
            agent,
            EventKind::AgentHeartbeat {
                agent: agent.into(),
                status: "started".into(),
                next_run: None,
            },
        );
    }

    // History: resolved incidents that give the MTTR trend and success rates.
    let history: [(i64, &str, f64, &str, RemediationOutcome); 5] = [
        (
            18,
            "build-07 disk pressure",
            6.0,
            "clean_disk",
            RemediationOutcome::Succeeded,
        ),
        (
            16,
            "checkout staging crashloop",
            14.0,
            "restart_pod",
            RemediationOutcome::Succeeded,
        ),
        (
            14,
            "search-api latency",
            22.0,
            "restart_pod",
            RemediationOutcome::RolledBack,
        ),
        (
            12,
            "build-07 disk pressure",
            4.5,
            "clean_disk",
            RemediationOutcome::Succeeded,
        ),
        (
            10,
            "ledger 5xx burst",
            9.0,
            "scale_deployment",
            RemediationOutcome::Succeeded,
        ),
    ];
    // Sealed seqs are positions + 1; track them to reference ids.
    let mut seq = d.len() as u64;
    let mut next = |d: &mut Vec<NewEvent>, when: DateTime<Utc>, actor: &str, kind: EventKind| {
        d.push(NewEvent::new(when, actor, kind));
        seq += 1;
        seq
    };
    for (mins_ago, title, minutes, action, outcome) in history {
        let opened = t - Duration::minutes(mins_ago);
        let target = if title.starts_with("build") {
            BUILD
        } else if title.starts_with("search") {
            SEARCH
        } else {
            "k8s/prod-eu/payments/deployment/ledger"
        };
        let alert_seq = next(
            &mut d,
            opened,
            "alerts",
            EventKind::AlertReceived {
                alert: Alert {
                    name: "HistoricalAlert".into(),
                    severity: Severity::High,
                    resource: ResourceId::new(target),
                    fingerprint: format!("fp-{mins_ago}"),
                    summary: title.into(),
                    labels: BTreeMap::new(),
                    status: AlertStatus::Firing,
                    source: "scenario".into(),
                },
                posted_by: None,
            },
        );
        let inc = next(
            &mut d,
            opened,
            "supervisor",
            EventKind::IncidentOpened {
                labels: Default::default(),
                title: title.into(),
                alert: "HistoricalAlert".into(),
                severity: Severity::High,
                resource: ResourceId::new(target),
                fingerprint: format!("fp-{mins_ago}"),
                alert_seq,
            },
        );
        let rem = next(
            &mut d,
            opened + Duration::seconds(30),
            "remediation",
            EventKind::RemediationProposed {
                playbook: None,
                incident: Some(inc),
                investigation: None,
                action: Action::new(action, ResourceId::new(target)),
                environment: if target == BUILD {
                    Environment::Development
                } else if target == SEARCH {
                    Environment::Staging
                } else {
                    Environment::Production
                },
                team: "platform".into(),
                reason: title.into(),
                requested_by: "remediation-agent".into(),
            },
        );
        next(
            &mut d,
            opened + Duration::seconds(31),
            "policy",
            EventKind::PolicyDecided {
                remediation: rem,
                decision: PolicyDecision {
                    allow: true,
                    deny: vec![],
                    required_approvals: 0,
                    risk: Risk::Low,
                    controls: vec![],
                    bundle_hash: "9f2c1e0b7a44d3".into(),
                    input_digest: String::new(),
                },
            },
        );
        next(
            &mut d,
            opened + Duration::seconds(32),
            "remediation",
            EventKind::SnapshotTaken {
                remediation: rem,
                snapshot: Snapshot {
                    resource: ResourceId::new(target),
                    connector: ConnectorId::new("sim:demo"),
                    taken_at: opened + Duration::seconds(32),
                    data: serde_json::json!({}),
                    summary: "state captured".into(),
                },
            },
        );
        next(
            &mut d,
            opened + Duration::seconds(40),
            "remediation",
            EventKind::ActionExecuted {
                remediation: rem,
                outcome: ActionOutcome {
                    success: true,
                    message: "done".into(),
                    steps: vec![format!("{action} on {target}")],
                },
            },
        );
        let passed = outcome == RemediationOutcome::Succeeded;
        next(
            &mut d,
            opened + Duration::seconds(90),
            "remediation",
            EventKind::ValidationFinished {
                remediation: rem,
                passed,
                detail: if passed {
                    "healthy for 60s".into()
                } else {
                    "p99 latency still 2.1s".into()
                },
            },
        );
        if !passed {
            next(
                &mut d,
                opened + Duration::seconds(100),
                "remediation",
                EventKind::RemediationRestored {
                    remediation: rem,
                    outcome: ActionOutcome {
                        success: true,
                        message: "previous pods restored".into(),
                        steps: vec!["restore replica set search-api-6c9".into()],
                    },
                },
            );
        }
        next(
            &mut d,
            opened + Duration::seconds(101),
            "remediation",
            EventKind::RemediationFinished {
                remediation: rem,
                status: outcome,
                detail: if passed {
                    "validated".into()
                } else {
                    "validation failed; restored".into()
                },
            },
        );
        let resolved = opened + Duration::seconds((minutes * 60.0) as i64);
        next(
            &mut d,
            resolved,
            "supervisor",
            EventKind::IncidentResolved {
                incident: inc,
                resolution: "remediated".into(),
            },
        );
    }

    // A denied proposal: restarting a production node, refused by policy.
    let rem_denied = next(
        &mut d,
        at(-8, 0),
        "remediation",
        EventKind::RemediationProposed {
            playbook: None,
            incident: None,
            investigation: None,
            action: Action::new("restart_node", ResourceId::new(NODE)),
            environment: Environment::Production,
            team: "platform".into(),
            reason: "kubelet memory pressure".into(),
            requested_by: "remediation-agent".into(),
        },
    );
    next(
        &mut d,
        at(-8, 1),
        "policy",
        EventKind::PolicyDecided {
            remediation: rem_denied,
            decision: PolicyDecision {
                allow: false,
                deny: vec![
                    "production nodes may not be restarted during business hours".into(),
                    "node ip-10-0-3-17 runs pods of 4 teams; a drain needs a change ticket".into(),
                ],
                required_approvals: 2,
                risk: Risk::Critical,
                controls: vec!["SOC2:CC8.1".into()],
                bundle_hash: "9f2c1e0b7a44d3".into(),
                input_digest: String::new(),
            },
        },
    );
    next(
        &mut d,
        at(-8, 2),
        "remediation",
        EventKind::RemediationFinished {
            remediation: rem_denied,
            status: RemediationOutcome::Denied,
            detail: "denied by policy".into(),
        },
    );

    // The OOM incident.
    next(
        &mut d,
        at(0, 0),
        "k8s",
        EventKind::HealthChanged {
            resource: ResourceId::new(CHECKOUT_POD),
            health: Health::new(
                HealthStatus::Unhealthy,
                "OOMKilled",
                "last terminated: OOMKilled, exit code 137",
            ),
        },
    );
    next(
        &mut d,
        at(0, 5),
        "k8s",
        EventKind::HealthChanged {
            resource: ResourceId::new(CHECKOUT_DEPLOY),
            health: Health::new(
                HealthStatus::Degraded,
                "MinimumReplicasUnavailable",
                "2 of 3 replicas available",
            ),
        },
    );
    let alert = next(
        &mut d,
        at(0, 10),
        "alerts",
        EventKind::AlertReceived {
            alert: Alert {
                name: "KubePodOOMKilled".into(),
                severity: Severity::Critical,
                resource: ResourceId::new(CHECKOUT_POD),
                fingerprint: "oom-checkout".into(),
                summary: "checkout-7d9f8 was OOMKilled 3 times in 10 minutes".into(),
                labels: BTreeMap::new(),
                status: AlertStatus::Firing,
                source: "scenario".into(),
            },
            posted_by: None,
        },
    );
    let inc = next(
        &mut d,
        at(0, 11),
        "supervisor",
        EventKind::IncidentOpened {
            labels: Default::default(),
            title: "checkout OOMKilled in prod-eu".into(),
            alert: "KubePodOOMKilled".into(),
            severity: Severity::Critical,
            resource: ResourceId::new(CHECKOUT_POD),
            fingerprint: "oom-checkout".into(),
            alert_seq: alert,
        },
    );
    let inv = next(
        &mut d,
        at(0, 12),
        "investigation",
        EventKind::InvestigationStarted {
            incident: inc,
            resource: ResourceId::new(CHECKOUT_POD),
            alert: "KubePodOOMKilled".into(),
            severity: Severity::Critical,
        },
    );
    let evidence = [
        (
            "e1",
            "health",
            "container checkout terminated: OOMKilled (exit 137)",
            vec!["restartCount 3", "lastState.terminated.reason OOMKilled"],
        ),
        (
            "e2",
            "events",
            "3 BackOff restarts in the last 10 minutes",
            vec!["Warning BackOff: Back-off restarting failed container"],
        ),
        (
            "e3",
            "metrics",
            "memory at 99% of the 512Mi limit before each kill",
            vec!["container_memory_working_set_bytes peaked at 509Mi"],
        ),
        (
            "e4",
            "changes",
            "image checkout:v2.14.0 deployed 25 minutes ago",
            vec!["release notes: in-memory cache size raised by 40%"],
        ),
        (
            "e5",
            "metrics",
            "node ip-10-0-3-17 memory at 61%: no node pressure",
            vec![],
        ),
    ];
    for (i, (id, source, summary, detail)) in evidence.into_iter().enumerate() {
        next(
            &mut d,
            at(0, 20 + i as i64 * 5),
            "investigation",
            EventKind::EvidenceCollected {
                investigation: inv,
                evidence: Evidence {
                    id: id.into(),
                    source: source.into(),
                    summary: summary.into(),
                    detail: detail.into_iter().map(String::from).collect(),
                },
            },
        );
    }
    let fix = Action::new("set_resources", ResourceId::new(CHECKOUT_DEPLOY))
        .with("memory_limit_mib", "1024");
    next(
        &mut d,
        at(1, 0),
        "investigation",
        EventKind::HypothesesRanked {
            investigation: inv,
            hypotheses: vec![
                Hypothesis {
                    title: "memory limit too low for the v2.14.0 working set".into(),
                    confidence: 0.82,
                    cites: vec!["e1".into(), "e3".into(), "e4".into()],
                    reasoning: "kills line up with the limit, and began right after the cache grew"
                        .into(),
                    recommended_action: Some(fix.clone()),
                },
                Hypothesis {
                    title: "memory leak in checkout v2.14.0".into(),
                    confidence: 0.41,
                    cites: vec!["e3".into(), "e4".into()],
                    reasoning: "usage climbs steadily, but a leak would not plateau at the limit"
                        .into(),
                    recommended_action: Some(Action::new(
                        "rollback_deployment",
                        ResourceId::new(CHECKOUT_DEPLOY),
                    )),
                },
                Hypothesis {
                    title: "node memory pressure".into(),
                    confidence: 0.06,
                    cites: vec!["e5".into()],
                    reasoning: "the node has ample free memory".into(),
                    recommended_action: None,
                },
            ],
        },
    );
    next(
        &mut d,
        at(1, 5),
        "investigation",
        EventKind::InvestigationConcluded {
            playbook: None,
            investigation: inv,
            conclusion: "memory limit too low for the v2.14.0 working set".into(),
        },
    );
    let rem = next(
        &mut d,
        at(1, 10),
        "remediation",
        EventKind::RemediationProposed {
            playbook: None,
            incident: Some(inc),
            investigation: Some(inv),
            action: fix,
            environment: Environment::Production,
            team: "payments".into(),
            reason: "raise the memory limit to 1024Mi (hypothesis 1, 82%)".into(),
            requested_by: "remediation-agent".into(),
        },
    );
    next(
        &mut d,
        at(1, 11),
        "policy",
        EventKind::PolicyDecided {
            remediation: rem,
            decision: PolicyDecision {
                allow: true,
                deny: vec![],
                required_approvals: 1,
                risk: Risk::High,
                controls: vec!["SOC2:CC8.1".into(), "ISO27001:A.12.1.2".into()],
                bundle_hash: "9f2c1e0b7a44d3".into(),
                input_digest: "4be0".into(),
            },
        },
    );
    next(
        &mut d,
        at(1, 12),
        "supervisor",
        EventKind::RemediationPreviewed {
            remediation: rem,
            preview: crate::event::Preview {
                object: "deployment payments/checkout".into(),
                changes: vec![crate::event::Change::new(
                    "checkout memory limit",
                    "512Mi",
                    "1024Mi",
                )],
                notes: vec![
                    "rolls out new pods for 3 replica(s) with these resources".into(),
                    "other requests and limits of container checkout are kept".into(),
                ],
            },
        },
    );
    next(
        &mut d,
        at(1, 12),
        "remediation",
        EventKind::ApprovalRequested {
            remediation: rem,
            required: 1,
            expires_at: at(31, 12),
        },
    );
    next(
        &mut d,
        at(1, 13),
        "notify",
        EventKind::NotificationSent {
            channel: "desktop".into(),
            to: "on-call".into(),
            subject: format!("approval needed for #{rem}"),
            event_seq: None,
            attempt: 0,
        },
    );

    // Security.
    let findings = [
        (
            "CVE-2024-6387@bastion-1",
            "cve",
            Severity::Critical,
            BASTION,
            "CVE-2024-6387 regreSSHion: openssh 8.9p1 remote code execution",
            None,
            None,
        ),
        (
            "CVE-2023-44487@search-api",
            "cve",
            Severity::High,
            SEARCH,
            "CVE-2023-44487 HTTP/2 rapid reset in golang.org/x/net",
            None,
            None,
        ),
        (
            "CVE-2024-24790@checkout",
            "cve",
            Severity::Medium,
            CHECKOUT_DEPLOY,
            "CVE-2024-24790 net/netip IPv4-mapped address checks",
            None,
            None,
        ),
        (
            "key-expiry@deploy-bot",
            "credential",
            Severity::High,
            DEPLOY_KEY,
            "access key deploy-bot expires",
            Some(t + Duration::days(5)),
            None,
        ),
        (
            "cert-expiry@api",
            "credential",
            Severity::Medium,
            CHECKOUT_DEPLOY,
            "TLS certificate api.example.com expires",
            Some(t + Duration::days(12)),
            None,
        ),
        (
            "SOC2:CC6.1@iam",
            "compliance",
            Severity::High,
            DEPLOY_KEY,
            "MFA not enforced for 2 IAM users",
            None,
            Some("SOC2:CC6.1"),
        ),
        (
            "CIS:1.14@iam",
            "compliance",
            Severity::Medium,
            DEPLOY_KEY,
            "access key older than 90 days",
            None,
            Some("CIS:1.14"),
        ),
    ];
    for (i, (id, cat, sev, res, title, expires, control)) in findings.into_iter().enumerate() {
        next(
            &mut d,
            at(2, i as i64),
            "security",
            EventKind::SecurityFinding {
                finding: SecurityFinding {
                    id: id.into(),
                    category: cat.into(),
                    severity: sev,
                    resource: ResourceId::new(res),
                    title: title.into(),
                    detail: format!("{title}. Found by the scheduled scan."),
                    expires_at: expires,
                    control: control.map(String::from),
                    open: true,
                    vulnerability: None,
                },
            },
        );
    }
    next(
        &mut d,
        at(2, 10),
        "security",
        EventKind::SecurityFinding {
            finding: SecurityFinding {
                id: "SOC2:CC7.2@audit".into(),
                category: "compliance".into(),
                severity: Severity::Medium,
                resource: ResourceId::new(ORDERS_DB),
                title: "audit logging enabled".into(),
                detail: String::new(),
                expires_at: None,
                control: Some("SOC2:CC7.2".into()),
                open: false,
                vulnerability: None,
            },
        },
    );
    // The bastion's CVE as the matcher explains it.
    next(
        &mut d,
        at(2, 11),
        "security",
        EventKind::SecurityFinding {
            finding: SecurityFinding {
                id: "CVE-2024-6387@bastion-1".into(),
                category: "cve".into(),
                severity: Severity::Critical,
                resource: ResourceId::new(BASTION),
                title: "CVE-2024-6387 regreSSHion: openssh 8.9p1 remote code execution".into(),
                detail: "Found by the scheduled scan.".into(),
                expires_at: None,
                control: None,
                open: true,
                vulnerability: Some(VulnerabilityMatch {
                    cve: "CVE-2024-6387".into(),
                    cvss_score: Some(8.1),
                    cvss_vector: Some("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H".into()),
                    package: "openssh-server".into(),
                    installed_version: "1:8.9p1-3ubuntu0.6".into(),
                    fixed_version: Some("1:8.9p1-3ubuntu0.10".into()),
                    source: "ubuntu:jammy".into(),
                    reason:
                        "installed 1:8.9p1-3ubuntu0.6 < fixed 1:8.9p1-3ubuntu0.10 (ubuntu jammy)"
                            .into(),
                }),
            },
        },
    );
    // Vulnerability data older than its limit: the pane must say so loudly.
    next(
        &mut d,
        at(2, 12),
        "security",
        EventKind::VulnDbStatus {
            sources: vec![VulnSource {
                name: "debian".into(),
                records: 48_211,
                imported_at: t - Duration::days(12),
            }],
            max_age_days: 7,
            stale: true,
        },
    );
    // Compliance results with their evidence.
    let controls = [
        (
            "CIS",
            "Linux 5.2.10",
            "SSH root login is disabled",
            ControlStatus::Failing,
            Some(BASTION),
            vec!["bastion-1: PermitRootLogin yes (from sshd -T)"],
        ),
        (
            "SOC2",
            "CC6.1",
            "Logical access security",
            ControlStatus::Failing,
            Some(BASTION),
            vec![
                "bastion-1: /etc/shadow mode 0640 owner root:shadow (at most 0640, owner root, group root or shadow)",
                "bastion-1: PasswordAuthentication no (from sshd -T)",
                "bastion-1: PermitRootLogin yes (from sshd -T)",
            ],
        ),
        (
            "PCI-DSS",
            "6.3.3",
            "Critical security patches installed within the patching SLA",
            ControlStatus::Unknown,
            Some(BASTION),
            vec![
                "bastion-1: vulnerability data STALE: debian 48211 records, 12 days old (limit 7 days)",
            ],
        ),
        (
            "HIPAA",
            "164.312(b)",
            "Audit controls: the audit event log's hash chain is intact",
            ControlStatus::Passing,
            None,
            vec!["event log: hash chain intact from the first event to the head"],
        ),
        (
            "CIS",
            "K8s 5.2.2",
            "Minimise the admission of privileged containers",
            ControlStatus::Passing,
            Some(CHECKOUT_POD),
            vec!["checkout-7d9f8: privileged false"],
        ),
        (
            "SOC2",
            "A1.1",
            "Capacity managed: workloads declare resource limits",
            ControlStatus::NotApplicable,
            None,
            vec!["workload_limits: no pods in the inventory"],
        ),
    ];
    for (i, (framework, control, title, status, resource, evidence)) in
        controls.into_iter().enumerate()
    {
        next(
            &mut d,
            at(2, 13 + i as i64),
            "security",
            EventKind::ControlEvaluated {
                result: ControlResult {
                    framework: framework.into(),
                    control: control.into(),
                    title: title.into(),
                    status,
                    resource: resource.map(ResourceId::new),
                    evidence: evidence.into_iter().map(String::from).collect(),
                },
            },
        );
    }

    // Cost.
    let samples = [
        (
            CHECKOUT_DEPLOY,
            "EKS",
            "payments",
            Environment::Production,
            [412u64, 418, 431],
        ),
        (
            ORDERS_DB,
            "RDS",
            "orders",
            Environment::Production,
            [905, 910, 2_870],
        ),
        (
            WORKER,
            "EC2",
            "data",
            Environment::Production,
            [384, 384, 384],
        ),
        (
            SEARCH,
            "EKS",
            "search",
            Environment::Staging,
            [120, 118, 121],
        ),
        (
            REPORTING,
            "Azure VM",
            "finance",
            Environment::Staging,
            [96, 96, 96],
        ),
        (
            "gcp/analytics/bigquery/events",
            "BigQuery",
            "data",
            Environment::Development,
            [240, 260, 255],
        ),
    ];
    for round in 0..3 {
        for (res, service, team, env, cents) in &samples {
            next(
                &mut d,
                at(3 + round, 0),
                "cost",
                EventKind::CostSample {
                    resource: ResourceId::new(*res),
                    service: (*service).into(),
                    team: (*team).into(),
                    environment: *env,
                    cents: cents[round as usize] * 100,
                    window_hours: 24,
                },
            );
        }
    }
    next(
        &mut d,
        at(5, 30),
        "cost",
        EventKind::CostAnomaly {
            resource: ResourceId::new(ORDERS_DB),
            service: "RDS".into(),
            expected_cents: 91_000,
            actual_cents: 287_000,
            window: "24h".into(),
        },
    );
    next(
        &mut d,
        at(5, 40),
        "cost",
        EventKind::CostRecommendation {
            resource: ResourceId::new(WORKER),
            title: "rightsize batch-worker-1 m5.2xlarge → m5.xlarge (CPU p95 18%)".into(),
            monthly_savings_cents: 14_016,
            action: None,
        },
    );
    next(
        &mut d,
        at(5, 41),
        "cost",
        EventKind::CostRecommendation {
            resource: ResourceId::new(REPORTING),
            title: "stop reporting-1 outside business hours".into(),
            monthly_savings_cents: 6_230,
            action: None,
        },
    );
    next(
        &mut d,
        at(5, 42),
        "cost",
        EventKind::CostRecommendation {
            resource: ResourceId::new(ORDERS_DB),
            title: "delete 4 unattached gp2 snapshots of orders-db".into(),
            monthly_savings_cents: 1_840,
            action: None,
        },
    );

    for (team, budget, spent, projected, burn) in [
        ("data", 260_000u64, 98_000u64, 327_000u64, 1.26),
        ("payments", 55_000, 12_000, 40_000, 0.73),
    ] {
        next(
            &mut d,
            at(5, 50),
            "cost",
            EventKind::CostBudgetBurn {
                team: team.into(),
                budget_cents: budget,
                spent_cents: spent,
                projected_cents: projected,
                burn_rate: burn,
                alert: burn >= 1.0,
                basis: "estimated from the fleet".into(),
            },
        );
    }
    next(
        &mut d,
        at(5, 55),
        "operator",
        EventKind::HypothesisFeedback {
            investigation: inv,
            hypothesis: "memory limit too low for the v2.14.0 working set".into(),
            confirmed: true,
            by: "alice".into(),
        },
    );
    type Figures = &'static [(&'static str, f64)];
    let insights: [(&str, &str, Figures); 6] = [
        (
            "mttr:KubePodOOMKilled",
            "KubePodOOMKilled: mean time to resolve 12.5 min over 4 incidents; improving by 3.0 min (last 2: 11.0, first 2: 14.0)",
            &[
                ("mttr_minutes", 12.5),
                ("incidents", 4.0),
                ("trend_minutes", -3.0),
            ],
        ),
        (
            "mttr:NodeDiskPressure",
            "NodeDiskPressure: mean time to resolve 4.2 min over 2 incidents",
            &[("mttr_minutes", 4.2), ("incidents", 2.0)],
        ),
        (
            "playbook:oom-kill",
            "playbook oom-kill: 3 of 4 succeeded (75%), 1 restored, validated in 48 s on average",
            &[
                ("runs", 4.0),
                ("succeeded", 3.0),
                ("success_rate", 0.75),
                ("restores", 1.0),
                ("validation_secs", 48.0),
            ],
        ),
        (
            "playbook:node-disk-pressure",
            "playbook node-disk-pressure: 2 of 2 succeeded (100%), 0 restored, validated in 12 s on average",
            &[
                ("runs", 2.0),
                ("succeeded", 2.0),
                ("success_rate", 1.0),
                ("restores", 0.0),
                ("validation_secs", 12.0),
            ],
        ),
        (
            "hypotheses:accuracy",
            "hypotheses: 5 of 6 judged were confirmed (83%); the top-ranked one 5 of 5 (100%)",
            &[("verdicts", 6.0), ("confirmed", 5.0), ("accuracy", 0.83)],
        ),
        (
            "threshold:auto_propose_confidence",
            "propose automatically from 78% confidence: of the 5 judged hypotheses at or above it, 5 were confirmed (100%)",
            &[("recommended_pct", 78.0), ("judged", 5.0)],
        ),
    ];
    for (i, (topic, text, metrics)) in insights.iter().enumerate() {
        next(
            &mut d,
            at(5, 56 + i as i64),
            "learning",
            EventKind::LearningInsight {
                topic: (*topic).into(),
                insight: (*text).into(),
                metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            },
        );
    }

    // Learning.
    next(&mut d, at(6, 0), "learning", EventKind::LearningInsight { topic: "clean_disk on dev hosts".into(),
        insight: "succeeded 12 of 12 times with no rollback: a candidate for auto-approval in development".into(),
        metrics: BTreeMap::from([("success_rate".to_string(), 1.0), ("runs".to_string(), 12.0)]) });
    next(&mut d, at(6, 1), "learning", EventKind::LearningInsight { topic: "OOM after deploys".into(),
        insight: "3 of the last 4 OOM incidents followed a deploy within 30 minutes; add a memory headroom check to CI".into(),
        metrics: BTreeMap::from([("incidents".to_string(), 4.0), ("after_deploy".to_string(), 3.0)]) });

    // Other health and fresh heartbeats.
    next(
        &mut d,
        at(7, 0),
        "aws",
        EventKind::HealthChanged {
            resource: ResourceId::new(ORDERS_DB),
            health: Health::new(
                HealthStatus::Degraded,
                "CPUCreditBalanceLow",
                "CPU credit balance at 4%",
            ),
        },
    );
    next(
        &mut d,
        at(7, 5),
        "linux",
        EventKind::HealthChanged {
            resource: ResourceId::new(BUILD),
            health: Health::new(HealthStatus::Degraded, "DiskPressure", "/var at 91%"),
        },
    );
    next(
        &mut d,
        at(7, 10),
        "azure",
        EventKind::HealthChanged {
            resource: ResourceId::new(REPORTING),
            health: Health::new(
                HealthStatus::Unknown,
                "agent_unreachable",
                "no heartbeat from the VM agent for 5 minutes",
            ),
        },
    );
    next(
        &mut d,
        at(8, 0),
        "supervisor",
        EventKind::IncidentAcknowledged {
            incident: inc,
            by: "alice".into(),
        },
    );
    for (agent, secs) in [
        ("learning", 150),
        ("cost", 45),
        ("security", 20),
        ("investigation", 3),
        ("remediation", 2),
        ("supervisor", 1),
    ] {
        next(
            &mut d,
            fixture_now() - Duration::seconds(secs),
            agent,
            EventKind::AgentHeartbeat {
                agent: agent.into(),
                status: "ok".into(),
                next_run: None,
            },
        );
    }
    seal_all(d)
}

/// The fixture folded into a state.
pub fn fixture_state() -> State {
    let mut state = State::new();
    for e in fixture_events() {
        state.apply(&e);
    }
    state
}

/// The fixture plus what a console watching two Kubernetes contexts sees:
/// each context's connector status (prod-eu watching, staging-eu failing
/// its watches) and an inspection of the OOMKilled pod with its events and
/// a redacted log tail, two minutes before [`fixture_now`].
pub fn fixture_kube_state() -> State {
    let mut state = fixture_state();
    let last = fixture_events().pop().expect("fixture events");
    let now = fixture_now();
    let drafts = vec![
        NewEvent::new(
            now - Duration::minutes(10),
            "agent:discovery",
            EventKind::ConnectorStatus {
                connector: ConnectorId::new("k8s:prod-eu"),
                status: ConnectorState::Ok,
                message: "watching".into(),
            },
        ),
        NewEvent::new(
            now - Duration::minutes(5),
            "agent:discovery",
            EventKind::ConnectorStatus {
                connector: ConnectorId::new("k8s:staging-eu"),
                status: ConnectorState::Failing,
                message: "1 watch(es) failing; pod: HTTP 401 Unauthorized".into(),
            },
        ),
        NewEvent::new(
            now - Duration::minutes(2),
            "runtime",
            EventKind::ResourceInspected {
                resource: ResourceId::new(CHECKOUT_POD),
                requested_by: "alice".into(),
                evidence: vec![
                    Evidence {
                        id: "e1".into(),
                        source: "k8s_events".into(),
                        summary: "3 Kubernetes event(s), 2 warning(s)".into(),
                        detail: vec![
                            "09:04:10 Normal Pulled: Container image \"checkout:v2.14.0\" already present on machine".into(),
                            "09:05:02 Warning OOMKilling: Memory cgroup out of memory: Killed process 4242 (java) (x3)".into(),
                            "09:05:31 Warning BackOff: Back-off restarting failed container app (x7)".into(),
                        ],
                    },
                    Evidence {
                        id: "e2".into(),
                        source: "logs".into(),
                        summary: "last 3 log line(s) of app (redacted, at most 50 per container)".into(),
                        detail: vec![
                            "[app] 09:27:58 INFO  started checkout in 4.2s".into(),
                            "[app] 09:28:01 INFO  connecting to postgres://checkout:[REDACTED]@orders-db:5432/orders".into(),
                            "[app] 09:28:14 WARN  heap at 91% of 512Mi".into(),
                        ],
                    },
                ],
                error: None,
            },
        ),
    ];
    let mut prev = last.hash;
    for (i, draft) in drafts.into_iter().enumerate() {
        let (event, _) = Event::seal(last.seq + 1 + i as u64, prev, draft);
        prev = event.hash;
        state.apply(&event);
    }
    state
}

/// The id of the remediation awaiting approval in the fixture.
pub fn fixture_pending() -> u64 {
    fixture_state()
        .approval_queue()
        .first()
        .map(|r| r.id)
        .expect("fixture has a pending approval")
}

/// A large state for benchmarks: the fixture plus `resources` extra resources
/// and `events` further events (health changes, heartbeats, cost samples),
/// folded as the runtime would. The event tail stays bounded by the state.
pub fn big_state(resources: usize, events: usize) -> State {
    let mut state = fixture_state();
    let mut seq = state.last_seq;
    let mut prev = ChainHash::GENESIS;
    big_drafts(resources, events, |draft| {
        seq += 1;
        let (event, _) = Event::seal(seq, prev, draft);
        prev = event.hash;
        state.apply(&event);
    });
    state
}

/// The drafts [`big_state`] folds after the fixture, handed to `emit` in order
/// (benchmarks write them to a real log).
pub fn big_drafts(resources: usize, events: usize, mut emit: impl FnMut(NewEvent)) {
    let t = t0();
    let envs = [
        Environment::Development,
        Environment::Staging,
        Environment::Production,
    ];
    let teams = [
        "payments", "search", "orders", "data", "platform", "ci", "finance",
    ];
    let kinds = [
        ("pod", Provider::Kubernetes),
        ("ec2_instance", Provider::Aws),
        ("host", Provider::Linux),
        ("vm", Provider::Azure),
        ("gce_instance", Provider::Gcp),
    ];
    let mut fold = |at: DateTime<Utc>, actor: &str, kind: EventKind| {
        emit(NewEvent::new(at, actor, kind));
    };
    // Kubernetes resources are grouped by context and namespace in the Fleet pane.
    let contexts = ["dev-eu", "staging-eu", "prod-eu"];
    for i in 0..resources {
        let (kind, provider) = kinds[i % kinds.len()];
        let env = envs[i % envs.len()];
        let team = teams[i % teams.len()];
        let group = [("context", contexts[i % envs.len()]), ("namespace", team)];
        let attrs: &[(&str, &str)] = if provider == Provider::Kubernetes {
            &group
        } else {
            &[]
        };
        let r = resource(
            &format!("bench/{}/{kind}/r{i:06}", env.short()),
            &format!("{team}-{kind}-{i:06}"),
            kind,
            provider,
            env,
            team,
            t - Duration::minutes((i % 10_000) as i64),
            attrs,
        );
        fold(
            t,
            "discovery",
            EventKind::ResourceDiscovered { resource: r },
        );
    }
    let statuses = [
        HealthStatus::Healthy,
        HealthStatus::Degraded,
        HealthStatus::Unhealthy,
        HealthStatus::Healthy,
    ];
    for i in 0..events {
        let at = t + Duration::milliseconds(i as i64);
        match i % 4 {
            0 | 1 if resources > 0 => {
                let r = i.wrapping_mul(7919) % resources;
                let (kind, _) = kinds[r % kinds.len()];
                let env = envs[r % envs.len()];
                let status = statuses[(i / 4) % statuses.len()];
                fold(
                    at,
                    "monitor",
                    EventKind::HealthChanged {
                        resource: ResourceId::new(format!("bench/{}/{kind}/r{r:06}", env.short())),
                        health: Health::new(
                            status,
                            if status == HealthStatus::Healthy {
                                ""
                            } else {
                                "ProbeFailed"
                            },
                            "",
                        ),
                    },
                );
            }
            2 => fold(
                at,
                "cost",
                EventKind::CostSample {
                    resource: ResourceId::new(format!("bench/cost/{}", i % 500)),
                    service: format!("svc-{}", i % 12),
                    team: teams[i % teams.len()].into(),
                    environment: envs[i % envs.len()],
                    cents: (i % 997) as u64 * 10,
                    window_hours: 1,
                },
            ),
            _ => fold(
                at,
                "supervisor",
                EventKind::AgentHeartbeat {
                    agent: ["supervisor", "investigation", "remediation"][i % 3].into(),
                    status: "ok".into(),
                    next_run: None,
                },
            ),
        }
    }
}

/// Events like the live demo sends: heartbeats, health flaps, cost samples, in a loop.
pub fn live_stream(start_seq: u64, n: usize) -> Vec<Event> {
    let t = fixture_now();
    let mut prev = ChainHash::GENESIS;
    (0..n)
        .map(|i| {
            let at = t + Duration::milliseconds(i as i64 * 250);
            let kind = match i % 5 {
                0 => EventKind::AgentHeartbeat {
                    agent: [
                        "supervisor",
                        "investigation",
                        "remediation",
                        "security",
                        "cost",
                        "learning",
                    ][i % 6]
                        .into(),
                    status: "ok".into(),
                    next_run: None,
                },
                1 => EventKind::HealthChanged {
                    resource: ResourceId::new(ORDERS_DB),
                    health: Health::new(
                        if i % 2 == 0 {
                            HealthStatus::Degraded
                        } else {
                            HealthStatus::Healthy
                        },
                        "CPUCreditBalanceLow",
                        "",
                    ),
                },
                2 => EventKind::CostSample {
                    resource: ResourceId::new(WORKER),
                    service: "EC2".into(),
                    team: "data".into(),
                    environment: Environment::Production,
                    cents: 38_400 + i as u64,
                    window_hours: 24,
                },
                3 => EventKind::EvidenceCollected {
                    investigation: 0,
                    evidence: Evidence {
                        id: format!("x{i}"),
                        source: "metrics".into(),
                        summary: "sample".into(),
                        detail: vec![],
                    },
                },
                _ => EventKind::NotificationSent {
                    channel: "desktop".into(),
                    to: "on-call".into(),
                    subject: format!("update {i}"),
                    event_seq: None,
                    attempt: 0,
                },
            };
            let (event, _) = Event::seal(
                start_seq + i as u64 + 1,
                prev,
                NewEvent::new(at, "demo", kind),
            );
            prev = event.hash;
            event
        })
        .collect()
}

/// A three-node site as node `b` sees it (`b`'s role given): `a` leads,
/// `c` lags 40 records behind and its heartbeat is 4 s old.
pub fn fixture_cluster(role: crate::cluster::NodeRole) -> crate::cluster::ClusterView {
    use crate::cluster::{ClusterView, LeaseView, NodeRole, NodeSeen};
    let at = fixture_now();
    let (leader, leader_role) = match role {
        NodeRole::Leader => ("b", NodeRole::Standby),
        _ => ("a", NodeRole::Leader),
    };
    let node = |name: &str, role, last_seq, age| NodeSeen {
        name: name.into(),
        role,
        console: Some(format!("wss://{name}.ops.example:7420/ws")),
        last_seq,
        at: at - Duration::seconds(age),
    };
    ClusterView {
        site: "eu-west".into(),
        node: "b".into(),
        role,
        lease: Some(LeaseView {
            holder: leader.into(),
            console: Some(format!("wss://{leader}.ops.example:7420/ws")),
            revision: 1842,
            expires: at + Duration::milliseconds(3400),
        }),
        nodes: vec![
            node("a", leader_role, 1207, 1),
            node("b", role, 1205, 0),
            node("c", NodeRole::Standby, 1167, 4),
        ],
        stream_seq: 1207,
        at,
    }
}
