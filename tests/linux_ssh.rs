//! The Linux connector against a real OpenSSH server on 127.0.0.1 (this
//! machine), with the systemctl/journalctl test doubles on the session's PATH.

mod linux_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use linux_support::{Proxy, Silent, Sshd};
use shieldops::clock::{ManualClock, SharedClock};
use shieldops::connectors::linux::transport::{SshOptions, TransportError};
use shieldops::connectors::linux::{LinuxConfig, LinuxConnector};
use shieldops::connectors::{ConnectorError, InfraConnector, Scope, TimeWindow};
use shieldops::event::{Action, ConnectorId, Environment, HealthStatus, ResourceId};

fn clock() -> SharedClock {
    Arc::new(ManualClock::new(chrono::Utc::now()))
}

fn fleet(
    sshd: &Sshd,
    aliases: &[&str],
    extra: &[(&str, u16)],
    timeout: Duration,
    config: &LinuxConfig,
) -> LinuxConnector {
    let names: Vec<String> = aliases
        .iter()
        .filter(|a| !extra.iter().any(|(e, _)| e == *a) && **a != "refused")
        .map(|a| a.to_string())
        .collect();
    let options = SshOptions {
        config_file: Some(sshd.ssh_config(&names, extra)),
        timeout,
        accept_new_host_keys: false,
        control_dir: Some(sshd.control_dir()),
    };
    let hosts: Vec<(String, Environment, String)> = aliases
        .iter()
        .map(|a| (a.to_string(), Environment::Staging, "ops".to_string()))
        .collect();
    LinuxConnector::ssh_fleet(
        ConnectorId::new("linux:ssh"),
        &hosts,
        options,
        16,
        clock(),
        config,
    )
}

fn by_id(resources: &[shieldops::event::Resource]) -> BTreeMap<String, shieldops::event::Resource> {
    resources
        .iter()
        .map(|r| (r.id.to_string(), r.clone()))
        .collect()
}

/// The hardening facts the compliance controls read arrive over SSH exactly
/// as they read locally (the SSH host is this machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_host_carries_the_hardening_facts_the_controls_read() {
    use shieldops::connectors::linux::hardening;
    use shieldops::connectors::linux::transport::LocalTransport;

    let sshd = Sshd::start();
    let c = fleet(
        &sshd,
        &["web-1"],
        &[],
        Duration::from_secs(30),
        &LinuxConfig::default(),
    );
    let resources = c.list_resources(&Scope::default()).await.unwrap();
    let host = &by_id(&resources)["linux/ssh/web-1"];
    let local = hardening::collect(
        &LocalTransport::new("local", Duration::from_secs(30)),
        hardening::SSHD_CONFIG,
    )
    .await;
    for name in hardening::ATTRIBUTES {
        assert_eq!(
            host.attributes.get(name),
            local.attributes.get(*name),
            "{name}: {:?}",
            host.attributes
        );
        assert_ne!(host.attributes[*name], "", "{name}");
    }
    assert_eq!(
        host.attributes["sshd.source"],
        local.attributes["sshd.source"]
    );
    // This machine's files, read independently.
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    assert_eq!(
        (
            host.attributes["os.id"].clone(),
            host.attributes["os.version_codename"].clone()
        ),
        hardening::parse_os_release(&os)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_host_shows_metrics_services_and_installed_packages() {
    let sshd = Sshd::start();
    sshd.unit(
        "nginx.service",
        &[
            ("active", "failed"),
            ("result", "exit-code"),
            ("status", "1"),
            ("restarts", "2"),
            ("description", "web server"),
        ],
    );
    sshd.unit(
        "cron.service",
        &[("active", "active"), ("description", "cron")],
    );
    let c = fleet(
        &sshd,
        &["web-1"],
        &[],
        Duration::from_secs(30),
        &LinuxConfig::default(),
    );
    let resources = c.list_resources(&Scope::default()).await.unwrap();
    let all = by_id(&resources);
    let host = &all["linux/ssh/web-1"];
    assert_eq!(host.kind, "host");
    assert_eq!(host.connector, ConnectorId::new("linux:ssh"));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(
        host.attributes["kernel"],
        kernel.trim(),
        "the remote host is this machine"
    );
    assert!(
        host.attributes.contains_key("pkg:dpkg"),
        "packages for the security agent"
    );
    assert!(host.attributes["service_manager"].starts_with("systemd (degraded)"));
    // Other findings (this machine's own load or disk) may rank first; the
    // failed unit is always in the message.
    assert!(
        host.health.message.contains("failed: nginx.service"),
        "{:?}",
        host.health
    );
    let nginx = &all["linux/ssh/web-1/service/nginx.service"];
    assert_eq!(nginx.health.status, HealthStatus::Unhealthy);
    assert_eq!(nginx.health.reason, "unit_failed");
    assert!(
        nginx.health.message.contains("exit code 1"),
        "{}",
        nginx.health.message
    );
    assert_eq!(
        all["linux/ssh/web-1/service/cron.service"].health.status,
        HealthStatus::Healthy
    );
    let m = c
        .metrics(&ResourceId::new("linux/ssh/web-1"))
        .await
        .unwrap();
    assert!(m["cpus"] >= 1.0);
    assert_eq!(m["failed_units"], 1.0);
    assert!(m["clock_skew_secs"].abs() < 5.0);
    let m = c.metrics(&nginx.id).await.unwrap();
    assert_eq!(m["restarts"], 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_refuses_the_key_is_reported_not_fatal() {
    let sshd = Sshd::start();
    let c = fleet(
        &sshd,
        &["web-1", "refused"],
        &[],
        Duration::from_secs(30),
        &LinuxConfig::default(),
    );
    let all = by_id(&c.list_resources(&Scope::default()).await.unwrap());
    let refused = &all["linux/ssh/refused"];
    assert_eq!(refused.health.status, HealthStatus::Unknown);
    assert_eq!(
        refused.health.reason, "ssh_auth_refused",
        "{:?}",
        refused.health
    );
    assert!(
        refused.health.message.contains("refused"),
        "{}",
        refused.health.message
    );
    assert!(
        all["linux/ssh/web-1"].attributes.contains_key("kernel"),
        "the good host still answers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_host_costs_one_timeout_and_then_its_breaker_skips_it() {
    let sshd = Sshd::start();
    let silent = Silent::start();
    let c = fleet(
        &sshd,
        &["web-1", "hung"],
        &[("hung", silent.port)],
        Duration::from_secs(5),
        &LinuxConfig::default(),
    );
    let started = Instant::now();
    let all = by_id(&c.list_resources(&Scope::default()).await.unwrap());
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(12),
        "a hung host stalled the fleet for {took:?}"
    );
    let hung = &all["linux/ssh/hung"];
    assert_eq!(hung.health.status, HealthStatus::Unknown);
    assert_eq!(hung.health.reason, "ssh_timeout", "{:?}", hung.health);
    assert!(all["linux/ssh/web-1"].attributes.contains_key("kernel"));

    // Two more failures open the breaker: the host is then skipped at once.
    let t = c.hosts()[1].transport();
    for _ in 0..2 {
        assert!(t.run("true").await.is_err());
    }
    let started = Instant::now();
    let e = t.run("true").await.unwrap_err();
    assert!(matches!(e, TransportError::CircuitOpen { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_command_is_an_error_not_a_hang() {
    let sshd = Sshd::start();
    let proxy = Proxy::start(sshd.port).await;
    let c = fleet(
        &sshd,
        &["flaky"],
        &[("flaky", proxy.port)],
        Duration::from_secs(20),
        &LinuxConfig::default(),
    );
    let t = c.hosts()[0].transport();
    assert!(t.run("echo up").await.unwrap().stdout.contains("up"));
    let running = tokio::spawn(async move { t.run("echo started; sleep 30; echo never").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cut_at = Instant::now();
    proxy.cut();
    let result = tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("the dropped command returned")
        .unwrap();
    assert!(cut_at.elapsed() < Duration::from_secs(10));
    match result {
        Err(TransportError::Connection { .. }) | Err(TransportError::Timeout { .. }) => {}
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_actions_snapshot_and_restore_over_ssh() {
    let sshd = Sshd::start();
    sshd.unit(
        "nginx.service",
        &[
            ("active", "failed"),
            ("result", "exit-code"),
            ("status", "1"),
        ],
    );
    sshd.unit("cron.service", &[("active", "active")]);
    let c = fleet(
        &sshd,
        &["web-1"],
        &[],
        Duration::from_secs(30),
        &LinuxConfig::default(),
    );
    c.list_resources(&Scope::default()).await.unwrap();
    let nginx = ResourceId::new("linux/ssh/web-1/service/nginx.service");

    let snap = c.snapshot(&nginx).await.unwrap();
    let out = c
        .execute(&Action::new("restart_service", nginx.clone()))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert_eq!(sshd.unit_state("nginx.service")["active"], "active");
    assert_eq!(
        c.health(&nginx).await.unwrap().status,
        HealthStatus::Healthy
    );
    let restored = c.restore(&snap).await.unwrap();
    assert!(restored.success, "{restored:?}");
    assert_ne!(
        sshd.unit_state("nginx.service")["active"],
        "active",
        "restored to not running"
    );

    // Host target + `service` parameter; stop, then restore starts it again.
    let host = ResourceId::new("linux/ssh/web-1");
    let snap = c.snapshot(&host).await.unwrap();
    c.execute(&Action::new("stop_service", host.clone()).with("service", "cron"))
        .await
        .unwrap();
    assert_eq!(sshd.unit_state("cron.service")["active"], "inactive");
    let restored = c.restore(&snap).await.unwrap();
    assert!(
        restored
            .steps
            .iter()
            .any(|s| s.contains("systemctl start cron.service")),
        "{restored:?}"
    );
    assert_eq!(sshd.unit_state("cron.service")["active"], "active");

    // A unit that fails to start: the action reports failure with systemd's words.
    sshd.unit(
        "broken.service",
        &[("active", "failed"), ("fail_on_start", "1")],
    );
    let out = c
        .execute(&Action::new("restart_service", host.clone()).with("service", "broken"))
        .await
        .unwrap();
    assert!(!out.success);
    assert!(
        out.steps
            .iter()
            .any(|s| s.contains("control process exited")),
        "{out:?}"
    );
    let window = TimeWindow {
        from: chrono::Utc::now() - chrono::Duration::minutes(5),
        to: chrono::Utc::now(),
    };
    sshd.journal(serde_json::json!({
        "__REALTIME_TIMESTAMP": (chrono::Utc::now().timestamp_micros()).to_string(),
        "PRIORITY": "3", "_SYSTEMD_UNIT": "broken.service",
        "MESSAGE": "cannot connect: password=hunter2",
    }));
    let events = c
        .events(
            &ResourceId::new("linux/ssh/web-1/service/broken.service"),
            window,
        )
        .await
        .unwrap();
    let text: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert!(
        text.iter()
            .any(|m| m.contains("Failed with result 'exit-code'")),
        "{text:?}"
    );
    assert!(!text.iter().any(|m| m.contains("hunter2")), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_disk_quarantines_over_ssh_and_restore_moves_files_back() {
    let sshd = Sshd::start();
    // The quarantine's parents must be writable by no one else: not /tmp.
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(48 * 3600);
    for name in ["a.log.1.gz", "b.log.2.gz", "keep.log"] {
        std::fs::write(logs.join(name), name).unwrap();
        std::fs::File::options()
            .write(true)
            .open(logs.join(name))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let config = LinuxConfig {
        quarantine_dir: work.path().join("quarantine"),
        clean_roots: vec![logs.display().to_string()],
        ..Default::default()
    };
    let c = fleet(&sshd, &["web-1"], &[], Duration::from_secs(30), &config);
    let host = ResourceId::new("linux/ssh/web-1");
    let snap = c.snapshot(&host).await.unwrap();
    let action = Action::new("clean_disk", host.clone())
        .with("globs", format!("{}/*.gz", logs.display()))
        .with("older_than_hours", "24");
    let out = c.execute(&action).await.unwrap();
    assert!(
        out.success && out.message.starts_with("moved 2 file(s)"),
        "{out:?}"
    );
    assert!(!logs.join("a.log.1.gz").exists() && logs.join("keep.log").exists());
    let restored = c.restore(&snap).await.unwrap();
    assert!(restored.success, "{restored:?}");
    assert_eq!(
        std::fs::read_to_string(logs.join("a.log.1.gz")).unwrap(),
        "a.log.1.gz"
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("b.log.2.gz")).unwrap(),
        "b.log.2.gz"
    );

    // Guardrails refuse before anything runs on the host: outside the roots,
    // and a doubled slash.
    for glob in ["/etc/*.conf", "//etc/shieldops-none*.gz"] {
        c.snapshot(&host).await.unwrap();
        let e = c
            .execute(&Action::new("clean_disk", host.clone()).with("globs", glob))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("guardrail"), "{e}");
    }
    let e = c
        .execute(&Action::new("clean_disk", host.clone()).with("globs", "/etc/*.conf"))
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectorError::BadParam { .. }), "{e}");
    let e = c
        .execute(
            &Action::new("restart_service", host)
                .with("service", "x")
                .with("pre", "dd if=/dev/zero of=/dev/sda"),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("guardrail"), "{e}");
}
