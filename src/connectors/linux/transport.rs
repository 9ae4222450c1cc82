//! How commands reach a host: locally through `sh -c`, or remotely through the
//! system OpenSSH client with one multiplexed master connection per host (so
//! the user's keys, agent, `ProxyJump`, known_hosts and ssh_config apply
//! unchanged). Every call is bounded by the host's timeout; a host that keeps
//! failing is skipped by its circuit breaker until it is due for a retry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, Semaphore};

use super::breaker::Breaker;

/// How long an unused master connection stays up (polls keep it busy).
const MASTER_IDLE: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(120) {
    Some(n) => n,
    None => unreachable!(),
};

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Whether the command exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Why a command could not be run (as opposed to running and failing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The server refused every key offered.
    #[error("{host}: authentication refused: {detail}")]
    AuthRefused { host: String, detail: String },
    /// No answer within the host's timeout.
    #[error("{host}: no answer within {secs}s")]
    Timeout { host: String, secs: u64 },
    /// The connection broke (refused, reset, dropped mid-command).
    #[error("{host}: connection failed: {detail}")]
    Connection { host: String, detail: String },
    /// The host failed repeatedly; it is not tried again until the breaker's retry time.
    #[error("{host}: skipped after repeated failures (next try in {retry_in_secs}s)")]
    CircuitOpen { host: String, retry_in_secs: u64 },
    /// The local shell could not be started.
    #[error("{host}: {detail}")]
    Spawn { host: String, detail: String },
}

impl TransportError {
    /// A short machine-readable reason for health.
    pub fn reason(&self) -> &'static str {
        match self {
            TransportError::AuthRefused { .. } => "ssh_auth_refused",
            TransportError::Timeout { .. } => "ssh_timeout",
            TransportError::Connection { .. } => "unreachable",
            TransportError::CircuitOpen { .. } => "circuit_open",
            TransportError::Spawn { .. } => "command_failed",
        }
    }
}

/// Runs shell scripts on one host.
#[async_trait]
pub trait Transport: Send + Sync {
    /// The host's name as the operator knows it (alias or hostname).
    fn host(&self) -> &str;
    /// Runs `script` with `sh -c` on the host, bounded by the host's timeout.
    async fn run(&self, script: &str) -> Result<Output, TransportError>;
}

/// This machine, through `sh -c`.
pub struct LocalTransport {
    host: String,
    timeout: Duration,
}

impl LocalTransport {
    /// The local host under `name`, each command bounded by `timeout`.
    pub fn new(name: impl Into<String>, timeout: Duration) -> Self {
        Self {
            host: name.into(),
            timeout,
        }
    }
}

#[async_trait]
impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.host
    }

    async fn run(&self, script: &str) -> Result<Output, TransportError> {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        match tokio::time::timeout(self.timeout, cmd.output()).await {
            Err(_) => Err(TransportError::Timeout {
                host: self.host.clone(),
                secs: self.timeout.as_secs(),
            }),
            Ok(Err(e)) => Err(TransportError::Spawn {
                host: self.host.clone(),
                detail: format!("cannot start sh: {e}"),
            }),
            Ok(Ok(out)) => Ok(Output {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
        }
    }
}

/// How to reach SSH hosts (shared by every host of a fleet).
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// An ssh_config file to use instead of the user's (`ssh -F`); tests use this.
    pub config_file: Option<PathBuf>,
    /// Bound on connecting and on every command.
    pub timeout: Duration,
    /// Accept host keys not yet in known_hosts (`StrictHostKeyChecking=accept-new`);
    /// default: only known host keys (`yes`).
    pub accept_new_host_keys: bool,
    /// Where the multiplexing control sockets live (default: the user's runtime dir).
    pub control_dir: Option<PathBuf>,
}

/// One SSH host, reached through a multiplexed OpenSSH master connection.
pub struct SshTransport {
    alias: String,
    options: SshOptions,
    session: Mutex<Option<Arc<openssh::Session>>>,
    breaker: Breaker,
    /// Fleet-wide bound on simultaneous SSH work.
    limit: Arc<Semaphore>,
}

impl SshTransport {
    /// A host reached as `alias` (a name ssh resolves through its config).
    pub fn new(alias: impl Into<String>, options: SshOptions, limit: Arc<Semaphore>) -> Self {
        Self {
            alias: alias.into(),
            options,
            session: Mutex::new(None),
            breaker: Breaker::default(),
            limit,
        }
    }

    async fn connect(&self) -> Result<Arc<openssh::Session>, TransportError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let mut builder = openssh::SessionBuilder::default();
        builder
            .known_hosts_check(if self.options.accept_new_host_keys {
                openssh::KnownHosts::Add
            } else {
                openssh::KnownHosts::Strict
            })
            .connect_timeout(self.options.timeout)
            .server_alive_interval(Duration::from_secs(5))
            // A master left behind (the console killed) exits once idle
            // rather than holding a connection open forever.
            .control_persist(openssh::ControlPersist::IdleFor(MASTER_IDLE));
        if let Some(f) = &self.options.config_file {
            builder.config_file(f);
        }
        if let Some(d) = &self.options.control_dir {
            builder.control_directory(d);
        }
        let session = builder
            .connect_mux(&self.alias)
            .await
            .map_err(|e| self.classify(&e))?;
        let session = Arc::new(session);
        *guard = Some(session.clone());
        Ok(session)
    }

    fn classify(&self, e: &openssh::Error) -> TransportError {
        let detail = flatten(e);
        let host = self.alias.clone();
        let lower = detail.to_lowercase();
        if lower.contains("permission denied") {
            TransportError::AuthRefused { host, detail }
        } else if lower.contains("timed out") || lower.contains("timeout") {
            TransportError::Timeout {
                host,
                secs: self.options.timeout.as_secs(),
            }
        } else {
            TransportError::Connection { host, detail }
        }
    }

    async fn run_once(&self, script: &str) -> Result<Output, TransportError> {
        let session = self.connect().await?;
        let out = session
            .command("sh")
            .arg("-c")
            .arg(script)
            .output()
            .await
            .map_err(|e| self.classify(&e))?;
        // ssh itself exits 255 when the connection, not the command, failed.
        if out.status.code() == Some(255) && out.stdout.is_empty() {
            return Err(TransportError::Connection {
                host: self.alias.clone(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Forgets the master connection (after a failure it may be dead).
    async fn drop_session(&self) {
        let old = self.session.lock().await.take();
        if let Some(s) = old
            && let Ok(s) = Arc::try_unwrap(s)
        {
            let _ = tokio::time::timeout(Duration::from_secs(2), s.close()).await;
        }
    }
}

/// An error with its sources, on one line (ssh's own message is in the chain).
fn flatten(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[async_trait]
impl Transport for SshTransport {
    fn host(&self) -> &str {
        &self.alias
    }

    async fn run(&self, script: &str) -> Result<Output, TransportError> {
        if let Some(retry_in) = self.breaker.open_for(std::time::Instant::now()) {
            return Err(TransportError::CircuitOpen {
                host: self.alias.clone(),
                retry_in_secs: retry_in.as_secs().max(1),
            });
        }
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|_| TransportError::Connection {
                host: self.alias.clone(),
                detail: "the fleet is shutting down".into(),
            })?;
        // Connecting and the command share one deadline: a host that hangs
        // anywhere costs at most its timeout.
        let result = match tokio::time::timeout(self.options.timeout, self.run_once(script)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                host: self.alias.clone(),
                secs: self.options.timeout.as_secs(),
            }),
        };
        match &result {
            Ok(_) => self.breaker.success(),
            Err(_) => {
                self.breaker.failure(std::time::Instant::now());
                self.drop_session().await;
            }
        }
        result
    }
}
