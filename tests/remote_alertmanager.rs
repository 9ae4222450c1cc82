//! The Alertmanager intake against real servers: Prometheus evaluates a rule
//! that always fires, Alertmanager (clustering off) posts it to `serve`'s
//! webhook with a bearer token, and the alert becomes an incident; when
//! Prometheus is reloaded without the rule, the resolved notification
//! resolves the incident. Needs `prometheus` and `prometheus-alertmanager`
//! (scripts/install-test-deps.sh installs them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shieldops::event::EventKind;
use shieldops::remote::auth::Role;
use shieldops::state::IncidentStatus;

mod prometheus_support;
mod remote_support;
use prometheus_support::{Proc, free_port, tool};
use remote_support::{Console, Server, http};

async fn ready(port: u16, path: &str, what: &str, child: &mut Child) {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited early: {status}");
        }
        if std::net::TcpStream::connect(addr).is_ok() && http(addr, "GET", path, None, b"").0 == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not become ready on port {port}");
}

const RULE: &str = r#"groups:
  - name: shieldops-test
    interval: 1s
    rules:
      - alert: ShieldopsTestAlwaysFiring
        expr: vector(1)
        labels:
          severity: critical
          resource: target/test/always-firing
        annotations:
          summary: a rule that always fires
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_alert_opens_an_incident_and_its_resolution_resolves_it() {
    let prometheus = tool("prometheus");
    let alertmanager = tool("prometheus-alertmanager");
    let server = Server::start(
        &[("alertmanager", Role::Operator), ("victor", Role::Viewer)],
        &["--no-scenario"],
    );
    let dir = tempfile::tempdir().unwrap();

    let am_port = free_port();
    let am_config = write(
        dir.path(),
        "alertmanager.yml",
        &format!(
            r#"route:
  receiver: shieldops
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: shieldops
    webhook_configs:
      - url: http://{}/api/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {}
"#,
            server.addr,
            server.token("alertmanager")
        ),
    );
    let mut am = Proc(
        Command::new(&alertmanager)
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    ready(am_port, "/-/ready", "alertmanager", &mut am.0).await;

    let prom_port = free_port();
    let rules = write(dir.path(), "rules.yml", RULE);
    let prom_config = write(
        dir.path(),
        "prometheus.yml",
        &format!(
            r#"global:
  evaluation_interval: 1s
rule_files: [{}]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{am_port}"]
"#,
            rules.display()
        ),
    );
    let mut prom = Proc(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--rules.alert.resend-delay=1s")
            .arg("--web.enable-lifecycle")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    ready(prom_port, "/-/ready", "prometheus", &mut prom.0).await;

    let mut console = Console::attach(&server.opts("victor")).await.unwrap();
    console
        .until(120, "the incident from Alertmanager", |s| {
            s.incidents
                .values()
                .any(|i| i.title.contains("ShieldopsTestAlwaysFiring"))
        })
        .await;
    let incident = console
        .state
        .incidents
        .values()
        .find(|i| i.title.contains("ShieldopsTestAlwaysFiring"))
        .unwrap()
        .clone();
    assert_eq!(incident.resource.as_str(), "target/test/always-firing");
    let received = console
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::AlertReceived { alert, .. } if alert.name == "ShieldopsTestAlwaysFiring" => {
                Some(alert.clone())
            }
            _ => None,
        })
        .expect("the alert is recorded");
    assert_eq!(received.source, "alertmanager");
    assert!(received.fingerprint.starts_with("alertmanager:"));

    // Alertmanager re-sends while the alert keeps firing: still one incident.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seq = console.state.last_seq;
    console
        .until(30, "a few more events", |s| s.last_seq > seq)
        .await;
    let open = console
        .state
        .incidents
        .values()
        .filter(|i| i.title.contains("ShieldopsTestAlwaysFiring"))
        .count();
    assert_eq!(open, 1, "repeats join the incident");

    // Take the rule away: Prometheus sends the alert as resolved.
    std::fs::write(&rules, "groups: []\n").unwrap();
    let (status, body) = http(
        format!("127.0.0.1:{prom_port}").parse().unwrap(),
        "POST",
        "/-/reload",
        None,
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let id = incident.id;
    console
        .until(180, "the incident to resolve", |s| {
            s.incidents[&id].status == IncidentStatus::Resolved
        })
        .await;
    assert!(
        console.count(|k| matches!(
            k,
            EventKind::AlertReceived { alert, .. } if alert.name == "ShieldopsTestAlwaysFiring"
                && alert.status == shieldops::event::AlertStatus::Resolved
        )) >= 1
    );
}
