//! Real Prometheus for tests: the Debian `prometheus` on a free loopback port
//! with a temporary storage directory and a one-second scrape interval,
//! scraping a real `prometheus-node-exporter` and a small exporter the test
//! serves with values it controls. Readiness is awaited by polling the HTTP
//! API (bounded), never by sleeping a fixed time. Everything stops on drop.
//! scripts/install-test-deps.sh installs both packages.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The installed tool `name`, or a panic saying how to install it.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run scripts/install-test-deps.sh (as root)")
        })
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a body producer gets: seconds since the exporter started.
pub type Body = Arc<dyn Fn(f64) -> String + Send + Sync>;

/// An exposition-format endpoint whose text the test computes per scrape.
pub struct Exporter {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Exporter {
    /// Serves `GET /metrics` with `body(seconds since start)`.
    pub async fn start(body: Body) -> Exporter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut read = 0;
                    while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf[read..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read += n,
                        }
                        if read == buf.len() {
                            return;
                        }
                    }
                    let text = body(started.elapsed().as_secs_f64());
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        text.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(text.as_bytes()).await;
                });
            }
        });
        Exporter { port, task }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A real node exporter on a free port (the collectors the host queries read).
pub struct NodeExporter {
    pub port: u16,
    _proc: Proc,
}

impl NodeExporter {
    pub async fn start() -> NodeExporter {
        let port = free_port();
        let proc = Proc(
            Command::new(tool("prometheus-node-exporter"))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .args([
                    "--collector.disable-defaults",
                    "--collector.cpu",
                    "--collector.filesystem",
                    "--collector.loadavg",
                    "--collector.uname",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut ne = NodeExporter { port, _proc: proc };
        await_http(port, "/metrics", "node exporter", &mut ne._proc.0).await;
        ne
    }
}

/// One scrape job of the Prometheus under test.
pub struct Target {
    pub job: String,
    pub addr: String,
    /// A bearer token Prometheus presents (`serve` wants one for /metrics).
    pub bearer: Option<String>,
}

/// A running Prometheus.
pub struct Prometheus {
    pub port: u16,
    pub dir: tempfile::TempDir,
    proc: Proc,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every second and waits until its API answers.
    pub async fn start(targets: &[Target]) -> Prometheus {
        Prometheus::start_with(targets, &[]).await
    }

    /// Like [`Prometheus::start`], with rule files.
    pub async fn start_with(targets: &[Target], rule_files: &[&Path]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
        );
        if !rule_files.is_empty() {
            config.push_str("rule_files:\n");
            for f in rule_files {
                config.push_str(&format!("  - {}\n", f.display()));
            }
        }
        config.push_str("scrape_configs:\n");
        for t in targets {
            config.push_str(&format!(
                "  - job_name: {}\n    static_configs:\n      - targets: [\"{}\"]\n",
                t.job, t.addr
            ));
            if let Some(token) = &t.bearer {
                let file = dir.path().join(format!("{}.token", t.job));
                std::fs::write(&file, token).unwrap();
                config.push_str(&format!(
                    "    authorization:\n      credentials_file: {}\n",
                    file.display()
                ));
            }
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let proc = Proc(
            Command::new(tool("prometheus"))
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut p = Prometheus { port, dir, proc };
        await_http(port, "/-/ready", "prometheus", &mut p.proc.0).await;
        p
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls an instant query until it answers at least one series (bounded).
    pub async fn until_series(&self, query: &str, within: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(r) = client
                .post(format!("{}/api/v1/query", self.url()))
                .form(&[("query", query)])
                .send()
                .await
                && let Ok(v) = r.json::<serde_json::Value>().await
            {
                if v["data"]["result"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
                {
                    return;
                }
                last = v.to_string();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("`{query}` answered no series within {within:?}; last: {last}");
    }
}

/// Polls `GET path` on the port until it answers 200 (bounded), failing if the process exits.
pub async fn await_http(port: u16, path: &str, what: &str, child: &mut Child) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited early: {status}");
        }
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not become ready on port {port}");
}

/// Escapes a label value for the exposition format (`\\`, `\"`, `\n`).
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The workload series the evidence tests control: a pod of `web` in `shop`
/// throttled in 40% of its CFS periods, its working set at 900 MiB of a
/// 1 GiB limit, and the service's requests (p99 in the 0.5–1 s bucket,
/// 2% answered 5xx). `extra` pods: (name, throttled share).
pub fn workload(pod: &str, extra: &[(String, f64)], t: f64) -> String {
    // Every counter is a whole multiple of one tick count, so the ratios of
    // their increases are exact whatever Prometheus extrapolates.
    let n = (10.0 * t).floor() as u64;
    let mut out = String::new();
    let mut container = |pod: &str, per_ten: u64| {
        let p = label(pod);
        out.push_str(&format!(
            "container_cpu_cfs_periods_total{{namespace=\"shop\",pod=\"{p}\",container=\"app\"}} {}\n\
             container_cpu_cfs_throttled_periods_total{{namespace=\"shop\",pod=\"{p}\",container=\"app\"}} {}\n\
             container_memory_working_set_bytes{{namespace=\"shop\",pod=\"{p}\",container=\"app\"}} {}\n\
             container_spec_memory_limit_bytes{{namespace=\"shop\",pod=\"{p}\",container=\"app\"}} {}\n\
             kube_pod_container_status_restarts_total{{namespace=\"shop\",pod=\"{p}\",container=\"app\"}} 3\n",
            10 * n,
            per_ten * n,
            900u64 << 20,
            1u64 << 30,
        ));
    };
    container(pod, 4);
    for (name, share) in extra {
        container(name, (share * 10.0).round() as u64);
    }
    for (le, per_hundred) in [("0.1", 50), ("0.5", 90), ("1", 100), ("+Inf", 100)] {
        out.push_str(&format!(
            "http_request_duration_seconds_bucket{{namespace=\"shop\",service=\"web\",le=\"{le}\"}} {}\n",
            per_hundred * n
        ));
    }
    out.push_str(&format!(
        "http_request_duration_seconds_count{{namespace=\"shop\",service=\"web\"}} {}\n\
         http_requests_total{{namespace=\"shop\",service=\"web\",code=\"200\"}} {}\n\
         http_requests_total{{namespace=\"shop\",service=\"web\",code=\"500\"}} {}\n",
        100 * n,
        98 * n,
        2 * n,
    ));
    out
}
