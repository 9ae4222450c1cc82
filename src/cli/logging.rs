//! Logs go to a daily rolling file, never to the terminal the console draws on.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts file logging; keep the guard alive until exit so buffered lines are written.
pub fn init(dir: Option<&Path>) -> anyhow::Result<WorkerGuard> {
    let dir: PathBuf = match dir {
        Some(d) => d.to_path_buf(),
        None => directories::ProjectDirs::from("", "", "shieldops")
            .and_then(|d| d.state_dir().map(Path::to_path_buf))
            .unwrap_or_else(|| std::env::temp_dir().join("shieldops")),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create log directory {}: {e}", dir.display()))?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("shieldops")
        .filename_suffix("log")
        .max_log_files(14)
        .build(&dir)
        .map_err(|e| anyhow::anyhow!("cannot open log file in {}: {e}", dir.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        EnvFilter::try_from_env("SHIELDOPS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(guard)
}
