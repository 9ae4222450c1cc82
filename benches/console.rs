//! The whole console process: resident memory and start-up to first frame.
//!
//! Builds real data directories on disk, then starts the real `shieldops`
//! console binary in a pseudo-terminal (200×50) on each and measures:
//! - the time from spawn to the end of the first drawn frame (the first
//!   synchronized-update end, `ESC [ ? 2026 l`);
//! - resident memory (`VmRSS`) and its peak (`VmHWM`) once it has settled.
//!
//! Cases: the demo fleet on a fresh directory (goal RSS ≤ 60 MB); 50,000
//! resources and 1,000,000 events with the newest state snapshot 5,000
//! events behind the head (goal RSS ≤ 200 MB); the same log with no
//! snapshot at all (the whole log is verified and folded at start-up).
//!
//! Run: `cargo bench --bench console` (`CONSOLE_BENCH_EVENTS=200000` for a
//! shorter run). Each figure is printed as a `goal:` line.
//! `CONSOLE_BENCH_DIR=DIR` keeps the data directories in DIR and reuses the
//! big log on the next run (building it takes longer than measuring it).

use std::io::Read;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use shieldops::event::NewEvent;
use shieldops::runtime::snapshots;
use shieldops::state::State;
use shieldops::store::EventLog;
use shieldops::tui::testing::{big_drafts, fixture_events};

#[path = "support/goal.rs"]
mod goal;

const RESOURCES: usize = 50_000;
const SNAPSHOT_BEHIND: u64 = 5_000;
/// How long the console runs after its first frame before memory is read:
/// past the runtime's first hand-back of freed heap (5 s after it starts).
const SETTLE: Duration = Duration::from_secs(8);
const FRAME_END: &[u8] = b"\x1b[?2026l";

/// One measured start of the console.
struct Run {
    first_frame: Duration,
    rss_mb: f64,
    hwm_mb: f64,
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let events: usize = std::env::var("CONSOLE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let temp = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("CONSOLE_BENCH_DIR").map(std::path::PathBuf::from);
    let root = kept.as_deref().unwrap_or(temp.path());

    let demo = root.join(format!("demo-{}", std::process::id()));
    let run = measure(&demo, root);
    let _ = std::fs::remove_dir_all(&demo);
    goal::at_most("console RSS, demo fleet", run.rss_mb, 60.0, "MB");
    report("console, demo fleet", &run);

    let big = root.join(format!("big-{events}"));
    let bare = root.join(format!("big-{events}-no-snapshot"));
    let built = big.join("built");
    let total = match std::fs::read_to_string(&built) {
        Ok(total) => total.trim().parse().unwrap(),
        Err(_) => {
            let _ = std::fs::remove_dir_all(&big);
            let _ = std::fs::remove_dir_all(&bare);
            let (total, snapshot_seq) = build_big(&big, events);
            eprintln!(
                "built {total} events ({RESOURCES} resources), snapshot at seq {snapshot_seq}, in {}",
                big.display()
            );
            copy_dir(&big, &bare);
            drop_snapshots(&bare.join("log"));
            std::fs::write(&built, total.to_string()).unwrap();
            total
        }
    };

    let run = measure_copy(&big, root);
    goal::at_most(
        &format!("console RSS, {RESOURCES} resources + {total} events"),
        run.rss_mb,
        200.0,
        "MB",
    );
    report("console, big log, snapshot 5,000 behind", &run);
    goal::at_most(
        "console start-up to first frame, big log, snapshot 5,000 events behind",
        run.first_frame.as_secs_f64() * 1000.0,
        1000.0,
        "ms",
    );
    let run = measure_copy(&bare, root);
    report("console, big log, no snapshot", &run);
    // No goal is set for a log with no snapshot: the whole chain is verified
    // and folded. It is reported so its cost is known.
    println!(
        "figure: console start-up to first frame, big log, no snapshot | {:.0} ms",
        run.first_frame.as_secs_f64() * 1000.0
    );
}

fn report(label: &str, run: &Run) {
    eprintln!(
        "{label}: first frame {:.0} ms, RSS {:.1} MB, peak {:.1} MB",
        run.first_frame.as_secs_f64() * 1000.0,
        run.rss_mb,
        run.hwm_mb
    );
}

/// The fixture, then 50k resources and `events` more, written to a real log;
/// a state snapshot 5,000 events before the end. Returns (events, snapshot seq).
fn build_big(data: &Path, events: usize) -> (u64, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = EventLog::open(&data.join("log")).unwrap();
    let mut drafts: Vec<NewEvent> = fixture_events()
        .into_iter()
        .map(|e| NewEvent::new(e.at, e.actor, e.kind))
        .collect();
    big_drafts(RESOURCES, events, |d| drafts.push(d));
    let total = drafts.len() as u64;
    let snapshot_seq = total - SNAPSHOT_BEHIND;
    let mut state = State::new();
    rt.block_on(async {
        let mut drafts = drafts.into_iter().peekable();
        while drafts.peek().is_some() {
            let room = (snapshot_seq.saturating_sub(state.last_seq)) as usize;
            let take = if room == 0 { 10_000 } else { room.min(10_000) };
            let chunk: Vec<NewEvent> = drafts.by_ref().take(take).collect();
            for event in log.append_many(chunk).await.unwrap() {
                state.apply(&event);
            }
            if state.last_seq == snapshot_seq {
                log.save_snapshot(snapshot_seq, &snapshots::encode(&state))
                    .unwrap();
            }
        }
        log.close().await.unwrap();
    });
    (total, snapshot_seq)
}

/// Removes every state snapshot, as a log written before snapshots were taken.
fn drop_snapshots(log_dir: &Path) {
    let db = sled::open(log_dir).unwrap();
    db.open_tree("snapshots").unwrap().clear().unwrap();
    db.flush().unwrap();
    drop(db);
    // sled's flusher thread lets go of the lock shortly after the drop.
    std::thread::sleep(Duration::from_secs(1));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// [`measure`] on a fresh copy of `data`: the console appends to the log it
/// runs on, and the kept directories must stay as built.
fn measure_copy(data: &Path, root: &Path) -> Run {
    let copy = root.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(data, &copy);
    let run = measure(&copy, root);
    let _ = std::fs::remove_dir_all(&copy);
    run
}

/// Starts the console on `data` in a pty, waits for its first frame, lets it
/// settle, reads its memory, and stops it.
fn measure(data: &Path, root: &Path) -> Run {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 50,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_shieldops"));
    cmd.arg("--data-dir");
    cmd.arg(data);
    cmd.arg("--log-dir");
    cmd.arg(root.join("console-logs"));
    cmd.env("SHIELDOPS_NO_LOCAL_HOST", "1");
    cmd.env("TERM", "xterm-256color");
    let started = Instant::now();
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let pid = child.process_id().unwrap();
    let mut reader = pair.master.try_clone_reader().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen: Vec<u8> = Vec::new();
        let mut buf = [0u8; 65536];
        let mut told = false;
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            if !told {
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(FRAME_END.len()).any(|w| w == FRAME_END) {
                    let _ = tx.send(Instant::now());
                    told = true;
                }
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("the console drew no frame in 300 s");
    std::thread::sleep(SETTLE);
    let (rss_mb, hwm_mb) = memory(pid);
    let _ = child.kill();
    let _ = child.wait();
    Run {
        first_frame: first - started,
        rss_mb,
        hwm_mb,
    }
}

/// (VmRSS, VmHWM) of `pid` in MB (10^6 bytes).
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| kib * 1024.0 / 1e6)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
