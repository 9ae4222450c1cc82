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
    for file in ["decision", "risk", "limits", "scope", "compliance"] {
        assert!(out.contains(&format!("{file}_test.rego:")), "{file}: {out}");
    }
}
