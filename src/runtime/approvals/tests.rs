//! Property tests over the real policy gate (the embedded Rego bundle, with
//! generated data) and the real approval rules: what the supervisor does,
//! step by step, folded through the real state.

use std::sync::OnceLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::event::*;
use crate::policy::{Bundle, Gate, GateOptions};
use crate::runtime::policy::PolicyGate;

/// A Wednesday, 10:00 UTC (outside the default change freeze).
fn wednesday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap()
}

/// Gates over the embedded policies with three data documents: as shipped,
/// two approvals for everything, and three in production.
fn gates() -> &'static [Gate; 3] {
    static GATES: OnceLock<[Gate; 3]> = OnceLock::new();
    GATES.get_or_init(|| {
        let with = |data: Option<serde_json::Value>| {
            let mut bundle = Bundle::embedded();
            if let Some(d) = data {
                bundle.merge_data(d);
            }
            Gate::new(&bundle, GateOptions::default()).expect("the embedded bundle compiles")
        };
        [
            with(None),
            with(Some(json!({"shieldops_config": {"approvals": {"by_risk":
                {"low": 2, "medium": 2, "high": 2, "critical": 2}}}}))),
            with(Some(
                json!({"shieldops_config": {"approvals": {"production_minimum": 3}}}),
            )),
        ]
    })
}

/// Folds events into a state with a real hash chain, one second apart.
struct Log {
    state: State,
    seq: u64,
    prev: ChainHash,
    at: DateTime<Utc>,
}

impl Log {
    fn new(at: DateTime<Utc>) -> Self {
        Self {
            state: State::new(),
            seq: 0,
            prev: ChainHash::GENESIS,
            at,
        }
    }
    fn fold(&mut self, kind: EventKind) -> u64 {
        self.seq += 1;
        self.at += Duration::seconds(1);
        let (e, _) = Event::seal(self.seq, self.prev, NewEvent::new(self.at, "t", kind));
        self.prev = e.hash;
        self.state.apply(&e);
        self.seq
    }
}

fn target(n: usize, env: Environment) -> Resource {
    Resource {
        id: ResourceId::new(format!("k8s/{}/payments/pod/api-{n}", env.short())),
        name: format!("api-{n}"),
        kind: "pod".into(),
        provider: Provider::Kubernetes,
        connector: ConnectorId::new("k8s:prod"),
        environment: env,
        team: "payments".into(),
        labels: StringMap::from([
            ("team".to_string(), "payments".to_string()),
            ("namespace".to_string(), "payments".to_string()),
        ]),
        attributes: StringMap::new(),
        health: Health::healthy(),
        created_at: wednesday(),
    }
}

/// Proposes `action` on a discovered target for an incident whose alert
/// `poster` posted, requested by `requester`, and asks the gate as the
/// supervisor does; returns the remediation's id and the first decision.
fn propose(
    log: &mut Log,
    gate: &Gate,
    env: Environment,
    action: Action,
    requester: &str,
    poster: &str,
) -> (u64, PolicyDecision) {
    let resource = target(0, env);
    let id = resource.id.clone();
    log.fold(EventKind::ResourceDiscovered { resource });
    let alert_seq = log.fold(EventKind::AlertReceived {
        alert: Alert {
            name: "KubePodCrashLooping".into(),
            severity: Severity::High,
            resource: id.clone(),
            fingerprint: "fp".into(),
            summary: String::new(),
            labels: Default::default(),
            status: AlertStatus::Firing,
            source: "alertmanager".into(),
        },
        posted_by: Some(poster.into()),
    });
    let incident = log.fold(EventKind::IncidentOpened {
        title: "t".into(),
        alert: "KubePodCrashLooping".into(),
        labels: Default::default(),
        severity: Severity::High,
        resource: id.clone(),
        fingerprint: "fp".into(),
        alert_seq,
    });
    let rem = log.fold(EventKind::RemediationProposed {
        incident: Some(incident),
        investigation: None,
        action: Action {
            target: id,
            ..action
        },
        environment: env,
        team: "payments".into(),
        reason: "r".into(),
        requested_by: requester.into(),
        playbook: None,
    });
    let decision = decide(log, gate, rem);
    (rem, decision)
}

/// The supervisor's `decide`: records the decision and its next step.
fn decide(log: &mut Log, gate: &Gate, rem: u64) -> PolicyDecision {
    let decision = PolicyGate::decide(gate, &log.state, rem, "payments", log.at);
    let allow = decision.allow && decision.deny.is_empty();
    let required = decision.required_approvals;
    log.fold(EventKind::PolicyDecided {
        remediation: rem,
        decision: decision.clone(),
    });
    if !allow {
        finish(log, rem, RemediationOutcome::Denied);
    } else if required > 0 {
        log.fold(EventKind::ApprovalRequested {
            remediation: rem,
            required,
            expires_at: log.at + Duration::minutes(15),
        });
    }
    decision
}

fn finish(log: &mut Log, rem: u64, status: RemediationOutcome) {
    log.fold(EventKind::RemediationFinished {
        remediation: rem,
        status,
        detail: String::new(),
    });
}

/// The supervisor's `maybe_execute`: true when the remediation starts.
fn maybe_execute(log: &mut Log, gate: &Gate, rem: u64) -> bool {
    let cleared = log
        .state
        .remediations
        .get(&rem)
        .is_some_and(|r| cleared_for_execution(r, false));
    if !cleared {
        return false;
    }
    match recheck(&log.state, rem, gate, "payments", log.at) {
        Recheck::Start => {
            let resource = log.state.remediations[&rem].action.target.clone();
            log.fold(EventKind::SnapshotTaken {
                remediation: rem,
                snapshot: Snapshot {
                    resource,
                    connector: ConnectorId::new("k8s:prod"),
                    taken_at: log.at,
                    data: serde_json::Value::Null,
                    summary: String::new(),
                },
            });
            true
        }
        Recheck::Stop { decision, .. } => {
            log.fold(EventKind::PolicyDecided {
                remediation: rem,
                decision,
            });
            finish(log, rem, RemediationOutcome::Denied);
            false
        }
    }
}

#[derive(Debug, Clone)]
enum Attempt {
    Approve(String, Authentication),
    Deny(String, String),
    Expire,
}

fn auth() -> impl Strategy<Value = Authentication> {
    prop_oneof![
        Just(Authentication::OsAccount),
        Just(Authentication::Token),
        Just(Authentication::Declared),
    ]
}

fn attempt() -> impl Strategy<Value = Attempt> {
    // "olga" may be the requester, "mallory" posted the alert; names repeat
    // and vary in case and spacing, so the same person comes back often.
    let name = prop_oneof![
        Just("olga".to_string()),
        Just("mallory".to_string()),
        Just(" Mallory".to_string()),
        Just("ana".to_string()),
        Just("ANA".to_string()),
        Just("bo".to_string()),
        Just("cy".to_string()),
        Just("di".to_string()),
    ];
    prop_oneof![
        12 => (name.clone(), auth()).prop_map(|(n, a)| Attempt::Approve(n, a)),
        1 => (name, prop_oneof![Just(String::new()), Just("no".to_string())])
            .prop_map(|(n, r)| Attempt::Deny(n, r)),
        1 => Just(Attempt::Expire),
    ]
}

fn proposed_action() -> impl Strategy<Value = Action> {
    let name = prop_oneof![
        Just("restart_pod"),
        Just("set_resources"),
        Just("delete_namespace"),
        Just("get_health"),
    ];
    let source = prop_oneof![
        Just(ParamSource::Playbook),
        Just(ParamSource::Facts),
        Just(ParamSource::Alert),
    ];
    (name, proptest::option::of(source)).prop_map(|(name, source)| {
        let mut a = Action::new(name, ResourceId::new("placeholder"));
        if let Some(s) = source {
            a.params.insert("memory_limit_mib".into(), "512".into());
            a.param_sources.insert("memory_limit_mib".into(), s);
        }
        a
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Whatever the proposal, the policy data and the order of approvals,
    /// denials and expiries: a remediation starts only with an allow and
    /// approvals from as many distinct authenticated principals as the
    /// policy requires, none of them its requester or the alert's poster,
    /// never after a denial or expiry; a deny always blocks.
    #[test]
    fn nothing_starts_without_an_allow_and_distinct_authenticated_approvals(
        data in 0usize..3,
        env in prop_oneof![Just(Environment::Development), Just(Environment::Staging), Just(Environment::Production)],
        saturday in any::<bool>(),
        action in proposed_action(),
        by_operator in any::<bool>(),
        simulated in any::<bool>(),
        attempts in prop::collection::vec(attempt(), 0..14),
    ) {
        let gate = &gates()[data];
        let start = if saturday { wednesday() + Duration::days(3) } else { wednesday() };
        let mut log = Log::new(start);
        let requester = if by_operator { "olga" } else { "agent:remediation" };
        let (rem, first) = propose(&mut log, gate, env, action, requester, "mallory");
        let mut started = maybe_execute(&mut log, gate, rem);
        let mut stopped = false;
        for a in attempts {
            if started || stopped {
                break;
            }
            match a {
                Attempt::Approve(name, auth) => {
                    let by = Identity { name: name.clone(), source: None, auth, declared_name: None };
                    if check_approval(&log.state, rem, &by, simulated, false).is_ok() {
                        log.fold(EventKind::ApprovalGranted {
                            remediation: rem, by: name, comment: String::new(),
                            source: None, auth: Some(auth), declared_name: None,
                        });
                        started = maybe_execute(&mut log, gate, rem);
                    }
                }
                Attempt::Deny(name, reason) => {
                    if check_denial(&log.state, rem, &reason, false).is_ok() {
                        log.fold(EventKind::ApprovalDenied {
                            remediation: rem, by: name, reason,
                            source: None, auth: Some(Authentication::Token), declared_name: None,
                        });
                        finish(&mut log, rem, RemediationOutcome::Denied);
                        stopped = true;
                    }
                }
                Attempt::Expire => {
                    if log.state.remediations[&rem].stage == Stage::AwaitingApproval {
                        log.fold(EventKind::ApprovalExpired { remediation: rem });
                        finish(&mut log, rem, RemediationOutcome::Expired);
                        stopped = true;
                    }
                }
            }
        }
        let r = &log.state.remediations[&rem];
        if !(first.allow && first.deny.is_empty()) {
            prop_assert!(!started, "a deny always blocks: {:?}", first.deny);
        }
        if started {
            prop_assert!(first.allow && first.deny.is_empty());
            prop_assert!(r.denial.is_none());
            prop_assert!(!stopped);
            let counted: std::collections::BTreeSet<String> = r
                .approvals
                .iter()
                .inspect(|a| {
                    assert!(!crate::state::same_person(&a.by, requester), "the requester approved");
                    assert!(!crate::state::same_person(&a.by, "mallory"), "the alert's poster approved");
                    assert!(simulated || a.auth != Some(Authentication::Declared), "a declared name counted");
                })
                .map(|a| crate::state::person(&a.by))
                .collect();
            prop_assert_eq!(counted.len(), r.approvals.len(), "one principal counted twice");
            let required = r.decision.as_ref().map_or(u32::MAX, |d| d.required_approvals);
            prop_assert!(counted.len() as u32 >= required.max(first.required_approvals));
        }
    }

    /// A burst of remediations in production, all approved within the same
    /// minute in any order: no more start than the per-minute rate limit,
    /// because every remediation approved or under way is counted.
    #[test]
    fn a_burst_of_approvals_never_exceeds_the_rate_limit(
        n in 1usize..10,
        order in prop::collection::vec(0usize..10, 0..30),
    ) {
        let gate = &gates()[0];
        let limit = gate_limit(gate);
        let mut log = Log::new(wednesday());
        let mut rems = Vec::new();
        for i in 0..n {
            let resource = target(i, Environment::Production);
            let id = resource.id.clone();
            log.fold(EventKind::ResourceDiscovered { resource });
            let rem = log.fold(EventKind::RemediationProposed {
                incident: None,
                investigation: None,
                action: Action::new("restart_pod", id),
                environment: Environment::Production,
                team: "payments".into(),
                reason: "r".into(),
                requested_by: "agent:remediation".into(),
                playbook: None,
            });
            let d = decide(&mut log, gate, rem);
            prop_assert!(d.allow && d.deny.is_empty(), "{:?}", d.deny);
            prop_assert!(d.required_approvals >= 1);
            rems.push(rem);
        }
        // Everything is approved inside the minute: 30 events, well under 60 s.
        let mut started = 0;
        for pick in order.into_iter().chain(0..n) {
            let rem = rems[pick % n];
            let by = Identity::token("ana", None);
            if check_approval(&log.state, rem, &by, false, false).is_ok() {
                log.fold(EventKind::ApprovalGranted {
                    remediation: rem, by: "ana".into(), comment: String::new(),
                    source: None, auth: Some(Authentication::Token), declared_name: None,
                });
                if maybe_execute(&mut log, gate, rem) {
                    started += 1;
                }
            }
            prop_assert!(started <= limit, "{started} started; the limit is {limit}");
        }
        prop_assert_eq!(started, n.min(limit));
    }
}

/// The production per-minute rate limit in the gate's data.
fn gate_limit(_gate: &Gate) -> usize {
    let data = Bundle::embedded();
    data.data()["shieldops_config"]["rate_limits"]["per_minute"]["production"]
        .as_u64()
        .expect("the shipped data has a production per-minute limit") as usize
}
