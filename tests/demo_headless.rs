//! The demo scenario, headless, end to end through the real binary: the
//! exported log must tell the whole story of the OOM-killed pod in order.

use serde_json::Value;

mod demo_support;
use demo_support::{export, headless_demo, shieldops};

#[test]
fn headless_demo_tells_the_whole_story_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let status = headless_demo(dir.path(), 25, "alice").status().unwrap();
    assert!(status.success());

    let verify = shieldops(dir.path())
        .args(["log", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    let events = export(dir.path());
    for e in &events {
        for key in ["seq", "at", "actor", "kind", "hash"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seq is dense"
    );

    // Follow the OOM incident through its ids.
    let alert = events
        .iter()
        .find(|e| e["kind"] == "alert_received" && e["alert"]["name"] == "KubePodCrashLooping")
        .expect("crash-loop alert");
    let alert_seq = alert["seq"].as_u64().unwrap();
    let incident = events
        .iter()
        .find(|e| e["kind"] == "incident_opened" && e["alert_seq"] == alert_seq)
        .expect("incident opened from the alert");
    let incident_id = incident["seq"].as_u64().unwrap();
    let investigation = events
        .iter()
        .find(|e| e["kind"] == "investigation_started" && e["incident"] == incident_id)
        .expect("investigation");
    let inv_id = investigation["seq"].as_u64().unwrap();
    let ranked = events
        .iter()
        .find(|e| e["kind"] == "hypotheses_ranked" && e["investigation"] == inv_id)
        .expect("hypotheses");
    let top = &ranked["hypotheses"][0];
    assert_eq!(top["title"], "Memory limit too low for the workload");
    assert!(
        !top["cites"].as_array().unwrap().is_empty(),
        "top hypothesis cites evidence"
    );
    let proposal = events
        .iter()
        .find(|e| e["kind"] == "remediation_proposed" && e["incident"] == incident_id)
        .expect("remediation proposed");
    let rem = proposal["seq"].as_u64().unwrap();
    assert_eq!(proposal["action"]["name"], "set_resources");
    assert_eq!(
        proposal["action"]["target"],
        "k8s/demo-prod/checkout/deployment/checkout-api"
    );

    let of_rem = |kind: &str| -> &Value {
        events
            .iter()
            .find(|e| e["kind"] == kind && e["remediation"] == rem)
            .unwrap_or_else(|| panic!("{kind} for remediation {rem}"))
    };
    let granted = of_rem("approval_granted");
    assert_eq!(granted["actor"], "operator:alice");
    assert_eq!(granted["by"], "alice");
    let finished = of_rem("remediation_finished");
    assert_eq!(finished["status"], "succeeded");
    assert_eq!(of_rem("validation_finished")["passed"], true);
    let resolved = events
        .iter()
        .find(|e| e["kind"] == "incident_resolved" && e["incident"] == incident_id)
        .expect("incident resolved");

    let order = [
        alert_seq,
        incident_id,
        inv_id,
        ranked["seq"].as_u64().unwrap(),
        rem,
        of_rem("approval_requested")["seq"].as_u64().unwrap(),
        granted["seq"].as_u64().unwrap(),
        of_rem("snapshot_taken")["seq"].as_u64().unwrap(),
        of_rem("action_executed")["seq"].as_u64().unwrap(),
        of_rem("validation_finished")["seq"].as_u64().unwrap(),
        finished["seq"].as_u64().unwrap(),
        resolved["seq"].as_u64().unwrap(),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "story out of order: {order:?}"
    );

    // The rest of the scenario happened too.
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"incident_correlated"),
        "the repeated alert was correlated"
    );
    assert!(events.iter().any(|e| e["kind"] == "security_finding"
        && e["finding"]["id"] == "CVE-2024-6387@linux/web-prod-1"));
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "security_finding" && e["finding"]["category"] == "credential")
    );
    assert!(kinds.contains(&"cost_anomaly"));
    assert!(events.iter().any(|e| e["kind"] == "incident_resolved"
        && e["resolution"].as_str().unwrap().contains("by itself")));
    assert!(
        events.iter().any(|e| e["kind"] == "remediation_finished"
            && e["status"] == "succeeded"
            && e["remediation"] != rem),
        "the staging disk clean-up ran without approval"
    );
}

#[test]
fn a_second_run_resumes_without_replaying_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let run = || headless_demo(dir.path(), 25, "bob").status().unwrap();
    assert!(run().success());
    let first = export(dir.path());
    assert!(run().success());
    let second = export(dir.path());
    let count = |events: &[Value], kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(
        count(&first, "incident_opened"),
        count(&second, "incident_opened")
    );
    assert_eq!(
        count(&first, "resource_discovered"),
        count(&second, "resource_discovered")
    );
    assert_eq!(count(&second, "scenario_finished"), 1);
}
