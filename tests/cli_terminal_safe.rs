//! Human-readable CLI output never carries raw control characters: an alert
//! posted with an OSC 52 sequence (which would write the operator's
//! clipboard) and a BEL in its name and summary is shown by `log tail` as
//! visible escapes, while `log export` keeps it exactly, as valid JSON.

use std::process::Output;

use shieldops::remote::auth::Role;

mod remote_support;
use remote_support::{Server, http, shieldops};

const OSC52: &str = "\u{1b}]52;c;cm0gLXJmIH4K\u{7}";

fn assert_terminal_safe(out: &Output) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        for bad in [0x1b_u8, 0x07, 0x9b] {
            assert!(
                !bytes.contains(&bad),
                "raw byte {bad:#x} on {name}: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_osc52_alert_name_reaches_the_terminal_escaped_and_the_export_exactly() {
    let server = Server::start(&[("olga", Role::Operator)], &["--no-scenario"]);
    let name = format!("Disk{OSC52}Full");
    let body = serde_json::json!({
        "version": "4",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": name, "resource": "target/web-1"},
            "annotations": {"summary": format!("reason \u{1b}[2J\u{9b}31m{OSC52}")},
            "fingerprint": "osc52",
        }],
    });
    let (status, reply) = http(
        server.addr,
        "POST",
        "/api/v1/alerts/alertmanager",
        Some(&server.token("olga")),
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{reply}");

    // `log tail` reads the log while `serve` holds it.
    let tail = shieldops(server.dir.path())
        .args(["log", "tail", "--from", "1"])
        .output()
        .unwrap();
    assert!(tail.status.success(), "{tail:?}");
    assert_terminal_safe(&tail);
    let shown = String::from_utf8(tail.stdout.clone()).unwrap();
    assert!(
        shown.contains("Disk\\x1b]52;c;cm0gLXJmIH4K\\x07Full"),
        "the name is shown, escaped: {shown}"
    );

    let stats = shieldops(server.dir.path())
        .args(["log", "stats"])
        .output()
        .unwrap();
    assert!(stats.status.success());
    assert_terminal_safe(&stats);

    // The export is JSON: every line parses, and the name is kept exactly.
    let export = shieldops(server.dir.path())
        .args(["log", "export"])
        .output()
        .unwrap();
    assert!(export.status.success());
    assert!(
        !export.stdout.contains(&0x1b),
        "JSON escapes control characters"
    );
    let names: Vec<String> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v["alert"]["name"].as_str().map(String::from))
        .collect();
    assert_eq!(names, vec![name]);
}

#[test]
fn playbook_and_error_output_escape_hostile_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir(&playbooks).unwrap();
    std::fs::write(
        playbooks.join(format!("evil{OSC52}.yaml")),
        format!("name: \"{}\"\nsteps: [\n", "\\e]0;title\\a"),
    )
    .unwrap();
    let out = shieldops(dir.path())
        .args(["playbook", "validate"])
        .arg(&playbooks)
        .output()
        .unwrap();
    assert_terminal_safe(&out);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("evil\\x1b]52"), "{shown}");

    // An error quoting a hostile path goes to stderr escaped too.
    let out = shieldops(dir.path())
        .args(["playbook", "validate"])
        .arg(dir.path().join(format!("missing{OSC52}")))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_terminal_safe(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing\\x1b]52"),
        "{out:?}"
    );
}
