//! Remote consoles under load, against the real `shieldops serve` binary:
//!
//! - fan-out: N attached clients (default 50) receive the live demo (at
//!   speed 1, so each event's `at` is the wall-clock moment it was recorded)
//!   plus a steady stream of Alertmanager alerts; per event, the delay from
//!   its recording to its receipt by each client; and the server's CPU over
//!   the window (from /proc);
//! - intake: the time from posting an Alertmanager webhook to a client
//!   receiving the `incident_opened` it causes.
//!
//! `cargo bench --bench remote` (SHIELDOPS_BENCH_CLIENTS, SHIELDOPS_BENCH_SECS,
//! SHIELDOPS_BENCH_ALERTS_PER_SEC override the defaults).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use shieldops::event::EventKind;
use shieldops::remote::auth::{Role, mint};
use shieldops::remote::client::{AttachOptions, Connection, Incoming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/goal.rs"]
mod goal;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ticks / hz
}

async fn post_alert(addr: SocketAddr, token: &str, name: &str) -> u16 {
    let body = format!(
        r#"{{"version":"4","status":"firing","receiver":"bench","groupKey":"{name}","truncatedAlerts":0,
        "groupLabels":{{}},"commonLabels":{{}},"commonAnnotations":{{}},"externalURL":"",
        "alerts":[{{"status":"firing","labels":{{"alertname":"{name}","severity":"warning","resource":"target/bench/{name}"}},
        "annotations":{{"summary":"bench"}},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z",
        "generatorURL":"","fingerprint":"{name}"}}]}}"#
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /api/v1/alerts/alertmanager HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let clients = env("SHIELDOPS_BENCH_CLIENTS", 50) as usize;
    let secs = env("SHIELDOPS_BENCH_SECS", 30);
    let alerts_per_sec = env("SHIELDOPS_BENCH_ALERTS_PER_SEC", 10);

    let dir = tempfile::tempdir().unwrap();
    let (viewer_token, viewer) = mint("bench-viewer", Role::Viewer);
    let (am_token, am) = mint("alertmanager", Role::Operator);
    let mut config = String::new();
    for e in [viewer, am] {
        config.push_str(&format!(
            "[[remote.tokens]]\nprincipal = \"{}\"\nrole = \"{}\"\nsha256 = \"{}\"\n",
            e.principal,
            e.role,
            hex::encode(e.sha256.0)
        ));
    }
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_shieldops"))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .args(["serve", "--listen", "127.0.0.1:0", "--speed", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr: SocketAddr = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .and_then(|a| a.parse().ok())
        .expect("serve prints its address");
    let opts = AttachOptions {
        url: format!("ws://{addr}/ws"),
        token: viewer_token,
        ca: None,
    };

    let delays: Arc<Mutex<Vec<f64>>> = Arc::default();
    let opened: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let posted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (mut conn, _) = Connection::open(&opts, None).await.expect("attach");
        let delays = delays.clone();
        let opened = opened.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                tokio::select! {
                    _ = stop.notified() => break,
                    next = conn.next() => match next {
                        Ok(Incoming::Event(e)) => {
                            let received = Utc::now();
                            mine.push((received - e.at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                            if i == 0 && let EventKind::IncidentOpened { alert, .. } = &e.kind {
                                opened.lock().unwrap().insert(alert.clone(), Instant::now());
                            }
                        }
                        Ok(_) => {}
                        Err(e) => panic!("client {i}: {e}"),
                    }
                }
            }
            delays.lock().unwrap().extend(mine);
        }));
    }

    let cpu_start = cpu_secs(server.id());
    let started = Instant::now();
    let poster = {
        let posted = posted.clone();
        tokio::spawn(async move {
            let every = Duration::from_micros(1_000_000 / alerts_per_sec.max(1));
            let mut tick = tokio::time::interval(every);
            let mut n = 0u64;
            while started.elapsed() < Duration::from_secs(secs) {
                tick.tick().await;
                n += 1;
                let name = format!("BenchAlert{n}");
                posted.lock().unwrap().insert(name.clone(), Instant::now());
                assert_eq!(post_alert(addr, &am_token, &name).await, 200);
            }
        })
    };
    poster.await.unwrap();
    let window = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(server.id()) - cpu_start;
    // Let the last events arrive before the clients stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.notify_waiters();
    for t in tasks {
        t.await.unwrap();
    }
    let _ = server.kill();
    let _ = server.wait();

    let mut d = delays.lock().unwrap().clone();
    d.sort_by(f64::total_cmp);
    let mut intake: Vec<f64> = {
        let posted = posted.lock().unwrap();
        let opened = opened.lock().unwrap();
        posted
            .iter()
            .filter_map(|(name, t0)| {
                opened
                    .get(name)
                    .map(|t1| (*t1 - *t0).as_secs_f64() * 1000.0)
            })
            .collect()
    };
    intake.sort_by(f64::total_cmp);
    println!("remote fan-out: {clients} clients, {window:.1} s, {alerts_per_sec} alerts/s posted");
    println!(
        "  deliveries: {} ({:.0}/s)",
        d.len(),
        d.len() as f64 / window
    );
    println!(
        "  append -> client receipt: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 <= 50 ms)",
        percentile(&d, 0.5),
        percentile(&d, 0.99),
        d.last().copied().unwrap_or(f64::NAN)
    );
    goal::at_most(
        "remote: append to client receipt, p99",
        percentile(&d, 0.99),
        50.0,
        "ms",
    );
    println!(
        "  server CPU: {:.1}% of one core ({cpu:.2} s over {window:.1} s)",
        cpu / window * 100.0
    );
    println!(
        "alertmanager webhook -> incident_opened at a client: {} of {} posted, p50 {:.1} ms, p99 {:.1} ms (goal p99 <= 20 ms)",
        intake.len(),
        posted.lock().unwrap().len(),
        percentile(&intake, 0.5),
        percentile(&intake, 0.99)
    );
    goal::at_most(
        "remote: Alertmanager webhook to incident at a client, p99",
        percentile(&intake, 0.99),
        20.0,
        "ms",
    );
}
