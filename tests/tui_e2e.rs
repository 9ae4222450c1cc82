//! End to end: the real binary in a pseudo-terminal, driven by keystrokes,
//! its screen parsed by a terminal emulator; the outcome read back from the
//! exported event log. Waits poll the parsed screen against a deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

mod tui_support;
use tui_support::pty::{BIN, Console, DEADLINE};

fn pending_count(screen: &str) -> u64 {
    screen
        .split("⚑ ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn export(data: &Path) -> Vec<Value> {
    let out = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(data.join("data"))
        .arg("--log-dir")
        .arg(data.join("logs"))
        .args(["log", "export", "--format", "jsonl"])
        .env("HOME", data)
        .env("XDG_CONFIG_HOME", data.join("config"))
        .output()
        .expect("run log export");
    assert!(
        out.status.success(),
        "log export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("export lines are JSON"))
        .collect()
}

fn remediation_id(screen: &str, title: &str) -> u64 {
    let rest = screen.split(title).nth(1).expect("dialog title");
    rest.trim_start_matches('#')
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .expect("remediation id in the dialog title")
}

/// The OS account of this process's real uid, as `id -un` names it.
fn os_account() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Waits until the exported log has an event matching `pred` (the runtime writes asynchronously).
fn wait_for_export(data: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let end = Instant::now() + DEADLINE;
    loop {
        let events = export(data);
        if events.iter().any(&pred) {
            return events;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what} in the exported log"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn approve_by_keystroke_records_approver_and_comment() {
    let tmp = tempfile::tempdir().unwrap();
    let mut console = Console::start(tmp.path(), &[], "xterm-256color", (120, 40));
    console.wait_for("a pending approval", |s| pending_count(s) > 0);
    console.send(b"3");
    console.wait_for("the approval queue", |s| {
        s.contains("Approval queue (") && s.contains("pending)")
    });
    console.send(b"a");
    // The approver that counts is this process's OS account; `SHIELDOPS_USER`
    // is shown beside it as a declared name and recorded, never counted.
    let account = os_account();
    let screen = console.wait_for("the approval dialog", |s| {
        s.contains(&format!("approving as {account}, declared alice"))
    });
    let id = remediation_id(&screen, "Approve remediation ");
    console.send("looks safe to me".as_bytes());
    console.wait_for("the typed comment", |s| s.contains("looks safe to me"));
    console.send(b"\x13"); // Ctrl-S
    console.wait_for("the runtime's answer", |s| {
        s.contains(&format!("approve #{id}"))
    });
    let events = wait_for_export(tmp.path(), "the remediation's outcome", |e| {
        e["kind"] == "remediation_finished" && e["remediation"] == id
    });
    let raw = console.quit();
    let granted = events
        .iter()
        .find(|e| e["kind"] == "approval_granted" && e["remediation"] == id)
        .expect("approval_granted recorded");
    assert_eq!(granted["by"], account.as_str());
    assert_eq!(granted["auth"], "os_account");
    assert_eq!(granted["declared_name"], "alice");
    assert_eq!(granted["comment"], "looks safe to me");
    let finished = events
        .iter()
        .find(|e| e["kind"] == "remediation_finished" && e["remediation"] == id)
        .unwrap();
    assert_ne!(finished["status"], "denied", "{finished}");
    // Frames are wrapped in synchronized output.
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("\x1b[?2026h") && text.contains("\x1b[?2026l"));
}

#[test]
fn deny_by_keystroke_records_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let mut console = Console::start(tmp.path(), &[], "xterm-256color", (80, 24));
    console.wait_for("a pending approval", |s| pending_count(s) > 0);
    console.send(b"3");
    console.wait_for("the approval queue", |s| {
        s.contains("Approval queue (") && s.contains("pending)")
    });
    console.send(b"d");
    let account = os_account();
    let screen = console.wait_for("the deny dialog", |s| {
        s.contains(&format!("denying as {account}, declared alice"))
    });
    let id = remediation_id(&screen, "Deny remediation ");
    console.send(b"\x13"); // Ctrl-S with no reason is refused
    console.wait_for("the refusal", |s| s.contains("a reason is required"));
    console.send("change freeze until friday".as_bytes());
    console.wait_for("the typed reason", |s| {
        s.contains("change freeze until friday")
    });
    console.send(b"\x13");
    let events = wait_for_export(tmp.path(), "approval_denied", |e| {
        e["kind"] == "approval_denied" && e["remediation"] == id
    });
    console.quit();
    let denied = events
        .iter()
        .find(|e| e["kind"] == "approval_denied" && e["remediation"] == id)
        .unwrap();
    assert_eq!(denied["by"], account.as_str());
    assert_eq!(denied["declared_name"], "alice");
    assert_eq!(denied["reason"], "change freeze until friday");
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "approval_granted" && e["remediation"] == id),
        "a denied remediation was approved"
    );
}

#[test]
fn read_only_explains_and_records_no_approval() {
    let tmp = tempfile::tempdir().unwrap();
    // TERM=screen as inside tmux/screen.
    let mut console = Console::start(tmp.path(), &["--read-only"], "screen", (80, 24));
    console.wait_for("the console", |s| {
        s.contains("ShieldOps") && s.contains("READ-ONLY")
    });
    console.send(b"3");
    console.wait_for("the remediations pane", |s| s.contains("Approval queue"));
    console.send(b"a");
    console.wait_for("the read-only message", |s| {
        s.contains("read-only mode: approving is disabled")
    });
    console.send(b"d");
    console.wait_for("the read-only message", |s| {
        s.contains("read-only mode: denying is disabled")
    });
    console.send(b"\x13");
    console.quit();
    let events = export(tmp.path());
    assert!(!events.is_empty(), "the demo recorded events");
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "approval_granted" || e["kind"] == "approval_denied"),
        "read-only mode recorded an approval decision"
    );
}
