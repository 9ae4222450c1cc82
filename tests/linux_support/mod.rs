//! A real OpenSSH server for the Linux connector's tests: `/usr/sbin/sshd -D`
//! on 127.0.0.1 and a free port, with host and client keys generated in a
//! temporary directory, and an ssh_config naming the test's host aliases.
//! The remote host is this machine; its session PATH starts with the
//! `systemctl`/`journalctl` test doubles in `tests/linux_support/bin`.

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A running sshd and everything a client needs to reach it.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn need(path: &str) {
    assert!(
        Path::new(path).exists() || which(path),
        "`{path}` is missing: run scripts/install-test-deps.sh (openssh-server, openssh-client)"
    );
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "shieldops-test",
            "-f",
        ])
        .arg(path)
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Sshd {
    /// Starts sshd with the systemd test doubles first on the session PATH.
    pub fn start() -> Sshd {
        Self::start_with(true)
    }

    /// Starts sshd and waits (bounded) until it accepts connections;
    /// `doubles` puts the systemctl/journalctl test doubles on the session PATH.
    pub fn start_with(doubles: bool) -> Sshd {
        need("/usr/sbin/sshd");
        need("ssh");
        need("ssh-keygen");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        keygen(&d.join("wrong_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/linux_support/bin");
        std::fs::create_dir_all(d.join("systemd/units")).unwrap();
        // The privilege-separation directory sshd insists on.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (the tests run as root)");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
             UsePAM no\nMaxSessions 200\nMaxStartups 200:30:400\nLogLevel ERROR\n{env}",
            d = d.display(),
            env = if doubles {
                format!(
                    "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin SHIELDOPS_TEST_SYSTEMD_STATE={}/systemd\n",
                    bin.display(),
                    d.display()
                )
            } else {
                String::new()
            },
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(d.join("sshd.log")).unwrap(),
            ))
            .spawn()
            .expect("sshd starts");
        let mut sshd = Sshd { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited ({status}): {}", sshd.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen within 10 s: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let mut fields = host_pub.split_whitespace();
        let (algo, key) = (fields.next().unwrap(), fields.next().unwrap());
        std::fs::write(
            d.join("known_hosts"),
            format!("shieldops-test-sshd {algo} {key}\n"),
        )
        .unwrap();
        sshd
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Where the systemd test double keeps its state.
    pub fn systemd_dir(&self) -> PathBuf {
        self.dir.path().join("systemd")
    }

    /// Declares a unit for the systemctl test double.
    pub fn unit(&self, name: &str, fields: &[(&str, &str)]) {
        let mut text = String::new();
        for (k, v) in fields {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(self.systemd_dir().join("units").join(name), text).unwrap();
    }

    /// A unit's state as the test double recorded it.
    pub fn unit_state(&self, name: &str) -> std::collections::BTreeMap<String, String> {
        std::fs::read_to_string(self.systemd_dir().join("units").join(name))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Appends a raw journal entry (JSON object) for the journalctl test double.
    pub fn journal(&self, entry: serde_json::Value) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.systemd_dir().join("journal.jsonl"))
            .unwrap();
        writeln!(f, "{entry}").unwrap();
    }

    /// Writes an ssh_config: `aliases` reach this sshd with the authorised
    /// key; `refused` offers a key sshd does not know; extra (alias, port)
    /// pairs point elsewhere on 127.0.0.1 (a hanging listener, a proxy).
    pub fn ssh_config(&self, aliases: &[String], extra: &[(&str, u16)]) -> PathBuf {
        let d = self.dir.path();
        let common = format!(
            "  HostName 127.0.0.1\n  User root\n  IdentitiesOnly yes\n  HostKeyAlias shieldops-test-sshd\n\
             \x20 UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n",
            d = d.display()
        );
        let mut text = String::new();
        for alias in aliases {
            text.push_str(&format!(
                "Host {alias}\n  Port {}\n  IdentityFile {}/client_key\n{common}",
                self.port,
                d.display()
            ));
        }
        text.push_str(&format!(
            "Host refused\n  Port {}\n  IdentityFile {}/wrong_key\n{common}",
            self.port,
            d.display()
        ));
        for (alias, port) in extra {
            text.push_str(&format!(
                "Host {alias}\n  Port {port}\n  IdentityFile {}/client_key\n{common}",
                d.display()
            ));
        }
        let path = d.join("ssh_config");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A short directory for ssh control sockets (socket paths are limited to ~100 bytes).
    pub fn control_dir(&self) -> PathBuf {
        let p = self.dir.path().join("cm");
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The per-connection processes outlive the listener: end them too,
        // by the ids the kernel lists as this sshd's children.
        let pid = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for child in children.split_whitespace() {
            let _ = Command::new("kill").arg(child).status();
        }
    }
}

/// A listener that accepts connections and never says anything: a hung host.
pub struct Silent {
    pub port: u16,
    _listener: TcpListener,
    _held: Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Silent {
    pub fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = listener.try_clone().unwrap();
        let keep = held.clone();
        std::thread::spawn(move || {
            for stream in accept.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        Silent {
            port,
            _listener: listener,
            _held: held,
        }
    }
}

/// A TCP proxy in front of sshd whose connections can be cut mid-command.
pub struct Proxy {
    pub port: u16,
    cut: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(Notify::new());
        let cut_all = cut.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let cut = cut_all.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.notified() => {}
                    }
                    // Dropping both ends closes the connection under ssh's feet.
                });
            }
        });
        Proxy { port, cut, task }
    }

    /// Drops every connection through the proxy.
    pub fn cut(&self) {
        self.cut.notify_waiters();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
