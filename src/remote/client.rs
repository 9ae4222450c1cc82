//! The `attach` side: a connection to `serve` that folds the same events with
//! the same projection as a local console, and a link that keeps it going
//! (reconnects with back-off and resumes after the last seq it holds).
//!
//! Every record is checked before it is handed on: its digest against its
//! body, its seq against the next one owed, its `prev_hash` against the last
//! record's digest. A resumed stream therefore either continues the chain
//! exactly — no gap, no duplicate — or the connection is dropped and tried again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::auth::Role;
use super::protocol::{
    ClientMessage, ErrorCode, MAX_SERVER_FRAME, PROTOCOL_VERSION, ServerMessage, decode_server,
    encode,
};
use crate::cluster::ClusterView;
use crate::event::{ChainHash, Event};
use crate::runtime::command::{Command, CommandEnvelope, CommandReply};
use crate::state::State;
use crate::tui::Link;

/// Where and how to attach.
#[derive(Clone)]
pub struct AttachOptions {
    /// `ws://HOST:PORT/ws` or `wss://HOST:PORT/ws`.
    pub url: String,
    pub token: String,
    /// PEM file of the CA (or self-signed certificate) that signed the server's certificate, for `wss://`.
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for AttachOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachOptions")
            .field("url", &self.url)
            .field("token", &"********")
            .finish_non_exhaustive()
    }
}

/// Why a connection could not be made or went away.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkError {
    /// The token was refused (401): trying again will not help.
    #[error("the server refused the token (401 Unauthorized)")]
    Unauthorized,
    /// The server ended the session with an error it will repeat (version mismatch, resume impossible).
    #[error("{0}")]
    Fatal(String),
    /// A network or protocol fault: worth trying again.
    #[error("{0}")]
    Transient(String),
    /// The server no longer holds the history this console verified: its log
    /// was cut short, rewritten or replaced. Never retried, always shown.
    #[error("SERVER HISTORY CHANGED: {0}")]
    HistoryChanged(String),
}

/// What the server said about us.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    pub principal: String,
    pub role: Role,
    pub read_only: bool,
    /// The server's runtime clock at the welcome, and its speed.
    pub now: chrono::DateTime<chrono::Utc>,
    pub speed: f64,
    /// The cluster as the server's node saw it then (`None`: not clustered).
    pub cluster: Option<ClusterView>,
}

/// Something received on a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Event(Box<Event>),
    Reply { id: u64, ok: bool, message: String },
}

/// A connection that carries nothing — not even the server's pings, sent
/// every 20 s — for this long is taken as dead and replaced.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(60);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One live session with the server.
pub struct Connection {
    ws: WebSocketStream<Box<dyn Io>>,
    pub welcome: Welcome,
    last_seq: u64,
    last_hash: ChainHash,
    /// Events of the current frame not yet handed out.
    queued: std::collections::VecDeque<Event>,
    /// The latest cluster view received (from the welcome, then each update).
    cluster: Option<ClusterView>,
    /// Where each cluster view received is also published.
    views: Option<watch::Sender<Option<ClusterView>>>,
}

impl Connection {
    /// Connects and says hello. With `resume = Some((seq, hash))` the server
    /// continues after `seq` (whose record digest is `hash`); without it, it
    /// sends a snapshot, returned here.
    pub async fn open(
        opts: &AttachOptions,
        resume: Option<(u64, ChainHash)>,
    ) -> Result<(Connection, Option<State>), LinkError> {
        let transient = |e: &dyn std::fmt::Display| LinkError::Transient(e.to_string());
        let mut request = opts
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| LinkError::Fatal(format!("bad URL {}: {e}", opts.url)))?;
        let value = HeaderValue::from_str(&format!("Bearer {}", opts.token)).map_err(|_| {
            LinkError::Fatal("the token has characters a header cannot carry".into())
        })?;
        request.headers_mut().insert("authorization", value);
        let uri = request.uri().clone();
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => {
                return Err(LinkError::Fatal(format!(
                    "{}: expected ws:// or wss://",
                    opts.url
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| LinkError::Fatal(format!("{}: no host", opts.url)))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| LinkError::Transient(format!("connecting to {host}:{port} timed out")))?
        .map_err(|e| transient(&format!("cannot connect to {host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if tls {
            Box::new(tls_connect(opts, &host, tcp).await?)
        } else {
            Box::new(tcp)
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_SERVER_FRAME))
            .max_frame_size(Some(MAX_SERVER_FRAME));
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, io, Some(config))
            .await
            .map_err(|e| match e {
                tungstenite::Error::Http(r) if r.status().as_u16() == 401 => {
                    LinkError::Unauthorized
                }
                tungstenite::Error::Http(r) => {
                    let said = r
                        .body()
                        .as_deref()
                        .and_then(refusal_text)
                        .map(|t| format!(": {t}"))
                        .unwrap_or_default();
                    LinkError::Fatal(format!("the server answered HTTP {}{said}", r.status()))
                }
                other => transient(&other),
            })?;
        let mut conn = Connection {
            ws,
            welcome: Welcome {
                principal: String::new(),
                role: Role::Viewer,
                read_only: true,
                now: chrono::Utc::now(),
                speed: 1.0,
                cluster: None,
            },
            last_seq: resume.map(|r| r.0).unwrap_or(0),
            last_hash: resume.map(|r| r.1).unwrap_or(ChainHash::GENESIS),
            queued: Default::default(),
            cluster: None,
            views: None,
        };
        conn.send(&ClientMessage::Hello {
            version: PROTOCOL_VERSION,
            after_seq: resume.map(|r| r.0),
        })
        .await?;
        match conn.frame().await? {
            ServerMessage::Welcome {
                version,
                principal,
                role,
                read_only,
                now,
                speed,
                cluster,
            } if version == PROTOCOL_VERSION => {
                conn.cluster = cluster.map(|c| *c);
                conn.welcome = Welcome {
                    principal,
                    role,
                    read_only,
                    now,
                    speed,
                    cluster: conn.cluster.clone(),
                };
            }
            ServerMessage::Welcome { version, .. } => {
                return Err(LinkError::Fatal(format!(
                    "the server speaks protocol version {version}; this build speaks {PROTOCOL_VERSION}"
                )));
            }
            other => return Err(unexpected(&other)),
        }
        if resume.is_some() {
            return Ok((conn, None));
        }
        match conn.frame().await? {
            ServerMessage::Snapshot { seq, hash, state } => {
                let hash = ChainHash::from_hex(&hash)
                    .ok_or_else(|| LinkError::Transient("snapshot hash is malformed".into()))?;
                if state.last_seq != seq {
                    return Err(LinkError::Transient(format!(
                        "snapshot says seq {seq} but holds state at seq {}",
                        state.last_seq
                    )));
                }
                conn.last_seq = seq;
                conn.last_hash = hash;
                Ok((conn, Some(*state)))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The last seq received and checked, and its record digest.
    pub fn position(&self) -> (u64, ChainHash) {
        (self.last_seq, self.last_hash)
    }

    /// The latest cluster view the server sent (`None`: not clustered).
    pub fn cluster(&self) -> Option<&ClusterView> {
        self.cluster.as_ref()
    }

    /// Publishes the current cluster view on `to`, and every later one.
    pub fn report_cluster(&mut self, to: watch::Sender<Option<ClusterView>>) {
        to.send_replace(self.cluster.clone());
        self.views = Some(to);
    }

    /// Sends a command; its reply arrives as [`Incoming::Reply`] with the same id.
    pub async fn command(&mut self, id: u64, command: Command) -> Result<(), LinkError> {
        self.send(&ClientMessage::Command { id, command }).await
    }

    /// The next event (checked against the chain) or reply.
    pub async fn next(&mut self) -> Result<Incoming, LinkError> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Ok(Incoming::Event(Box::new(event)));
            }
            match self.frame().await? {
                ServerMessage::Events { records } => {
                    for record in records {
                        let event = record
                            .to_event()
                            .map_err(|e| LinkError::Transient(e.to_string()))?;
                        if event.seq == self.last_seq + 1 && event.prev_hash != self.last_hash {
                            return Err(LinkError::HistoryChanged(format!(
                                "the server's record {} does not chain from seq {} as this console verified it (hash {}): its log was rewritten or replaced",
                                event.seq,
                                self.last_seq,
                                self.last_hash.to_hex()
                            )));
                        }
                        if event.seq != self.last_seq + 1 {
                            return Err(LinkError::Transient(format!(
                                "record {} does not continue the chain after seq {}",
                                event.seq, self.last_seq
                            )));
                        }
                        self.last_seq = event.seq;
                        self.last_hash = event.hash;
                        self.queued.push_back(event);
                    }
                }
                ServerMessage::Reply { id, ok, message } => {
                    return Ok(Incoming::Reply { id, ok, message });
                }
                ServerMessage::Cluster { view } => {
                    self.cluster = Some(*view);
                    if let Some(views) = &self.views {
                        views.send_replace(self.cluster.clone());
                    }
                }
                ServerMessage::Unknown => {}
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    async fn send(&mut self, message: &ClientMessage) -> Result<(), LinkError> {
        self.ws
            .send(Message::text(encode(message)))
            .await
            .map_err(|e| LinkError::Transient(format!("send failed: {e}")))
    }

    async fn frame(&mut self) -> Result<ServerMessage, LinkError> {
        loop {
            let message = tokio::time::timeout(SILENCE_LIMIT, self.ws.next())
                .await
                .map_err(|_| {
                    LinkError::Transient(format!(
                        "no word from the server in {} s",
                        SILENCE_LIMIT.as_secs()
                    ))
                })?
                .ok_or_else(|| LinkError::Transient("the server closed the connection".into()))?
                .map_err(|e| LinkError::Transient(e.to_string()))?;
            match message {
                Message::Text(t) => {
                    return decode_server(t.as_bytes())
                        .map_err(|e| LinkError::Transient(e.to_string()));
                }
                Message::Close(_) => {
                    return Err(LinkError::Transient(
                        "the server closed the connection".into(),
                    ));
                }
                _ => continue,
            }
        }
    }
}

fn unexpected(message: &ServerMessage) -> LinkError {
    match message {
        ServerMessage::Error { code, message } => match code {
            ErrorCode::VersionMismatch => LinkError::Fatal(message.clone()),
            // Its log ends before a record this console verified.
            ErrorCode::ResumeUnavailable => LinkError::HistoryChanged(format!(
                "{message}: the server's log is shorter than what this console verified"
            )),
            _ => LinkError::Transient(format!("the server ended the session: {message}")),
        },
        other => LinkError::Transient(format!(
            "unexpected message from the server: {}",
            encode(other).chars().take(80).collect::<String>()
        )),
    }
}

async fn tls_connect(
    opts: &AttachOptions,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, LinkError> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

    let fatal = |m: String| LinkError::Fatal(m);
    let ca = opts.ca.as_ref().ok_or_else(|| {
        fatal("wss:// needs --ca FILE: the certificate that signed the server's".into())
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(ca).map_err(|e| fatal(format!("{}: {e}", ca.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| fatal(format!("{}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| fatal(format!("{}: {e}", ca.display())))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fatal(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(|e| fatal(format!("{host}: {e}")))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| LinkError::Transient(format!("TLS handshake failed: {e}")))
}

/// The first line of an HTTP refusal's body, as plain printable text (it
/// comes from the server and is shown in a terminal).
fn refusal_text(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let line: String = text
        .lines()
        .next()?
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    (!line.trim().is_empty()).then_some(line)
}

/// Back-off between reconnection attempts: doubling from 250 ms to 10 s, ±12.5 % jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 250u64.saturating_mul(1 << attempt.min(6)).min(10_000);
    let jitter = rand::random::<u64>() % (base / 4 + 1);
    Duration::from_millis(base - base / 8 + jitter)
}

/// Checks that the server still holds `known`, a head this console verified
/// on an earlier run, given the server's current head `current` (from the
/// snapshot). A head behind the server's is checked by resuming after it on
/// a second, short connection: the next record must chain from it.
pub async fn check_known_head(
    opts: &AttachOptions,
    known: super::heads::Head,
    current: (u64, ChainHash),
) -> Result<(), LinkError> {
    let (seq, hash) = current;
    if known.seq > seq {
        return Err(LinkError::HistoryChanged(format!(
            "this console verified seq {} (hash {}) before, but the server's log now ends at seq {seq}",
            known.seq,
            known.hash.to_hex()
        )));
    }
    if known.seq == seq {
        return if known.hash == hash {
            Ok(())
        } else {
            Err(LinkError::HistoryChanged(format!(
                "seq {seq} now has hash {}, but this console verified {}",
                hash.to_hex(),
                known.hash.to_hex()
            )))
        };
    }
    if known.seq == 0 {
        return Ok(());
    }
    let (mut conn, _) = Connection::open(opts, Some((known.seq, known.hash))).await?;
    let checked = tokio::time::timeout(Duration::from_secs(15), conn.next()).await;
    conn.close().await;
    match checked {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            tracing::warn!(
                "could not check the head verified earlier (seq {}): the server sent nothing in 15 s",
                known.seq
            );
            Ok(())
        }
    }
}

/// Keeps a console fed: forwards checked events to `events`, sends the
/// console's commands (as the token's principal, whatever their envelope
/// says) and hands back replies, publishes the link state, and reconnects
/// after any transient fault, resuming after the last seq received.
///
/// Returns when the console goes away (`events` or `commands` closed) or on
/// a fault that retrying cannot fix.
pub async fn run_link(
    opts: AttachOptions,
    mut conn: Connection,
    events: mpsc::Sender<Event>,
    mut commands: mpsc::Receiver<CommandEnvelope>,
    link: watch::Sender<Link>,
) -> Result<(), LinkError> {
    let mut next_id = 0u64;
    loop {
        let _ = link.send(Link::Connected);
        let mut pending: HashMap<u64, oneshot::Sender<CommandReply>> = HashMap::new();
        let reason = loop {
            tokio::select! {
                incoming = conn.next() => match incoming {
                    Ok(Incoming::Event(event)) => {
                        if events.send(*event).await.is_err() {
                            conn.close().await;
                            return Ok(());
                        }
                    }
                    Ok(Incoming::Reply { id, ok, message }) => {
                        if let Some(tx) = pending.remove(&id) {
                            let _ = tx.send(if ok { Ok(message) } else { Err(message) });
                        }
                    }
                    Err(e) => break e,
                },
                envelope = commands.recv() => {
                    let Some(envelope) = envelope else {
                        conn.close().await;
                        return Ok(());
                    };
                    next_id += 1;
                    if let Some(tx) = envelope.reply {
                        pending.insert(next_id, tx);
                    }
                    if let Err(e) = conn.command(next_id, envelope.command).await {
                        break e;
                    }
                }
            }
        };
        if let LinkError::HistoryChanged(detail) = &reason {
            let _ = link.send(Link::HistoryChanged {
                detail: detail.clone(),
            });
            return Err(reason);
        }
        if let LinkError::Unauthorized | LinkError::Fatal(_) = reason {
            return Err(reason);
        }
        for (_, tx) in pending.drain() {
            let _ = tx.send(Err(
                "the connection dropped before the server answered; the events pane shows whether it was applied".into(),
            ));
        }
        let since = chrono::Utc::now();
        tracing::warn!("disconnected: {reason}");
        let _ = link.send(Link::Disconnected {
            since,
            reason: reason.to_string(),
        });
        let position = conn.position();
        let views = conn.views.take();
        drop(conn);
        let mut attempt = 0u32;
        conn = loop {
            let wait = tokio::time::sleep(backoff(attempt));
            tokio::pin!(wait);
            // While waiting, commands are answered at once rather than queued:
            // an approval should not fire minutes later on reconnect.
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    envelope = commands.recv() => match envelope {
                        Some(envelope) => {
                            if let Some(tx) = envelope.reply {
                                let _ = tx.send(Err(format!(
                                    "not sent: disconnected since {}",
                                    crate::event::rfc3339(&since)
                                )));
                            }
                        }
                        None => return Ok(()),
                    },
                }
            }
            if events.is_closed() {
                return Ok(());
            }
            match Connection::open(&opts, Some(position)).await {
                Ok((mut c, _)) => {
                    if let Some(views) = &views {
                        c.report_cluster(views.clone());
                    }
                    break c;
                }
                Err(LinkError::HistoryChanged(detail)) => {
                    let _ = link.send(Link::HistoryChanged {
                        detail: detail.clone(),
                    });
                    return Err(LinkError::HistoryChanged(detail));
                }
                Err(e @ (LinkError::Unauthorized | LinkError::Fatal(_))) => return Err(e),
                Err(e) => {
                    tracing::info!("reconnect attempt {} failed: {e}", attempt + 1);
                    let _ = link.send(Link::Disconnected {
                        since,
                        reason: e.to_string(),
                    });
                    attempt = attempt.saturating_add(1);
                }
            }
        };
        tracing::info!("reconnected; resuming after seq {}", position.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_body_loses_terminal_escapes_and_is_bounded() {
        let body = b"refused \x1b]52;c;aGk=\x07by x\x1b[2J\nsecond line";
        let text = refusal_text(body).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(text.starts_with("refused ") && text.contains("by x"));
        assert!(!text.contains("second"));
        assert_eq!(refusal_text(&[b'a'; 10_000]).unwrap().len(), 300);
        assert_eq!(refusal_text(b""), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        // Each wait is its base (250 ms doubling, capped at 10 s) within ±12.5 %.
        let within = |d: Duration, base: u64| {
            let ms = d.as_millis() as u64;
            (base - base / 8..=base + base / 8).contains(&ms)
        };
        for _ in 0..200 {
            assert!(within(backoff(0), 250));
            assert!(within(backoff(3), 2_000));
            for attempt in [6, 10, 30, u32::MAX] {
                assert!(within(backoff(attempt), 10_000));
            }
        }
    }
}
