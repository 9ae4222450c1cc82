//! End to end: the real binary in a pseudo-terminal, driven by keystrokes,
//! its screen parsed by a terminal emulator; the outcome read back from the
//! exported event log. Waits poll the parsed screen against a deadline.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_shieldops");
/// Generous: the scenario needs some simulated minutes before it asks for approval.
const DEADLINE: Duration = Duration::from_secs(120);

struct Console {
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
}

impl Console {
    fn start(data: &Path, extra: &[&str], term: &str, size: (u16, u16)) -> Console {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: size.1,
                cols: size.0,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(BIN);
        cmd.arg("--data-dir");
        cmd.arg(data.join("data"));
        cmd.arg("--log-dir");
        cmd.arg(data.join("logs"));
        for a in extra {
            cmd.arg(a);
        }
        // A fixed weekday start: production is outside the default change freeze.
        cmd.args(["demo", "--speed", "20", "--start", "2026-06-03T10:00:00Z"]);
        cmd.env("SHIELDOPS_USER", "alice");
        // The demo's screens are compared as they play: this machine's live
        // numbers would make them vary, so the local host stays out.
        cmd.env("SHIELDOPS_NO_LOCAL_HOST", "1");
        cmd.env("TERM", term);
        cmd.env("HOME", data);
        cmd.env("XDG_CONFIG_HOME", data.join("config"));
        cmd.env("XDG_DATA_HOME", data.join("xdg-data"));
        cmd.env("XDG_STATE_HOME", data.join("state"));
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("SSH_CONNECTION");
        // No desktop session in tests: the notification fails and must be harmless.
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
        let child = pair.slave.spawn_command(cmd).expect("spawn shieldops");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(size.1, size.0, 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (p, r) = (parser.clone(), raw.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        p.lock().unwrap().process(&buf[..n]);
                        r.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                }
            }
        });
        Console {
            parser,
            raw,
            writer,
            child,
            _master: pair.master,
        }
    }

    fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `cond` holds for the screen; panics with the screen on timeout.
    fn wait_for(&mut self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if cond(&screen) {
                return screen;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("shieldops exited ({status:?}) while waiting for {what}; screen:\n{screen}");
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    /// Quits with `q` (and `y` when asked) and waits for the process to exit cleanly.
    fn quit(mut self) -> Vec<u8> {
        self.send(b"q");
        let end = Instant::now() + Duration::from_secs(30);
        let mut confirmed = false;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "shieldops exited with {status:?}; screen:\n{}",
                    self.screen()
                );
                break;
            }
            if !confirmed && self.screen().contains("Quit anyway?") {
                self.send(b"y");
                confirmed = true;
            }
            assert!(
                Instant::now() < end,
                "shieldops did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Give the reader thread a moment to drain the last bytes (it ends at EOF).
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !self.parser.lock().unwrap().screen().alternate_screen(),
            "the terminal was left on the alternate screen"
        );
        self.raw.lock().unwrap().clone()
    }
}

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
