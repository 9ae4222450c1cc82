//! Monitoring for the console itself (assets/monitoring/): the rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`), and
//! every panel query of the Grafana dashboard returns data from a real
//! Prometheus scraping a real `shieldops serve` (playing the demo scenario)
//! with the recording rules loaded.

mod prometheus_support;
mod remote_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use prometheus_support::{Prometheus, Target, tool};
use remote_support::{Server, WEEKDAY_START};
use shieldops::connectors::prometheus::{self as prom, PrometheusConfig};
use shieldops::remote::auth::Role;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/monitoring")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new(tool("promtool"))
        .args(args)
        .current_dir(monitoring())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_rules_pass_promtool_check_and_their_unit_tests() {
    let checked = promtool(&["check", "rules", "shieldops.rules.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "shieldops.rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alerting rule has a unit test that expects it to fire.
    let rules = std::fs::read_to_string(monitoring().join("shieldops.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(monitoring().join("shieldops.rules.test.yml")).unwrap();
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            assert!(
                tests.contains(&format!(
                    "alertname: {name}\n        exp_alerts:\n          - "
                )),
                "{name} has no test expecting it to fire"
            );
        }
    }
}

/// Every `expr` of every panel of the dashboard.
fn panel_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(monitoring().join("shieldops-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push((
                p["title"].as_str().unwrap().to_string(),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert!(out.len() >= 10, "{out:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_returns_data_from_a_real_serve() {
    let server = Server::start(
        &[("prometheus", Role::Viewer)],
        &["--speed", "25", "--start", WEEKDAY_START],
    );
    let rules = monitoring().join("shieldops.rules.yml");
    let prometheus = Prometheus::start_with(
        &[Target {
            job: "shieldops".into(),
            addr: server.addr.to_string(),
            bearer: Some(server.token("prometheus")),
        }],
        &[&rules],
    )
    .await;
    let within = Duration::from_secs(90);
    for q in [
        r#"count_over_time(up{job="shieldops"}[1m]) >= 3"#,
        "shieldops:event_log_lag",
        "shieldops:agent_loop_duration_seconds:p99_5m",
    ] {
        prometheus.until_series(q, within).await;
    }
    let p = prom::Prometheus::new(&PrometheusConfig::new(prometheus.url())).unwrap();
    let now = chrono::Utc::now();
    for (title, expr) in panel_queries() {
        let a = p
            .query_range(
                &expr,
                now - chrono::Duration::seconds(30),
                now,
                Duration::from_secs(1),
            )
            .await
            .unwrap_or_else(|e| panic!("panel {title:?}: {expr}: {e}"));
        assert!(
            !a.series.is_empty() && a.series.iter().all(|s| !s.samples.is_empty()),
            "panel {title:?} shows no data: {expr}"
        );
    }
    // serve is up, and the rule saying otherwise does not fire.
    let up = p
        .query(r#"up{job="shieldops"}"#, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(up.series[0].last(), Some(1.0));
    let down = p
        .query(
            r#"ALERTS{alertname="ShieldopsServeDown"}"#,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert!(down.series.is_empty(), "{down:?}");
}
