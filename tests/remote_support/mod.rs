//! Helpers for the tests that run `shieldops serve`: the real binary on a
//! free loopback port with freshly minted tokens (killed on drop), a console
//! that folds what a real connection receives, a bare HTTP/1.1 request, and
//! a TCP relay (a test double standing between client and server so a test
//! can cut the connection).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shieldops::event::{Event, EventKind};
use shieldops::remote::auth::{Role, mint};
use shieldops::remote::client::{AttachOptions, Connection, Incoming, LinkError};
use shieldops::runtime::command::Command as RtCommand;
use shieldops::state::State;

/// A weekday start, so production is outside the default change freeze.
pub const WEEKDAY_START: &str = "2026-06-03T10:00:00Z";

/// `shieldops` with its data and log directories inside `dir`.
pub fn shieldops(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shieldops"));
    cmd.arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .env_remove("SHIELDOPS_TOKEN")
        // The debug builds' test hold (cluster_failover) only where a test sets it.
        .env_remove("SHIELDOPS_TEST_HOLD_AFTER");
    cmd
}

/// A running `shieldops serve`.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// principal → token
    pub tokens: BTreeMap<String, String>,
}

impl Server {
    /// Starts `serve` with a token per principal and `args` after `serve`.
    pub fn start(principals: &[(&str, Role)], args: &[&str]) -> Server {
        Server::start_with_config(principals, "", args)
    }

    /// Like [`Server::start`], with `extra` appended to the config file.
    pub fn start_with_config(principals: &[(&str, Role)], extra: &str, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut tokens = BTreeMap::new();
        let mut config = String::new();
        for (name, role) in principals {
            let (token, entry) = mint(name, *role);
            config.push_str(&format!(
                "[[remote.tokens]]\nprincipal = \"{}\"\nrole = \"{}\"\nsha256 = \"{}\"\n\n",
                entry.principal,
                entry.role,
                hex(&entry.sha256.0)
            ));
            tokens.insert(name.to_string(), token);
        }
        config.push_str(extra);
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = shieldops(dir.path())
            .arg("--config")
            .arg(&config_path)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        let first = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("serve did not report its address: {err}");
            }
        };
        let addr = first
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://").or(w.strip_prefix("https://")))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Server {
            child,
            addr,
            dir,
            tokens,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn token(&self, principal: &str) -> String {
        self.tokens[principal].clone()
    }

    pub fn opts(&self, principal: &str) -> AttachOptions {
        AttachOptions {
            url: self.url(),
            token: self.token(principal),
            ca: None,
        }
    }

    /// SIGTERM, then the exit status (bounded).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("serve did not stop within 60 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A console fed by a real connection: folds every event with `State::apply`.
pub struct Console {
    pub conn: Connection,
    pub state: State,
    pub events: Vec<Event>,
    next_id: u64,
}

impl Console {
    pub async fn attach(opts: &AttachOptions) -> Result<Console, LinkError> {
        let (conn, state) = Connection::open(opts, None).await?;
        Ok(Console {
            conn,
            state: state.expect("a fresh attach gets a snapshot"),
            events: Vec::new(),
            next_id: 0,
        })
    }

    fn fold(&mut self, event: Event) {
        self.state.apply(&event);
        self.events.push(event);
    }

    /// Reads until `done(state)` holds (at most `secs` seconds).
    pub async fn until(&mut self, secs: u64, what: &str, done: impl Fn(&State) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !done(&self.state) {
            let next = tokio::time::timeout_at(deadline, self.conn.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {what} (at seq {})",
                        self.state.last_seq
                    )
                })
                .unwrap_or_else(|e| panic!("connection failed waiting for {what}: {e}"));
            if let Incoming::Event(e) = next {
                self.fold(*e);
            }
        }
    }

    /// Reads until the state is exactly at `seq`.
    pub async fn advance_to(&mut self, seq: u64) {
        assert!(self.state.last_seq <= seq, "already past seq {seq}");
        self.until(60, &format!("seq {seq}"), |s| s.last_seq >= seq)
            .await;
    }

    /// Sends a command and reads (folding events) until its reply.
    pub async fn command(&mut self, command: RtCommand) -> (bool, String) {
        self.next_id += 1;
        let id = self.next_id;
        self.conn.command(id, command).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let next = tokio::time::timeout_at(deadline, self.conn.next())
                .await
                .expect("timed out waiting for a reply")
                .expect("connection failed waiting for a reply");
            match next {
                Incoming::Event(e) => self.fold(*e),
                Incoming::Reply {
                    id: got,
                    ok,
                    message,
                } if got == id => return (ok, message),
                Incoming::Reply { .. } => {}
            }
        }
    }

    /// Events of this kind seen so far.
    pub fn count(&self, pred: impl Fn(&EventKind) -> bool) -> usize {
        self.events.iter().filter(|e| pred(&e.kind)).count()
    }
}

/// A TCP relay (test double) in front of a server: forwards bytes both ways
/// and can cut every connection it carries, as a dropped network would.
pub struct Relay {
    pub addr: SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut cut_rx = cut_rx.clone();
                cut_rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Relay { addr, cut }
    }

    /// Drops every connection carried so far.
    pub fn cut(&self) {
        self.cut.send_modify(|g| *g += 1);
    }
}

/// Lines a child process prints, collected by a thread.
pub fn collect_lines(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => sink.lock().unwrap().push(l),
                Err(_) => return,
            }
        }
    });
    lines
}

/// A self-signed certificate for `localhost` (made with the `openssl` CLI,
/// installed by scripts/install-test-deps.sh): (cert.pem, key.pem) in `dir`.
pub fn self_signed_cert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed: run scripts/install-test-deps.sh ({e})"));
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (cert, key)
}
