//! `shieldops policy test` semantics: the repository's policies pass their own
//! tests, and a failing test makes the runner fail.

use std::path::Path;

use shieldops::policy::policy_test;

fn run(dir: &Path, coverage: bool) -> (i32, String) {
    let mut out = Vec::new();
    let code = policy_test(dir, coverage, &mut out).expect("runner loads the directory");
    (code, String::from_utf8(out).expect("utf-8 output"))
}

#[test]
fn repository_policies_pass_their_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let (code, out) = run(&dir, false);
    println!("{out}");
    assert_eq!(code, 0, "policy tests failed:\n{out}");
    let passes = out.lines().filter(|l| l.contains(": PASS (")).count();
    assert!(passes >= 60, "only {passes} tests ran:\n{out}");
    assert!(!out.contains(": FAIL ("));
    assert!(out.contains(&format!("PASS: {passes}/{passes}")), "{out}");
    // Every policy file has its tests beside it.
    for file in [
        "decision",
        "risk",
        "limits",
        "scope",
        "compliance",
        "provenance",
        "cost",
    ] {
        assert!(out.contains(&format!("{file}_test.rego:")), "{file}: {out}");
    }
    // And every compliance framework's controls (policies/compliance/).
    for file in ["checks", "soc2", "pci_dss", "hipaa", "cis"] {
        assert!(
            out.contains(&format!("compliance/{file}_test.rego:")),
            "{file}: {out}"
        );
    }
}

#[test]
fn a_failing_test_makes_the_runner_fail() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.rego"),
        "package demo\n\ndouble(x) := x * 2\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules_test.rego"),
        "package demo_test\n\n\
         test_double_right if data.demo.double(2) == 4\n\n\
         test_double_wrong if data.demo.double(2) == 5\n\n\
         test_conflict if {\n\tdata.demo_test.clash\n}\n\n\
         clash := 1 if true\n\nclash := 2 if true\n",
    )
    .unwrap();
    let (code, out) = run(dir.path(), true);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("data.demo_test.test_double_right: PASS ("),
        "{out}"
    );
    assert!(
        out.contains("data.demo_test.test_double_wrong: FAIL ("),
        "{out}"
    );
    assert!(
        out.contains("data.demo_test.test_conflict: ERROR ("),
        "{out}"
    );
    assert!(
        out.contains("PASS: 1/3") && out.contains("FAIL: 1/3") && out.contains("ERROR: 1/3"),
        "{out}"
    );
    assert!(
        out.contains("COVERAGE:") && out.contains("rules.rego"),
        "{out}"
    );
}

#[test]
fn no_tests_is_not_a_pass_and_a_syntax_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.rego"), "package demo\n\nx := 1\n").unwrap();
    assert_eq!(run(dir.path(), false).0, 2);
    std::fs::write(
        dir.path().join("bad_test.rego"),
        "package demo_test\n\ntest_x if {\n",
    )
    .unwrap();
    let mut out = Vec::new();
    let err = policy_test(dir.path(), false, &mut out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad_test.rego"), "{err}");
}

#[test]
fn policy_eval_prints_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        r#"{"action": {"name": "restart_pod", "params": {}},
            "target": {"id": "x", "kind": "pod", "environment": "production", "team": "payments", "labels": {"team": "payments"}},
            "requester": {"name": "alice", "team": "payments"},
            "affected_resources": 2,
            "time": {"rfc3339": "2025-01-15T10:00:00Z", "weekday": "Wednesday", "hour": 10},
            "rate": {"environment_last_minute": 0, "environment_last_hour": 0, "team_last_hour": 0}}"#,
    )
    .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        shieldops::policy::policy_eval(&input, None, None, &mut out).unwrap(),
        0
    );
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["allow"], true, "{doc}");
    assert_eq!(doc["risk"], "medium");

    let data = dir.path().join("site.json");
    std::fs::write(
        &data,
        r#"{"shieldops_config": {"blast_radius": {"production": 1}}}"#,
    )
    .unwrap();
    let mut out = Vec::new();
    shieldops::policy::policy_eval(&input, Some(&data), None, &mut out).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["allow"], false, "{doc}");

    std::fs::write(&input, "{\n  \"action\": oops\n}").unwrap();
    let err = shieldops::policy::policy_eval(&input, None, None, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("input.json:2:"), "{err}");
}
