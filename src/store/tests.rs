//! Unit tests of the event log.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::event::{EventKind, ResourceId};

fn at(n: u64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + n as i64, 0).unwrap()
}

fn draft(n: u64) -> NewEvent {
    NewEvent::new(
        at(n),
        "test",
        EventKind::ResourceGone {
            resource: ResourceId::new(format!("k8s/prod/pod/p-{n}")),
        },
    )
}

fn quick() -> OpenOptions {
    OpenOptions {
        create: true,
        lock_wait: Duration::ZERO,
        ..OpenOptions::default()
    }
}

/// Waits for the lock that a `sled::open` of the test's own may still hold
/// for a moment after it is dropped (sled's background flusher).
fn patient() -> OpenOptions {
    OpenOptions {
        lock_wait: Duration::from_secs(10),
        ..OpenOptions::default()
    }
}

/// The report of a writer's log of `n` intact records (anchored at its head).
fn intact(n: u64) -> VerifyReport {
    VerifyReport {
        checked: n,
        first_bad: None,
        anchored_at: Some(n),
        unaccounted: 0,
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Overwrites one stored record with a new value (tests that damage the log).
fn poke(log: &EventLog, seq: u64, value: Option<Vec<u8>>) {
    match value {
        Some(v) => log.inner.events.insert(seq.to_be_bytes(), v).unwrap(),
        None => log.inner.events.remove(seq.to_be_bytes()).unwrap(),
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_appends_commit_as_one_group_and_ack_after_it() {
    let dir = tmp();
    let (gate, gate_rx) = std::sync::mpsc::channel();
    let log = EventLog::open_gated(dir.path(), &quick(), Some(gate_rx), None).unwrap();
    let mut tasks = Vec::new();
    for n in 0..50 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.append(draft(n)).await }));
    }
    // Wait until every request is queued (the writer is parked on the gate
    // holding the first one), so all 50 must land in a single group.
    let tx = log.inner.requests.lock().unwrap().clone().unwrap();
    while tx.max_capacity() - tx.capacity() < 49 {
        tokio::task::yield_now().await;
    }
    drop(tx);
    assert_eq!(log.last_seq(), 0, "nothing is durable before the commit");
    gate.send(()).unwrap();
    let mut seqs = BTreeSet::new();
    for t in tasks {
        let event = t.await.unwrap().unwrap();
        assert!(event.seq <= log.last_seq(), "acked before it was durable");
        seqs.insert(event.seq);
    }
    assert_eq!(seqs, (1..=50).collect());
    assert_eq!(log.groups_committed(), 1);
    let report = log.verify().unwrap();
    assert_eq!(report, intact(50));
    drop(gate);
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_longer_than_one_group_commits_in_order_across_groups() {
    // More queued appends than one group holds, plus an `append_many` larger
    // than a group on its own: the stages must keep seq and chain order, and
    // the big request must stay one run of consecutive seqs.
    let dir = tmp();
    let (gate, gate_rx) = std::sync::mpsc::channel();
    let log = EventLog::open_gated(dir.path(), &quick(), Some(gate_rx), None).unwrap();
    let singles = 3 * writer::MAX_GROUP_EVENTS as u64;
    let many = 2 * writer::MAX_GROUP_EVENTS as u64 + 1;
    let mut tasks = Vec::new();
    for n in 0..singles {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            Ok::<_, StoreError>(vec![log.append(draft(n)).await?])
        }));
    }
    let big = {
        let log = log.clone();
        tokio::spawn(async move { log.append_many((0..many).map(draft).collect()).await })
    };
    let tx = log.inner.requests.lock().unwrap().clone().unwrap();
    while tx.max_capacity() - tx.capacity() < singles as usize {
        tokio::task::yield_now().await;
    }
    drop(tx);
    // One token per group the sequencer drains; spare tokens are harmless.
    for _ in 0..singles + 1 {
        gate.send(()).unwrap();
    }
    let mut seqs = BTreeSet::new();
    for t in tasks {
        for event in t.await.unwrap().unwrap() {
            assert!(event.seq <= log.last_seq(), "acked before it was durable");
            seqs.insert(event.seq);
        }
    }
    let big = big.await.unwrap().unwrap();
    let first = big[0].seq;
    assert_eq!(
        big.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (first..first + many).collect::<Vec<_>>()
    );
    seqs.extend(big.iter().map(|e| e.seq));
    assert_eq!(seqs, (1..=singles + many).collect());
    assert_eq!(log.last_seq(), singles + many);
    assert_eq!(log.verify().unwrap(), intact(singles + many));
    drop(gate);
    log.close().await.unwrap();
}

#[tokio::test]
async fn first_event_chains_from_genesis_and_each_from_the_previous() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    let a = log.append(draft(1)).await.unwrap();
    let b = log.append(draft(2)).await.unwrap();
    assert_eq!((a.seq, b.seq), (1, 2));
    assert_eq!(a.prev_hash, ChainHash::GENESIS);
    assert_eq!(b.prev_hash, a.hash);
    let scanned: Vec<Event> = log.scan(1).collect::<Result<_, _>>().unwrap();
    assert_eq!(scanned, vec![a, b]);
    log.close().await.unwrap();
}

#[tokio::test]
async fn append_many_gets_consecutive_seqs() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.append(draft(0)).await.unwrap();
    let many = log.append_many((1..=5).map(draft).collect()).await.unwrap();
    let seqs: Vec<u64> = many.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![2, 3, 4, 5, 6]);
    assert!(log.append_many(Vec::new()).await.unwrap().is_empty());
    assert_eq!(log.verify().unwrap().checked, 6);
    log.close().await.unwrap();
}

#[tokio::test]
async fn restart_continues_seq_and_chain() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    for n in 0..10 {
        log.append(draft(n)).await.unwrap();
    }
    let tenth = log.scan(10).next().unwrap().unwrap();
    log.close().await.unwrap();
    drop(log);

    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    assert_eq!(log.last_seq(), 10);
    let eleventh = log.append(draft(10)).await.unwrap();
    assert_eq!(eleventh.seq, 11);
    assert_eq!(eleventh.prev_hash, tenth.hash);
    assert_eq!(log.verify().unwrap(), intact(11));
    log.close().await.unwrap();
}

#[tokio::test]
async fn dropping_every_handle_releases_the_directory() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.append(draft(1)).await.unwrap();
    drop(log);
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    assert_eq!(log.last_seq(), 1);
}

#[tokio::test]
async fn appends_after_close_are_refused() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.close().await.unwrap();
    let err = log.append(draft(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed { .. }), "{err}");
    // Closing twice is harmless.
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_has_no_gap_and_no_duplicate_under_concurrent_appends() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.append_many((0..700).map(draft).collect())
        .await
        .unwrap();
    const TOTAL: u64 = 3000;
    let mut consumers = Vec::new();
    for from in [1u64, 350, 700] {
        let mut sub = log.subscribe(from);
        consumers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(event) = sub.next().await {
                let event = event.unwrap();
                seen.push(event.seq);
                if event.seq == TOTAL {
                    break;
                }
            }
            (from, seen)
        }));
    }
    let mut writers = Vec::new();
    for w in 0..8u64 {
        let log = log.clone();
        writers.push(tokio::spawn(async move {
            // 250 rounds, every tenth a pair: 275 events per writer, 2200 in all.
            for n in 0..250 {
                if n % 10 == 0 {
                    log.append_many(vec![draft(w * 1000 + n), draft(w)])
                        .await
                        .unwrap();
                } else {
                    log.append(draft(w * 1000 + n)).await.unwrap();
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let extra = TOTAL - log.last_seq();
    log.append_many((0..extra).map(draft).collect())
        .await
        .unwrap();
    assert_eq!(log.last_seq(), TOTAL);
    for c in consumers {
        let (from, seen) = c.await.unwrap();
        assert_eq!(seen, (from..=TOTAL).collect::<Vec<_>>(), "from {from}");
    }
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_lagging_subscriber_catches_up_from_storage() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    let mut sub = log.subscribe(1);
    // One group per append: more batches than the live buffer holds.
    let n = LIVE_CAPACITY as u64 + 50;
    for i in 0..n {
        log.append(draft(i)).await.unwrap();
    }
    for expected in 1..=n {
        assert_eq!(sub.next_seq(), expected);
        assert_eq!(sub.next().await.unwrap().unwrap().seq, expected);
    }
    assert_eq!(sub.next_seq(), n + 1);
    log.close().await.unwrap();
    assert!(sub.next().await.is_none());
}

#[tokio::test]
async fn subscription_drains_then_ends_when_the_log_closes() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    let mut sub = log.subscribe(0);
    log.append(draft(1)).await.unwrap();
    log.append(draft(2)).await.unwrap();
    log.close().await.unwrap();
    assert_eq!(sub.next().await.unwrap().unwrap().seq, 1);
    assert_eq!(sub.next().await.unwrap().unwrap().seq, 2);
    assert!(sub.next().await.is_none());
}

#[tokio::test]
async fn raw_subscription_yields_the_stored_bytes() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    let mut sub = log.subscribe(1);
    let event = log.append(draft(1)).await.unwrap();
    let (seq, bytes) = sub.next_raw().await.unwrap().unwrap();
    assert_eq!(seq, 1);
    assert!(Event::check(&bytes));
    assert_eq!(Event::decode(&bytes).unwrap(), event);
    log.close().await.unwrap();
}

#[tokio::test]
async fn verify_names_the_first_bad_record() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.append_many((0..10).map(draft).collect()).await.unwrap();
    assert_eq!(log.verify().unwrap().first_bad, None);

    // A record resealed with the wrong prev_hash: digest fine, chain broken.
    let (_, forged) = Event::seal(7, ChainHash::GENESIS, draft(99));
    poke(&log, 7, Some(forged));
    let report = log.verify().unwrap();
    assert_eq!(report.checked, 6);
    let (seq, reason) = report.first_bad.unwrap();
    assert_eq!(seq, 7);
    assert!(reason.contains("prev_hash"), "{reason}");

    // A flipped byte at an earlier seq is found first.
    let mut bytes = log
        .inner
        .events
        .get(4u64.to_be_bytes())
        .unwrap()
        .unwrap()
        .to_vec();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x20;
    poke(&log, 4, Some(bytes));
    let (seq, reason) = log.verify().unwrap().first_bad.unwrap();
    assert_eq!(seq, 4);
    assert!(reason.contains("digest"), "{reason}");

    // A missing record is named by its seq.
    poke(&log, 2, None);
    let (seq, reason) = log.verify().unwrap().first_bad.unwrap();
    assert_eq!(seq, 2);
    assert!(reason.contains("missing"), "{reason}");
    log.close().await.unwrap();
}

#[tokio::test]
async fn verify_catches_a_body_stored_under_the_wrong_seq() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.append_many((0..3).map(draft).collect()).await.unwrap();
    let second = log.inner.events.get(2u64.to_be_bytes()).unwrap().unwrap();
    poke(&log, 3, Some(second.to_vec()));
    let (seq, reason) = log.verify().unwrap().first_bad.unwrap();
    assert_eq!(seq, 3);
    assert!(reason.contains("says seq 2"), "{reason}");
    log.close().await.unwrap();
}

#[tokio::test]
async fn undecodable_records_are_errors_naming_their_seq() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.append_many((0..3).map(draft).collect()).await.unwrap();
    poke(&log, 2, Some(b"short".to_vec()));
    let items: Vec<_> = log.scan(1).collect();
    assert!(items[0].is_ok() && items[2].is_ok());
    let err = items[1].as_ref().unwrap_err();
    assert!(matches!(err, StoreError::Decode { seq: 2, .. }), "{err}");
    assert!(err.to_string().contains("seq 2"), "{err}");
    // Subscriptions report it and go on.
    let mut sub = log.subscribe(1);
    assert!(sub.next().await.unwrap().is_ok());
    assert!(sub.next().await.unwrap().is_err());
    assert_eq!(sub.next().await.unwrap().unwrap().seq, 3);
    log.close().await.unwrap();
}

#[tokio::test]
async fn snapshots_keep_the_newest_few_and_survive_restart() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    assert_eq!(log.latest_snapshot().unwrap(), None);
    log.append_many((0..10).map(draft).collect()).await.unwrap();
    for seq in 1..=6u64 {
        log.save_snapshot(seq, format!("state@{seq}").as_bytes())
            .unwrap();
    }
    assert_eq!(log.inner.snapshots.len(), KEEP_SNAPSHOTS);
    let err = log.save_snapshot(11, b"future").unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    log.close().await.unwrap();
    drop(log);
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    assert_eq!(
        log.latest_snapshot().unwrap(),
        Some((6, b"state@6".to_vec()))
    );
}

#[tokio::test]
async fn stats_count_kinds_and_times() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.append_many(vec![
        draft(1),
        NewEvent::new(
            at(5),
            "x",
            EventKind::AgentHeartbeat {
                agent: "a".into(),
                status: "ok".into(),
                next_run: None,
            },
        ),
        draft(9),
    ])
    .await
    .unwrap();
    let stats = log.stats().unwrap();
    assert_eq!(stats.events, 3);
    assert_eq!(stats.last_seq, 3);
    assert_eq!(stats.first_at, Some(at(1)));
    assert_eq!(stats.last_at, Some(at(9)));
    assert_eq!(stats.per_kind["resource_gone"], 2);
    assert_eq!(stats.per_kind["agent_heartbeat"], 1);
    assert!(stats.size_on_disk > 0);
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_second_open_of_a_held_directory_is_locked() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    let err = EventLog::open_with(dir.path(), &quick()).err().unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    // The failed attempt did not disturb the holder.
    log.append(draft(1)).await.unwrap();
    log.close().await.unwrap();
}

fn assert_names_dir(err: &StoreError, dir: &Path) {
    let text = err.to_string();
    assert!(text.contains(&dir.display().to_string()), "{text}");
}

#[test]
fn a_directory_of_other_files_is_foreign() {
    let dir = tmp();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let err = EventLog::open_with(dir.path(), &quick()).err().unwrap();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_names_dir(&err, dir.path());
}

#[test]
fn a_plain_file_is_foreign() {
    let dir = tmp();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = EventLog::open_with(&file, &quick()).err().unwrap();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert_names_dir(&err, &file);
}

#[test]
fn someone_elses_sled_database_is_foreign_and_left_alone() {
    let dir = tmp();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"user", b"data").unwrap();
        db.flush().unwrap();
    }
    let err = EventLog::open_with(dir.path(), &quick()).err().unwrap();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert_names_dir(&err, dir.path());
    let db = sled::open(dir.path()).unwrap();
    assert_eq!(db.tree_names().len(), 1, "no tree was added to it");
}

#[test]
fn a_missing_directory_is_not_created_when_asked_not_to() {
    let dir = tmp();
    let missing = dir.path().join("nope");
    let opts = OpenOptions {
        create: false,
        lock_wait: Duration::ZERO,
        ..OpenOptions::default()
    };
    let err = EventLog::open_with(&missing, &opts).err().unwrap();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn a_newer_store_format_is_refused() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.close().await.unwrap();
    drop(log);
    {
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree(TREE_META).unwrap();
        meta.insert(META_VERSION, &99u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let err = EventLog::open_with(dir.path(), &quick()).err().unwrap();
    assert!(
        matches!(err, StoreError::NewerFormat { found: 99, .. }),
        "{err}"
    );
    assert_names_dir(&err, dir.path());
}

#[tokio::test]
async fn damaged_storage_files_are_an_error_not_a_panic() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &quick()).unwrap();
    log.append_many((0..20).map(draft).collect()).await.unwrap();
    log.close().await.unwrap();
    drop(log);
    std::fs::write(dir.path().join("conf"), b"\xff\xfe garbage\n").unwrap();
    let err = EventLog::open_with(dir.path(), &quick()).err().unwrap();
    assert_names_dir(&err, dir.path());
}

/// SHA-256 of every file under `dir`, by relative path.
fn digests(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, Sha256::digest(&bytes).to_vec());
            }
        }
    }
    out
}

/// A closed log of `n` records in `dir`.
async fn closed_log(dir: &Path, n: u64) {
    let log = EventLog::open_with(dir, &quick()).unwrap();
    log.append_many((1..=n).map(draft).collect()).await.unwrap();
    log.close().await.unwrap();
}

/// Removes the records `from..` behind the log's back, as sled's recovery does
/// when it drops a damaged segment and everything after it.
fn cut_tail(dir: &Path, from: u64) {
    let db = sled::open(dir).unwrap();
    let events = db.open_tree(TREE_EVENTS).unwrap();
    let keys: Vec<sled::IVec> = events
        .range(from.to_be_bytes()..)
        .keys()
        .map(Result::unwrap)
        .collect();
    for key in keys {
        events.remove(key).unwrap();
    }
    db.flush().unwrap();
}

#[tokio::test]
async fn the_anchor_follows_every_group_commit() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &patient()).unwrap();
    for n in 1..=5 {
        let event = log.append(draft(n)).await.unwrap();
        // Acknowledged means anchored.
        let anchor = anchor::read(dir.path()).unwrap().unwrap();
        assert_eq!((anchor.seq, anchor.hash), (event.seq, event.hash));
    }
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_log_cut_short_of_its_anchor_is_refused_and_named() {
    let dir = tmp();
    closed_log(dir.path(), 30).await;
    cut_tail(dir.path(), 26);
    let err = EventLog::open_with(dir.path(), &patient()).err().unwrap();
    match &err {
        StoreError::Damaged {
            seq, unaccounted, ..
        } => {
            assert_eq!((*seq, *unaccounted), (26, 5), "{err}");
        }
        other => panic!("expected Damaged, got {other}"),
    }
    assert!(err.to_string().contains("log salvage"), "{err}");
    let ro = EventLog::open_read_only(dir.path(), &patient()).unwrap();
    let report = ro.verify().unwrap();
    assert_eq!(report.checked, 25);
    assert_eq!(report.first_bad.as_ref().unwrap().0, 26);
    assert_eq!(report.unaccounted, 5);
    assert_eq!(report.anchored_at, Some(30));
}

#[tokio::test]
async fn a_consistently_rewritten_history_differs_from_its_anchor() {
    let dir = tmp();
    closed_log(dir.path(), 10).await;
    {
        // Rewrite every record with other content and a fresh, valid chain.
        let db = sled::open(dir.path()).unwrap();
        let events = db.open_tree(TREE_EVENTS).unwrap();
        let mut prev = ChainHash::GENESIS;
        for seq in 1..=10 {
            let (event, bytes) = Event::seal(seq, prev, draft(seq + 1000));
            events.insert(seq.to_be_bytes(), bytes).unwrap();
            prev = event.hash;
        }
        db.flush().unwrap();
    }
    let err = EventLog::open_with(dir.path(), &patient()).err().unwrap();
    assert!(matches!(err, StoreError::Damaged { seq: 10, .. }), "{err}");
    assert!(err.to_string().contains("rewritten"), "{err}");
}

#[tokio::test]
async fn readers_never_change_a_byte_clean_or_damaged() {
    let dir = tmp();
    closed_log(dir.path(), 200).await;
    let before = digests(dir.path());
    let ro = EventLog::open_read_only(dir.path(), &patient()).unwrap();
    assert!(ro.verify().unwrap().first_bad.is_none());
    assert_eq!(ro.stats().unwrap().events, 200);
    assert_eq!(ro.scan(1).count(), 200);
    assert!(ro.append(draft(1)).await.is_err(), "a reader cannot append");
    drop(ro);
    assert_eq!(digests(dir.path()), before, "a clean log was modified");

    // Damage the middle of the db file; whatever sled makes of it, the
    // reader leaves the original as it found it.
    let db_file = dir.path().join("db");
    let mut bytes = std::fs::read(&db_file).unwrap();
    for offset in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 40] {
        bytes[offset] ^= 0x10;
    }
    std::fs::write(&db_file, &bytes).unwrap();
    let before = digests(dir.path());
    if let Ok(ro) = EventLog::open_read_only(dir.path(), &patient()) {
        let _ = ro.verify();
        let _ = ro.stats();
        let _ = ro.scan(1).count();
    }
    assert_eq!(digests(dir.path()), before, "a damaged log was modified");
}

#[tokio::test]
async fn a_reader_of_a_held_directory_is_told_it_is_locked() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &patient()).unwrap();
    let err = EventLog::open_read_only(dir.path(), &quick())
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_format_1_log_gets_its_anchor_when_a_writer_opens_it() {
    let dir = tmp();
    closed_log(dir.path(), 12).await;
    {
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree(TREE_META).unwrap();
        meta.insert(META_VERSION, &1u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    std::fs::remove_file(anchor::path(dir.path())).unwrap();
    // A reader says it has no anchor, but it is intact.
    let ro = EventLog::open_read_only(dir.path(), &patient()).unwrap();
    let report = ro.verify().unwrap();
    assert_eq!((report.first_bad.clone(), report.anchored_at), (None, None));
    drop(ro);
    let log = EventLog::open_with(dir.path(), &patient()).unwrap();
    let tail = log.scan(12).next().unwrap().unwrap();
    log.close().await.unwrap();
    drop(log);
    let anchor = anchor::read(dir.path()).unwrap().unwrap();
    assert_eq!((anchor.seq, anchor.hash), (12, tail.hash));
    // Now format 2: losing the anchor file is damage.
    std::fs::remove_file(anchor::path(dir.path())).unwrap();
    let err = EventLog::open_with(dir.path(), &patient()).err().unwrap();
    assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test]
async fn salvage_copies_the_verified_prefix_byte_for_byte() {
    let dir = tmp();
    closed_log(dir.path(), 40).await;
    {
        let db = sled::open(dir.path()).unwrap();
        let events = db.open_tree(TREE_EVENTS).unwrap();
        let mut value = events.get(31u64.to_be_bytes()).unwrap().unwrap().to_vec();
        value[50] ^= 0x01;
        events.insert(31u64.to_be_bytes(), value).unwrap();
        db.flush().unwrap();
    }
    assert!(EventLog::open_with(dir.path(), &patient()).is_err());
    let before = digests(dir.path());
    let ro = EventLog::open_read_only(dir.path(), &patient()).unwrap();
    let report = ro.verify().unwrap();
    assert_eq!(report.first_bad.as_ref().unwrap().0, 31);
    assert_eq!(report.unaccounted, 10);
    let target = tmp();
    let to = target.path().join("log");
    let head = ro.salvage_into(&to, report.checked).unwrap();
    assert_eq!(head.seq, 30);
    let originals: Vec<(u64, Vec<u8>)> = ro.scan_raw(1).take(30).map(Result::unwrap).collect();
    drop(ro);
    assert_eq!(digests(dir.path()), before, "salvage modified the original");

    // The salvaged log opens for writing, verifies, and continues the chain.
    let log = EventLog::open_with(&to, &quick()).unwrap();
    assert_eq!(log.last_seq(), 30);
    let copied: Vec<(u64, Vec<u8>)> = log.scan_raw(1).map(Result::unwrap).collect();
    assert_eq!(copied, originals);
    let next = log.append(draft(99)).await.unwrap();
    assert_eq!(next.seq, 31);
    assert!(log.verify().unwrap().first_bad.is_none());
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_writer_verifies_from_the_newest_snapshot_on() {
    let dir = tmp();
    let log = EventLog::open_with(dir.path(), &patient()).unwrap();
    log.append_many((1..=20).map(draft).collect())
        .await
        .unwrap();
    log.save_snapshot(10, b"state at 10").unwrap();
    // Damage after the snapshot: what the runtime would resume from.
    let mut bytes = log
        .inner
        .events
        .get(15u64.to_be_bytes())
        .unwrap()
        .unwrap()
        .to_vec();
    bytes[40] ^= 0x02;
    poke(&log, 15, Some(bytes));
    log.close().await.unwrap();
    drop(log);
    let err = EventLog::open_with(dir.path(), &patient()).err().unwrap();
    assert!(matches!(err, StoreError::Damaged { seq: 15, .. }), "{err}");
}

/// Records (seq, exact bytes) of `log` from seq 1.
fn raw_all(log: &EventLog) -> Vec<(u64, Vec<u8>)> {
    log.scan_raw(1).map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_records_copied_from_another_log_are_stored_byte_for_byte() {
    let (a, b) = (tmp(), tmp());
    let source = EventLog::open_with(a.path(), &quick()).unwrap();
    source
        .append_many((1..=5).map(draft).collect())
        .await
        .unwrap();
    let copy = EventLog::open_with(b.path(), &quick()).unwrap();
    let records = raw_all(&source);
    let first: Vec<Vec<u8>> = records[..2].iter().map(|(_, b)| b.clone()).collect();
    let rest: Vec<Vec<u8>> = records[2..].iter().map(|(_, b)| b.clone()).collect();
    let events = copy.append_raw(first).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    copy.append_raw(rest).await.unwrap();
    assert_eq!(raw_all(&copy), records);
    assert_eq!(copy.verify().unwrap(), intact(5));
    // The copy goes on with local appends after the copied tail.
    let next = copy.append(draft(6)).await.unwrap();
    assert_eq!(
        (next.seq, next.prev_hash),
        (6, records[4].1[..32].try_into().map(ChainHash).unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_records_that_do_not_continue_the_chain_are_refused_and_nothing_is_stored() {
    let (a, b) = (tmp(), tmp());
    let source = EventLog::open_with(a.path(), &quick()).unwrap();
    source
        .append_many((1..=3).map(draft).collect())
        .await
        .unwrap();
    let records: Vec<Vec<u8>> = raw_all(&source).into_iter().map(|(_, b)| b).collect();
    let copy = EventLog::open_with(b.path(), &quick()).unwrap();

    // A gap: seq 2 offered where seq 1 is due.
    let err = copy.append_raw(vec![records[1].clone()]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Discontinuous { seq: 1, .. }),
        "{err}"
    );
    // A body changed after sealing (the digest no longer matches).
    let mut tampered = records[0].clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 1;
    let err = copy.append_raw(vec![tampered]).await.unwrap_err();
    assert!(err.to_string().contains("digest"), "{err}");
    // A record from another history: intact, right seq, wrong prev_hash.
    let other = tmp();
    let forked = EventLog::open_with(other.path(), &quick()).unwrap();
    forked.append_many(vec![draft(9), draft(10)]).await.unwrap();
    let foreign = raw_all(&forked).remove(1).1;
    // A good record followed by a bad one refuses the whole call.
    let err = copy
        .append_raw(vec![records[0].clone(), foreign])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("prev_hash"), "{err}");
    assert_eq!(copy.last_seq(), 0);
    assert!(raw_all(&copy).is_empty());
    // The refusals left the writer usable at the same place.
    copy.append_raw(records.clone()).await.unwrap();
    assert_eq!(copy.verify().unwrap(), intact(3));
}

/// A replicated log in memory: records it stored, and whether it refuses.
#[derive(Default)]
struct FakeReplica {
    stored: Mutex<Vec<(u64, Vec<u8>)>>,
    refuse: std::sync::atomic::AtomicBool,
}

impl Replicate for FakeReplica {
    fn replicate(&self, records: &[(u64, &[u8])]) -> Result<(), String> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err("wrong last sequence".into());
        }
        let mut stored = self.stored.lock().unwrap();
        stored.extend(records.iter().map(|(s, b)| (*s, b.to_vec())));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_append_is_stored_remotely_first_and_a_refusal_stores_nothing() {
    let dir = tmp();
    let replica = Arc::new(FakeReplica::default());
    let log = EventLog::open_replicated(dir.path(), &quick(), replica.clone()).unwrap();
    log.append_many(vec![draft(1), draft(2)]).await.unwrap();
    assert_eq!(*replica.stored.lock().unwrap(), raw_all(&log));

    replica.refuse.store(true, Ordering::SeqCst);
    let err = log.append(draft(3)).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("wrong last sequence"), "{err}");
    assert_eq!(log.last_seq(), 2);

    // Accepted again: the next record takes seq 3, chained to seq 2.
    replica.refuse.store(false, Ordering::SeqCst);
    let third = log.append(draft(4)).await.unwrap();
    assert_eq!(third.seq, 3);
    assert_eq!(*replica.stored.lock().unwrap(), raw_all(&log));
    assert_eq!(log.verify().unwrap(), intact(3));
    // Raw records (already stored remotely) are not sent back to it.
    let other = tmp();
    let follower = EventLog::open_replicated(other.path(), &quick(), replica.clone()).unwrap();
    let records = raw_all(&log).into_iter().map(|(_, b)| b).collect();
    follower.append_raw(records).await.unwrap();
    assert_eq!(replica.stored.lock().unwrap().len(), 3);
    assert_eq!(raw_all(&follower), raw_all(&log));
}
