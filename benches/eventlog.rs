//! Event log speed: durable append throughput with group commit beside raw
//! sled batches of the same records, and start-up to ready on a 1M-event log.
//!
//! Goals: group commit ≥ 0.7× raw sled (batch of 1000, then flush);
//! open + latest snapshot + tail scan of a 1M-event log ≤ 150 ms.
//! Run: `cargo bench --bench eventlog`.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shieldops::event::{ChainHash, Event};
use shieldops::store::EventLog;
use shieldops::store::cli::stress_draft;

/// Events per measured iteration of both append benchmarks.
const PER_ITER: u64 = 8_000;
/// Concurrent appenders, as many agents and connectors would be.
const TASKS: u64 = 64;
/// Raw sled batch size.
const RAW_BATCH: u64 = 1_000;
/// Events in the start-up log.
const STARTUP_EVENTS: u64 = 1_000_000;
/// Events appended after the snapshot (the tail a restart replays).
const STARTUP_TAIL: u64 = 2_000;
/// Size of the simulated state snapshot.
const SNAPSHOT_BYTES: usize = 200 * 1024;

/// Figures measured per benchmark iteration, for the summary printed at the end.
static RATES: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

fn record(name: &'static str, value: f64) {
    RATES.lock().unwrap().push((name, value));
}

fn record_rate(name: &'static str, events: u64, took: Duration) {
    record(name, events as f64 / took.as_secs_f64());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn append_throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("durable_append");
    group.throughput(Throughput::Elements(PER_ITER));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));

    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path()).unwrap();
    group.bench_function("group_commit_64_tasks", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let groups_before = log.groups_committed();
                let started = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|t| {
                            let log = log.clone();
                            tokio::spawn(async move {
                                for n in 0..PER_ITER / TASKS {
                                    log.append(stress_draft(t as usize, n)).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                });
                let took = started.elapsed();
                record_rate("group commit (64 tasks)", PER_ITER, took);
                let groups = log.groups_committed() - groups_before;
                record("  mean group size", PER_ITER as f64 / groups.max(1) as f64);
                total += took;
            }
            total
        })
    });
    rt.block_on(log.close()).unwrap();
    drop(log);

    // The same stored records, written straight into sled.
    let records: Vec<Vec<u8>> = {
        let mut prev = ChainHash::GENESIS;
        (0..PER_ITER)
            .map(|n| {
                let (event, bytes) =
                    Event::seal(n + 1, prev, stress_draft((n % TASKS) as usize, n));
                prev = event.hash;
                bytes
            })
            .collect()
    };
    raw_sled(
        &mut group,
        "raw_sled_batch_1000",
        "raw sled (batch 1000 + flush)",
        RAW_BATCH,
        &records,
    );
    // Reference: the same flush-per-batch at the group size 64 closed-loop appenders reach.
    raw_sled(
        &mut group,
        "raw_sled_batch_32",
        "raw sled (batch 32 + flush)",
        32,
        &records,
    );
    group.bench_function("seal_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let mut prev = ChainHash::GENESIS;
                for n in 0..PER_ITER {
                    let (event, bytes) =
                        Event::seal(n + 1, prev, stress_draft((n % TASKS) as usize, n));
                    prev = event.hash;
                    std::hint::black_box(bytes);
                }
                let took = started.elapsed();
                record_rate("encoding only (Event::seal)", PER_ITER, took);
                total += took;
            }
            total
        })
    });
    group.finish();
}

/// Writes `records` straight into sled, `batch` at a time, flushing after each.
fn raw_sled(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    label: &'static str,
    batch: u64,
    records: &[Vec<u8>],
) {
    let raw_dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(raw_dir.path())
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()
        .unwrap();
    let tree = db.open_tree("events").unwrap();
    let mut next_key = 1u64;
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                for chunk in records.chunks(batch as usize) {
                    let mut sled_batch = sled::Batch::default();
                    for rec in chunk {
                        sled_batch.insert(&next_key.to_be_bytes(), rec.as_slice());
                        next_key += 1;
                    }
                    tree.apply_batch(sled_batch).unwrap();
                    db.flush().unwrap();
                }
                let took = started.elapsed();
                record_rate(label, records.len() as u64, took);
                total += took;
            }
            total
        })
    });
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
    eprintln!(
        "built a {STARTUP_EVENTS}-event log in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    before_snapshot
}

fn startup(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // Built on first use, so filtering this benchmark out skips the build.
    let snapshot_seq = std::cell::OnceCell::new();
    let mut group = c.benchmark_group("startup");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("open_snapshot_tail_1m", |b| {
        let snapshot_seq = *snapshot_seq.get_or_init(|| build_startup_log(dir.path(), &rt));
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let log = EventLog::open(dir.path()).unwrap();
                let (seq, bytes) = log.latest_snapshot().unwrap().unwrap();
                assert_eq!((seq, bytes.len()), (snapshot_seq, SNAPSHOT_BYTES));
                let mut tail = 0u64;
                for event in log.scan(seq + 1) {
                    std::hint::black_box(event.unwrap());
                    tail += 1;
                }
                assert_eq!(tail, STARTUP_TAIL);
                let took = started.elapsed();
                record("start-up to ready, ms", took.as_secs_f64() * 1000.0);
                total += took;
                // Closing is not part of start-up.
                rt.block_on(log.close()).unwrap();
                drop(log);
            }
            total
        })
    });
    group.finish();
}

fn summary(_: &mut Criterion) {
    let rates = RATES.lock().unwrap();
    let mean = |name: &str| {
        let v: Vec<f64> = rates
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, r)| *r)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let names = [
        "group commit (64 tasks)",
        "  mean group size",
        "raw sled (batch 1000 + flush)",
        "start-up to ready, ms",
        "raw sled (batch 32 + flush)",
        "encoding only (Event::seal)",
    ];
    eprintln!("\nevent log summary (events/s unless noted; means over all measured iterations):");
    for name in names {
        if let Some(rate) = mean(name) {
            eprintln!("  {name:<32} {rate:>12.0}");
        }
    }
    if let (Some(g), Some(r)) = (mean(names[0]), mean(names[2])) {
        eprintln!("  group commit / raw sled: {:.2}x (goal >= 0.7x)", g / r);
    }
    if mean(names[3]).is_some() {
        eprintln!("  start-up goal: <= 150 ms");
    }
}

criterion_group!(benches, append_throughput, startup, summary);
criterion_main!(benches);
