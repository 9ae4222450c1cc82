//! The `serve` side: one listener for the WebSocket endpoint and the HTTP API.
//!
//! HTTP is served by hyper (the HTTP implementation under most of the Rust
//! ecosystem's servers) without a framework: there are four routes, and the
//! WebSocket upgrade is hyper's upgrade handed to tokio-tungstenite — the same
//! pairing a framework such as axum uses underneath, minus its router and
//! middleware layers. TLS, when configured, is tokio-rustls around the TCP
//! stream before hyper sees it.
//!
//! Routes: `GET /ws` (the console protocol, see [`super::protocol`]),
//! `POST /api/v1/alerts/alertmanager`, `GET /metrics` and `GET /healthz`.
//! Every route, `/healthz` included, needs a bearer token of any role; a
//! missing or unknown one gets a bare 401, so an unauthenticated caller learns
//! nothing, not even whether the runtime is up.
//!
//! A cluster standby serves the same routes from its own followed copy of
//! the log, read-only: consoles get the same snapshot and history and watch
//! it grow as the node follows the stream; commands and alerts are refused
//! naming the leader's console (from the lease). They are refused rather
//! than forwarded: a forwarded command would reach the leader under the
//! standby's credentials, and the leader would have to take the standby's
//! word for who sent it, the one thing an approval must never rest on. When
//! the node takes the lease, the same listener and the sessions on it carry
//! on, now with a runtime behind them.
//!
//! What one may hold without a token is bounded (see [`super::limits`]): a
//! connection slot (capped per address and in total), for at most the TLS
//! handshake timeout plus the header timeout, with at most
//! `max_header_bytes` of request head; a 401 closes the connection, so no
//! request body is ever read without a token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role as WsRole, WebSocketConfig};
use tokio_util::sync::CancellationToken;

use super::auth::{Principal, Role, Tokens, authorize};
use super::hub::Hub;
use super::limits::{Admission, Limited, Limits, RateLimits, Slot};
use super::protocol::{
    ClientMessage, ErrorCode, MAX_CLIENT_FRAME, MAX_RECORDS_PER_FRAME, PROTOCOL_VERSION,
    ProtocolError, ServerMessage, WireRecord, decode_client, encode,
};
use super::{alertmanager, metrics};
use crate::clock::SharedClock;
use crate::cluster::{ClusterView, NodeRole};
use crate::event::{EventKind, NewEvent};
use crate::runtime::command::{Command, CommandEnvelope, Identity};
use crate::runtime::loop_stats::LoopStats;
use crate::runtime::{Intake, RuntimeStatus};
use crate::store::EventLog;

/// How long a new WebSocket session may take to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle session is pinged, so a console notices a dead link
/// (see `client::SILENCE_LIMIT`) and middleboxes keep the connection open.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How long an alert may wait to be recorded before the webhook answers 503
/// (Alertmanager then retries).
const INTAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The runtime a server hands commands and alerts to.
#[derive(Clone)]
pub struct RuntimeLink {
    pub commands: mpsc::Sender<CommandEnvelope>,
    pub intake: mpsc::Sender<Intake>,
    pub status: watch::Receiver<RuntimeStatus>,
    pub loop_stats: Arc<LoopStats>,
    /// The runtime's clock, told to each console.
    pub clock: SharedClock,
}

/// What the server serves.
pub struct ServerParts {
    pub log: EventLog,
    pub hub: Hub,
    /// The runtime, once this node runs one: from the start on a single
    /// machine; a cluster standby has none until it leads.
    pub runtime: watch::Receiver<Option<RuntimeLink>>,
    /// This node's view of its cluster; `None` when it is not clustered.
    pub cluster: Option<watch::Receiver<ClusterView>>,
    pub tokens: Tokens,
    pub read_only: bool,
    pub tls: Option<TlsAcceptor>,
    /// How many of the runtime's seconds pass per real second, told to each console.
    pub speed: f64,
    /// Connection caps, deadlines and rate limits.
    pub limits: Limits,
}

impl ServerParts {
    fn runtime(&self) -> Option<RuntimeLink> {
        self.runtime.borrow().clone()
    }

    /// Why a command or an alert cannot be taken here: this node is a
    /// standby (naming the leader's console), or its runtime is not running.
    fn not_here(&self) -> String {
        let Some(cluster) = &self.cluster else {
            return "the runtime is not running".into();
        };
        let view = cluster.borrow();
        if view.role == NodeRole::Leader || view.leader().is_some_and(|(l, _)| l == view.node) {
            return format!(
                "node {} is taking over as the leader of site {}; try again shortly",
                view.node, view.site
            );
        }
        let me = format!("node {} is a standby of site {}", view.node, view.site);
        match view.leader() {
            Some((leader, Some(console))) if leader != view.node => {
                format!("{me}; send it to the leader, node {leader}, at {console}")
            }
            Some((leader, None)) if leader != view.node => {
                format!("{me}; the leader is node {leader} (it published no console address)")
            }
            _ => format!("{me}; no node leads right now, try again shortly"),
        }
    }
}

struct Shared {
    parts: ServerParts,
    sessions: AtomicUsize,
    cancel: CancellationToken,
    admission: Arc<Admission>,
    rates: RateLimits,
}

/// The actor recorded on the listener's own events.
const ACTOR: &str = "listener";

type Body = Full<Bytes>;

/// Accepts connections until `cancel`; then open sessions are told the
/// server is shutting down and closed.
pub async fn serve(
    listener: TcpListener,
    parts: ServerParts,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let limits = parts.limits.clone();
    let shared = Arc::new(Shared {
        admission: Admission::new(limits.max_connections, limits.max_connections_per_address),
        rates: RateLimits::new(&limits),
        parts,
        sessions: AtomicUsize::new(0),
        cancel: cancel.clone(),
    });
    let reporter = tokio::spawn(report_refusals(shared.clone()));
    let result = accept_loop(&listener, &shared, &limits).await;
    // The refusals of the last window are recorded too.
    reporter.abort();
    let _ = reporter.await;
    flush_refusals(&shared).await;
    result
}

async fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    limits: &Limits,
) -> anyhow::Result<()> {
    let cancel = shared.cancel.clone();
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over a cap, the connection is closed at once (dropping the stream):
        // a refused connection holds no descriptor and no task. Refusals are
        // counted and summarised by `report_refusals`, not logged one by one.
        let slot = match shared.admission.admit(peer.ip()) {
            Ok(slot) => Arc::new(slot),
            Err(refused) => {
                tracing::debug!(%peer, "connection refused: {refused:?}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let handshake_timeout = limits.handshake_timeout();
        tokio::spawn(async move {
            let Some(tls) = shared.parts.tls.clone() else {
                return connection(shared, peer, stream, slot).await;
            };
            let evicted = slot.evicted().clone();
            tokio::select! {
                handshake = tokio::time::timeout(handshake_timeout, tls.accept(stream)) => match handshake {
                    Ok(Ok(stream)) => connection(shared, peer, stream, slot).await,
                    Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => {
                        shared.admission.note_timeout();
                        tracing::debug!(%peer, "TLS handshake timed out");
                    }
                },
                _ = evicted.cancelled() => tracing::debug!(%peer, "evicted during the TLS handshake"),
            }
        });
    }
}

async fn connection<S>(shared: Arc<Shared>, peer: SocketAddr, stream: S, slot: Arc<Slot>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cancel = shared.cancel.clone();
    let limits = &shared.parts.limits;
    let header_timeout = limits.header_timeout();
    let max_header_bytes = limits.max_header_bytes;
    let evicted = slot.evicted().clone();
    let service = {
        let shared = shared.clone();
        let slot = slot.clone();
        hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            let slot = slot.clone();
            async move { Ok::<_, std::convert::Infallible>(route(shared, peer, slot, req).await) }
        })
    };
    // A client that never finishes its request headers is dropped, and the
    // head it may send is bounded (a longer one gets 431).
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(max_header_bytes)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    // Whatever the HTTP layer does with an idle connection, one that has not
    // shown a valid token by this deadline is closed.
    let deadline = tokio::time::sleep(header_timeout);
    let mut deadline = std::pin::pin!(deadline);
    let mut authenticated = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            _ = deadline.as_mut(), if !authenticated => {
                authenticated = slot.is_authenticated() && !evicted.is_cancelled();
                if !authenticated {
                    shared.admission.note_timeout();
                    tracing::debug!(%peer, "no valid token in time: closed");
                    return;
                }
            }
            _ = evicted.cancelled() => {
                tracing::debug!(%peer, "evicted to make room for a newer connection");
                return;
            }
            _ = cancel.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
                return;
            }
        }
    }
}

/// Every report window: one event per principal and kind that was rate
/// limited, and one file-log line summarising refused connections.
async fn report_refusals(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.parts.limits.refusal_report_every());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        flush_refusals(&shared).await;
    }
}

async fn flush_refusals(shared: &Shared) {
    let limits = &shared.parts.limits;
    if let Some(c) = shared.admission.take_counts() {
        let (held, pending) = shared.admission.held();
        tracing::warn!(
            refused_per_address = c.refused_per_address,
            refused_full = c.refused_full,
            evicted = c.evicted,
            timed_out = c.timed_out,
            unauthorized = c.unauthorized,
            held,
            pending,
            "listener: connections refused, evicted or timed out since the last report"
        );
    }
    let window = limits.refusal_report_every();
    let reports = shared.rates.take_reports();
    if reports.is_empty() {
        return;
    }
    let Some(runtime) = shared.parts.runtime() else {
        // Only the leader appends: a standby keeps them in its file log.
        for r in &reports {
            tracing::warn!(
                principal = %r.principal,
                "rate limited (not recorded on a standby): {}",
                r.detail(limits, window)
            );
        }
        return;
    };
    let drafts: Vec<NewEvent> = reports
        .into_iter()
        .map(|r| {
            let detail = r.detail(limits, window);
            NewEvent::new(
                runtime.clock.now(),
                ACTOR,
                EventKind::OperatorCommand {
                    by: r.principal,
                    command: r.limited.describe().to_string(),
                    accepted: false,
                    detail,
                },
            )
        })
        .collect();
    if let Err(e) = shared.parts.log.append_many(drafts).await {
        tracing::error!("cannot record rate-limit refusals: {e}");
    }
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// 401 and nothing else: no body, no hint about which tokens exist. The
/// connection is closed, so its body is never read and one connection
/// cannot try token after token.
fn unauthorized() -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

async fn route(
    shared: Arc<Shared>,
    peer: SocketAddr,
    slot: Arc<Slot>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(principal) = shared.parts.tokens.verify_header(auth) else {
        // Counted and summarised per report window: anyone can send these,
        // so one line each would let them grow the file log.
        shared.admission.note_unauthorized();
        tracing::debug!(%peer, %path, "refused: missing or unknown token");
        return unauthorized();
    };
    slot.authenticated();
    match (req.method(), path.as_str()) {
        (&Method::GET | &Method::HEAD, "/healthz") => plain(StatusCode::OK, "ok\n"),
        (&Method::GET, "/ws") => upgrade(shared, peer, principal, slot, req),
        (&Method::POST, "/api/v1/alerts/alertmanager") => {
            alertmanager_webhook(&shared, &principal, req).await
        }
        (&Method::GET, "/metrics") => {
            let runtime = shared.parts.runtime();
            let text = match shared.parts.hub.projection().await {
                Some(p) => metrics::render(&metrics::Inputs {
                    projection: &p,
                    log_last_seq: shared.parts.log.last_seq(),
                    loop_stats: &runtime
                        .as_ref()
                        .map(|r| r.loop_stats.snapshot())
                        .unwrap_or_default(),
                    sessions: shared.sessions.load(Ordering::Relaxed),
                    in_flight: runtime.map_or(0, |r| r.status.borrow().in_flight),
                }),
                None => return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            };
            let mut r = plain(StatusCode::OK, text);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (_, "/ws" | "/api/v1/alerts/alertmanager" | "/metrics" | "/healthz") => {
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn alertmanager_webhook(
    shared: &Shared,
    principal: &Principal,
    req: Request<Incoming>,
) -> Response<Body> {
    let Some(runtime) = shared.parts.runtime() else {
        // Alertmanager retries; the operator learns where to point it.
        let mut r = plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", shared.parts.not_here()),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    };
    if principal.role < Role::Operator {
        return plain(
            StatusCode::FORBIDDEN,
            format!(
                "{} is a {} and may not post alerts; that needs the operator role\n",
                principal.name, principal.role
            ),
        );
    }
    let body = match http_body_util::Limited::new(req.into_body(), alertmanager::MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return plain(StatusCode::PAYLOAD_TOO_LARGE, format!("{e}\n")),
    };
    let alerts = match alertmanager::parse(&body) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("bad Alertmanager payload: {e}");
            return plain(StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
    };
    let count = alerts.len();
    let wanted = u32::try_from(count).unwrap_or(u32::MAX);
    if let Err(refusal) = shared.rates.take(
        &principal.name,
        Limited::Alerts,
        wanted,
        std::time::Instant::now(),
    ) {
        return rate_limited(shared.rates.limits(), count, refusal);
    }
    let mut acks = Vec::with_capacity(count);
    for alert in alerts {
        let (tx, rx) = oneshot::channel();
        let item = Intake::Alert {
            alert,
            recorded: Some(tx),
            posted_by: Some(principal.name.clone()),
        };
        if runtime.intake.send(item).await.is_err() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "the runtime is stopping\n");
        }
        acks.push(rx);
    }
    // Answer 200 only once every alert is durable: on anything else
    // Alertmanager retries, so no alert is lost (at-least-once; the
    // fingerprint deduplicates repeats).
    let all = futures::future::join_all(acks);
    match tokio::time::timeout(INTAKE_TIMEOUT, all).await {
        Ok(results) if results.iter().all(Result::is_ok) => {
            plain(StatusCode::OK, format!("recorded {count} alert(s)\n"))
        }
        _ => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the alerts could not be recorded in time\n",
        ),
    }
}

/// 429 (or 413 for more alerts at once than the burst allows), with when to retry.
fn rate_limited(
    limits: &Limits,
    count: usize,
    refusal: super::limits::RateRefusal,
) -> Response<Body> {
    if refusal.exceeds_burst {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{count} alerts in one notification exceed the burst of {} (remote.limits.alerts_burst): lower max_alerts in the Alertmanager receiver or raise the burst\n",
                limits.alerts_burst
            ),
        );
    }
    let secs = refusal.retry_after.as_secs().max(1);
    let mut r = plain(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "rate limited: at most {} alerts a minute (burst {}) per principal; retry in {secs} s\n",
            limits.alerts_per_minute, limits.alerts_burst
        ),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

fn upgrade(
    shared: Arc<Shared>,
    peer: SocketAddr,
    principal: Principal,
    slot: Arc<Slot>,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let headers = req.headers();
    let has = |name: header::HeaderName, want: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(want))
            })
    };
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let ok = has(header::CONNECTION, "upgrade")
        && has(header::UPGRADE, "websocket")
        && has(header::SEC_WEBSOCKET_VERSION, "13");
    let Some(key) = key.filter(|_| ok) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (version 13)\n",
        );
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .max_message_size(Some(MAX_CLIENT_FRAME))
                    .max_frame_size(Some(MAX_CLIENT_FRAME));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    WsRole::Server,
                    Some(config),
                )
                .await;
                shared.sessions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%peer, principal = %principal.name, role = %principal.role, "console attached");
                let outcome = session(&shared, peer, &principal, ws).await;
                shared.sessions.fetch_sub(1, Ordering::Relaxed);
                // The session's connection slot is given back only now.
                drop(slot);
                tracing::info!(%peer, principal = %principal.name, "console detached: {outcome}");
            }
            Err(e) => tracing::debug!(%peer, "upgrade failed: {e}"),
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

async fn send(ws: &mut Ws, message: &ServerMessage) -> Result<(), String> {
    ws.send(Message::text(encode(message)))
        .await
        .map_err(|e| format!("send failed: {e}"))
}

/// Sends an `error` and closes; returns the reason for the log.
async fn fail(ws: &mut Ws, code: ErrorCode, message: String) -> String {
    let _ = send(
        ws,
        &ServerMessage::Error {
            code,
            message: message.clone(),
        },
    )
    .await;
    let close = CloseFrame {
        code: match code {
            ErrorCode::TooLarge => 1009u16.into(),
            ErrorCode::ShuttingDown => 1001u16.into(),
            ErrorCode::Internal => 1011u16.into(),
            _ => 1002u16.into(),
        },
        reason: "".into(),
    };
    let _ = ws.close(Some(close)).await;
    message
}

/// Reads the next text frame; pings and pongs are answered by tungstenite.
async fn next_frame(ws: &mut Ws) -> Option<Result<Vec<u8>, ProtocolError>> {
    loop {
        return match ws.next().await? {
            Ok(Message::Text(t)) => Some(Ok(t.as_bytes().to_vec())),
            Ok(Message::Binary(_)) => Some(Err(ProtocolError::Malformed(
                "binary frames are not part of the protocol".into(),
            ))),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Ok(Message::Close(_)) => None,
            // tungstenite stops reading a frame as soon as it passes the limit.
            Err(tokio_tungstenite::tungstenite::Error::Capacity(e)) => {
                tracing::debug!("frame refused: {e}");
                Some(Err(ProtocolError::TooLarge {
                    size: MAX_CLIENT_FRAME + 1,
                    limit: MAX_CLIENT_FRAME,
                }))
            }
            Err(e) => Some(Err(ProtocolError::Malformed(e.to_string()))),
        };
    }
}

async fn session(shared: &Shared, peer: SocketAddr, principal: &Principal, mut ws: Ws) -> String {
    let parts = &shared.parts;
    let first = match tokio::time::timeout(HELLO_TIMEOUT, next_frame(&mut ws)).await {
        Err(_) => return fail(&mut ws, ErrorCode::Malformed, "no hello in time".into()).await,
        Ok(None) => return "closed before hello".into(),
        Ok(Some(Err(e))) => return fail(&mut ws, e.code(), e.to_string()).await,
        Ok(Some(Ok(frame))) => frame,
    };
    let after_seq = match decode_client(&first) {
        Ok(ClientMessage::Hello { after_seq, .. }) => after_seq,
        Ok(ClientMessage::Command { .. }) => {
            return fail(
                &mut ws,
                ErrorCode::Malformed,
                "the first message must be hello".into(),
            )
            .await;
        }
        Err(e) => return fail(&mut ws, e.code(), e.to_string()).await,
    };
    let mut cluster = parts.cluster.clone();
    let now = match parts.runtime() {
        Some(runtime) => runtime.clock.now(),
        // A standby runs no clock: its history's last event time is the
        // best estimate of the leader's (the leader's clock starts there).
        None => parts
            .hub
            .projection()
            .await
            .and_then(|p| p.state.last_at)
            .unwrap_or_else(chrono::Utc::now),
    };
    let welcome = ServerMessage::Welcome {
        version: PROTOCOL_VERSION,
        principal: principal.name.clone(),
        role: principal.role,
        read_only: parts.read_only,
        now,
        speed: parts.speed,
        cluster: cluster
            .as_mut()
            .map(|c| Box::new(c.borrow_and_update().clone())),
    };
    if let Err(e) = send(&mut ws, &welcome).await {
        return e;
    }
    let from = match after_seq {
        Some(seq) if seq <= parts.log.last_seq() => seq + 1,
        Some(seq) => {
            let message = format!(
                "cannot resume after seq {seq}: this server's log ends at seq {}",
                parts.log.last_seq()
            );
            return fail(&mut ws, ErrorCode::ResumeUnavailable, message).await;
        }
        None => {
            let Some(p) = parts.hub.projection().await else {
                return fail(&mut ws, ErrorCode::ShuttingDown, "shutting down".into()).await;
            };
            let from = p.state.last_seq + 1;
            let snapshot = ServerMessage::Snapshot {
                seq: p.state.last_seq,
                hash: p.hash.to_hex(),
                state: Box::new(p.state),
            };
            if let Err(e) = send(&mut ws, &snapshot).await {
                return e;
            }
            from
        }
    };
    let mut sub = parts.log.subscribe(from);
    let (reply_tx, mut reply_rx) = mpsc::channel::<ServerMessage>(16);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                    return format!("ping failed: {e}");
                }
            }
            _ = shared.cancel.cancelled() => {
                return fail(&mut ws, ErrorCode::ShuttingDown, "the server is shutting down".into()).await;
            }
            changed = crate::cluster::next_view(&mut cluster) => match changed {
                Ok(view) => {
                    let update = ServerMessage::Cluster { view: Box::new(view) };
                    if let Err(e) = send(&mut ws, &update).await {
                        return e;
                    }
                }
                Err(_) => cluster = None,
            },
            first = sub.next_raw() => {
                let mut records = Vec::new();
                let mut next = first;
                loop {
                    match next {
                        Some(Ok((_, bytes))) => match WireRecord::from_stored(&bytes) {
                            Ok(r) => records.push(r),
                            Err(e) => return fail(&mut ws, ErrorCode::Internal, e.to_string()).await,
                        },
                        Some(Err(e)) => {
                            return fail(&mut ws, ErrorCode::Internal, format!("cannot read the log: {e}")).await;
                        }
                        None => return fail(&mut ws, ErrorCode::ShuttingDown, "the log closed".into()).await,
                    }
                    if records.len() >= MAX_RECORDS_PER_FRAME {
                        break;
                    }
                    // Batch whatever is already available, without waiting.
                    match sub.next_raw().now_or_never() {
                        Some(item) => next = item,
                        None => break,
                    }
                }
                if let Err(e) = send(&mut ws, &ServerMessage::Events { records }).await {
                    return e;
                }
            }
            reply = reply_rx.recv() => {
                if let Some(reply) = reply
                    && let Err(e) = send(&mut ws, &reply).await
                {
                    return e;
                }
            }
            frame = next_frame(&mut ws) => match frame {
                None => return "closed by the console".into(),
                Some(Err(e)) => return fail(&mut ws, e.code(), e.to_string()).await,
                Some(Ok(bytes)) => match decode_client(&bytes) {
                    Ok(ClientMessage::Command { id, command }) => {
                        if let Err(refusal) = authorize(&principal.name, principal.role, &command) {
                            tracing::info!(%peer, principal = %principal.name, "refused: {refusal}");
                            let reply = ServerMessage::Reply { id, ok: false, message: refusal };
                            if let Err(e) = send(&mut ws, &reply).await {
                                return e;
                            }
                            continue;
                        }
                        if let Err(message) = rate_limit_command(shared, &principal.name, &command) {
                            let reply = ServerMessage::Reply { id, ok: false, message };
                            if let Err(e) = send(&mut ws, &reply).await {
                                return e;
                            }
                            continue;
                        }
                        let Some(runtime) = parts.runtime() else {
                            let message = format!("refused: {}", parts.not_here());
                            tracing::info!(%peer, principal = %principal.name, "{message}");
                            let reply = ServerMessage::Reply { id, ok: false, message };
                            if let Err(e) = send(&mut ws, &reply).await {
                                return e;
                            }
                            continue;
                        };
                        let (tx, rx) = oneshot::channel();
                        let envelope = CommandEnvelope {
                            command,
                            // The token's principal, whatever the console thinks it is.
                            by: Identity::token(principal.name.clone(), Some(peer.ip().to_string())),
                            reply: Some(tx),
                        };
                        if runtime.commands.send(envelope).await.is_err() {
                            return fail(&mut ws, ErrorCode::ShuttingDown, "the runtime has stopped".into()).await;
                        }
                        let reply_tx = reply_tx.clone();
                        tokio::spawn(async move {
                            let (ok, message) = match rx.await {
                                Ok(Ok(text)) => (true, text),
                                Ok(Err(text)) => (false, text),
                                Err(_) => (false, "the runtime dropped the command".to_string()),
                            };
                            let _ = reply_tx.send(ServerMessage::Reply { id, ok, message }).await;
                        });
                    }
                    Ok(ClientMessage::Hello { .. }) => {
                        return fail(&mut ws, ErrorCode::Malformed, "hello was already received".into()).await;
                    }
                    Err(e) => return fail(&mut ws, e.code(), e.to_string()).await,
                },
            },
        }
    }
}

/// Commands that load something outside the runtime (an `inspect` asks a
/// connector's API server) take from the principal's bucket; the refusal
/// says when to try again (it is tallied for the log, not recorded each time).
fn rate_limit_command(shared: &Shared, principal: &str, command: &Command) -> Result<(), String> {
    if !matches!(command, Command::Inspect { .. }) {
        return Ok(());
    }
    shared
        .rates
        .take(principal, Limited::Inspect, 1, std::time::Instant::now())
        .map_err(|refusal| {
            let limits = shared.rates.limits();
            format!(
                "rate limited: {principal} may inspect at most {} times a minute (burst {}); try again in {} s",
                limits.inspect_per_minute,
                limits.inspect_burst,
                refusal.retry_after.as_secs().max(1)
            )
        })
}

/// A TLS acceptor from PEM certificate chain and key files.
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    use anyhow::Context;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the certificate file {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no certificate found",
        cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: no PEM private key found", key.display()))?;
    // The provider is named explicitly, so the choice does not depend on
    // which rustls features other crates in the build happen to enable.
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("the certificate and key do not form a usable pair")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
