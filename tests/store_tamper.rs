//! A byte flipped inside one stored record is found, and named, by `verify`.

use std::path::Path;
use std::process::Command;

use chrono::{TimeZone, Utc};
use shieldops::cli::log_dir;
use shieldops::event::{EventKind, NewEvent, ResourceId};
use shieldops::store::EventLog;

fn draft(n: u64) -> NewEvent {
    NewEvent::new(
        Utc.timestamp_opt(1_767_225_600 + n as i64, 0).unwrap(),
        "tamper-test",
        EventKind::ResourceGone {
            resource: ResourceId::new(format!("k8s/prod/pod/web-{n}")),
        },
    )
}

async fn build_log(data_dir: &Path, events: u64) {
    let dir = &log_dir(data_dir);
    let log = EventLog::open(dir).unwrap();
    log.append_many((1..=events).map(draft).collect())
        .await
        .unwrap();
    log.close().await.unwrap();
}

/// Rewrites the stored value of `seq` with the byte at `offset` flipped, through sled itself.
fn flip_byte(data_dir: &Path, seq: u64, offset: usize) {
    let db = sled::open(log_dir(data_dir)).unwrap();
    let events = db.open_tree("events").unwrap();
    let mut value = events.get(seq.to_be_bytes()).unwrap().unwrap().to_vec();
    assert!(offset < value.len());
    value[offset] ^= 0x04;
    events.insert(seq.to_be_bytes(), value).unwrap();
    db.flush().unwrap();
}

fn cli_verify(dir: &Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_shieldops"))
        .arg("--data-dir")
        .arg(dir)
        .args(["log", "verify"])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn a_flipped_body_byte_is_the_first_bad_seq() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 60).await;
    let (code, text) = cli_verify(dir.path());
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text.trim(),
        "ok: 60 events, chain intact, anchored at seq 60"
    );

    // Well inside the JSON body (past the 32-byte digest).
    flip_byte(dir.path(), 37, 32 + 40);
    let log = EventLog::open(&log_dir(dir.path())).unwrap();
    let report = log.verify().unwrap();
    assert_eq!(report.checked, 36);
    let (seq, reason) = report.first_bad.expect("tampering must be found");
    assert_eq!(seq, 37);
    assert!(reason.contains("digest"), "{reason}");
    log.close().await.unwrap();
    drop(log);

    let (code, text) = cli_verify(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(text.starts_with("FAILED at seq 37:"), "{text}");
}

#[tokio::test]
async fn a_flipped_digest_byte_is_the_first_bad_seq() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 20).await;
    flip_byte(dir.path(), 5, 3);
    let log = EventLog::open(&log_dir(dir.path())).unwrap();
    let (seq, _) = log.verify().unwrap().first_bad.unwrap();
    assert_eq!(seq, 5);
    log.close().await.unwrap();
    drop(log);
    let (code, text) = cli_verify(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("seq 5"), "{text}");
}
