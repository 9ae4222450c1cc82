//! Real `shieldops serve --cluster` processes on the demo fleet for the
//! cluster tests: started on a [`NatsCluster`](super::NatsCluster), their
//! output collected, signalled, and their logs read through `shieldops log`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shieldops::remote::auth::{Role, mint};
use shieldops::remote::client::AttachOptions;

use super::NatsCluster;
use crate::remote_support::{WEEKDAY_START, shieldops};

/// Lease TTL of the test nodes: long enough that a renewal delayed by a
/// busy machine (the whole suite runs at once) does not depose a leader.
pub const LEASE_MS: u64 = 4_000;

/// A `shieldops serve --cluster` process and what it printed.
pub struct Node {
    pub name: &'static str,
    dir: PathBuf,
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    pub token: String,
    /// Extra environment of the next spawn.
    env: Vec<(String, String)>,
}

impl Node {
    pub fn start(nats: &NatsCluster, name: &'static str, dir: &Path) -> Node {
        Node::start_with_env(nats, name, dir, &[])
    }

    /// [`Node::start`] with extra environment variables (the first spawn only).
    pub fn start_with_env(
        nats: &NatsCluster,
        name: &'static str,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Node {
        let (token, entry) = mint("alice", Role::Approver);
        let sha: String = entry.sha256.0.iter().map(|b| format!("{b:02x}")).collect();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[[remote.tokens]]\nprincipal = \"alice\"\nrole = \"approver\"\nsha256 = \"{sha}\"\n\n\
                 [cluster]\nservers = {}\nsite = \"it\"\nnode = \"{name}\"\nlease_ttl_ms = {LEASE_MS}\nreplicas = 3\n",
                nats.servers_toml()
            ),
        )
        .unwrap();
        let mut node = Node {
            name,
            dir: dir.to_path_buf(),
            child: None,
            stdout: Arc::default(),
            stderr: Arc::default(),
            token,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        node.spawn();
        node.env.clear();
        node
    }

    /// (Re)starts the process on the same data directory and config.
    pub fn spawn(&mut self) {
        let mut child = shieldops(&self.dir)
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .args(["serve", "--listen", "127.0.0.1:0", "--speed", "25"])
            .args(["--start", WEEKDAY_START])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.stdout.lock().unwrap().clear();
        self.stderr.lock().unwrap().clear();
        collect(child.stdout.take().unwrap(), self.stdout.clone());
        collect(child.stderr.take().unwrap(), self.stderr.clone());
        self.child = Some(child);
    }

    pub fn printed(&self, needle: &str) -> bool {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until the node says `needle` on stdout.
    pub fn until_printed(&self, needle: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.printed(needle) {
            assert!(
                Instant::now() < deadline,
                "node {} did not print {needle:?} within {secs} s; stdout {:?}; stderr {}",
                self.name,
                self.stdout.lock().unwrap(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The seq its log ended at when it began to lead (every later record
    /// is its own), if it leads.
    pub fn leads_from(&self) -> Option<u64> {
        let lines = self.stdout.lock().unwrap();
        lines.iter().find_map(|l| {
            let (_, rest) = l.split_once(" leads site ")?;
            rest.split_once(" from seq ")?.1.trim().parse().ok()
        })
    }

    /// Its last durable seq, asked through its log's control socket
    /// (asked again while a just started process opens it).
    pub async fn last_seq(&self) -> u64 {
        let dir = self.dir.join("data").join("log");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let asked = match shieldops::store::control::ControlClient::connect(&dir).await {
                Ok(client) => client.last_seq().await,
                Err(e) => Err(e),
            };
            match asked {
                Ok(seq) => return seq,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "control socket of node {}: {e}",
                    self.name
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Lines of its rolling log files that contain `needle`.
    pub fn log_mentions(&self, needle: &str) -> usize {
        let Ok(entries) = std::fs::read_dir(self.dir.join("logs")) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|text| text.lines().filter(|l| l.contains(needle)).count())
            .sum()
    }

    /// The console address it printed once leading.
    pub fn addr(&self) -> SocketAddr {
        self.until_printed("listening on http://", 60);
        let lines = self.stdout.lock().unwrap();
        lines
            .iter()
            .find_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("http://"))
                    .and_then(|a| a.parse().ok())
            })
            .unwrap()
    }

    /// The listener it answers on as a standby.
    pub fn standby_addr(&self) -> SocketAddr {
        let lines = self.stdout.lock().unwrap();
        lines
            .iter()
            .find_map(|l| {
                let (_, rest) = l.split_once("standby at ")?;
                rest.split(',').next()?.parse().ok()
            })
            .unwrap()
    }

    pub fn opts(&self) -> AttachOptions {
        AttachOptions {
            url: format!("ws://{}/ws", self.addr()),
            token: self.token.clone(),
            ca: None,
        }
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process still runs (not reaped: [`Node::exited`] still
    /// tells how it ended).
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Whether the process has exited (reaped if so); its code then.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        let child = self.child.as_mut()?;
        let status = child.try_wait().unwrap()?;
        self.child = None;
        Some(status.code())
    }

    /// Waits for the process to exit by itself; its status code.
    pub fn exit_code(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(code) = self.exited() {
                return code;
            }
            assert!(self.child.is_some(), "node {} is not running", self.name);
            assert!(Instant::now() < deadline, "node {} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `shieldops log SUBCOMMAND` on this node's data (through its control
    /// socket while it runs).
    pub fn log(&self, args: &[&str]) -> (bool, String) {
        let out = shieldops(&self.dir).arg("log").args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// Every record as `log export` prints it, one line each.
    pub fn export(&self) -> Vec<String> {
        let (ok, text) = self.log(&["export"]);
        assert!(ok, "log export on {}: {text}", self.name);
        text.lines().map(String::from).collect()
    }

    pub fn assert_verifies(&self) {
        let (ok, text) = self.log(&["verify"]);
        assert!(ok, "log verify on {}: {text}", self.name);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

fn collect(from: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
}

/// `shorter` is a prefix of `longer` (one history, no fork).
pub fn assert_prefix(shorter: &[String], longer: &[String]) {
    assert!(!shorter.is_empty());
    assert!(
        shorter.len() <= longer.len(),
        "{} records vs {}",
        shorter.len(),
        longer.len()
    );
    for (i, (a, b)) in shorter.iter().zip(longer).enumerate() {
        assert_eq!(a, b, "the logs differ at record {}", i + 1);
    }
}

/// Exported records of `kind` about remediation `id`.
pub fn count_kind(lines: &[String], kind: &str, id: &impl serde::Serialize) -> usize {
    let id = serde_json::to_value(id).unwrap();
    lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == kind && v["remediation"] == id)
        .count()
}

/// Starts `a` (with `env`) and waits until it leads, then `b` as its standby.
pub fn pair_with_env(nats: &NatsCluster, root: &Path, env: &[(&str, &str)]) -> (Node, Node) {
    let (da, db) = (root.join("a"), root.join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let a = Node::start_with_env(nats, "a", &da, env);
    a.until_printed("node a leads site it", 60);
    let b = Node::start(nats, "b", &db);
    b.until_printed("node b of site it: standby", 60);
    (a, b)
}

/// Starts `a` and waits until it leads, then `b` as its standby.
pub fn pair(nats: &NatsCluster, root: &Path) -> (Node, Node) {
    pair_with_env(nats, root, &[])
}
