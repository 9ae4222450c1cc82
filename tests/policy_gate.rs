//! The gate: decisions from the embedded bundle, deny wins, fail closed on
//! errors, timeouts and malformed documents, user overrides, concurrency, and
//! the input built from projected state.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};
use shieldops::event::StringMap;
use shieldops::event::{
    Action, ActionOutcome, ChainHash, ConnectorId, Environment, Event, EventKind, Health, NewEvent,
    Provider, Resource, ResourceId, Risk,
};
use shieldops::policy::{
    Bundle, Evaluator, Gate, GateOptions, PolicyError, PolicyInput, RateInput,
};
use shieldops::state::State;

/// A Wednesday, 10:00 UTC.
fn wednesday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap()
}

fn pod(env: Environment, team: &str) -> Resource {
    Resource {
        id: ResourceId::new(format!("k8s/{}/{team}/pod/api-1", env.short())),
        name: "api-1".into(),
        kind: "pod".into(),
        provider: Provider::Kubernetes,
        connector: ConnectorId::new("sim:demo"),
        environment: env,
        team: team.into(),
        labels: StringMap::from([
            ("team".to_string(), team.to_string()),
            ("namespace".to_string(), team.to_string()),
        ]),
        attributes: StringMap::new(),
        health: Health::healthy(),
        created_at: wednesday(),
    }
}

fn input(action: &str, env: Environment) -> PolicyInput {
    let target = pod(env, "payments");
    PolicyInput::new(
        &Action::new(action, target.id.clone()),
        &target,
        "remediation-agent",
        "payments",
        wednesday(),
    )
}

fn gate() -> Gate {
    Gate::load(None).expect("embedded bundle loads")
}

/// Gates over one custom policy file (no embedded policies): one per
/// evaluator (the RVM program and the interpreter), so every fail-closed
/// property is checked on both paths.
fn custom(rego: &str, limit: Duration) -> Vec<Gate> {
    let mut bundle = Bundle::empty();
    bundle.add_policy("custom.rego", rego);
    [Evaluator::Rvm, Evaluator::Interpreter]
        .into_iter()
        .map(|evaluator| {
            Gate::new(
                &bundle,
                GateOptions {
                    time_limit: limit,
                    evaluator,
                },
            )
            .expect("custom bundle loads")
        })
        .collect()
}

#[test]
fn embedded_bundle_allows_a_routine_change_and_records_hashes() {
    let gate = gate();
    let input = input("restart_pod", Environment::Production);
    let d = gate.decide(&input);
    assert!(d.allow, "{:?}", d.deny);
    assert_eq!(d.risk, Risk::Medium);
    assert_eq!(d.required_approvals, 1);
    assert!(d.controls.iter().any(|c| c == "SOC2:CC8.1"));
    assert_eq!(d.bundle_hash, Bundle::embedded().hash());
    let canonical = shieldops::policy::canonical_json(&serde_json::to_value(&input).unwrap());
    assert!(
        canonical
            .starts_with(r#"{"action":{"name":"restart_pod","param_sources":{},"params":{}},"affected_resources":1,"#),
        "{canonical}"
    );
    assert_eq!(
        d.input_digest,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    // Same input, same digest; another input, another digest.
    assert_eq!(gate.decide(&input).input_digest, d.input_digest);
    let other = gate.decide(&self::input("restart_pod", Environment::Staging));
    assert_ne!(other.input_digest, d.input_digest);
}

#[test]
fn embedded_bundle_denies_forbidden_and_weekend_production_changes() {
    let gate = gate();
    let d = gate.decide(&input("drop_table", Environment::Development));
    assert!(!d.allow);
    assert!(
        d.deny.iter().any(|r| r.starts_with("forbidden:")),
        "{:?}",
        d.deny
    );

    let mut weekend = input("restart_pod", Environment::Production);
    weekend.time =
        shieldops::policy::TimeInput::at(Utc.with_ymd_and_hms(2025, 1, 18, 9, 0, 0).unwrap());
    assert_eq!(weekend.time.weekday, "Saturday");
    let d = gate.decide(&weekend);
    assert!(
        !d.allow && d.deny.iter().any(|r| r.starts_with("freeze:")),
        "{:?}",
        d.deny
    );
    weekend.freeze_override = true;
    let d = gate.decide(&weekend);
    assert!(d.allow, "{:?}", d.deny);
    assert_eq!(d.required_approvals, 2);
    assert!(d.controls.iter().any(|c| c == "SHIELDOPS:FREEZE-OVERRIDE"));
}

#[test]
fn deny_wins_even_when_the_policy_says_allow() {
    let gates = custom(
        r#"package shieldops
decision := {"allow": true, "deny": ["site rule says no"], "required_approvals": 0, "risk": "low", "controls": []}
"#,
        Duration::from_millis(250),
    );
    assert_eq!(gates[0].evaluator(), "rvm");
    assert_eq!(gates[1].evaluator(), "interpreter");
    for gate in &gates {
        let d = gate.decide(&input("restart_pod", Environment::Development));
        assert!(!d.allow);
        assert_eq!(d.deny, vec!["site rule says no".to_string()]);
    }
}

#[test]
fn a_denial_without_reason_gets_one() {
    let gates = custom(
        r#"package shieldops
decision := {"allow": false, "deny": [], "required_approvals": 0, "risk": "low", "controls": []}
"#,
        Duration::from_millis(250),
    );
    for gate in &gates {
        let d = gate.decide(&input("restart_pod", Environment::Development));
        assert!(!d.allow);
        assert_eq!(d.deny.len(), 1);
    }
}

fn assert_closed(gates: &[Gate], needle: &str) {
    for gate in gates {
        assert_closed_one(gate, &[needle]);
    }
}

/// A fail-closed deny whose one reason contains one of `needles`.
fn assert_closed_one(gate: &Gate, needles: &[&str]) {
    let d = gate.decide(&input("restart_pod", Environment::Development));
    assert!(!d.allow, "{d:?}");
    assert_eq!(d.risk, Risk::Critical);
    assert_eq!(d.deny.len(), 1, "{:?}", d.deny);
    assert!(d.deny[0].starts_with("policy gate: "), "{:?}", d.deny);
    assert!(
        needles.iter().any(|n| d.deny[0].contains(n)),
        "{}: wanted one of {needles:?} in {:?}",
        gate.evaluator(),
        d.deny
    );
    assert!(!d.bundle_hash.is_empty() && d.input_digest.len() == 64);
}

#[test]
fn fails_closed_on_an_evaluation_error() {
    let gate = custom(
        r#"package shieldops
decision := {"allow": true, "deny": [], "required_approvals": 0, "risk": "low", "controls": []} if input.action.name != ""
decision := {"allow": true, "deny": [], "required_approvals": 1, "risk": "low", "controls": []} if true
"#,
        Duration::from_millis(250),
    );
    // The interpreter reports the conflict; the RVM leaves the rule undefined.
    // Either way the decision is a deny saying what failed.
    assert_closed_one(&gate[0], &["policy evaluation failed", "undefined"]);
    assert_closed_one(&gate[1], &["policy evaluation failed"]);
}

#[test]
fn fails_closed_on_a_timeout() {
    let gate = custom(
        r#"package shieldops
n := count([1 | some i in numbers.range(1, 4000); some j in numbers.range(1, 4000)])
decision := {"allow": true, "deny": [], "required_approvals": n, "risk": "low", "controls": []}
"#,
        Duration::from_millis(20),
    );
    assert_closed(&gate, "time limit");
}

#[test]
fn fails_closed_on_malformed_documents() {
    let cases = [
        (r#"decision := "yes""#, "not an object"),
        (
            r#"decision := {"allow": true} if input.nothing"#,
            "undefined",
        ),
        (
            r#"decision := {"deny": [], "required_approvals": 0, "risk": "low", "controls": []}"#,
            "no `allow` field",
        ),
        (
            r#"decision := {"allow": "true", "deny": [], "required_approvals": 0, "risk": "low", "controls": []}"#,
            "`allow` is not a boolean",
        ),
        (
            r#"decision := {"allow": true, "deny": [1], "required_approvals": 0, "risk": "low", "controls": []}"#,
            "`deny` holds a non-string",
        ),
        (
            r#"decision := {"allow": true, "deny": "none", "required_approvals": 0, "risk": "low", "controls": []}"#,
            "`deny` is not an array",
        ),
        (
            r#"decision := {"allow": true, "deny": [], "required_approvals": -1, "risk": "low", "controls": []}"#,
            "`required_approvals`",
        ),
        (
            r#"decision := {"allow": true, "deny": [], "required_approvals": 1.5, "risk": "low", "controls": []}"#,
            "`required_approvals`",
        ),
        (
            r#"decision := {"allow": true, "deny": [], "required_approvals": 0, "risk": "extreme", "controls": []}"#,
            "not one of low, medium, high, critical",
        ),
        (
            r#"decision := {"allow": true, "deny": [], "required_approvals": 0, "risk": 3, "controls": []}"#,
            "`risk` is not a string",
        ),
        (
            r#"decision := {"allow": true, "deny": [], "required_approvals": 0, "risk": "low"}"#,
            "no `controls` field",
        ),
    ];
    for (rule, needle) in cases {
        let gate = custom(
            &format!("package shieldops\n{rule}\n"),
            Duration::from_millis(250),
        );
        assert_closed(&gate, needle);
    }
}

#[test]
fn site_data_that_breaks_the_risk_table_fails_closed() {
    let mut bundle = Bundle::embedded();
    bundle.merge_data(serde_json::json!({
        "shieldops_config": {"risk": {"actions": {"restart_pod": {"development": "extreme"}}}}
    }));
    let gate = Gate::new(&bundle, GateOptions::default()).unwrap();
    assert_eq!(gate.evaluator(), "rvm");
    let d = gate.decide(&input("restart_pod", Environment::Development));
    assert!(!d.allow);
    assert!(d.deny[0].contains("\"extreme\""), "{:?}", d.deny);
}

#[test]
fn load_errors_name_what_is_wrong() {
    let mut bundle = Bundle::empty();
    bundle.add_policy("other.rego", "package other\nx := 1\n");
    assert!(matches!(
        Gate::new(&bundle, GateOptions::default()),
        Err(PolicyError::NoDecision)
    ));
    let mut bundle = Bundle::embedded();
    bundle.add_policy("broken.rego", "package shieldops\nbroken if {\n");
    let err = Gate::new(&bundle, GateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken.rego"), "{err}");
}

#[test]
fn a_user_directory_overrides_thresholds_and_policies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("data.json"),
        r#"{"shieldops_config": {"blast_radius": {"production": 1}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("site.rego"),
        "package shieldops\n\ndeny contains \"site: no pods on Wednesdays\" if input.time.weekday == \"Wednesday\"\n",
    )
    .unwrap();
    // Test files in the user directory are not part of the gate's bundle.
    std::fs::write(
        dir.path().join("site_test.rego"),
        "package x\n\ntest_a if true\n",
    )
    .unwrap();
    let gate = Gate::load(Some(dir.path())).unwrap();
    assert_ne!(gate.bundle_hash(), Bundle::embedded().hash());
    let mut two = input("restart_pod", Environment::Production);
    two.affected_resources = 2;
    let d = gate.decide(&two);
    assert!(
        d.deny.iter().any(|r| r.starts_with("blast radius:")),
        "{:?}",
        d.deny
    );
    assert!(
        d.deny.iter().any(|r| r == "site: no pods on Wednesdays"),
        "{:?}",
        d.deny
    );

    std::fs::write(dir.path().join("data.json"), "{ not json").unwrap();
    let err = Gate::load(Some(dir.path())).unwrap_err().to_string();
    assert!(err.contains("data.json:1:"), "{err}");
}

#[test]
fn the_gate_is_shared_across_threads() {
    let gate = gate();
    let inputs: Vec<PolicyInput> = [
        ("restart_pod", Environment::Production),
        ("drain_node", Environment::Staging),
        ("get_health", Environment::Development),
        ("drop_table", Environment::Production),
    ]
    .into_iter()
    .map(|(a, e)| input(a, e))
    .collect();
    let expected: Vec<_> = inputs.iter().map(|i| gate.decide(i)).collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (gate, inputs, expected) = (&gate, &inputs, &expected);
            s.spawn(move || {
                for round in 0..50 {
                    let k = (t + round) % inputs.len();
                    assert_eq!(&gate.decide(&inputs[k]), &expected[k]);
                }
            });
        }
    });
}

// ----------------------------------------------------------- input from state --

struct Log {
    state: State,
    seq: u64,
    prev: ChainHash,
}

impl Log {
    fn new() -> Self {
        Self {
            state: State::new(),
            seq: 0,
            prev: ChainHash::GENESIS,
        }
    }
    fn push(&mut self, at: DateTime<Utc>, kind: EventKind) -> u64 {
        self.seq += 1;
        let (event, _): (Event, _) =
            Event::seal(self.seq, self.prev, NewEvent::new(at, "test", kind));
        self.prev = event.hash;
        self.state.apply(&event);
        self.seq
    }
    fn propose(&mut self, at: DateTime<Utc>, target: &Resource, action: &str) -> u64 {
        self.push(
            at,
            EventKind::RemediationProposed {
                incident: None,
                investigation: None,
                action: Action::new(action, target.id.clone()),
                environment: target.environment,
                team: target.team.clone(),
                reason: "test".into(),
                requested_by: "agent".into(),
                playbook: None,
            },
        )
    }
    fn execute(&mut self, at: DateTime<Utc>, remediation: u64) {
        self.push(
            at,
            EventKind::ActionExecuted {
                remediation,
                outcome: ActionOutcome {
                    success: true,
                    message: "ok".into(),
                    steps: vec![],
                },
            },
        );
        // Finished when it executed: one still under way counts as of now.
        self.push(
            at,
            EventKind::RemediationFinished {
                remediation,
                status: shieldops::event::RemediationOutcome::Succeeded,
                detail: String::new(),
            },
        );
    }
}

#[test]
fn input_for_a_remediation_counts_executions_from_the_log() {
    let now = wednesday();
    let prod = pod(Environment::Production, "payments");
    let mut search = pod(Environment::Production, "search");
    search.id = ResourceId::new("k8s/prod/search/pod/idx-1");
    let staging = pod(Environment::Staging, "payments");
    let mut log = Log::new();
    for r in [&prod, &search, &staging] {
        log.push(
            now - chrono::Duration::hours(3),
            EventKind::ResourceDiscovered {
                resource: r.clone(),
            },
        );
    }
    // Executed 30 s ago (prod, payments), 10 min ago (prod, search),
    // 59 min ago (staging, payments), 61 min ago (prod, payments: outside the hour),
    // and one proposed but never executed.
    for (minutes_ago, target) in [
        (0.5, &prod),
        (10.0, &search),
        (59.0, &staging),
        (61.0, &prod),
    ] {
        let at = now - chrono::Duration::seconds((minutes_ago * 60.0) as i64);
        let id = log.propose(at - chrono::Duration::seconds(1), target, "restart_pod");
        log.execute(at, id);
    }
    log.propose(now - chrono::Duration::seconds(5), &prod, "restart_pod");
    let current = log.propose(now, &prod, "set_resources");

    let input = PolicyInput::for_remediation(&log.state, current, "payments", now).unwrap();
    assert_eq!(
        input.rate,
        RateInput {
            environment_last_minute: 1,
            environment_last_hour: 2,
            team_last_hour: 2
        }
    );
    assert_eq!(input.action.name, "set_resources");
    assert_eq!(input.target.kind, "pod");
    assert_eq!(
        input.target.labels.get("team").map(String::as_str),
        Some("payments")
    );
    assert_eq!(input.requester.team, "payments");
    assert_eq!(input.requester.name, "agent");
    assert_eq!(input.affected_resources, 1);
    assert_eq!(
        (input.time.weekday.as_str(), input.time.hour),
        ("Wednesday", 10)
    );
    assert!(!input.freeze_override);

    // A minute later the 30-second-old execution has left the minute window.
    let later = PolicyInput::for_remediation(
        &log.state,
        current,
        "payments",
        now + chrono::Duration::seconds(31),
    )
    .unwrap();
    assert_eq!(later.rate.environment_last_minute, 0);
    assert_eq!(later.rate.environment_last_hour, 2);
    assert!(PolicyInput::for_remediation(&log.state, 9_999, "payments", now).is_none());
}

#[test]
fn input_for_a_remediation_reads_its_parameters_and_survives_a_gone_target() {
    let now = wednesday();
    let prod = pod(Environment::Production, "payments");
    let mut log = Log::new();
    let mut action = Action::new("drain_node", prod.id.clone())
        .with("affected_resources", "7")
        .with("freeze_override", "true");
    action.target = ResourceId::new("k8s/prod/node/gone");
    let id = log.push(
        now,
        EventKind::RemediationProposed {
            incident: None,
            investigation: None,
            action,
            environment: Environment::Production,
            team: "platform".into(),
            reason: "test".into(),
            requested_by: "agent".into(),
            playbook: None,
        },
    );
    let input = PolicyInput::for_remediation(&log.state, id, "platform", now).unwrap();
    // The blast radius is read from the fleet, never from a parameter.
    assert_eq!(input.affected_resources, 1);
    assert!(input.freeze_override);
    assert_eq!(input.target.kind, "");
    assert_eq!(input.target.team, "platform");
    // Without a kind the policy refuses to guess.
    let d = gate().decide(&input);
    assert!(!d.allow);
    assert!(
        d.deny.iter().any(|r| r.contains("target.kind")),
        "{:?}",
        d.deny
    );
}
