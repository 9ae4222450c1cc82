//! Shared helpers for the tests that run the real binary on the demo fleet.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// A weekday start, so production is outside the default change freeze.
pub const WEEKDAY_START: &str = "2026-06-03T10:00:00Z";

/// `shieldops` with its data and log directories inside `dir`.
pub fn shieldops(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shieldops"));
    cmd.arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .env_remove("NO_COLOR")
        // The demo's story is deterministic; this machine's live numbers are not.
        .env("SHIELDOPS_NO_LOCAL_HOST", "1");
    cmd
}

/// The headless demo at `speed`, approving as `approver`, until nothing is in flight.
pub fn headless_demo(dir: &Path, speed: u32, approver: &str) -> Command {
    let mut cmd = shieldops(dir);
    cmd.args([
        "demo",
        "--headless",
        "--speed",
        &speed.to_string(),
        "--approve-as",
        approver,
        "--until-quiet",
        "--start",
        WEEKDAY_START,
    ]);
    cmd
}

/// The exported log, or `None` if `log export` failed (e.g. the demo has not
/// created its data directory yet).
pub fn try_export(dir: &Path) -> Option<Vec<Value>> {
    let out = shieldops(dir)
        .args(["log", "export", "--format", "jsonl"])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("export lines are JSON"))
            .collect(),
    )
}

/// The exported log; the export must succeed.
pub fn export(dir: &Path) -> Vec<Value> {
    try_export(dir).expect("log export failed")
}
