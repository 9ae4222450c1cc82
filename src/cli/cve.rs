//! `shieldops cve import FILE…` and `shieldops cve status`: the offline
//! vulnerability database, filled from feed files carried to the site.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};

use crate::agents::security::vulndb::{self, FeedFormat, VulnDb, VulnDbError};

/// How long `cve import` waits while a console's scan holds the database.
const LOCK_WAIT: Duration = Duration::from_secs(15);

/// `cve` subcommands.
#[derive(Debug, Subcommand)]
pub enum CveArgs {
    /// Import NVD API 2.0 pages and/or the Debian Security Tracker JSON dump
    /// (all files or nothing; works while a console runs).
    Import {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The files' format (default: recognised from each file).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
    },
    /// Show the sources, their record counts and age. Exits 2 when the data is
    /// stale or missing.
    Status,
}

/// `--format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// NVD API 2.0 CVE pages (`/rest/json/cves/2.0`).
    Nvd,
    /// The Debian Security Tracker dump (`/tracker/data/json`).
    Debian,
}

/// Runs a `cve` subcommand; returns the exit code.
pub fn run(
    args: &CveArgs,
    data_dir: &Path,
    max_age_days: u32,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let dir = vulndb::db_dir(data_dir);
    match args {
        CveArgs::Import { files, format } => {
            let format = format.map(|f| match f {
                FormatArg::Nvd => FeedFormat::Nvd,
                FormatArg::Debian => FeedFormat::Debian,
            });
            import(&dir, files, format, out)
        }
        CveArgs::Status => status(&dir, max_age_days, Utc::now(), out),
    }
}

fn import(
    dir: &Path,
    files: &[PathBuf],
    format: Option<FeedFormat>,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    // Every file is parsed before the database is touched: one bad file
    // imports nothing.
    let mut feeds = Vec::with_capacity(files.len());
    for file in files {
        feeds.push(vulndb::read_feed(file, format)?);
    }
    let parsed = started.elapsed();
    std::fs::create_dir_all(dir)?;
    let db = VulnDb::open(dir, true, LOCK_WAIT)?;
    let reports = db.import(feeds, Utc::now())?;
    drop(db);
    let elapsed = started.elapsed();
    for r in &reports {
        writeln!(
            out,
            "{}: {} record(s) read: {} added, {} changed, {} unchanged, {} removed; {} held",
            r.source, r.read, r.added, r.changed, r.unchanged, r.removed, r.total
        )?;
    }
    let read: u64 = reports.iter().map(|r| r.read).sum();
    writeln!(
        out,
        "imported {} file(s) in {:.2} s (parsing {:.2} s): {:.0} records/s",
        files.len(),
        elapsed.as_secs_f64(),
        parsed.as_secs_f64(),
        read as f64 / elapsed.as_secs_f64().max(1e-9)
    )?;
    Ok(0)
}

fn status(
    dir: &Path,
    max_age_days: u32,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let sources = match VulnDb::open(dir, false, LOCK_WAIT) {
        Ok(db) => db.sources()?,
        Err(VulnDbError::Missing { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    if sources.is_empty() {
        writeln!(
            out,
            "no vulnerability data in {}: findings cannot be trusted to be complete.\n\
             Import feeds with `shieldops cve import FILE…` (see README, Vulnerability data).",
            dir.display()
        )?;
        return Ok(2);
    }
    let (_, stale) = vulndb::freshness(&sources, max_age_days, now);
    writeln!(
        out,
        "{:<8} {:>9}  {:<17}  {:>7}  {:<17}  files",
        "source", "records", "data as of", "age", "imported"
    )?;
    for s in &sources {
        writeln!(
            out,
            "{:<8} {:>9}  {:<17}  {:>7}  {:<17}  {}",
            s.name,
            s.records,
            s.as_of.format("%Y-%m-%d %H:%M"),
            age(now - s.as_of),
            s.imported_at.format("%Y-%m-%d %H:%M"),
            s.files.join(", ")
        )?;
    }
    if stale {
        writeln!(
            out,
            "STALE: data older than {max_age_days} day(s) ([security] cve_max_age_days); \
             missing findings do not mean no vulnerabilities. Import fresh feeds."
        )?;
        Ok(2)
    } else {
        writeln!(out, "fresh: every source within {max_age_days} day(s)")?;
        Ok(0)
    }
}

fn age(d: chrono::Duration) -> String {
    let hours = d.num_hours().max(0);
    if hours >= 48 {
        format!("{}d", hours / 24)
    } else {
        format!("{hours}h")
    }
}
