//! Kill the demo at each step of the remediation's safety path, restart it,
//! and check that it resumed: the chain verifies, no action ran twice, nothing
//! ran without its recorded allow and approvals, and everything finished.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod demo_support;
use demo_support::{export, headless_demo, shieldops, try_export};

fn demo(dir: &std::path::Path) -> Command {
    let mut cmd = headless_demo(dir, 10, "alice");
    cmd.stdout(Stdio::null());
    cmd
}

/// Waits (reading the live log through the running process) until `kind` is recorded.
fn wait_for_kind(dir: &std::path::Path, child: &mut Child, kind: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if try_export(dir).is_some_and(|events| events.iter().any(|e| e["kind"] == kind)) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("demo exited ({status}) before {kind}");
        }
        // Each poll is a whole process; leave the demo the CPU in between.
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{kind} never appeared");
}

/// The child's exit status, or `None` (after killing it) if it runs past `limit`.
fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check_invariants(events: &[Value]) {
    let of = |kind: &str, rem: u64| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["kind"] == kind && e["remediation"] == rem)
            .collect()
    };
    let proposals: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "remediation_proposed")
        .collect();
    assert!(!proposals.is_empty());
    for p in proposals {
        let rem = p["seq"].as_u64().unwrap();
        let executed = of("action_executed", rem);
        assert!(
            executed.len() <= 1,
            "remediation {rem} executed {} times",
            executed.len()
        );
        assert_eq!(
            of("remediation_finished", rem).len(),
            1,
            "remediation {rem} finished once"
        );
        if let Some(exec) = executed.first() {
            let at = exec["seq"].as_u64().unwrap();
            let decisions: Vec<&Value> = of("policy_decided", rem)
                .into_iter()
                .filter(|d| d["seq"].as_u64().unwrap() < at)
                .collect();
            assert!(!decisions.is_empty(), "a decision before execution");
            assert!(
                decisions.iter().all(|d| d["decision"]["allow"] == true),
                "remediation {rem} executed after a deny"
            );
            let decision = decisions.last().unwrap();
            let required = decision["decision"]["required_approvals"].as_u64().unwrap() as usize;
            let mut approvers: Vec<&str> = of("approval_granted", rem)
                .into_iter()
                .filter(|g| g["seq"].as_u64().unwrap() < at)
                .map(|g| g["by"].as_str().unwrap())
                .filter(|by| *by != p["requested_by"].as_str().unwrap())
                .collect();
            approvers.sort();
            approvers.dedup();
            assert!(
                approvers.len() >= required,
                "remediation {rem} ran without its approvals"
            );
            assert!(
                of("snapshot_taken", rem)
                    .iter()
                    .any(|s| s["seq"].as_u64().unwrap() < at)
            );
        }
    }
    assert!(events.iter().any(|e| e["kind"] == "scenario_finished"));
}

#[test]
fn killed_at_each_step_it_resumes_safely() {
    for kind in [
        "incident_opened",
        "approval_requested",
        "approval_granted",
        "snapshot_taken",
        "action_executed",
        "validation_finished",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = demo(dir.path()).spawn().unwrap();
        wait_for_kind(dir.path(), &mut child, kind);
        child.kill().unwrap(); // SIGKILL: no shutdown path runs
        child.wait().unwrap();

        let mut restarted = demo(dir.path()).spawn().unwrap();
        let status =
            wait_with_deadline(&mut restarted, Duration::from_secs(180)).unwrap_or_else(|| {
                let tail = shieldops(dir.path())
                    .args(["log", "tail"])
                    .output()
                    .unwrap();
                panic!(
                    "restart after a kill at {kind} never became quiet; last events:\n{}",
                    String::from_utf8_lossy(&tail.stdout)
                )
            });
        assert!(
            status.success(),
            "restart after a kill at {kind} did not finish"
        );
        let verify = shieldops(dir.path())
            .args(["log", "verify"])
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "chain broken after a kill at {kind}"
        );
        check_invariants(&export(dir.path()));
    }
}
