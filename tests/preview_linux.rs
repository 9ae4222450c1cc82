//! A Linux clean-up is previewed on the host itself before approval: the files
//! the clean-up would move now, their count and sizes, from a dry run of the
//! same selection; nothing moves by looking. Runs on this machine (the local
//! host) in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use shieldops::clock::ManualClock;
use shieldops::connectors::InfraConnector;
use shieldops::connectors::linux::{Host, LinuxConfig, LinuxConnector};
use shieldops::event::{Action, ConnectorId, Environment};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_up_preview_lists_what_would_move_and_moves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(48 * 3600);
    for (name, bytes) in [("a.log.1.gz", 2048), ("b.log.2.gz", 100), ("keep.log", 10)] {
        std::fs::write(logs.join(name), vec![b'x'; bytes]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(logs.join(name))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    // Recent: younger than the age limit, so it stays.
    std::fs::write(logs.join("new.log.3.gz"), b"fresh").unwrap();
    let config = LinuxConfig {
        quarantine_dir: work.path().join("quarantine"),
        ..Default::default()
    };
    let host = Host::local(Environment::Staging, "ops", Duration::from_secs(30));
    let id = host.id().clone();
    let c = LinuxConnector::new(
        ConnectorId::new("linux:local"),
        vec![host],
        Arc::new(ManualClock::new(chrono::Utc::now())),
        &config,
    );
    let glob = format!("{}/*.gz", logs.display());
    let action = Action::new("clean_disk", id.clone())
        .with("globs", glob.clone())
        .with("older_than_hours", "24");
    let p = c.preview(&action).await.unwrap();
    assert_eq!(
        p.lines(),
        [format!(
            "files matching {glob} older than 24h: 2 file(s), 2.1 KiB → moved to quarantine (restorable)"
        )]
    );
    assert_eq!(
        p.notes,
        [
            format!("2.0 KiB {}", logs.join("a.log.1.gz").display()),
            format!("100 B {}", logs.join("b.log.2.gz").display()),
        ]
    );
    for name in ["a.log.1.gz", "b.log.2.gz", "keep.log", "new.log.3.gz"] {
        assert!(logs.join(name).exists(), "{name} moved by a preview");
    }
    // What would be ignored is refused by name, in the preview and in execution.
    let ignored = action.clone().with("targets", "images");
    for err in [
        c.preview(&ignored).await.unwrap_err(),
        c.execute(&ignored).await.unwrap_err(),
    ] {
        let err = err.to_string();
        assert!(
            err.contains("`targets`") && err.contains("ignored"),
            "{err}"
        );
    }
    assert!(logs.join("a.log.1.gz").exists());
}
