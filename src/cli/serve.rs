//! `shieldops serve` (the runtime without a terminal, shared over the
//! network), `shieldops attach` (a console fed by a server) and
//! `shieldops token mint`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{DemoArgs, Options};
use crate::config::Config;
use crate::remote::auth::{Role, Tokens};
use crate::remote::client::{AttachOptions, Connection, LinkError};
use crate::remote::hub::Hub;
use crate::remote::server::{RuntimeLink, ServerParts, serve as serve_http, tls_acceptor};
use crate::runtime::command::Identity;
use crate::tui::Link;

/// Options of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7420")]
    pub listen: SocketAddr,
    /// Listen off loopback without TLS (tokens then cross the network in clear text).
    #[arg(long)]
    pub insecure_listen: bool,
    /// PEM certificate chain for TLS (default: `remote.tls_cert` in the config).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (default: `remote.tls_key` in the config).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Do not play the demo scenario: alerts come only from Alertmanager.
    #[arg(long)]
    pub no_scenario: bool,
    /// Simulated seconds per real second.
    #[arg(long, value_name = "N")]
    pub speed: Option<f64>,
    /// Seed for the demo fleet's numbers.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Play this scenario file instead of the embedded one.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Simulated start time (RFC 3339) of a new demo.
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// Replicate the event log on this NATS JetStream cluster
    /// (comma-separated nats:// URLs; the rest comes from `[cluster]`): the
    /// node follows as a standby and runs the runtime only while it leads.
    #[arg(long, value_name = "URLS")]
    pub cluster: Option<String>,
}

/// Exit status of a leader that stepped down (its lease or its append was
/// refused): it stopped acting; restarting it makes it a standby again.
pub const STEPPED_DOWN: i32 = 75;
/// How long a leader that stepped down lets its runtime stop before exiting.
const STEP_DOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Options of `attach`.
#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// The server's WebSocket endpoint, e.g. ws://127.0.0.1:7420/ws.
    pub url: String,
    /// Bearer token. Discouraged: any local user can read it in the process
    /// list; prefer --token-file or $SHIELDOPS_TOKEN (default: $SHIELDOPS_TOKEN,
    /// else `remote.token` in the config).
    #[arg(long, env = "SHIELDOPS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the bearer token from FILE (its first line); the file must not be
    /// readable by group or others.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Send the token over ws:// (unencrypted) to a host that is not loopback.
    #[arg(long)]
    pub insecure_plaintext: bool,
    /// CA certificate (PEM) for wss:// (default: `remote.ca` in the config).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// No console: print one JSON line per event and link change (for scripts and tests).
    #[arg(long)]
    pub headless: bool,
}

/// Options of `token mint`.
#[derive(Debug, Clone, Args)]
pub struct MintArgs {
    /// Who the token is for (recorded on every command it sends).
    #[arg(long)]
    pub principal: String,
    /// viewer, operator or approver.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "viewer" => Ok(Role::Viewer),
        "operator" => Ok(Role::Operator),
        "approver" => Ok(Role::Approver),
        _ => Err("expected viewer, operator or approver".into()),
    }
}

/// Prints a new token and the config entry that admits it.
pub fn mint(args: &MintArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    anyhow::ensure!(
        !args.principal.trim().is_empty(),
        "--principal must not be empty"
    );
    let (token, entry) = crate::remote::auth::mint(args.principal.trim(), args.role);
    writeln!(
        out,
        "# token for {} ({}): give it to them, it is shown only once",
        entry.principal, entry.role
    )?;
    writeln!(out, "# {token}")?;
    writeln!(out, "# add to the server's config:")?;
    write!(
        out,
        "{}",
        toml::to_string(&TokensOnly {
            remote: RemoteTokens {
                tokens: vec![entry]
            }
        })?
    )?;
    Ok(0)
}

#[derive(serde::Serialize)]
struct TokensOnly {
    remote: RemoteTokens,
}
#[derive(serde::Serialize)]
struct RemoteTokens {
    tokens: Vec<crate::remote::auth::TokenEntry>,
}

/// Runs the runtime and serves it until SIGTERM or Ctrl-C, then drains.
pub async fn serve(
    opts: &Options,
    config: &Config,
    data_dir: &Path,
    args: &ServeArgs,
) -> anyhow::Result<i32> {
    let cert = args.tls_cert.clone().or(config.remote.tls_cert.clone());
    let key = args.tls_key.clone().or(config.remote.tls_key.clone());
    let tls = match (&cert, &key) {
        (Some(c), Some(k)) => Some(tls_acceptor(c, k)?),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate and a key (--tls-cert and --tls-key)"),
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        anyhow::ensure!(
            args.insecure_listen,
            "--listen {} is not a loopback address: give --tls-cert and --tls-key, or --insecure-listen to send tokens in clear text",
            args.listen
        );
        eprintln!(
            "shieldops serve: WARNING: listening on {} without TLS; bearer tokens and every event cross the network unencrypted",
            args.listen
        );
        tracing::warn!(listen = %args.listen, "listening without TLS off loopback");
    }
    let mut limits = config.remote.limits.clone();
    limits
        .validate()
        .map_err(|e| anyhow::anyhow!("config: {e}"))?;
    limits.max_connections = fit_descriptor_limit(limits.max_connections);
    let tokens = Tokens::new(config.remote.tokens.clone());
    if tokens.is_empty() {
        eprintln!(
            "shieldops serve: no [[remote.tokens]] configured: every request will be refused (mint one with `shieldops token mint`)"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;

    let demo = DemoArgs {
        speed: args.speed,
        seed: args.seed,
        scenario: args.scenario.clone(),
        start: args.start,
        ..DemoArgs::default()
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let ws = if tls.is_some() { "wss" } else { "ws" };
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let speed = demo.speed.unwrap_or(config.demo.speed);
    // The runtime behind the listener: there from the start on a single
    // machine; on a cluster node, once it leads.
    let (runtime_tx, runtime_rx) = watch::channel(None);
    let server_cancel = CancellationToken::new();
    let parts = |log: crate::store::EventLog, hub, read_only, cluster| ServerParts {
        log,
        hub,
        runtime: runtime_rx.clone(),
        cluster,
        tokens: tokens.clone(),
        read_only,
        tls: tls.clone(),
        speed,
        limits: limits.clone(),
    };
    let link = |started: &super::startup::Started| RuntimeLink {
        commands: started.runtime.commands.clone(),
        intake: started.runtime.intake.clone(),
        status: started.runtime.status.clone(),
        loop_stats: started.runtime.loop_stats.clone(),
        clock: started.clock.clone(),
    };
    let (started, leading, server, hub_cancel) =
        match super::cluster::settings(config, args.cluster.as_deref())? {
            None => {
                let mut started =
                    super::startup::start(opts, config, data_dir, &demo, !args.no_scenario).await?;
                let hub = Hub::start(
                    started.log.clone(),
                    // The hub folds for attached consoles from here on; no other copy is kept.
                    std::mem::take(&mut started.state),
                    started.cancel.clone(),
                )?;
                runtime_tx.send_replace(Some(link(&started)));
                let server = tokio::spawn(serve_http(
                    listener,
                    parts(started.log.clone(), hub, started.read_only, None),
                    server_cancel.clone(),
                ));
                (started, None, server, None)
            }
            Some(settings) => {
                let standby = super::cluster::Standby::join(
                    config,
                    data_dir,
                    &settings,
                    bound,
                    format!("{ws}://{bound}/ws"),
                )
                .await?;
                // Consoles are served from the followed copy from now on,
                // read-only until this node leads.
                let hub_cancel = CancellationToken::new();
                let hub = Hub::start(
                    standby.log().clone(),
                    crate::runtime::snapshots::load_state(standby.log())?,
                    hub_cancel.clone(),
                )?;
                let read_only = config.runtime.options().read_only || opts.read_only;
                let server = tokio::spawn(serve_http(
                    listener,
                    parts(standby.log().clone(), hub, read_only, Some(standby.view())),
                    server_cancel.clone(),
                ));
                let stop = CancellationToken::new();
                let lead = standby.lead(opts, config, data_dir, &demo, !args.no_scenario, &stop);
                tokio::pin!(lead);
                let led = loop {
                    tokio::select! {
                        led = &mut lead => break led,
                        _ = sigterm.recv() => stop.cancel(),
                        _ = tokio::signal::ctrl_c() => stop.cancel(),
                    }
                };
                let (mut started, leading) = match led {
                    Ok(Some(led)) => led,
                    other => {
                        server_cancel.cancel();
                        let _ = server.await;
                        hub_cancel.cancel();
                        return other.map(|_| 0);
                    }
                };
                // The hub has folded the same log all along; this copy is not needed.
                drop(std::mem::take(&mut started.state));
                runtime_tx.send_replace(Some(link(&started)));
                leading.announce();
                (started, Some(leading), server, Some(hub_cancel))
            }
        };
    // Informational: a closed stdout must not stop the server.
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "shieldops serve: listening on {scheme}://{bound} (consoles: {ws}://{bound}/ws)"
    );
    let _ = stdout.flush();
    tracing::info!(%bound, "serving");

    let stepped_down = async {
        match &leading {
            Some(leading) => leading.leadership.lost().await,
            None => std::future::pending().await,
        }
    };
    let mut code = tokio::select! {
        _ = sigterm.recv() => 143,
        _ = tokio::signal::ctrl_c() => 130,
        _ = started.cancel.cancelled() => 0,
        _ = stepped_down => STEPPED_DOWN,
    };
    // The runtime may stop first, on the refused append that deposed it.
    if let Some(why) = leading.as_ref().and_then(|l| l.leadership.stepped_down()) {
        eprintln!("shieldops serve: stepped down, no longer acting: {why}");
        code = STEPPED_DOWN;
    }
    tracing::info!("stopping: consoles are told, in-flight work is drained");
    server_cancel.cancel();
    let _ = server.await;
    if code == STEPPED_DOWN {
        // Nothing more can be recorded, so nothing in flight is waited for:
        // what it left uncertain the next leader validates, as after a crash.
        // Its last appends were refused, as they must be: not a failure.
        match tokio::time::timeout(STEP_DOWN_DRAIN, started.finish()).await {
            Ok(Err(e)) => tracing::info!("after stepping down: {e:#}"),
            Err(_) => tracing::info!("after stepping down: the runtime did not stop in time"),
            Ok(Ok(())) => {}
        }
        if let Some(leading) = leading {
            leading.finish().await;
        }
        return Ok(STEPPED_DOWN);
    }
    let finished = started.finish().await;
    if let Some(leading) = leading {
        leading.finish().await;
    }
    if let Some(hub) = hub_cancel {
        hub.cancel();
    }
    finished?;
    // SIGTERM is the ordinary way to stop a service: a clean drain exits 0.
    Ok(if code == 143 { 0 } else { code })
}

/// Descriptors kept for everything that is not a connection (the event
/// log's files, the rolling log, connectors' own sockets).
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft descriptor limit to the hard one, so the connection cap
/// can be held, and lowers the cap if even the hard limit cannot hold it:
/// the listener must meet its own cap, never `EMFILE`.
fn fit_descriptor_limit(max_connections: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("cannot raise the descriptor limit: {e}");
        }
        limit = getrlimit(Resource::Nofile);
    }
    let Some(soft) = limit.current else {
        return max_connections;
    };
    let fits =
        usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS).max(1)).unwrap_or(usize::MAX);
    if fits < max_connections {
        eprintln!(
            "shieldops serve: WARNING: the descriptor limit ({soft}) holds only {fits} connections: remote.limits.max_connections lowered from {max_connections}"
        );
        tracing::warn!(
            soft,
            fits,
            max_connections,
            "connection cap lowered to fit the descriptor limit"
        );
        return fits;
    }
    max_connections
}

/// A token sent over `ws://` crosses the network in clear text: refused
/// unless the host is loopback or the operator said `--insecure-plaintext`.
/// A host name other than `localhost` counts as off loopback (it is not
/// resolved here: what it resolves to can change).
fn refuse_plaintext_off_loopback(url: &str, allowed: bool) -> anyhow::Result<()> {
    let Some(rest) = url.strip_prefix("ws://") else {
        return Ok(());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once('@') {
        Some((_, h)) => h,
        None => authority,
    };
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    anyhow::ensure!(
        allowed,
        "{url}: ws:// to {host} would send the token unencrypted; use wss:// (with --ca), or pass --insecure-plaintext"
    );
    eprintln!("shieldops attach: WARNING: sending the token to {host} over ws:// in clear text");
    Ok(())
}

/// Attaches a console (or, headless, a JSON-lines printer) to a server.
pub async fn attach(options: &Options, config: &Config, args: &AttachArgs) -> anyhow::Result<i32> {
    refuse_plaintext_off_loopback(&args.url, args.insecure_plaintext)?;
    let from_file = match &args.token_file {
        Some(path) => Some(crate::remote::auth::read_token_file(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let token = from_file
        .or(args.token.clone())
        .or(config.remote.token.as_ref().map(|s| s.0.clone()))
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no token: pass --token-file, set SHIELDOPS_TOKEN, or set remote.token in the config"
            )
        })?;
    let opts = AttachOptions {
        url: args.url.clone(),
        token,
        ca: args.ca.clone().or(config.remote.ca.clone()),
    };
    let (mut conn, state) = match Connection::open(&opts, None).await {
        Ok(c) => c,
        Err(e) => anyhow::bail!("cannot attach to {}: {e}", args.url),
    };
    let state = state.unwrap_or_default();
    let welcome = conn.welcome.clone();
    // The server must still hold the last head this console verified.
    let heads = crate::remote::heads::default_path();
    let known = heads
        .as_deref()
        .and_then(|p| crate::remote::heads::load(p, &args.url));
    if let Some(known) = known
        && let Err(e) = crate::remote::client::check_known_head(&opts, known, conn.position()).await
    {
        if args.headless {
            writeln!(
                std::io::stdout(),
                "{}",
                serde_json::json!({"link": "history_changed", "detail": e.to_string()})
            )?;
        }
        anyhow::bail!("{}: {e}", args.url);
    }
    let (verified_tx, mut verified_rx) = mpsc::channel::<crate::event::Event>(1024);
    let (events_tx, mut events_rx) = mpsc::channel(1024);
    // Each checked event passes here on its way to the console, so the head
    // it verified is kept for the next attach (at most every few seconds).
    let recorder = {
        let url = args.url.clone();
        let (seq, hash) = conn.position();
        tokio::spawn(async move {
            let mut head = crate::remote::heads::Head { seq, hash };
            let save = |head| {
                if let Some(path) = &heads
                    && let Err(e) = crate::remote::heads::save(path, &url, head)
                {
                    tracing::warn!("cannot record the verified head: {e}");
                }
            };
            save(head);
            let mut saved = std::time::Instant::now();
            while let Some(event) = verified_rx.recv().await {
                head = crate::remote::heads::Head {
                    seq: event.seq,
                    hash: event.hash,
                };
                if saved.elapsed() > std::time::Duration::from_secs(5) {
                    save(head);
                    saved = std::time::Instant::now();
                }
                if events_tx.send(event).await.is_err() {
                    break;
                }
            }
            save(head);
        })
    };
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let (link_tx, link_rx) = watch::channel(Link::Connected);
    // The node's role and leader, for the header and `:cluster`.
    let (cluster_tx, cluster_rx) = watch::channel(None);
    conn.report_cluster(cluster_tx);
    let link_task = tokio::spawn(crate::remote::client::run_link(
        opts,
        conn,
        verified_tx,
        commands_rx,
        link_tx,
    ));
    if args.headless {
        let mut out = std::io::stdout();
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "snapshot": state.last_seq, "principal": welcome.principal, "role": welcome.role,
                "node_role": welcome.cluster.as_ref().map_or(crate::cluster::NodeRole::Single, |c| c.role),
            })
        )?;
        out.flush()?;
        let mut link = link_rx;
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                event = events_rx.recv() => match event {
                    Some(e) => {
                        let line = serde_json::json!({
                            "seq": e.seq, "kind": e.kind.name(),
                            "hash": e.hash.to_hex(), "prev_hash": e.prev_hash.to_hex(),
                        });
                        writeln!(out, "{line}")?;
                        out.flush()?;
                    }
                    None => break,
                },
                changed = link.changed() => {
                    if changed.is_err() { break; }
                    let line = match &*link.borrow_and_update() {
                        Link::Connected => serde_json::json!({"link": "connected"}),
                        Link::Disconnected { since, reason } => serde_json::json!({
                            "link": "disconnected", "since": crate::event::rfc3339(since), "reason": reason,
                        }),
                        Link::HistoryChanged { detail } => serde_json::json!({
                            "link": "history_changed", "detail": detail,
                        }),
                    };
                    writeln!(out, "{line}")?;
                    out.flush()?;
                }
                _ = sigterm.recv() => {
                    link_task.abort();
                    let _ = recorder.await;
                    return Ok(0);
                }
                _ = tokio::signal::ctrl_c() => {
                    link_task.abort();
                    let _ = recorder.await;
                    return Ok(130);
                }
            }
        }
        drop(commands_tx);
        let linked = link_task.await;
        let _ = recorder.await;
        return match linked {
            Ok(Err(e)) => Err(anyhow::anyhow!("{e}")),
            _ => Ok(0),
        };
    }
    let read_only = welcome.read_only || welcome.role == Role::Viewer;
    // principal@host:port, short enough for the header at 80 columns.
    let server = args
        .url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(&args.url);
    let title = format!("{}@{server}", welcome.principal);
    let mut opts = super::console_options(
        options,
        config,
        // The server's clock, so ages agree with event times (a sped-up demo runs ahead).
        std::sync::Arc::new(crate::clock::ScaledClock::new(
            welcome.now,
            if welcome.speed.is_finite() && welcome.speed > 0.0 {
                welcome.speed
            } else {
                1.0
            },
        )),
        &title,
        read_only,
        // Shown on screen only: the server records the token's principal.
        Identity::token(welcome.principal.clone(), None),
    );
    opts.link = Some(link_rx);
    opts.cluster = Some(cluster_rx);
    let result = crate::tui::run(opts, state, events_rx, commands_tx).await;
    link_task.abort();
    let linked = link_task.await;
    let _ = recorder.await;
    match (result, linked) {
        (Err(e), _) => Err(e),
        (Ok(()), Ok(Err(e @ (LinkError::Unauthorized | LinkError::Fatal(_))))) => {
            Err(anyhow::anyhow!("{e}"))
        }
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::refuse_plaintext_off_loopback;
    use crate::remote::auth::read_token_file;

    #[test]
    fn plaintext_tokens_go_only_to_loopback_unless_told() {
        for url in [
            "ws://127.0.0.1:7420/ws",
            "ws://127.9.9.9/ws",
            "ws://localhost:7420/ws",
            "ws://[::1]:7420/ws",
            "wss://10.0.0.5:7420/ws",
        ] {
            assert!(refuse_plaintext_off_loopback(url, false).is_ok(), "{url}");
        }
        for url in [
            "ws://10.0.0.5:7420/ws",
            "ws://console.example.com/ws",
            "ws://127.0.0.1.evil.example/ws",
            "ws://127.0.0.1@10.0.0.5:7420/ws",
            "ws://[2001:db8::1]:7420/ws",
            "ws://localhost.example/ws",
        ] {
            let e = refuse_plaintext_off_loopback(url, false)
                .unwrap_err()
                .to_string();
            assert!(e.contains("--insecure-plaintext"), "{url}: {e}");
            assert!(refuse_plaintext_off_loopback(url, true).is_ok());
        }
    }

    #[test]
    fn a_token_file_must_be_private_and_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "so_secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token_file(&path).unwrap_err().to_string();
        assert!(
            e.contains("readable by others") && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token_file(&path).unwrap(), "so_secret");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_token_file(&path).is_err());
    }
}
