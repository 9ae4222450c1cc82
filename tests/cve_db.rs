//! `shieldops cve import` and `cve status` through the real binary: the NVD
//! API 2.0 and Debian tracker fixtures in tests/vulndb_fixtures, incremental
//! re-import, and broken files that must import nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vulndb_fixtures")
        .join(name)
}

/// `shieldops --data-dir DIR/data --config DIR/config.toml cve ARGS…`.
fn cve(dir: &Path, max_age_days: u32, args: &[&str], files: &[&str]) -> Output {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("[security]\ncve_max_age_days = {max_age_days}\n"),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_shieldops"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&config)
        .arg("cve")
        .args(args)
        .args(files.iter().map(|f| fixture(f)))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `records` column of `cve status` for `source`.
fn records(status: &str, source: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.split_whitespace().next() == Some(source))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

#[test]
fn import_status_and_incremental_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let empty = cve(d, 7, &["status"], &[]);
    assert_eq!(empty.status.code(), Some(2), "{}", stdout(&empty));
    assert!(stdout(&empty).contains("no vulnerability data"));

    let first = cve(d, 7, &["import"], &["nvd-page.json", "debian-tracker.json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let out = stdout(&first);
    // Nine NVD records, one of them rejected.
    assert!(
        out.contains("nvd: 8 record(s) read: 8 added, 0 changed, 0 unchanged, 0 removed; 8 held"),
        "{out}"
    );
    assert!(
        out.contains(
            "debian: 12 record(s) read: 12 added, 0 changed, 0 unchanged, 0 removed; 12 held"
        ),
        "{out}"
    );

    let fresh = cve(d, 3650, &["status"], &[]);
    let status = stdout(&fresh);
    assert_eq!(fresh.status.code(), Some(0), "{status}");
    assert_eq!(records(&status, "nvd"), Some(8), "{status}");
    assert_eq!(records(&status, "debian"), Some(12), "{status}");
    // NVD's age is the page's own timestamp.
    assert!(status.contains("2026-11-20 08:00"), "{status}");

    // The same files again change nothing and duplicate nothing.
    let again = cve(d, 7, &["import"], &["nvd-page.json", "debian-tracker.json"]);
    let out = stdout(&again);
    assert!(
        out.contains("nvd: 8 record(s) read: 0 added, 0 changed, 8 unchanged, 0 removed; 8 held"),
        "{out}"
    );
    assert!(
        out.contains("0 added, 0 changed, 12 unchanged, 0 removed; 12 held"),
        "{out}"
    );

    // A later NVD page updates, adds and rejects; the next Debian dump
    // replaces the source, so a record it no longer holds goes.
    let update = cve(
        d,
        7,
        &["import"],
        &["nvd-update.json", "debian-tracker-update.json"],
    );
    assert!(update.status.success(), "{}", stderr(&update));
    let out = stdout(&update);
    assert!(
        out.contains("nvd: 3 record(s) read: 1 added, 1 changed, 1 unchanged, 1 removed; 8 held"),
        "{out}"
    );
    assert!(
        out.contains(
            "debian: 11 record(s) read: 0 added, 1 changed, 10 unchanged, 1 removed; 11 held"
        ),
        "{out}"
    );
    let after = stdout(&cve(d, 3650, &["status"], &[]));
    assert_eq!(records(&after, "nvd"), Some(8), "{after}");
    assert_eq!(records(&after, "debian"), Some(11), "{after}");

    // Older than the limit: stale, and said so.
    let stale = cve(d, 1, &["status"], &[]);
    assert_eq!(stale.status.code(), Some(2));
    assert!(stdout(&stale).contains("STALE"), "{}", stdout(&stale));
}

#[test]
fn broken_files_import_nothing_and_name_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A good file beside a truncated one: nothing at all is imported.
    let o = cve(
        d,
        7,
        &["import"],
        &["debian-tracker.json", "nvd-truncated.json"],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("nvd-truncated.json: line "), "{e}");
    assert!(e.contains("truncated"), "{e}");
    assert_eq!(cve(d, 3650, &["status"], &[]).status.code(), Some(2));

    let e = stderr(&cve(d, 7, &["import"], &["nvd-malformed.json"]));
    assert!(e.contains("nvd-malformed.json: line 106, column"), "{e}");
    assert!(e.contains("expected `,` or `}`"), "{e}");

    let e = stderr(&cve(d, 7, &["import"], &["debian-truncated.json"]));
    assert!(e.contains("debian-truncated.json: line"), "{e}");
    assert!(e.contains("truncated"), "{e}");

    let e = stderr(&cve(d, 7, &["import"], &["debian-bad-status.json"]));
    assert!(e.contains("debian-bad-status.json: line 39"), "{e}");
    assert!(e.contains("releases.bookworm.status"), "{e}");
    assert!(e.contains("unknown variant `fixed`"), "{e}");

    // After a good import, a bad one leaves the data as it was.
    assert!(
        cve(d, 7, &["import"], &["nvd-page.json", "debian-tracker.json"])
            .status
            .success()
    );
    let o = cve(
        d,
        7,
        &["import"],
        &["debian-tracker-update.json", "debian-bad-status.json"],
    );
    assert!(!o.status.success());
    let status = stdout(&cve(d, 3650, &["status"], &[]));
    assert_eq!(records(&status, "debian"), Some(12), "{status}");
    assert_eq!(records(&status, "nvd"), Some(8), "{status}");

    let e = stderr(&cve(d, 7, &["import"], &["no-such-file.json"]));
    assert!(e.contains("no-such-file.json: cannot read"), "{e}");
}
