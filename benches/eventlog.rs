//! Event log speed: durable append throughput with group commit beside raw
//! sled batches of the same records, and start-up to ready on a 1M-event log.
//!
//! Goals: group commit ≥ 0.7× raw sled (batch of 1000, then flush);
//! open + latest snapshot + tail scan of a 1M-event log ≤ 150 ms.
//! Run: `cargo bench --bench eventlog`.
//!
//! Every append workload is paired: each measured iteration appends a fresh
//! set of drafts through the log, then writes the very same stored records
//! straight into a separate sled database (same settings, same growth) in
//! batches of 1000 with a flush after each. The ratio printed for a workload
//! is over those pairs, so both sides see the same machine load. Building the
//! drafts is not timed on either side; encoding them (JSON, SHA-256 chain) is
//! part of the log's work and is not part of raw sled's.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use shieldops::event::{ChainHash, Event, NewEvent};
use shieldops::store::EventLog;
use shieldops::store::cli::stress_draft;

#[path = "support/goal.rs"]
mod goal;

/// Events per measured iteration of every append benchmark.
const PER_ITER: u64 = 16_384;
/// Raw sled batch size.
const RAW_BATCH: usize = 1_000;
/// Events in the start-up log.
const STARTUP_EVENTS: u64 = 1_000_000;
/// Events appended after the snapshot (the tail a restart replays).
const STARTUP_TAIL: u64 = 2_000;
/// Size of the simulated state snapshot.
const SNAPSHOT_BYTES: usize = 200 * 1024;

/// How the appending side of a workload calls the log.
#[derive(Clone, Copy)]
struct Workload {
    /// Criterion id.
    id: &'static str,
    /// Label in the summary.
    label: &'static str,
    /// Concurrent tokio tasks, each looping over its share of the events.
    tasks: usize,
    /// Events per call: 1 = `append`, more = `append_many`.
    per_call: usize,
}

const WORKLOADS: [Workload; 4] = [
    Workload {
        id: "append_64_tasks",
        label: "append, 64 tasks",
        tasks: 64,
        per_call: 1,
    },
    Workload {
        id: "append_1024_tasks",
        label: "append, 1024 tasks",
        tasks: 1024,
        per_call: 1,
    },
    Workload {
        id: "append_many_16_tasks_x64",
        label: "append_many(64), 16 tasks",
        tasks: 16,
        per_call: 64,
    },
    Workload {
        id: "append_many_1_task_x1024",
        label: "append_many(1024), 1 task",
        tasks: 1,
        per_call: 1024,
    },
];

/// Figures measured per iteration, for the summary printed at the end.
#[derive(Default)]
struct Figures {
    /// (label, log time, paired raw sled time, events, group commits).
    pairs: Vec<(&'static str, Duration, Duration, u64, u64)>,
    /// (label, value).
    other: Vec<(&'static str, f64)>,
}

static FIGURES: Mutex<Figures> = Mutex::new(Figures {
    pairs: Vec::new(),
    other: Vec::new(),
});

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// sled with the settings the log itself opens it with (see `store::open_sled`).
fn raw_db(dir: &Path) -> (sled::Db, sled::Tree) {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(shieldops::store::DEFAULT_CACHE_BYTES)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()
        .unwrap();
    let tree = db.open_tree("events").unwrap();
    (db, tree)
}

/// Raw sled: `records` under consecutive keys from `next_key`, 1000 per batch, flush after each.
fn raw_write(db: &sled::Db, tree: &sled::Tree, next_key: &mut u64, records: &[Vec<u8>]) {
    for chunk in records.chunks(RAW_BATCH) {
        let mut batch = sled::Batch::default();
        for rec in chunk {
            batch.insert(&next_key.to_be_bytes(), rec.as_slice());
            *next_key += 1;
        }
        tree.apply_batch(batch).unwrap();
        db.flush().unwrap();
    }
}

/// This iteration's drafts, one list per task (task `t` gets writer id `t`).
fn drafts(tasks: usize, iteration: u64) -> Vec<Vec<NewEvent>> {
    let per_task = PER_ITER / tasks as u64;
    (0..tasks)
        .map(|t| {
            (0..per_task)
                .map(|n| stress_draft(t, iteration * PER_ITER + n))
                .collect()
        })
        .collect()
}

fn append_throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("durable_append");
    group.throughput(Throughput::Elements(PER_ITER));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8));

    for w in WORKLOADS {
        let log_dir = tempfile::tempdir().unwrap();
        let raw_dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(log_dir.path()).unwrap();
        let (db, tree) = raw_db(raw_dir.path());
        let mut raw_key = 1u64;
        let mut iteration = 0u64;
        group.bench_function(w.id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let work = drafts(w.tasks, iteration);
                    iteration += 1;
                    let groups_before = log.groups_committed();
                    let first_seq = log.last_seq() + 1;
                    let started = Instant::now();
                    rt.block_on(async {
                        let tasks: Vec<_> = work
                            .into_iter()
                            .map(|mine| {
                                let log = log.clone();
                                tokio::spawn(async move {
                                    if w.per_call == 1 {
                                        for d in mine {
                                            log.append(d).await.unwrap();
                                        }
                                    } else {
                                        let mut mine = mine.into_iter();
                                        loop {
                                            let call: Vec<NewEvent> =
                                                mine.by_ref().take(w.per_call).collect();
                                            if call.is_empty() {
                                                break;
                                            }
                                            log.append_many(call).await.unwrap();
                                        }
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    });
                    let took = started.elapsed();
                    let groups = log.groups_committed() - groups_before;
                    // The identical stored bytes the log just wrote, in seq order.
                    let records: Vec<Vec<u8>> =
                        log.scan_raw(first_seq).map(|r| r.unwrap().1).collect();
                    assert_eq!(records.len() as u64, PER_ITER);
                    let raw_started = Instant::now();
                    raw_write(&db, &tree, &mut raw_key, &records);
                    let raw_took = raw_started.elapsed();
                    FIGURES
                        .lock()
                        .unwrap()
                        .pairs
                        .push((w.label, took, raw_took, PER_ITER, groups));
                    total += took;
                }
                total
            })
        });
        rt.block_on(log.close()).unwrap();
    }

    // Raw sled alone, as criterion's own reference line.
    let raw_dir = tempfile::tempdir().unwrap();
    let (db, tree) = raw_db(raw_dir.path());
    let records: Vec<Vec<u8>> = {
        let mut prev = ChainHash::GENESIS;
        (0..PER_ITER)
            .map(|n| {
                let (event, bytes) = Event::seal(n + 1, prev, stress_draft((n % 64) as usize, n));
                prev = event.hash;
                bytes
            })
            .collect()
    };
    let mut raw_key = 1u64;
    group.bench_function("raw_sled_batch_1000", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                raw_write(&db, &tree, &mut raw_key, &records);
            }
            started.elapsed()
        })
    });

    group.bench_function("seal_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let work: Vec<NewEvent> = (0..PER_ITER)
                    .map(|n| stress_draft((n % 64) as usize, i * PER_ITER + n))
                    .collect();
                let started = Instant::now();
                let mut prev = ChainHash::GENESIS;
                for (n, draft) in (1..).zip(work) {
                    let (event, bytes) = Event::seal(n, prev, draft);
                    prev = event.hash;
                    std::hint::black_box(bytes);
                }
                let took = started.elapsed();
                FIGURES.lock().unwrap().other.push((
                    "encoding only (Event::seal), events/s",
                    PER_ITER as f64 / took.as_secs_f64(),
                ));
                total += took;
            }
            total
        })
    });
    group.finish();
}

/// Builds the start-up log: 1M events, a 200 KB snapshot, then a short tail.
fn build_startup_log(dir: &Path, rt: &tokio::runtime::Runtime) -> u64 {
    let started = Instant::now();
    let log = EventLog::open(dir).unwrap();
    let before_snapshot = STARTUP_EVENTS - STARTUP_TAIL;
    rt.block_on(async {
        let mut n = 0;
        while n < STARTUP_EVENTS {
            if n == before_snapshot {
                let snapshot: Vec<u8> = (0..SNAPSHOT_BYTES).map(|i| (i % 251) as u8).collect();
                log.save_snapshot(n, &snapshot).unwrap();
            }
            let chunk = if n < before_snapshot {
                10_000.min(before_snapshot - n)
            } else {
                STARTUP_EVENTS - n
            };
            log.append_many(
                (n..n + chunk)
                    .map(|i| stress_draft((i % 8) as usize, i))
                    .collect(),
            )
            .await
            .unwrap();
            n += chunk;
        }
        log.close().await.unwrap();
    });
    // Dropped, so the open below can take the directory's lock.
    drop(log);
    eprintln!(
        "built a {STARTUP_EVENTS}-event log in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // sled writes its page-table snapshot only when it opens, so the first
    // open after a long run replays every segment written since the last
    // one: what a restart after a day of appends pays once. Reopens (the
    // measured iterations) start from the snapshot this open wrote.
    let took = open_to_ready(dir, before_snapshot, rt);
    FIGURES.lock().unwrap().other.push((FIRST_OPEN, took));
    before_snapshot
}

/// Label of the first open after the log was written.
const FIRST_OPEN: &str = "first open after writing the log, ms";
/// Label of the measured reopens.
const REOPEN: &str = "start-up to ready, ms";

/// Opens the log at `dir` (verified from the snapshot), reads the newest
/// snapshot and scans the tail after it; returns the milliseconds that took.
fn open_to_ready(dir: &Path, snapshot_seq: u64, rt: &tokio::runtime::Runtime) -> f64 {
    let started = Instant::now();
    let log = EventLog::open(dir).unwrap();
    let (seq, bytes) = log.latest_snapshot().unwrap().unwrap();
    assert_eq!((seq, bytes.len()), (snapshot_seq, SNAPSHOT_BYTES));
    let mut tail = 0u64;
    for event in log.scan(seq + 1) {
        std::hint::black_box(event.unwrap());
        tail += 1;
    }
    assert_eq!(tail, STARTUP_TAIL);
    let took = started.elapsed().as_secs_f64() * 1000.0;
    // Closing is not part of start-up.
    rt.block_on(log.close()).unwrap();
    took
}

fn startup(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // Built on first use, so filtering this benchmark out skips the build.
    let snapshot_seq = std::cell::OnceCell::new();
    let mut group = c.benchmark_group("startup");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("open_snapshot_tail_1m", |b| {
        let snapshot_seq = *snapshot_seq.get_or_init(|| build_startup_log(dir.path(), &rt));
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let took = open_to_ready(dir.path(), snapshot_seq, &rt);
                FIGURES.lock().unwrap().other.push((REOPEN, took));
                total += Duration::from_secs_f64(took / 1000.0);
            }
            total
        })
    });
    group.finish();
}

fn summary(_: &mut Criterion) {
    let figures = FIGURES.lock().unwrap();
    eprintln!(
        "\nevent log summary (append figures: totals over all measured and warm-up iterations):"
    );
    eprintln!(
        "  {:<28} {:>11} {:>11} {:>7} {:>11}",
        "workload", "log ev/s", "raw ev/s", "ratio", "mean group"
    );
    for w in WORKLOADS {
        let pairs: Vec<_> = figures.pairs.iter().filter(|p| p.0 == w.label).collect();
        if pairs.is_empty() {
            continue;
        }
        let log: Duration = pairs.iter().map(|p| p.1).sum();
        let raw: Duration = pairs.iter().map(|p| p.2).sum();
        let events: u64 = pairs.iter().map(|p| p.3).sum();
        let groups: u64 = pairs.iter().map(|p| p.4).sum();
        let ratio = raw.as_secs_f64() / log.as_secs_f64();
        eprintln!(
            "  {:<28} {:>11.0} {:>11.0} {:>6.2}x {:>11.0}",
            w.label,
            events as f64 / log.as_secs_f64(),
            events as f64 / raw.as_secs_f64(),
            ratio,
            events as f64 / groups.max(1) as f64,
        );
        goal::at_least(
            &format!("event log: durable append ({}) vs raw sled", w.label),
            ratio,
            0.7,
            "x",
        );
    }
    eprintln!(
        "  (raw = sled batch 1000 + flush of the same records, right after; goal ratio >= 0.7x)"
    );
    for name in ["encoding only (Event::seal), events/s", FIRST_OPEN, REOPEN] {
        let mut v: Vec<f64> = figures
            .other
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, r)| *r)
            .collect();
        if !v.is_empty() {
            // The median, so one slow sample does not decide the figure.
            v.sort_by(f64::total_cmp);
            let median = v[v.len() / 2];
            eprintln!("  {name:<40} {median:>10.0} (median)");
            if name == REOPEN {
                goal::at_most(
                    "event log: open (verified from the snapshot) + snapshot + tail, 1M events",
                    median,
                    150.0,
                    "ms",
                );
            }
        }
    }
    if figures.other.iter().any(|(n, _)| *n == REOPEN) {
        eprintln!("  start-up goal: <= 150 ms");
    }
}

criterion_group!(benches, append_throughput, startup, summary);
criterion_main!(benches);
