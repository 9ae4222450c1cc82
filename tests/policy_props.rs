//! Property test of the gate over random proposals × environments × teams ×
//! site thresholds × freeze times: deny always wins, forbidden actions are
//! never allowed, and an allowed mutating production action always needs at
//! least one approval. The gate runs the bundle on the regorus RVM; every
//! decision is also taken by the interpreter and the two must agree.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use shieldops::event::{Environment, READ_ONLY_ACTIONS, StringMap};
use shieldops::policy::{
    ActionInput, Bundle, Evaluator, Gate, GateOptions, PolicyInput, RateInput, RequesterInput,
    TargetInput, TimeInput,
};

const FORBIDDEN: &[&str] = &[
    "delete_database",
    "drop_table",
    "delete_namespace",
    "modify_iam_root",
    "disable_logging",
    "disable_monitoring",
];

const OTHER_ACTIONS: &[&str] = &[
    "restart_pod",
    "rollout_restart",
    "rollback_deployment",
    "rotate_credential",
    "set_resources",
    "scale",
    "drain_node",
    "drain",
    "cordon_node",
    "modify_network_policy",
    "modify_iam_policy",
    "clean_disk",
    "renew_certificate",
    "frobnicate",
];

const TEAMS: &[&str] = &["payments", "search", "frontend", "platform", "data"];
const KINDS: &[&str] = &[
    "pod",
    "deployment",
    "node",
    "database",
    "iam_role",
    "credential",
];

fn action_name() -> impl Strategy<Value = String> {
    let all: Vec<&'static str> = READ_ONLY_ACTIONS
        .iter()
        .chain(FORBIDDEN)
        .chain(OTHER_ACTIONS)
        .copied()
        .collect();
    proptest::sample::select(all).prop_map(str::to_string)
}

fn environment() -> impl Strategy<Value = Environment> {
    prop_oneof![
        Just(Environment::Development),
        Just(Environment::Staging),
        Just(Environment::Production)
    ]
}

fn params() -> impl Strategy<Value = BTreeMap<String, String>> {
    (
        proptest::option::of(0u32..12),
        proptest::option::of(0u32..12),
    )
        .prop_map(|(replicas, current)| {
            let mut p = BTreeMap::new();
            if let Some(r) = replicas {
                p.insert("replicas".to_string(), r.to_string());
            }
            if let Some(c) = current {
                p.insert("current_replicas".to_string(), c.to_string());
            }
            p
        })
}

prop_compose! {
    fn input()(
        name in action_name(),
        params in params(),
        env in environment(),
        requester_team in proptest::sample::select(TEAMS),
        target_team in proptest::sample::select(TEAMS),
        kind in proptest::sample::select(KINDS),
        classification in proptest::option::of(proptest::sample::select(&["pci", "phi", "public"][..])),
        kube_system in any::<bool>(),
        affected in 0u32..15,
        // Any hour of two weeks from Monday 2025-01-13 00:00 UTC.
        hours in 0i64..(14 * 24),
        minute in 0u32..4, hour in 0u32..30, team_hour in 0u32..40,
        freeze_override in any::<bool>(),
    ) -> PolicyInput {
        let now = Utc.with_ymd_and_hms(2025, 1, 13, 0, 0, 0).unwrap() + chrono::Duration::hours(hours);
        let mut labels = StringMap::from([("team".to_string(), target_team.to_string())]);
        if let Some(c) = classification {
            labels.insert("data_classification".into(), c.to_string());
        }
        if kube_system {
            labels.insert("namespace".into(), "kube-system".into());
        }
        PolicyInput {
            action: ActionInput { name, param_sources: Default::default(), params },
            target: TargetInput {
                id: "res-1".into(),
                kind: kind.to_string(),
                environment: env,
                team: target_team.to_string(),
                labels,
            },
            requester: RequesterInput { name: "agent".into(), team: requester_team.to_string() },
            affected_resources: affected,
            time: TimeInput::at(now),
            rate: RateInput {
                environment_last_minute: minute,
                environment_last_hour: hour,
                team_last_hour: team_hour,
            },
            freeze_override,
        }
    }
}

prop_compose! {
    /// Site thresholds, including ones that try to switch approvals off.
    fn site_data()(
        blast in prop::array::uniform3(0u32..12),
        by_risk in prop::array::uniform4(0u32..3),
        production_minimum in 0u32..2,
        regulated_minimum in 0u32..2,
        freeze_days in proptest::sample::subsequence(
            vec!["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"], 0..4),
        from_hour in 0u32..24,
        extra in 0u32..3,
        per_minute in 1u32..5,
        per_hour in 1u32..30,
        team_per_hour in 1u32..40,
        cross_team in any::<bool>(),
    ) -> serde_json::Value {
        let windows: Vec<_> = freeze_days
            .iter()
            .map(|d| serde_json::json!({"weekday": d, "from_hour": from_hour, "to_hour": 24}))
            .collect();
        serde_json::json!({"shieldops_config": {
            "blast_radius": {"development": blast[0], "staging": blast[1], "production": blast[2]},
            "approvals": {
                "by_risk": {"low": by_risk[0], "medium": by_risk[1], "high": by_risk[2], "critical": by_risk[3]},
                "production_minimum": production_minimum,
                "regulated_minimum": regulated_minimum,
            },
            "freeze": {"windows": windows, "override_extra_approvals": extra},
            "rate_limits": {
                "per_minute": {"development": per_minute * 3, "staging": per_minute * 2, "production": per_minute},
                "per_hour": {"development": per_hour * 3, "staging": per_hour * 2, "production": per_hour},
                "team_per_hour": team_per_hour,
            },
            "scope": {"cross_team_teams": if cross_team { vec!["platform"] } else { vec![] }},
        }})
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn deny_wins_forbidden_never_allowed_production_needs_approval(
        data in site_data(),
        inputs in prop::collection::vec(input(), 1..8),
    ) {
        let mut bundle = Bundle::embedded();
        bundle.merge_data(data);
        let gate = Gate::new(&bundle, GateOptions::default()).unwrap();
        prop_assert_eq!(gate.evaluator(), "rvm");
        let interpreter = Gate::new(
            &bundle,
            GateOptions { evaluator: Evaluator::Interpreter, ..GateOptions::default() },
        )
        .unwrap();
        for input in &inputs {
            let d = gate.decide(input);
            prop_assert_eq!(&d, &interpreter.decide(input), "RVM and interpreter disagree on {:?}", input);
            prop_assert!(!d.allow || d.deny.is_empty(), "allowed with deny reasons: {d:?}");
            prop_assert!(d.allow || !d.deny.is_empty(), "denied without a reason: {d:?}");
            if FORBIDDEN.contains(&input.action.name.as_str()) {
                prop_assert!(!d.allow, "forbidden action allowed: {input:?} -> {d:?}");
            }
            let mutating = !READ_ONLY_ACTIONS.contains(&input.action.name.as_str());
            if mutating && input.target.environment == Environment::Production && d.allow {
                prop_assert!(d.required_approvals >= 1, "no approval for {input:?} -> {d:?}");
            }
            prop_assert_eq!(d.input_digest.len(), 64);
            prop_assert_eq!(&d.bundle_hash, gate.bundle_hash());
        }
    }
}

/// A JSON edit that breaks the input's shape.
#[derive(Debug, Clone)]
enum Damage {
    Remove(&'static str, &'static str),
    Replace(&'static str, &'static str, serde_json::Value),
}

fn damage() -> impl Strategy<Value = Damage> {
    let fields: Vec<(&'static str, &'static str)> = vec![
        ("", "action"),
        ("action", "name"),
        ("", "target"),
        ("target", "environment"),
        ("target", "kind"),
        ("target", "team"),
        ("target", "labels"),
        ("", "requester"),
        ("requester", "team"),
        ("", "affected_resources"),
        ("", "time"),
        ("time", "weekday"),
        ("time", "hour"),
        ("", "rate"),
        ("rate", "team_last_hour"),
        ("", "freeze_override"),
    ];
    let values = vec![
        serde_json::json!(null),
        serde_json::json!(-1),
        serde_json::json!(99),
        serde_json::json!("production"),
        serde_json::json!(""),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!(true),
    ];
    prop_oneof![
        proptest::sample::select(fields.clone()).prop_map(|(p, f)| Damage::Remove(p, f)),
        (
            proptest::sample::select(fields),
            proptest::sample::select(values)
        )
            .prop_map(|((p, f), v)| Damage::Replace(p, f, v)),
    ]
}

fn apply(doc: &mut serde_json::Value, d: &Damage) {
    let (parent, field) = match d {
        Damage::Remove(p, f) | Damage::Replace(p, f, _) => (*p, *f),
    };
    let obj = if parent.is_empty() {
        Some(&mut *doc)
    } else {
        doc.get_mut(parent)
    };
    if let Some(serde_json::Value::Object(map)) = obj {
        match d {
            Damage::Remove(..) => {
                map.remove(field);
            }
            Damage::Replace(_, _, v) => {
                map.insert(field.to_string(), v.clone());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Malformed inputs: both evaluators agree, deny still wins, and a
    /// forbidden action stays forbidden whatever else is broken.
    #[test]
    fn malformed_inputs_are_decided_alike_and_safely(input in input(), damages in prop::collection::vec(damage(), 1..4)) {
        let bundle = Bundle::embedded();
        let gate = Gate::new(&bundle, GateOptions::default()).unwrap();
        let interpreter = Gate::new(
            &bundle,
            GateOptions { evaluator: Evaluator::Interpreter, ..GateOptions::default() },
        )
        .unwrap();
        let mut doc = serde_json::to_value(&input).unwrap();
        for d in &damages {
            apply(&mut doc, d);
        }
        let d = gate.decide_value(&doc);
        prop_assert_eq!(&d, &interpreter.decide_value(&doc), "disagree on {}", doc);
        prop_assert!(!d.allow || d.deny.is_empty(), "allowed with deny reasons: {d:?}");
        // A forbidden action stays forbidden whatever else is broken (a
        // damage may also replace the name itself: judge the name decided on).
        let name = doc["action"]["name"].as_str().unwrap_or_default();
        if FORBIDDEN.contains(&name) {
            prop_assert!(!d.allow, "forbidden action allowed: {doc}");
        }
    }
}
