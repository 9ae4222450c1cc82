//! `serve --cluster`: join the site's NATS JetStream cluster, follow the
//! stream as a standby until this node holds the lease and has caught up,
//! then start the runtime on the local copy exactly as after a crash. The
//! node's one console listener serves throughout: read-only from the
//! followed copy while a standby, with the runtime behind it once leading.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::startup::Started;
use super::{DemoArgs, Options};
use crate::cluster::{Cluster, ClusterConfig, ClusterView, Leadership, NodeRole, Replicator};
use crate::config::Config;
use crate::store::EventLog;

/// A node that leads: its lease, its heartbeat and the log's control
/// socket (its runtime is the [`Started`] returned beside it).
pub struct Leading {
    pub leadership: Leadership,
    control: (CancellationToken, JoinHandle<()>),
    status: CancellationToken,
    role: watch::Sender<NodeRole>,
}

impl Leading {
    /// Says `leader` in the heartbeat and to consoles: called once the
    /// runtime takes commands, so a console told `leader` can act at once.
    pub fn announce(&self) {
        self.role.send_replace(NodeRole::Leader);
    }

    /// Stops renewing the lease, withdraws the heartbeat and stops serving
    /// the control socket (after the runtime finished).
    pub async fn finish(self) {
        self.leadership.resign();
        self.status.cancel();
        let (stop, control) = self.control;
        stop.cancel();
        let _ = control.await;
    }
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

/// A node that joined its site and follows the stream as a standby; its
/// console listener serves the followed log read-only meanwhile.
pub struct Standby {
    cluster: Cluster,
    log: EventLog,
    replicator: Arc<Replicator>,
    control: (CancellationToken, JoinHandle<()>),
    role: watch::Sender<NodeRole>,
    status: CancellationToken,
    view: watch::Receiver<ClusterView>,
    console: String,
}

impl Standby {
    /// Connects to the site, opens the local copy of the log, serves its
    /// control socket and starts the heartbeat. `bound` and `console` are
    /// this node's console listener and URL (the URL goes in the lease and
    /// the heartbeat).
    pub async fn join(
        config: &Config,
        data_dir: &Path,
        settings: &ClusterConfig,
        bound: std::net::SocketAddr,
        console: String,
    ) -> anyhow::Result<Standby> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let cluster = Cluster::connect(settings).await?;
        let replicator = cluster.replicator();
        let dir = super::log_dir(data_dir);
        let log =
            EventLog::open_replicated(&dir, &config.store.open_options(), replicator.clone())?;
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
        let (role, role_rx) = watch::channel(NodeRole::Standby);
        let status = CancellationToken::new();
        let view =
            cluster.watch_status(log.clone(), Some(console.clone()), role_rx, status.clone());
        say(&format!(
            "node {} of site {}: standby at {}, following stream {} from seq {}",
            cluster.node(),
            settings.site,
            bound,
            cluster.stream().name(),
            log.last_seq() + 1
        ));
        Ok(Standby {
            cluster,
            log,
            replicator,
            control: (control_stop, control),
            role,
            status,
            view,
            console,
        })
    }

    /// The local copy of the log (followed from the stream).
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// This node's view of the cluster, kept current.
    pub fn view(&self) -> watch::Receiver<ClusterView> {
        self.view.clone()
    }

    /// Follows until this node leads, then starts the runtime on the local
    /// copy exactly as after a crash. `None` if `stop` fired first (the
    /// heartbeat is withdrawn and the log closed cleanly).
    pub async fn lead(
        self,
        opts: &Options,
        config: &Config,
        data_dir: &Path,
        demo: &DemoArgs,
        play_scenario: bool,
        stop: &CancellationToken,
    ) -> anyhow::Result<Option<(Started, Leading)>> {
        let outcome = self
            .cluster
            .follow_until_leader(
                &self.log,
                &self.replicator,
                Some(self.console.clone()),
                stop,
            )
            .await;
        let leadership = match outcome {
            Ok(Some(leadership)) => leadership,
            outcome => {
                self.status.cancel();
                let (control_stop, control) = self.control;
                control_stop.cancel();
                let _ = control.await;
                self.log.close().await?;
                return outcome.map(|_| None).map_err(Into::into);
            }
        };
        say(&format!(
            "node {} leads site {} from seq {}",
            self.cluster.node(),
            self.cluster.site(),
            self.log.last_seq()
        ));
        let started = super::startup::start_with_log(
            opts,
            config,
            data_dir,
            self.log,
            demo,
            play_scenario,
            false,
        )
        .await?;
        Ok(Some((
            started,
            Leading {
                leadership,
                control: self.control,
                status: self.status,
                role: self.role,
            },
        )))
    }
}

/// One status line on stdout (informational: a closed stdout changes nothing).
fn say(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "shieldops serve: {line}");
    let _ = stdout.flush();
    tracing::info!("{line}");
}
