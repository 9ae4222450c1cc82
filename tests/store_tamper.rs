//! Damage to the event log is found and named, readers never write, and a
//! damaged log fails closed until its verified prefix is salvaged.

use std::path::Path;
use std::process::Command;

use chrono::{TimeZone, Utc};
use shieldops::cli::log_dir;
use shieldops::event::{EventKind, NewEvent, ResourceId};
use shieldops::store::{EventLog, OpenOptions};

/// Waits out the lock a test's own `sled::open` may hold for a moment after drop.
fn patient() -> OpenOptions {
    OpenOptions {
        lock_wait: std::time::Duration::from_secs(10),
        ..OpenOptions::default()
    }
}

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
    cli_in(dir, &["log", "verify"])
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
    // No writer opens it: the runtime must not resume from it.
    let err = EventLog::open_with(&log_dir(dir.path()), &patient())
        .err()
        .expect("a damaged log must be refused");
    assert!(err.to_string().contains("seq 37"), "{err}");
    let log = EventLog::open_read_only(&log_dir(dir.path()), &patient()).unwrap();
    let report = log.verify().unwrap();
    assert_eq!(report.checked, 36);
    let (seq, reason) = report.first_bad.expect("tampering must be found");
    assert_eq!(seq, 37);
    assert!(reason.contains("digest"), "{reason}");
    assert_eq!(report.unaccounted, 24);
    drop(log);

    let (code, text) = cli_verify(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(text.starts_with("FAILED at seq 37:"), "{text}");
    assert!(
        text.contains("24 acknowledged event(s) unaccounted for"),
        "{text}"
    );
}

#[tokio::test]
async fn a_flipped_digest_byte_is_the_first_bad_seq() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 20).await;
    flip_byte(dir.path(), 5, 3);
    let log = EventLog::open_read_only(&log_dir(dir.path()), &patient()).unwrap();
    let (seq, _) = log.verify().unwrap().first_bad.unwrap();
    assert_eq!(seq, 5);
    drop(log);
    let (code, text) = cli_verify(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("seq 5"), "{text}");
}

/// SHA-256 of every file under `dir`, by path.
fn digests(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    use sha2::{Digest, Sha256};
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else if entry.file_type().unwrap().is_file() {
                let bytes = std::fs::read(entry.path()).unwrap();
                out.insert(entry.path(), Sha256::digest(&bytes).to_vec());
            }
        }
    }
    out
}

/// Every reader command, through the real binary; each must leave `data` as it was.
fn run_every_reader(data: &Path) -> Vec<(Option<i32>, String)> {
    let readers: [&[&str]; 5] = [
        &["log", "verify"],
        &["log", "export", "--format", "jsonl"],
        &["log", "tail"],
        &["log", "tail", "--from", "1"],
        &["log", "stats"],
    ];
    readers
        .iter()
        .map(|args| {
            let before = digests(data);
            let result = cli_in(data, args);
            assert_eq!(
                digests(data),
                before,
                "`{}` modified the data directory: {}",
                args.join(" "),
                result.1
            );
            result
        })
        .collect()
}

/// The real binary with its own log files outside the data directory `data`.
fn cli_in(data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_shieldops"))
        .arg("--data-dir")
        .arg(data)
        .arg("--log-dir")
        .arg(data.with_file_name("tracing"))
        .env("SHIELDOPS_NO_LOCAL_HOST", "1")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// All stored records of a log, read without touching it.
fn records(data: &Path) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let log = EventLog::open_read_only(&log_dir(data), &patient()).map_err(|e| e.to_string())?;
    log.scan_raw(1)
        .map(|r| r.map_err(|e| e.to_string()))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The number after `FAILED at seq `.
fn failed_seq(text: &str) -> u64 {
    let rest = text
        .split("FAILED at seq ")
        .nth(1)
        .unwrap_or_else(|| panic!("no FAILED line: {text}"));
    rest.split(':').next().unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn readers_leave_every_byte_alone_on_clean_and_damaged_logs() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    build_log(&data, 120).await;
    for (code, text) in run_every_reader(&data) {
        assert_eq!(code, Some(0), "{text}");
    }
    // Damage the storage file itself, as a disk or an intruder would.
    let db = log_dir(&data).join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let len = bytes.len();
    for offset in [len / 4, len / 2, 3 * len / 4] {
        bytes[offset] ^= 0x40;
    }
    std::fs::write(&db, &bytes).unwrap();
    let results = run_every_reader(&data);
    assert_eq!(results[0].0, Some(1), "verify: {}", results[0].1);
}

#[tokio::test]
async fn any_flipped_bit_of_the_db_file_is_named_or_changes_nothing() {
    use rand::{Rng, SeedableRng};
    let root = tempfile::tempdir().unwrap();
    let pristine = root.path().join("pristine");
    build_log(&pristine, 300).await;
    let originals = records(&pristine).unwrap();
    assert_eq!(originals.len(), 300);
    let db_len = std::fs::metadata(log_dir(&pristine).join("db"))
        .unwrap()
        .len() as usize;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed_0018);
    let (mut named, mut harmless) = (0, 0);
    for trial in 0..40 {
        let data = root.path().join(format!("trial-{trial}"));
        copy_dir(&pristine, &data);
        let db = log_dir(&data).join("db");
        let mut bytes = std::fs::read(&db).unwrap();
        let offset = rng.random_range(0..db_len);
        bytes[offset] ^= 1 << rng.random_range(0..8);
        std::fs::write(&db, &bytes).unwrap();

        let before = digests(&data);
        let (code, text) = cli_in(&data, &["log", "verify"]);
        assert_eq!(
            digests(&data),
            before,
            "verify wrote to the log (offset {offset})"
        );
        // What a careful reader finds in the damaged files, against what was acknowledged.
        let first_difference = match records(&data) {
            Err(_) => Some(1),
            Ok(found) => (0..300)
                .find(|&i| found.get(i) != originals.get(i))
                .map(|i| i as u64 + 1),
        };
        match first_difference {
            None => {
                assert_eq!(
                    code,
                    Some(0),
                    "offset {offset}: nothing changed, yet {text}"
                );
                harmless += 1;
            }
            Some(seq) => {
                assert_eq!(
                    code,
                    Some(1),
                    "offset {offset}: seq {seq} changed, yet {text}"
                );
                assert_eq!(failed_seq(&text), seq, "offset {offset}: {text}");
                assert!(text.contains("unaccounted for"), "{text}");
                named += 1;
            }
        }
    }
    assert!(
        named > 0,
        "no trial damaged live data ({harmless} harmless)"
    );
}

#[tokio::test]
async fn a_same_length_edit_of_the_raw_file_is_never_called_intact() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    build_log(&data, 400).await;
    let db = log_dir(&data).join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = b"pod/web-37\"";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the record's text is in the file");
    bytes[at + 4] = b'W'; // web-37 → Web-37, the same length
    std::fs::write(&db, &bytes).unwrap();
    let (code, text) = cli_in(&data, &["log", "verify"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains("ok:"), "{text}");
    let seq = failed_seq(&text);
    assert!(seq <= 37, "the edited record is 37; named {seq}: {text}");
}

#[tokio::test]
async fn a_cut_tail_names_its_first_missing_seq_and_how_many() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    build_log(&data, 50).await;
    {
        let db = sled::open(log_dir(&data)).unwrap();
        let events = db.open_tree("events").unwrap();
        for seq in 44..=50u64 {
            events.remove(seq.to_be_bytes()).unwrap();
        }
        db.flush().unwrap();
    }
    let (code, text) = cli_in(&data, &["log", "verify"]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(failed_seq(&text), 44, "{text}");
    assert!(
        text.contains("7 acknowledged event(s) unaccounted for"),
        "{text}"
    );
}

#[tokio::test]
async fn a_checkpoint_kept_elsewhere_catches_a_log_rewritten_with_its_anchor() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    build_log(&data, 30).await;
    let checkpoint = {
        let log = EventLog::open_read_only(&log_dir(&data), &patient()).unwrap();
        let anchor = log.anchor().unwrap();
        format!("{}:{}", anchor.seq, anchor.hash.to_hex())
    };
    let (code, text) = cli_in(&data, &["log", "verify", "--checkpoint", &checkpoint]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("matches checkpoint seq 30"), "{text}");

    // Root on the host rewrites everything, anchor included: a fresh, valid log.
    std::fs::remove_dir_all(&data).unwrap();
    let log = EventLog::open(&log_dir(&data)).unwrap();
    log.append_many((1..=35).map(|n| draft(n + 7)).collect())
        .await
        .unwrap();
    log.close().await.unwrap();
    drop(log);
    let (code, text) = cli_in(&data, &["log", "verify"]);
    assert_eq!(code, Some(0), "alone it cannot tell: {text}");
    let (code, text) = cli_in(&data, &["log", "verify", "--checkpoint", &checkpoint]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(failed_seq(&text), 30, "{text}");
    assert!(text.contains("rewritten"), "{text}");

    let (code, text) = cli_in(&data, &["log", "verify", "--checkpoint", "30:nothex"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("64 hex digits"), "{text}");
}
