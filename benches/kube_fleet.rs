//! Kubernetes fleet benchmark through the test API server (a test double, see
//! tests/kube_support): initial sync time and resident memory with 50,000
//! pods, and the time from a change on the server to the Fleet pane's state
//! showing it (watch event → connector cache → `health_changed` folded).
//!
//! The server runs in a child process (this same binary, started with
//! `SHIELDOPS_KUBE_BENCH_SERVER=<pods>`), so the memory measured is the
//! connector's alone.
//!
//! `cargo bench --bench kube_fleet` (pods: `SHIELDOPS_KUBE_BENCH_PODS`, default 50,000).

#[path = "../tests/kube_support/mod.rs"]
mod kube_support;

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shieldops::connectors::kubernetes::{ClusterTarget, KubeConnector};
use shieldops::event::{ChainHash, Event, EventKind, NewEvent, ResourceId};
use shieldops::state::State;
use tokio::sync::Notify;

#[path = "support/goal.rs"]
mod goal;

const SERVER_ENV: &str = "SHIELDOPS_KUBE_BENCH_SERVER";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(pods) = std::env::var(SERVER_ENV) {
        rt.block_on(serve(pods.parse().unwrap_or(50_000)));
        return;
    }
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) only smoke-runs.
    let full = std::env::args().any(|a| a == "--bench");
    let pods: usize = std::env::var("SHIELDOPS_KUBE_BENCH_PODS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(if full { 50_000 } else { 500 });
    rt.block_on(measure(pods, if full { 200 } else { 5 }));
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Child: the test server with `pods` pods; commands on stdin.
async fn serve(pods: usize) {
    let server = kube_support::TestApiServer::start().await;
    for n in 0..20 {
        server.create(kube_support::node(&format!("node-{n}")));
    }
    for i in 0..pods {
        let ns = format!("team-{}", i % 50);
        let mut p = kube_support::pod(
            &ns,
            &format!("pod-{i}"),
            Some(&format!("app{}-abc", i % 500)),
            &format!("node-{}", i % 20),
            "app:1",
        );
        if let Some(m) = p["metadata"].as_object_mut() {
            m.insert("creationTimestamp".into(), json!("2026-06-03T10:00:00Z"));
        }
        server.create(p);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = server.write_kubeconfig(dir.path(), "bench");
    println!("ready {}", kc.display());
    let _ = std::io::stdout().flush();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let ["crash", ns, name] = parts.as_slice() {
            server.update("Pod", ns, name, |p| {
                p["status"]["containerStatuses"][0]["ready"] = json!(false);
                p["status"]["containerStatuses"][0]["state"] =
                    json!({"waiting": {"reason": "CrashLoopBackOff"}});
                p["status"]["containerStatuses"][0]["lastState"] =
                    json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}});
            });
        }
    }
}

async fn measure(pods: usize, samples: usize) {
    let exe = std::env::current_exe().expect("exe");
    let mut child = std::process::Command::new(exe)
        .env(SERVER_ENV, pods.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("server child");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("server ready line");
    let kubeconfig = line
        .trim()
        .strip_prefix("ready ")
        .expect("ready")
        .to_string();
    let mut commands = child.stdin.take().expect("stdin");

    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let changed = Arc::new(Notify::new());
    let rss_before = rss_mib();
    let started = Instant::now();
    let conn = KubeConnector::start(
        ClusterTarget {
            context: "bench".into(),
            config,
        },
        changed.clone(),
    )
    .expect("connect");
    assert!(conn.wait_synced(Duration::from_secs(300)).await, "no sync");
    let sync = started.elapsed();
    let rss_after = rss_mib();
    let resources = conn.cache().len();
    println!(
        "kube_fleet: {pods} pods, {resources} resources synced in {:.2} s",
        sync.as_secs_f64()
    );
    println!(
        "kube_fleet: RSS {rss_after:.1} MiB after sync ({:.1} MiB before connecting)",
        rss_before
    );
    goal::at_most(
        &format!("Kubernetes: sync of {pods} pods"),
        sync.as_secs_f64(),
        5.0,
        "s",
    );
    goal::at_most(
        "Kubernetes: RSS after syncing 50k pods",
        rss_after * 1.048_576,
        200.0,
        "MB",
    );

    let mut state = State::new();
    let mut latencies = Vec::new();
    for i in 0..samples {
        let (ns, name) = (format!("team-{}", i % 50), format!("pod-{i}"));
        let id = ResourceId::new(format!("k8s/bench/{ns}/pod/{name}"));
        if let Some(r) = conn.cache().resource(&id) {
            let (known, _) = Event::seal(
                0,
                ChainHash::GENESIS,
                NewEvent::new(
                    chrono::Utc::now(),
                    "bench",
                    EventKind::ResourceDiscovered { resource: r },
                ),
            );
            state.apply(&known);
        }
        let t = Instant::now();
        writeln!(commands, "crash {ns} {name}").expect("command");
        let health = loop {
            let notified = changed.notified();
            if let Some(r) = conn.cache().resource(&id)
                && r.health.reason == "CrashLoopBackOff"
            {
                break r.health;
            }
            if tokio::time::timeout(Duration::from_secs(10), notified)
                .await
                .is_err()
            {
                panic!("change to {id} never arrived");
            }
        };
        let (event, _) = Event::seal(
            i as u64 + 1,
            ChainHash::GENESIS,
            NewEvent::new(
                chrono::Utc::now(),
                "bench",
                EventKind::HealthChanged {
                    resource: id,
                    health,
                },
            ),
        );
        state.apply(&event);
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "kube_fleet: server change → state, {samples} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    goal::at_most(
        "Kubernetes: server change to state, p99",
        pct(0.99),
        50.0,
        "ms",
    );
    drop(commands);
    let _ = child.kill();
    let _ = child.wait();
}
