//! `shieldops log …`: export, verify, tail, stats and the hidden stress helper.
//!
//! Readers first open the data directory directly; when another shieldops
//! process holds it, they ask that process's control server instead, so the
//! commands work while the console runs and never write to its log.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use chrono::Utc;
use tokio::sync::mpsc;

use super::control::{ControlClient, RemoteScan};
use super::{EventLog, LogStats, OpenOptions, StoreError, Subscription, VerifyReport};
use crate::event::{Event, EventKind, NewEvent, rfc3339, summary};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

/// A `shieldops log` subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogCommand {
    /// Every event from `from` as JSON lines.
    Export { format: ExportFormat, from: u64 },
    /// Walk the hash chain.
    Verify,
    /// The last events (default: last 20), optionally following new ones.
    Tail { from: Option<u64>, follow: bool },
    /// Counts, times, kinds and size.
    Stats,
    /// Hidden test helper: `count` appends from `writers` tasks, printing each acknowledged seq.
    Stress { count: u64, writers: usize },
}

/// How long a reader keeps trying when the directory is locked but its socket does not answer yet.
const LOCKED_PATIENCE: Duration = Duration::from_secs(5);
/// How often `tail --follow` looks for a new writer once it has caught up.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// Default number of events `tail` shows.
const TAIL_DEFAULT: u64 = 20;

/// Runs a `shieldops log` subcommand against `dir`; returns the process exit code.
pub async fn run_log_command(
    dir: &Path,
    cmd: LogCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    match cmd {
        LogCommand::Export { format, from } => export(dir, format, from, out).await,
        LogCommand::Verify => verify(dir, out).await,
        LogCommand::Tail { from, follow } => tail(dir, from, follow, out).await,
        LogCommand::Stats => stats(dir, out).await,
        LogCommand::Stress { count, writers } => stress(dir, count, writers, out).await,
    }
}

/// Where a reader gets the log from.
enum Source {
    /// Opened directly: nobody else held it.
    Local(EventLog),
    /// Held by another process: through its control server.
    Remote(ControlClient),
}

/// Opens `dir` directly, or reaches the process that holds it.
async fn open_source(dir: &Path) -> Result<Source, StoreError> {
    let started = Instant::now();
    let opts = OpenOptions {
        create: false,
        lock_wait: Duration::ZERO,
    };
    loop {
        match EventLog::open_with(dir, &opts) {
            Ok(log) => return Ok(Source::Local(log)),
            Err(StoreError::Locked { .. }) => match ControlClient::connect(dir).await {
                Ok(client) => return Ok(Source::Remote(client)),
                // The holder may be starting its server, or be a short-lived reader.
                Err(_) if started.elapsed() < LOCKED_PATIENCE => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    return Err(StoreError::Control {
                        path: super::control::socket_path(dir),
                        message: format!(
                            "{} is held by another process whose control socket does not answer ({e})",
                            dir.display()
                        ),
                    });
                }
            },
            Err(e) => return Err(e),
        }
    }
}

/// Events from either source, in seq order.
enum Stream {
    Local(Subscription, u64),
    Remote(RemoteScan),
}

impl Stream {
    async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        match self {
            Stream::Local(sub, end) => {
                if sub.next_seq() > *end {
                    return None;
                }
                sub.next().await
            }
            Stream::Remote(scan) => scan.next().await,
        }
    }
}

async fn stream(source: &Source, from: u64, follow: bool) -> Result<Stream, StoreError> {
    Ok(match source {
        Source::Local(log) => Stream::Local(log.subscribe(from), log.last_seq()),
        Source::Remote(client) => Stream::Remote(client.scan(from, follow).await?),
    })
}

async fn close(source: Source) -> Result<(), StoreError> {
    match source {
        Source::Local(log) => log.close().await,
        Source::Remote(_) => Ok(()),
    }
}

async fn export(
    dir: &Path,
    format: ExportFormat,
    from: u64,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    let ExportFormat::Jsonl = format;
    let source = open_source(dir).await?;
    let mut events = stream(&source, from, false).await?;
    let mut buf = std::io::BufWriter::new(out);
    while let Some(event) = events.next().await {
        let event = event?;
        serde_json::to_writer(&mut buf, &event.to_json())?;
        buf.write_all(b"\n")?;
    }
    buf.flush()?;
    close(source).await?;
    Ok(0)
}

async fn verify(dir: &Path, out: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    let source = open_source(dir).await?;
    let report: VerifyReport = match &source {
        Source::Local(log) => {
            let log = log.clone();
            tokio::task::spawn_blocking(move || log.verify()).await??
        }
        Source::Remote(client) => client.verify().await?,
    };
    close(source).await?;
    Ok(print_verify(&report, out)?)
}

fn print_verify(report: &VerifyReport, out: &mut (dyn Write + Send)) -> std::io::Result<i32> {
    match &report.first_bad {
        None => {
            writeln!(out, "ok: {} events, chain intact", report.checked)?;
            Ok(0)
        }
        Some((seq, reason)) => {
            writeln!(out, "FAILED at seq {seq}: {reason}")?;
            Ok(1)
        }
    }
}

fn tail_line(event: &Event) -> String {
    format!(
        "{:>8}  {}  {}  {}  {}",
        event.seq,
        rfc3339(&event.at),
        event.actor,
        event.kind.name(),
        summary(&event.kind)
    )
}

async fn tail(
    dir: &Path,
    from: Option<u64>,
    follow: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    let source = open_source(dir).await?;
    let mut next = match from {
        Some(from) => from.max(1),
        None => {
            let last = match &source {
                Source::Local(log) => log.last_seq(),
                Source::Remote(client) => client.last_seq().await?,
            };
            last.saturating_sub(TAIL_DEFAULT - 1).max(1)
        }
    };
    let mut source = Some(source);
    loop {
        if let Some(src) = source.take() {
            let remote = matches!(src, Source::Remote(_));
            let mut events = stream(&src, next, follow && remote).await?;
            while let Some(event) = events.next().await {
                let event = event?;
                next = event.seq + 1;
                writeln!(out, "{}", tail_line(&event))?;
                if follow {
                    out.flush()?;
                }
            }
            out.flush()?;
            // Release the directory at once so a console can start meanwhile.
            close(src).await?;
        }
        if !follow {
            return Ok(0);
        }
        source = Some(wait_for_writer(dir).await?);
    }
}

/// Waits until another process serves the log, or the log files change.
async fn wait_for_writer(dir: &Path) -> Result<Source, StoreError> {
    let stamp = |dir: &Path| -> Option<(u64, SystemTime)> {
        let meta = std::fs::metadata(dir.join("db")).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    };
    let seen = stamp(dir);
    loop {
        tokio::time::sleep(FOLLOW_POLL).await;
        if let Ok(client) = ControlClient::connect(dir).await {
            return Ok(Source::Remote(client));
        }
        // A writer without a control server (e.g. `log stress`) shows up as changed files.
        if stamp(dir) != seen {
            match open_source(dir).await {
                Ok(source) => return Ok(source),
                Err(StoreError::Control { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

async fn stats(dir: &Path, out: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    let source = open_source(dir).await?;
    let stats: LogStats = match &source {
        Source::Local(log) => {
            let log = log.clone();
            tokio::task::spawn_blocking(move || log.stats()).await??
        }
        Source::Remote(client) => client.stats().await?,
    };
    close(source).await?;
    print_stats(&stats, out)?;
    Ok(0)
}

fn print_stats(stats: &LogStats, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    let time = |t: &Option<chrono::DateTime<Utc>>| t.as_ref().map(rfc3339).unwrap_or("-".into());
    writeln!(out, "events:       {}", stats.events)?;
    writeln!(out, "last seq:     {}", stats.last_seq)?;
    writeln!(out, "first event:  {}", time(&stats.first_at))?;
    writeln!(out, "last event:   {}", time(&stats.last_at))?;
    writeln!(
        out,
        "size on disk: {} ({} bytes)",
        human_bytes(stats.size_on_disk),
        stats.size_on_disk
    )?;
    writeln!(out, "per kind:")?;
    let width = stats.per_kind.keys().map(String::len).max().unwrap_or(0);
    let mut kinds: Vec<(&String, &u64)> = stats.per_kind.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (kind, count) in kinds {
        writeln!(out, "  {kind:<width$}  {count}")?;
    }
    Ok(())
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A realistic ~220-byte draft for stress runs and benchmarks.
pub fn stress_draft(writer: usize, n: u64) -> NewEvent {
    NewEvent::new(
        Utc::now(),
        format!("stress:{writer}"),
        EventKind::AgentHeartbeat {
            agent: format!("stress-writer-{writer}"),
            status: format!(
                "iteration {n:>12} of the durability stress run; payload padded to a typical event size"
            ),
        },
    )
}

async fn stress(
    dir: &Path,
    count: u64,
    writers: usize,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    anyhow::ensure!(writers >= 1, "--writers must be at least 1");
    let log = EventLog::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let issued = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<u64, StoreError>>();
    for w in 0..writers {
        let (log, issued, tx) = (log.clone(), issued.clone(), tx.clone());
        tokio::spawn(async move {
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let acked = log.append(stress_draft(w, n)).await.map(|e| e.seq);
                let failed = acked.is_err();
                if tx.send(acked).is_err() || failed {
                    break;
                }
            }
        });
    }
    drop(tx);
    while let Some(acked) = rx.recv().await {
        // Each line is written only after its append is durable.
        writeln!(out, "{}", acked?)?;
        out.flush()?;
    }
    log.close().await?;
    Ok(0)
}
