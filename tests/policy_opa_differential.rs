//! Differential test: the gate (regorus, as the runtime runs it) and OPA, the
//! reference Rego engine, decide the same generated inputs identically.
//!
//! Inputs are valid proposals of every action family and the same proposals
//! with fields removed, nulled, of the wrong type, out of range or extra, as an
//! insider sending a malformed proposal would (one to three faults each). The
//! gate decides each raw document through `Gate::decide_value` (the same
//! evaluation and decision check as the runtime's `Gate::decide`; documents
//! that a typed `PolicyInput` carries exactly are also decided through
//! `decide` and must match), with the RVM the runtime uses and with the
//! interpreter. OPA decides them in one batch through `scripts/opa_test.py
//! --decide`, whose decision document goes through the same shape check.
//! Any disagreement on allow, deny reasons, required approvals, risk or
//! controls fails the test and prints the input. The generator is seeded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use shieldops::event::PolicyDecision;
use shieldops::policy::{Bundle, Evaluator, Gate, GateOptions, PolicyInput, check_decision};

/// How many inputs each run decides.
const CASES: usize = 3000;
const SEED: u64 = 0x5EED_0016;

const ENVIRONMENTS: &[&str] = &["development", "staging", "production"];
const WEEKDAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const TEAMS: &[&str] = &["payments", "search", "frontend", "data"];
const SOURCES: &[&str] = &["playbook", "facts", "live", "alert", "operator"];

/// An action with the target kind and parameters a connector proposes for it.
struct Template {
    name: &'static str,
    kind: &'static str,
    params: &'static [(&'static str, &'static [&'static str])],
}

const TEMPLATES: &[Template] = &[
    Template {
        name: "restart_pod",
        kind: "pod",
        params: &[],
    },
    Template {
        name: "rollout_restart",
        kind: "deployment",
        params: &[],
    },
    Template {
        name: "rollback_deployment",
        kind: "deployment",
        params: &[("revision", &["3", "12"])],
    },
    Template {
        name: "scale",
        kind: "deployment",
        params: &[
            ("replicas", &["2", "6", "40"]),
            ("current_replicas", &["4", "3"]),
        ],
    },
    Template {
        name: "drain",
        kind: "node",
        params: &[],
    },
    Template {
        name: "resize_instance",
        kind: "ec2_instance",
        params: &[
            (
                "instance_type",
                &[
                    "m5.large",
                    "m5.2xlarge",
                    "m5.8xlarge",
                    "t3.small",
                    "m5.metal",
                ],
            ),
            ("from_instance_type", &["m5.xlarge", "m5.4xlarge"]),
        ],
    },
    Template {
        name: "stop_instance",
        kind: "ec2_instance",
        params: &[],
    },
    Template {
        name: "set_desired_count",
        kind: "ecs_service",
        params: &[("desired_count", &["0", "6", "500"])],
    },
    Template {
        name: "rotate_secret",
        kind: "credential",
        params: &[("reason", &["expires in 3 days"])],
    },
    Template {
        name: "clean_disk",
        kind: "host",
        params: &[("globs", &["/var/log/*.gz", "/tmp/*"])],
    },
    Template {
        name: "restart_service",
        kind: "host",
        params: &[("service", &["nginx.service"])],
    },
    Template {
        name: "query_logs",
        kind: "pod",
        params: &[],
    },
    Template {
        name: "delete_database",
        kind: "database",
        params: &[],
    },
];

/// A valid, real-shaped input document.
fn valid_input(rng: &mut ChaCha8Rng) -> Value {
    let t = TEMPLATES.choose(rng).expect("templates");
    let env = *ENVIRONMENTS.choose(rng).expect("environments");
    let team = *TEAMS.choose(rng).expect("teams");
    let requester_team = if rng.random_bool(0.85) {
        team
    } else {
        TEAMS.choose(rng).expect("teams")
    };
    let mut params = Map::new();
    let mut sources = Map::new();
    for (name, values) in t.params {
        params.insert(
            (*name).into(),
            json!(*values.choose(rng).expect("param values")),
        );
        let source = if *name == "from_instance_type" {
            "live"
        } else {
            SOURCES.choose(rng).expect("sources")
        };
        sources.insert((*name).into(), json!(source));
    }
    let mut labels = Map::new();
    labels.insert("team".into(), json!(team));
    if t.kind == "credential" {
        labels.insert("store".into(), json!("vault"));
        labels.insert("credential_type".into(), json!("secret"));
    } else {
        labels.insert(
            "namespace".into(),
            json!(*["payments", "web", "kube-system"].choose(rng).expect("ns")),
        );
    }
    if rng.random_bool(0.2) {
        labels.insert(
            "data_classification".into(),
            json!(*["pci", "phi", "public"].choose(rng).expect("class")),
        );
    }
    let requester = if rng.random_bool(0.5) {
        "agent:remediation"
    } else {
        "alice"
    };
    json!({
        "action": {"name": t.name, "params": params, "param_sources": sources},
        "target": {
            "id": format!("fleet/{env}/{}/{}", t.kind, rng.random_range(0..100)),
            "kind": t.kind,
            "environment": env,
            "team": team,
            "labels": labels,
        },
        "requester": {"name": requester, "team": requester_team},
        "affected_resources": rng.random_range(0..6),
        "time": {
            "rfc3339": "2026-01-14T10:00:00.000Z",
            "weekday": *WEEKDAYS.choose(rng).expect("weekdays"),
            "hour": rng.random_range(0..24),
        },
        "rate": {
            "environment_last_minute": rng.random_range(0..4),
            "environment_last_hour": rng.random_range(0..25),
            "team_last_hour": rng.random_range(0..35),
        },
        "freeze_override": rng.random_bool(0.2),
    })
}

/// Every path (as keys from the root) to a value in `doc`, objects included.
fn paths(doc: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(map) = doc {
        for (k, v) in map {
            prefix.push(k.clone());
            out.push(prefix.clone());
            paths(v, prefix, out);
            prefix.pop();
        }
    }
}

/// The object holding the last key of `path`, and that key.
fn parent_mut<'a>(
    doc: &'a mut Value,
    path: &'a [String],
) -> Option<(&'a mut Map<String, Value>, &'a str)> {
    let (last, init) = path.split_last()?;
    let mut cur = doc;
    for k in init {
        cur = cur.get_mut(k)?;
    }
    Some((cur.as_object_mut()?, last.as_str()))
}

/// One fault, as a malformed proposal would carry it.
fn corrupt(doc: &mut Value, rng: &mut ChaCha8Rng) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let path = all.choose(rng).expect("a document has fields").clone();
    let Some((parent, key)) = parent_mut(doc, &path) else {
        return;
    };
    let replacement = match rng.random_range(0..9) {
        0 => {
            parent.remove(key);
            return;
        }
        1 => Value::Null,
        2 => json!("7"),
        3 => json!(7),
        4 => json!(true),
        5 => json!([1, "a"]),
        6 => json!({"x": 1}),
        7 => json!(*[-1.0, 3.5, 24.0, 1e9, 0.0].choose(rng).expect("numbers")),
        _ => {
            // An extra field beside this one.
            parent.insert("extra_field".into(), json!("surprise"));
            return;
        }
    };
    parent.insert(key.to_string(), replacement);
}

/// Special cases the random faults may miss: provenance values and shapes.
fn provenance_variant(doc: &mut Value, rng: &mut ChaCha8Rng) {
    let Some(action) = doc.get_mut("action").and_then(Value::as_object_mut) else {
        return;
    };
    match rng.random_range(0..5) {
        0 => {
            action.remove("param_sources");
        }
        1 => {
            action.insert("param_sources".into(), json!("alert"));
        }
        2 => {
            if let Some(Value::Object(s)) = action.get_mut("param_sources") {
                for v in s.values_mut() {
                    *v = json!(*["ALERT", "live", "", "operator"].choose(rng).expect("src"));
                }
            }
        }
        3 => {
            if let Some(Value::Object(s)) = action.get_mut("param_sources") {
                s.clear();
            }
        }
        _ => {
            if let Some(Value::Object(s)) = action.get_mut("param_sources") {
                for v in s.values_mut() {
                    *v = json!("alert");
                }
            }
        }
    }
}

fn inputs() -> Vec<Value> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    (0..CASES)
        .map(|i| {
            let mut doc = valid_input(&mut rng);
            match i % 4 {
                // A quarter valid as generated.
                0 => {}
                1 => provenance_variant(&mut doc, &mut rng),
                _ => {
                    for _ in 0..rng.random_range(1..=3) {
                        corrupt(&mut doc, &mut rng);
                    }
                }
            }
            doc
        })
        .collect()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the OPA virtual environment that scripts/install-test-deps.sh makes.
fn opa_python() -> PathBuf {
    let venv = std::env::var_os("OPA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/shieldops/opa-venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        python.display()
    );
    python
}

/// OPA's decision for every input, in order, through the runner's batch mode.
fn opa_decisions(inputs: &[Value]) -> Vec<Result<PolicyDecision, String>> {
    let mut batch = tempfile::NamedTempFile::new().expect("temp file");
    for doc in inputs {
        writeln!(batch, "{doc}").expect("write batch");
    }
    batch.flush().expect("flush batch");
    let output = Command::new(opa_python())
        .arg(repo().join("scripts/opa_test.py"))
        .arg("--decide")
        .arg(repo().join("policies"))
        .stdin(std::fs::File::open(batch.path()).expect("reopen batch"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run the OPA runner");
    assert!(
        output.status.success(),
        "OPA runner failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = std::str::from_utf8(&output.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(lines.len(), inputs.len(), "one OPA answer per input");
    lines
        .into_iter()
        .map(|line| {
            let answer: Value = serde_json::from_str(line).expect("runner writes JSON");
            match answer.get("decision") {
                Some(d) => {
                    let value =
                        regorus::Value::from_json_str(&d.to_string()).map_err(|e| e.to_string())?;
                    check_decision(&value)
                }
                None => Err(format!("OPA gave no decision: {answer}")),
            }
        })
        .collect()
}

/// What both engines must agree on.
fn verdict(d: &PolicyDecision) -> Value {
    let mut deny = d.deny.clone();
    deny.sort();
    json!({
        "allow": d.allow,
        "deny": deny,
        "required_approvals": d.required_approvals,
        "risk": d.risk,
        "controls": d.controls,
    })
}

#[test]
fn gate_and_opa_agree_on_generated_valid_and_malformed_inputs() {
    let inputs = inputs();
    // The runtime's gate (`Gate::load(None)` is this bundle with default
    // options), with a time limit a loaded machine cannot reach: the limit
    // is not what this test compares.
    let slack = Duration::from_secs(60);
    let rvm = Gate::new(
        &Bundle::load(None).expect("embedded bundle"),
        GateOptions {
            time_limit: slack,
            ..GateOptions::default()
        },
    )
    .expect("embedded bundle");
    assert_eq!(rvm.evaluator(), "rvm", "the runtime's gate runs the RVM");
    let interpreter = Gate::new(
        &Bundle::embedded(),
        GateOptions {
            time_limit: slack,
            evaluator: Evaluator::Interpreter,
        },
    )
    .expect("embedded bundle");
    let opa = opa_decisions(&inputs);

    let mut disagreements = Vec::new();
    let (mut allowed, mut typed) = (0usize, 0usize);
    for (doc, opa) in inputs.iter().zip(&opa) {
        let gate = rvm.decide_value(doc);
        assert!(
            !gate.deny.iter().any(|r| r.starts_with("policy gate:")),
            "the gate failed to evaluate {doc}: {:?}",
            gate.deny
        );
        let ours = verdict(&gate);
        let theirs = match opa {
            Ok(d) => verdict(d),
            Err(e) => json!({"error": e}),
        };
        if ours != theirs {
            disagreements.push(format!("input: {doc}\n  gate: {ours}\n  opa:  {theirs}"));
        }
        let interp = verdict(&interpreter.decide_value(doc));
        if interp != ours {
            disagreements.push(format!(
                "input: {doc}\n  gate (rvm): {ours}\n  interpreter: {interp}"
            ));
        }
        // A document a typed input carries exactly is also decided the way
        // the runtime decides it.
        if let Ok(input) = serde_json::from_value::<PolicyInput>(doc.clone())
            && serde_json::to_value(&input).ok().as_ref() == Some(doc)
        {
            typed += 1;
            let via_typed = verdict(&rvm.decide(&input));
            if via_typed != ours {
                disagreements.push(format!(
                    "input: {doc}\n  decide_value: {ours}\n  decide: {via_typed}"
                ));
            }
        }
        allowed += usize::from(gate.allow);
    }
    println!(
        "{} inputs, {allowed} allowed, {typed} also decided as typed input, {} disagreements",
        inputs.len(),
        disagreements.len()
    );
    // The generator reaches both outcomes, or the comparison proves little.
    assert!(allowed > CASES / 20, "only {allowed} inputs were allowed");
    assert!(allowed < CASES - CASES / 5, "{allowed} inputs were allowed");
    assert!(
        disagreements.is_empty(),
        "{} disagreements; the first ones:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
