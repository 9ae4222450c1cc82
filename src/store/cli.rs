//! `shieldops log …`: export, verify, tail, stats, salvage and the hidden
//! stress helper.
//!
//! Readers open a private copy of the log ([`EventLog::open_read_only`]);
//! when another shieldops process holds the directory, they ask that
//! process's control server instead, so the commands work while the console
//! runs and never write a byte under the data directory.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use chrono::Utc;
use tokio::sync::mpsc;

use super::control::{ControlClient, RemoteScan};
use super::{Anchor, EventLog, LogStats, OpenOptions, StoreError, Subscription, VerifyReport};
use crate::event::{ChainHash, Event, EventKind, NewEvent, rfc3339, summary};

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
    /// Walk the hash chain and hold it to the anchor (and to a checkpoint kept elsewhere).
    Verify { checkpoint: Option<Anchor> },
    /// Copy the verified prefix into a new data directory's log.
    Salvage { to: std::path::PathBuf },
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
        LogCommand::Verify { checkpoint } => verify(dir, checkpoint, out).await,
        LogCommand::Salvage { to } => salvage(dir, &to, out).await,
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
        lock_wait: Duration::ZERO,
        ..OpenOptions::default()
    };
    loop {
        match EventLog::open_read_only(dir, &opts) {
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

/// Parses a `--checkpoint SEQ:HASH` argument.
pub fn parse_checkpoint(text: &str) -> Result<Anchor, String> {
    let (seq, hash) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected SEQ:HASH (e.g. 1040:3fa9…, 64 hex digits)"))?;
    let seq = seq
        .parse::<u64>()
        .map_err(|e| format!("{text:?}: the seq {seq:?} is not a number ({e})"))?;
    let hash = ChainHash::from_hex(hash)
        .ok_or_else(|| format!("{text:?}: the hash is not 64 hex digits"))?;
    Ok(Anchor { seq, hash })
}

async fn verify(
    dir: &Path,
    checkpoint: Option<Anchor>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    let source = match open_source(dir).await {
        Ok(source) => source,
        // The storage engine cannot read even a copy: nothing is accounted for.
        Err(e @ StoreError::Corrupt { .. }) => {
            let anchor = super::anchor::read(dir).ok().flatten();
            writeln!(out, "FAILED at seq 1: {e}")?;
            if let Some(anchor) = anchor {
                writeln!(
                    out,
                    "{} acknowledged event(s) unaccounted for (anchor at seq {}, hash {})",
                    anchor.seq,
                    anchor.seq,
                    anchor.hash.to_hex()
                )?;
            }
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let report: VerifyReport = match &source {
        Source::Local(log) => {
            let log = log.clone();
            tokio::task::spawn_blocking(move || log.verify_with(checkpoint.as_ref())).await??
        }
        Source::Remote(client) => client.verify(checkpoint.as_ref()).await?,
    };
    close(source).await?;
    Ok(print_verify(&report, checkpoint.as_ref(), out)?)
}

fn print_verify(
    report: &VerifyReport,
    checkpoint: Option<&Anchor>,
    out: &mut (dyn Write + Send),
) -> std::io::Result<i32> {
    match &report.first_bad {
        None => {
            let held = match (report.anchored_at, checkpoint) {
                (_, Some(c)) => format!(", matches checkpoint seq {}", c.seq),
                (Some(seq), None) => format!(", anchored at seq {seq}"),
                (None, None) => {
                    " (a format-1 log with no anchor yet: a cut-off tail would not be detected)"
                        .into()
                }
            };
            writeln!(out, "ok: {} events, chain intact{held}", report.checked)?;
            Ok(0)
        }
        Some((seq, reason)) => {
            writeln!(out, "FAILED at seq {seq}: {reason}")?;
            let against = report
                .anchored_at
                .map(|a| format!(" (held to seq {a})"))
                .unwrap_or_default();
            writeln!(
                out,
                "{} acknowledged event(s) unaccounted for{against}; {} intact before it",
                report.unaccounted, report.checked
            )?;
            Ok(1)
        }
    }
}

/// Copies the verified prefix of the log in `dir` into the log of the new
/// data directory `to` (its `log` subdirectory), with the data directory's
/// other top-level files (e.g. the demo world) beside it.
async fn salvage(dir: &Path, to: &Path, out: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    if let Ok(mut entries) = std::fs::read_dir(to) {
        anyhow::ensure!(
            entries.next().is_none(),
            "{} is not empty: salvage writes only into a new or empty directory",
            to.display()
        );
    }
    let log = match EventLog::open_read_only(dir, &OpenOptions::default()) {
        Ok(log) => log,
        Err(StoreError::Locked { .. }) => anyhow::bail!(
            "{} is held by a running shieldops process; stop it before salvaging",
            dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let to_log = to.join(dir.file_name().unwrap_or("log".as_ref()));
    let target = to_log.clone();
    let (report, salvaged) = tokio::task::spawn_blocking(move || {
        let report = log.verify()?;
        let salvaged = log.salvage_into(&target, report.checked)?;
        Ok::<_, StoreError>((report, salvaged))
    })
    .await??;
    if let Some(data_dir) = dir.parent() {
        copy_top_level_files(data_dir, to)
            .with_context(|| format!("copying the files beside the log into {}", to.display()))?;
    }
    writeln!(
        out,
        "salvaged seqs 1..={} ({} events) into {}; {} was not modified",
        salvaged.seq,
        salvaged.seq,
        to_log.display(),
        dir.display()
    )?;
    match &report.first_bad {
        Some((seq, reason)) => writeln!(
            out,
            "left behind from seq {seq}: {reason} ({} acknowledged event(s) unaccounted for)",
            report.unaccounted
        )?,
        None => writeln!(out, "the whole log verified; nothing was left behind")?,
    }
    Ok(0)
}

/// Copies the regular files directly in `from` (not directories, sockets or links) into `to`.
fn copy_top_level_files(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
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
            next_run: None,
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
