//! The `log` commands work while another holder keeps the data directory open,
//! through its control socket.

use std::io::Write;
use std::path::Path;

use chrono::{TimeZone, Utc};
use shieldops::event::{EventKind, NewEvent, ResourceId};
use shieldops::store::EventLog;
use shieldops::store::cli::{ExportFormat, LogCommand, run_log_command};
use shieldops::store::control::{ControlClient, serve_control, socket_path};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn draft(n: u64) -> NewEvent {
    NewEvent::new(
        Utc.timestamp_opt(1_767_225_600 + n as i64, 0).unwrap(),
        "control-test",
        EventKind::ResourceGone {
            resource: ResourceId::new(format!("k8s/prod/pod/api-{n}")),
        },
    )
}

/// Holds the log and serves it, as the console does.
async fn hold(
    dir: &Path,
    events: u64,
) -> (EventLog, CancellationToken, tokio::task::JoinHandle<()>) {
    let log = EventLog::open(dir).unwrap();
    log.append_many((1..=events).map(draft).collect())
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let server = {
        let (log, dir, cancel) = (log.clone(), dir.to_path_buf(), cancel.clone());
        tokio::spawn(async move { serve_control(log, &dir, cancel).await.unwrap() })
    };
    // Ready once it answers; connect() retries are the caller's business.
    while ControlClient::connect(dir).await.is_err() {
        tokio::task::yield_now().await;
    }
    (log, cancel, server)
}

async fn run(dir: &Path, cmd: LogCommand) -> (i32, String) {
    let mut out = Vec::new();
    let code = run_log_command(dir, cmd, &mut out).await.unwrap();
    (code, String::from_utf8(out).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_read_a_held_log_through_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (log, cancel, server) = hold(dir.path(), 30).await;

    let (code, text) = run(
        dir.path(),
        LogCommand::Export {
            format: ExportFormat::Jsonl,
            from: 11,
        },
    )
    .await;
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    assert_eq!(lines[0]["seq"], 11);
    assert_eq!(lines[19]["seq"], 30);
    assert_eq!(lines[0]["kind"], "resource_gone");
    assert_eq!(lines[0]["resource"], "k8s/prod/pod/api-11");
    assert_eq!(lines[0]["at"], "2026-01-01T00:00:11.000Z");
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);

    let (code, text) = run(dir.path(), LogCommand::Verify { checkpoint: None }).await;
    assert_eq!(
        (code, text.as_str()),
        (0, "ok: 30 events, chain intact, anchored at seq 30\n")
    );

    let (code, text) = run(dir.path(), LogCommand::Stats).await;
    assert_eq!(code, 0);
    assert!(text.contains("events:       30\n"), "{text}");
    assert!(text.contains("last seq:     30\n"), "{text}");
    assert!(
        text.contains("first event:  2026-01-01T00:00:01.000Z"),
        "{text}"
    );
    assert!(text.contains("resource_gone  30"), "{text}");

    let (code, text) = run(
        dir.path(),
        LogCommand::Tail {
            from: None,
            follow: false,
        },
    )
    .await;
    assert_eq!(code, 0);
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs, (11..=30).collect::<Vec<_>>());
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("k8s/prod/pod/api-30 gone"),
        "{text}"
    );

    // The holder is undisturbed and keeps appending.
    assert_eq!(log.append(draft(31)).await.unwrap().seq, 31);
    cancel.cancel();
    server.await.unwrap();
    assert!(
        !socket_path(dir.path()).exists(),
        "socket removed on shutdown"
    );
    log.close().await.unwrap();
}

/// A `Write` that hands each complete line to a channel.
struct LineSink {
    buf: Vec<u8>,
    tx: mpsc::UnboundedSender<String>,
}

impl Write for LineSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let _ = self
                .tx
                .send(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_streams_new_events_as_they_land() {
    let dir = tempfile::tempdir().unwrap();
    let (log, cancel, server) = hold(dir.path(), 5).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let follower = {
        let dir = dir.path().to_path_buf();
        tokio::spawn(async move {
            let mut sink = LineSink {
                buf: Vec::new(),
                tx,
            };
            run_log_command(
                &dir,
                LogCommand::Tail {
                    from: Some(3),
                    follow: true,
                },
                &mut sink,
            )
            .await
        })
    };
    let next_seq =
        |line: String| -> u64 { line.split_whitespace().next().unwrap().parse().unwrap() };
    for expected in 3..=5 {
        assert_eq!(next_seq(rx.recv().await.unwrap()), expected);
    }
    for n in 6..=9 {
        log.append(draft(n)).await.unwrap();
        assert_eq!(next_seq(rx.recv().await.unwrap()), n);
    }
    follower.abort();
    cancel.cancel();
    server.await.unwrap();
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_the_new_one_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let (log, cancel, server) = hold(dir.path(), 1).await;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let client = ControlClient::connect(dir.path()).await.unwrap();
    assert_eq!(client.stats().await.unwrap().events, 1);
    cancel.cancel();
    server.await.unwrap();
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_free_directory_is_read_directly_and_left_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path()).unwrap();
    log.append_many((1..=3).map(draft).collect()).await.unwrap();
    log.close().await.unwrap();
    drop(log);
    let (code, text) = run(dir.path(), LogCommand::Verify { checkpoint: None }).await;
    assert_eq!(
        (code, text.as_str()),
        (0, "ok: 3 events, chain intact, anchored at seq 3\n")
    );
    // The reader let go: the directory opens again at once.
    let opts = shieldops::store::OpenOptions {
        create: false,
        lock_wait: std::time::Duration::ZERO,
        ..Default::default()
    };
    EventLog::open_with(dir.path(), &opts).unwrap();
}

#[tokio::test]
async fn reading_a_missing_log_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let mut out = Vec::new();
    let err = run_log_command(&missing, LogCommand::Stats, &mut out)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no event log at"), "{err}");
    assert!(err.to_string().contains("nothing-here"), "{err}");
    assert!(!missing.exists(), "a reader must not create the log");
}

#[tokio::test]
async fn a_held_directory_without_a_server_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path()).unwrap();
    let mut out = Vec::new();
    let err = run_log_command(
        dir.path(),
        LogCommand::Verify { checkpoint: None },
        &mut out,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("control socket does not answer"),
        "{err}"
    );
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binary_reads_a_log_another_process_holds() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = shieldops::cli::log_dir(data_dir.path());
    let (log, cancel, server) = hold(&dir, 12).await;
    let run = |args: &'static [&'static str]| {
        let data_dir = data_dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_shieldops"))
                .arg("--data-dir")
                .arg(&data_dir)
                .args(args)
                .output()
                .unwrap()
        })
    };
    let out = run(&["log", "verify"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text, "ok: 12 events, chain intact, anchored at seq 12\n");
    let out = run(&["log", "export", "--from", "10"]).await.unwrap();
    let seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![10, 11, 12]);
    cancel.cancel();
    server.await.unwrap();
    log.close().await.unwrap();
}
