//! An attached console remembers the last head it verified and says so,
//! loudly, when the server later serves a different history: a log cut
//! short, a rewritten record, or a chain that no longer runs through it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use shieldops::event::ChainHash;
use shieldops::remote::auth::Role;
use shieldops::remote::heads::{self, Head};

mod remote_support;
use remote_support::{Server, WEEKDAY_START, collect_lines};

/// The heads file under a private XDG state directory.
fn heads_file(state: &Path) -> std::path::PathBuf {
    state.join("shieldops").join("attach-heads.json")
}

/// `attach --headless` with its own state directory; (exit code, stdout lines).
fn attach(server: &Server, state: &Path, run_for: Duration) -> (Option<i32>, Vec<String>) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shieldops"))
        .arg("--log-dir")
        .arg(state.join("logs"))
        .args(["attach", &server.url(), "--headless"])
        .env("SHIELDOPS_TOKEN", server.token("alice"))
        .env("XDG_STATE_HOME", state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = collect_lines(&mut child);
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > run_for {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            break child.wait().unwrap().code();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The reader thread finishes once the pipe closes.
    std::thread::sleep(Duration::from_millis(200));
    let lines = lines.lock().unwrap().clone();
    (code, lines)
}

fn history_changed(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .find(|l| l.contains("\"link\":\"history_changed\""))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_catches_a_server_that_no_longer_holds_what_it_verified() {
    let server = Server::start(
        &[("alice", Role::Operator)],
        &["--speed", "25", "--start", WEEKDAY_START],
    );
    let state = tempfile::tempdir().unwrap();
    let url = server.url();

    // A first run records the head it verified.
    let (code, lines) = attach_blocking(&server, state.path(), Duration::from_secs(4)).await;
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(history_changed(&lines).is_none(), "{lines:?}");
    let verified = heads::load(&heads_file(state.path()), &url).expect("a head was recorded");
    assert!(verified.seq > 0);

    // The same server, the same history: a second run attaches normally.
    let (code, lines) = attach_blocking(&server, state.path(), Duration::from_secs(3)).await;
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(history_changed(&lines).is_none(), "{lines:?}");

    // The server is "rewound": it no longer reaches the head seen before.
    let path = heads_file(state.path());
    let far = Head {
        seq: verified.seq + 1_000_000,
        hash: verified.hash,
    };
    heads::save(&path, &url, far).unwrap();
    let (code, lines) = attach_blocking(&server, state.path(), Duration::from_secs(20)).await;
    assert_ne!(code, Some(0), "{lines:?}");
    let line = history_changed(&lines).expect("said loudly");
    assert!(line.contains("now ends at seq"), "{line}");

    // A record this console verified now has another hash: the chain after
    // it no longer runs through what was seen.
    let forged = Head {
        seq: verified.seq,
        hash: ChainHash([0xab; 32]),
    };
    heads::save(&path, &url, forged).unwrap();
    let (code, lines) = attach_blocking(&server, state.path(), Duration::from_secs(20)).await;
    assert_ne!(code, Some(0), "{lines:?}");
    let line = history_changed(&lines).expect("said loudly");
    assert!(line.contains("does not chain"), "{line}");
}

async fn attach_blocking(
    server: &Server,
    state: &Path,
    run_for: Duration,
) -> (Option<i32>, Vec<String>) {
    tokio::task::block_in_place(|| attach(server, state, run_for))
}
