//! Zero configuration: with no config file the console's fleet includes the
//! machine it runs on, with its installed packages, beside the demo fleet.

mod demo_support;

use demo_support::{export, headless_demo};

#[test]
fn with_no_config_the_local_host_is_in_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let status = headless_demo(dir.path(), 25, "alice")
        // The helper leaves the local host out for the deterministic demo tests.
        .env_remove("SHIELDOPS_NO_LOCAL_HOST")
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .status()
        .unwrap();
    assert!(status.success());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let id = format!("linux/local/{}", hostname.trim());
    let events = export(dir.path());
    let host = events
        .iter()
        .find(|e| e["kind"] == "resource_discovered" && e["resource"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} was not discovered"));
    let r = &host["resource"];
    assert_eq!(r["connector"], "linux:local");
    assert_eq!(r["kind"], "host");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(r["attributes"]["kernel"], kernel.trim());
    assert!(
        r["attributes"]["pkg:dpkg"].is_string(),
        "installed packages listed"
    );
    // systemd is not PID 1 here: the host says so instead of failing.
    if !std::path::Path::new("/run/systemd/system").exists() {
        assert!(
            r["attributes"]["service_manager"]
                .as_str()
                .unwrap()
                .starts_with("none:"),
            "{}",
            r["attributes"]
        );
    }
    // The demo's own story still played out.
    assert!(events.iter().any(|e| e["kind"] == "scenario_finished"));
}

// ---------------------------------------------------------------------------
// Quarantine and clean-up guardrails on this machine (the tests run as root in
// CI). Everything lives under a fresh directory in CARGO_TARGET_TMPDIR, whose
// parents are root's and writable by no one else (a directory under /tmp
// could not pass the quarantine's checks, by design); nothing outside it and
// /dev/shm is touched.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shieldops::clock::{ManualClock, SharedClock};
use shieldops::connectors::linux::{Host, LinuxConfig, LinuxConnector};
use shieldops::connectors::{ConnectorError, InfraConnector};
use shieldops::event::{Action, ConnectorId, Environment, ResourceId, Snapshot};

struct Setup {
    work: tempfile::TempDir,
    logs: PathBuf,
    q: PathBuf,
    c: LinuxConnector,
    host: ResourceId,
}

fn work_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn connector(q: &Path, roots: &[&Path]) -> LinuxConnector {
    let config = LinuxConfig {
        quarantine_dir: q.to_path_buf(),
        clean_roots: roots.iter().map(|r| r.display().to_string()).collect(),
        ..Default::default()
    };
    let clock: SharedClock = Arc::new(ManualClock::new(chrono::Utc::now()));
    LinuxConnector::new(
        ConnectorId::new("linux:local"),
        vec![Host::local(
            Environment::Staging,
            "ops",
            Duration::from_secs(60),
        )],
        clock,
        &config,
    )
}

fn setup() -> Setup {
    let work = work_dir();
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let q = work.path().join("quarantine");
    let c = connector(&q, &[&logs]);
    let host = c.hosts()[0].id().clone();
    Setup {
        work,
        logs,
        q,
        c,
        host,
    }
}

fn old_file(path: &Path, content: &[u8]) {
    std::fs::write(path, content).unwrap();
    let t = std::time::SystemTime::now() - Duration::from_secs(48 * 3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Every entry under `dir` (recursively, symbolic links not followed): path,
/// inode, size, mtime (files only: a directory's changes as entries move)
/// and content.
/// Path, inode, size, mtime, content.
type Seen = (Vec<u8>, u64, u64, i64, Vec<u8>);

fn tree(dir: &Path) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec()
            } else {
                stack.push(p.clone());
                Vec::new()
            };
            out.push((
                p.as_os_str().as_bytes().to_vec(),
                m.ino(),
                m.size(),
                if m.is_dir() { 0 } else { m.mtime() },
                content,
            ));
        }
    }
    out.sort();
    out
}

fn clean(b: &Setup, globs: &str) -> Action {
    Action::new("clean_disk", b.host.clone())
        .with("globs", globs)
        .with("older_than_hours", "24")
}

fn batch_of(s: &Snapshot) -> String {
    s.data["batch"]
        .as_str()
        .expect("a host snapshot names its batch")
        .to_string()
}

#[tokio::test]
async fn clean_disk_moves_exactly_what_it_lists_and_restore_puts_exactly_that_back() {
    let b = setup();
    let newline = b.logs.join("a\n.ssh\nb.gz");
    old_file(&newline, b"newline name");
    old_file(&b.logs.join("plain.log.1.gz"), b"plain");
    old_file(&b.logs.join("keep.log"), b"not matching");
    std::fs::write(b.logs.join("fresh.gz"), b"young").unwrap();
    // A decoy the old `read` loop would have reached relative to its cwd.
    let decoy_dir = b.work.path().join("home");
    std::fs::create_dir_all(decoy_dir.join(".ssh")).unwrap();
    old_file(&decoy_dir.join(".ssh/authorized_keys"), b"keys");
    let before = tree(b.work.path());

    let snap = b.c.snapshot(&b.host).await.unwrap();
    let batch = batch_of(&snap);
    assert_eq!(snap.data["quarantine_dir"], b.q.display().to_string());
    let out = b.c.execute(&clean_logs(&b)).await.unwrap();
    assert!(out.success, "{out:?}");
    assert!(
        out.message.starts_with("moved 2 file(s)"),
        "{}",
        out.message
    );
    // The outcome (kept in the event log) records each file with its identity.
    let m = std::fs::metadata(b.q.join(&batch).join("files/0")).unwrap();
    assert!(
        out.steps.iter().any(|s| s.contains("a\\n.ssh\\nb.gz")
            && s.contains(&format!("inode {}", m.ino()))
            || s.contains("plain.log.1.gz") && s.contains(&format!("inode {}", m.ino()))),
        "{:?}",
        out.steps
    );
    assert!(!newline.exists() && !b.logs.join("plain.log.1.gz").exists());
    assert!(b.logs.join("fresh.gz").exists() && b.logs.join("keep.log").exists());
    assert!(decoy_dir.join(".ssh/authorized_keys").exists());
    // The quarantine is root's own: 0700, files by number, a manifest line per file.
    let qmode = std::fs::metadata(&b.q).unwrap().permissions().mode() & 0o7777;
    assert_eq!(qmode, 0o700);
    let manifest = std::fs::read_to_string(b.q.join(&batch).join("manifest")).unwrap();
    assert_eq!(manifest.lines().count(), 2, "{manifest}");

    let restored = b.c.restore(&snap).await.unwrap();
    assert!(restored.success, "{restored:?}");
    assert!(
        restored.message.contains("2 file(s) moved back"),
        "{}",
        restored.message
    );
    let after: Vec<_> = tree(b.work.path())
        .into_iter()
        .filter(|e| !e.0.starts_with(b.q.as_os_str().as_bytes()))
        .collect();
    assert_eq!(
        after, before,
        "same names, inodes, sizes, mtimes and contents"
    );

    // A restore run again (say, after a crash before it was recorded) finds
    // everything in place and says so.
    let again = b.c.restore(&snap).await.unwrap();
    assert!(again.success, "{again:?}");
    assert_eq!(
        again
            .steps
            .iter()
            .filter(|s| s.starts_with("already in place"))
            .count(),
        2,
        "{again:?}"
    );
    assert!(again.message.contains("0 file(s) moved back"), "{again:?}");
}

#[tokio::test]
async fn a_plant_on_dev_shm_is_never_restored() {
    let b = setup();
    old_file(&b.logs.join("real.gz"), b"real");
    let snap = b.c.snapshot(&b.host).await.unwrap();
    let batch = batch_of(&snap);
    // The attacker learned the batch name (from the snapshot event, a process
    // list) and plants files where the old restore looked: every mount
    // point's `.shieldops-quarantine`.
    let root = Path::new("/dev/shm/.shieldops-quarantine");
    let planted_in = root
        .join(&batch)
        .join("files")
        .join(b.logs.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&planted_in).unwrap();
    std::fs::write(planted_in.join("planted.so"), b"evil").unwrap();
    let out = b.c.execute(&clean_logs(&b)).await.unwrap();
    assert!(
        out.success && out.message.starts_with("moved 1 file(s)"),
        "{out:?}"
    );
    let restored = b.c.restore(&snap).await.unwrap();
    let _ = std::fs::remove_dir_all(root.join(&batch));
    assert!(restored.success, "{restored:?}");
    assert!(b.logs.join("real.gz").exists());
    assert!(
        !b.logs.join("planted.so").exists(),
        "a planted file was restored: {restored:?}"
    );
    assert!(
        !restored.steps.iter().any(|s| s.contains("planted")),
        "{restored:?}"
    );
}

#[tokio::test]
async fn an_unsafe_quarantine_directory_is_refused_with_its_reason() {
    let work = work_dir();
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    old_file(&logs.join("x.gz"), b"x");
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    let open = work.path().join("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();

    let world = work.path().join("q-world");
    std::fs::create_dir(&world).unwrap();
    std::fs::set_permissions(&world, std::fs::Permissions::from_mode(0o777)).unwrap();
    let foreign = work.path().join("q-foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    let link = work.path().join("q-link");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let under_open = open.join("q");

    for (q, why) in [
        (&world, "mode 0777"),
        (&foreign, "owned by uid 65534"),
        (&link, "is a symbolic link"),
        (&under_open, "writable by others"),
    ] {
        let c = connector(q, &[&logs]);
        let host = c.hosts()[0].id().clone();
        let e = c.snapshot(&host).await.unwrap_err().to_string();
        assert!(
            e.contains("refused") && e.contains(why),
            "{}: {e}",
            q.display()
        );
        // With no batch, the clean-up itself refuses; nothing moves.
        let e = c
            .execute(
                &Action::new("clean_disk", host.clone())
                    .with("globs", format!("{}/*.gz", logs.display())),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectorError::BadParam { .. }), "{e}");
        assert!(e.to_string().contains("no snapshot"), "{e}");
        assert!(logs.join("x.gz").exists());
    }
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing made through the symbolic link"
    );
    assert!(!under_open.exists() || std::fs::read_dir(&under_open).unwrap().count() == 0);
}

/// Moves batch `batch` aside to `name` and leaves a symbolic link to it in its place.
fn swap_for_link(b: &Setup, batch: &str, name: &str) {
    let aside = b.work.path().join(name);
    std::fs::rename(b.q.join(batch), &aside).unwrap();
    std::os::unix::fs::symlink(&aside, b.q.join(batch)).unwrap();
}

/// clean_disk of every old `.gz` in the logs directory.
fn clean_logs(b: &Setup) -> Action {
    clean(b, &format!("{}/*.gz", b.logs.display()))
}

#[tokio::test]
async fn a_symlinked_batch_directory_is_refused() {
    let b = setup();
    old_file(&b.logs.join("a.gz"), b"a");
    // Before the clean-up: the batch swapped for a link; nothing moves.
    let snap = b.c.snapshot(&b.host).await.unwrap();
    let batch = batch_of(&snap);
    swap_for_link(&b, &batch, "other-batch");
    let e = b.c.execute(&clean_logs(&b)).await.unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");
    assert!(b.logs.join("a.gz").exists());
    let r = b.c.restore(&snap).await.unwrap();
    assert!(!r.success && r.message.contains("symbolic link"), "{r:?}");

    // After the clean-up: the restore refuses a linked batch and moves nothing.
    let snap = b.c.snapshot(&b.host).await.unwrap();
    let batch = batch_of(&snap);
    let out = b.c.execute(&clean_logs(&b)).await.unwrap();
    assert!(out.success, "{out:?}");
    swap_for_link(&b, &batch, "moved-batch");
    let r = b.c.restore(&snap).await.unwrap();
    assert!(!r.success, "{r:?}");
    assert!(
        r.message.contains(&batch) && r.message.contains("symbolic link"),
        "{r:?}"
    );
    assert!(
        !b.logs.join("a.gz").exists(),
        "nothing moved back through the link"
    );
}

#[tokio::test]
async fn a_missing_batch_fails_the_restore_loudly() {
    let b = setup();
    old_file(&b.logs.join("a.gz"), b"a");
    let snap = b.c.snapshot(&b.host).await.unwrap();
    let batch = batch_of(&snap);
    b.c.execute(&clean_logs(&b)).await.unwrap();
    std::fs::remove_dir_all(b.q.join(&batch)).unwrap();
    let r = b.c.restore(&snap).await.unwrap();
    assert!(!r.success, "{r:?}");
    assert!(
        r.message.contains("missing") && r.message.contains(&batch),
        "{r:?}"
    );

    // A snapshot naming a batch that never existed fails the same way.
    let mut forged = snap.clone();
    forged.data["batch"] = "20260101T000000Z-0badc0de".into();
    let r = b.c.restore(&forged).await.unwrap();
    assert!(
        !r.success && r.message.contains("20260101T000000Z-0badc0de"),
        "{r:?}"
    );
    // And one naming a path, not a batch, is refused.
    forged.data["batch"] = "../../etc".into();
    let r = b.c.restore(&forged).await.unwrap();
    assert!(
        !r.success && r.message.contains("not a quarantine batch name"),
        "{r:?}"
    );
}

#[tokio::test]
async fn an_altered_batch_is_refused_file_by_file() {
    let b = setup();
    old_file(&b.logs.join("one.gz"), b"one");
    old_file(&b.logs.join("two.gz"), b"two");
    let snap = b.c.snapshot(&b.host).await.unwrap();
    let batch = batch_of(&snap);
    let out = b.c.execute(&clean_logs(&b)).await.unwrap();
    assert!(out.message.starts_with("moved 2 file(s)"), "{out:?}");
    let files = b.q.join(&batch).join("files");
    let manifest = std::fs::read_to_string(b.q.join(&batch).join("manifest")).unwrap();
    // Which original name is files/0?
    let first = manifest.lines().find(|l| l.starts_with("0 ")).unwrap();
    let swapped_name = if first.ends_with(&hex(b"one.gz")) {
        "one.gz"
    } else {
        "two.gz"
    };
    let kept_name = if swapped_name == "one.gz" {
        "two.gz"
    } else {
        "one.gz"
    };
    // files/0 swapped for another file; an extra file slipped in.
    std::fs::remove_file(files.join("0")).unwrap();
    std::fs::write(files.join("0"), b"swapped").unwrap();
    std::fs::write(files.join("9"), b"extra").unwrap();
    let r = b.c.restore(&snap).await.unwrap();
    assert!(!r.success, "{r:?}");
    assert!(
        r.message.contains(swapped_name) && r.message.contains("not the file recorded"),
        "{r:?}"
    );
    assert!(r.message.contains("not in the manifest"), "{r:?}");
    assert!(
        !b.logs.join(swapped_name).exists(),
        "the swapped copy stays in quarantine"
    );
    assert!(!b.logs.join("9").exists());
    assert_eq!(
        std::fs::read(b.logs.join(kept_name)).unwrap(),
        kept_name.trim_end_matches(".gz").as_bytes()
    );

    // A manifest line that is not a record this console wrote stops the restore.
    std::fs::write(
        b.q.join(&batch).join("manifest"),
        format!("{manifest}garbage\n"),
    )
    .unwrap();
    let r = b.c.restore(&snap).await.unwrap();
    assert!(!r.success && r.message.contains("line 3"), "{r:?}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn files_on_another_filesystem_than_the_quarantine_are_skipped_and_reported() {
    let work = work_dir();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let q = work.path().join("quarantine");
    let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
    assert_ne!(
        dev(shm.path()),
        dev(work.path()),
        "/dev/shm is a tmpfs of its own"
    );
    old_file(&shm.path().join("other.gz"), b"other fs");
    let c = connector(&q, &[shm.path()]);
    let host = c.hosts()[0].id().clone();
    let snap = c.snapshot(&host).await.unwrap();
    let out = c
        .execute(
            &Action::new("clean_disk", host.clone())
                .with("globs", format!("{}/*.gz", shm.path().display())),
        )
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert!(
        out.message.contains("moved 0 file(s)") && out.message.contains("1 skipped"),
        "{out:?}"
    );
    assert!(
        out.steps
            .iter()
            .any(|s| s.contains("other.gz") && s.contains("another filesystem"))
    );
    assert!(shm.path().join("other.gz").exists());
    let r = c.restore(&snap).await.unwrap();
    assert!(r.success, "{r:?}");
}

/// Tricky spellings walk from the action's parameters through the connector
/// to the host: each is refused with a reason, or stays inside the roots.
#[tokio::test]
async fn tricky_globs_are_refused_or_stay_inside_the_roots() {
    let b = setup();
    let outside = b.work.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    old_file(&outside.join("x.gz"), b"outside");
    old_file(&b.logs.join("inside.gz"), b"inside");
    // A directory under the root that links out of it, and a linked file.
    std::os::unix::fs::symlink(&outside, b.logs.join("link")).unwrap();
    std::os::unix::fs::symlink(outside.join("x.gz"), b.logs.join("evil.gz")).unwrap();
    let before_outside = tree(&outside);
    let l = b.logs.display().to_string();
    let o = outside.display().to_string();
    let corpus = [
        "//etc/x*.gz".to_string(),
        "/etc/".into(),
        "/./etc/x.gz".into(),
        "/var/log/../../etc/x.gz".into(),
        "/var//log/../../etc/x.gz".into(),
        "/var/l\u{043e}g/x.gz".into(),
        "/etc/x.gz".into(),
        format!("{l}/../outside/*.gz"),
        format!("{l}//../outside/*.gz"),
        format!("/{l}/*.gz"),
        format!("{l}/./*.gz"),
        format!("{l}/"),
        format!("{l}/link/"),
        format!("{l}/link/*.gz"),
        format!("{l}/link/../../outside/*.gz"),
        format!("{o}/*.gz"),
        format!("{l}/\u{202e}zg.*"),
        format!("{l}/*"),
    ];
    for glob in &corpus {
        let _snap = b.c.snapshot(&b.host).await.unwrap();
        let e =
            b.c.execute(&clean(&b, glob))
                .await
                .expect_err(&format!("`{}` was not refused", glob.escape_debug()));
        assert!(matches!(e, ConnectorError::BadParam { .. }), "{e}");
        assert!(
            e.to_string().contains("guardrail"),
            "{}: {e}",
            glob.escape_debug()
        );
        assert!(b.logs.join("inside.gz").exists(), "{glob}");
    }
    // The one canonical glob moves the real file only: the linked file is
    // not a regular file (`find -P -type f`), and nothing outside moves.
    let _snap = b.c.snapshot(&b.host).await.unwrap();
    let out = b.c.execute(&clean(&b, &format!("{l}/*.gz"))).await.unwrap();
    assert!(out.message.starts_with("moved 1 file(s)"), "{out:?}");
    assert!(!b.logs.join("inside.gz").exists());
    assert!(
        std::fs::symlink_metadata(b.logs.join("evil.gz"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(tree(&outside), before_outside);
    // A bounded age: the minutes cannot overflow.
    let _snap = b.c.snapshot(&b.host).await.unwrap();
    let e =
        b.c.execute(
            &Action::new("clean_disk", b.host.clone())
                .with("globs", format!("{l}/*.gz"))
                .with("older_than_hours", u64::MAX.to_string()),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("older_than_hours"), "{e}");
}

#[tokio::test]
async fn one_host_level_snapshot_waits_for_its_action_and_old_batches_are_purged() {
    let b = setup();
    let snap = b.c.snapshot(&b.host).await.unwrap();
    // A second remediation of the host must not steal the first one's batch.
    let e = b.c.snapshot(&b.host).await.unwrap_err().to_string();
    assert!(e.contains("still waits for its action"), "{e}");
    // Any other action on the host itself (here one the connector does not
    // know) consumes the batch and moves no file.
    let e =
        b.c.execute(&Action::new("no_such_action", b.host.clone()))
            .await
            .unwrap_err();
    assert!(matches!(e, ConnectorError::Unsupported { .. }), "{e}");
    let r = b.c.restore(&snap).await.unwrap();
    assert!(r.message.contains("0 file(s) moved back"), "{r:?}");
    let snap2 = b.c.snapshot(&b.host).await.unwrap();
    assert_ne!(batch_of(&snap2), batch_of(&snap));

    // Batches past the retention go; young ones stay.
    let old = format!(
        "{}-0000abcd",
        (chrono::Utc::now() - chrono::Duration::hours(100)).format("%Y%m%dT%H%M%SZ")
    );
    std::fs::create_dir(b.q.join(&old)).unwrap();
    let purged = b.c.purge_quarantines().await;
    assert_eq!(purged.len(), 1, "{purged:?}");
    assert!(purged[0].ends_with(&old), "{purged:?}");
    assert!(!b.q.join(&old).exists());
    assert!(b.q.join(batch_of(&snap)).exists() && b.q.join(batch_of(&snap2)).exists());
}

/// More files, with longer names, than one script may carry: the moves and
/// the restore go in groups and still account for every file.
#[tokio::test]
async fn many_long_names_move_and_come_back_in_groups() {
    let b = setup();
    for i in 0..150 {
        old_file(
            &b.logs.join(format!("{i:0>200}.gz")),
            i.to_string().as_bytes(),
        );
    }
    let before = tree(&b.logs);
    let snap = b.c.snapshot(&b.host).await.unwrap();
    let out = b.c.execute(&clean_logs(&b)).await.unwrap();
    assert!(
        out.success && out.message.starts_with("moved 150 file(s)"),
        "{}",
        out.message
    );
    assert_eq!(std::fs::read_dir(&b.logs).unwrap().count(), 0);
    let r = b.c.restore(&snap).await.unwrap();
    assert!(
        r.success && r.message.contains("150 file(s) moved back"),
        "{}",
        r.message
    );
    assert_eq!(tree(&b.logs), before);
}
