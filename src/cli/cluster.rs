//! `serve --cluster`: join the site's NATS JetStream cluster, follow the
//! stream as a standby until this node holds the lease and has caught up,
//! then start the runtime on the local copy exactly as after a crash.

use std::path::Path;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::startup::Started;
use super::{DemoArgs, Options};
use crate::cluster::{Cluster, ClusterConfig, Leadership};
use crate::config::Config;
use crate::store::EventLog;

/// A node that leads: its lease and the log's control socket (its runtime
/// is the [`Started`] returned beside it).
pub struct Leading {
    pub leadership: Leadership,
    control: (CancellationToken, JoinHandle<()>),
}

impl Leading {
    /// Stops renewing the lease and serving the control socket (after the
    /// runtime finished).
    pub async fn finish(self) {
        self.leadership.resign();
        let (stop, control) = self.control;
        stop.cancel();
        let _ = control.await;
    }
}

/// The console listener a node serves on once it leads (and answers on,
/// refusing, while it is a standby).
pub struct Listener<'a> {
    pub socket: &'a tokio::net::TcpListener,
    pub bound: std::net::SocketAddr,
    /// Its console URL, published in the lease.
    pub console: String,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub tokens: crate::remote::auth::Tokens,
}

/// The `[cluster]` section with `--cluster` URLs (comma-separated) in place
/// of its servers; `None` when neither asks for cluster mode.
pub fn settings(config: &Config, urls: Option<&str>) -> anyhow::Result<Option<ClusterConfig>> {
    let mut cluster = match (&config.cluster, urls) {
        (None, None) => return Ok(None),
        (section, _) => section.clone().unwrap_or_default(),
    };
    if let Some(urls) = urls {
        cluster.servers = urls
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    cluster.validate()?;
    Ok(Some(cluster))
}

/// Follows as a standby until this node leads, then starts the runtime.
/// `None` if `stop` fired first (the log is closed cleanly).
#[allow(clippy::too_many_arguments)]
pub async fn join(
    opts: &Options,
    config: &Config,
    data_dir: &Path,
    settings: &ClusterConfig,
    demo: &DemoArgs,
    play_scenario: bool,
    listener: &Listener<'_>,
    stop: &CancellationToken,
) -> anyhow::Result<Option<(Started, Leading)>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let cluster = Cluster::connect(settings).await?;
    let replicator = cluster.replicator();
    let dir = super::log_dir(data_dir);
    let log = EventLog::open_replicated(&dir, &config.store.open_options(), replicator.clone())?;
    // `log verify` and `log export` work on a standby too, through the socket.
    let control_stop = CancellationToken::new();
    let control = {
        let (log, stop) = (log.clone(), control_stop.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::store::serve_control(log, &dir, stop).await {
                tracing::warn!("log control socket unavailable: {e}");
            }
        })
    };
    say(&format!(
        "node {} of site {}: standby at {}, following stream {} from seq {}",
        cluster.node(),
        settings.site,
        listener.bound,
        cluster.stream().name(),
        log.last_seq() + 1
    ));
    // Meanwhile consoles that reach this node are told where the leader is.
    let leader = {
        let cluster = cluster.clone();
        move || {
            let cluster = cluster.clone();
            async move {
                cluster
                    .leader()
                    .await
                    .ok()
                    .flatten()
                    .and_then(|h| h.console)
            }
        }
    };
    let answer = crate::remote::standby::answer(
        listener.socket,
        listener.tls.clone(),
        listener.tokens.clone(),
        settings.site.clone(),
        leader,
    );
    let follow =
        cluster.follow_until_leader(&log, &replicator, Some(listener.console.clone()), stop);
    let outcome = tokio::select! {
        outcome = follow => outcome,
        never = answer => match never {},
    };
    let leadership = match outcome {
        Ok(Some(leadership)) => leadership,
        outcome => {
            control_stop.cancel();
            let _ = control.await;
            log.close().await?;
            return outcome.map(|_| None).map_err(Into::into);
        }
    };
    say(&format!(
        "node {} leads site {} from seq {}",
        cluster.node(),
        settings.site,
        log.last_seq()
    ));
    let started =
        super::startup::start_with_log(opts, config, data_dir, log, demo, play_scenario, false)
            .await?;
    Ok(Some((
        started,
        Leading {
            leadership,
            control: (control_stop, control),
        },
    )))
}

/// One status line on stdout (informational: a closed stdout changes nothing).
fn say(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "shieldops serve: {line}");
    let _ = stdout.flush();
    tracing::info!("{line}");
}
