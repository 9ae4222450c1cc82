//! Read access to a log held by another process, over a Unix socket.
//!
//! sled lets one process open a database, so the process that holds the data
//! directory serves it on `DIR/control.sock` (mode 0600). The protocol is one
//! JSON request line per connection, answered by JSON lines:
//!
//! - `{"op":"scan","from":N,"follow":false}` → `{"record":{"seq":N,"rec":HEX}}`
//!   per stored record (its exact bytes, so the reader checks the digest itself),
//!   then `{"end":{"last_seq":N}}`; with `"follow":true` it streams until the
//!   server stops.
//! - `{"op":"stats"}` → `{"stats":{...}}` ([`LogStats`]).
//! - `{"op":"verify","checkpoint":[SEQ,"HEX"]}` (checkpoint optional) →
//!   `{"verify":{...}}` ([`VerifyReport`]).
//! - `{"op":"last_seq"}` → `{"last_seq":{"last_seq":N}}`.
//! - any failure → `{"error":{"message":"..."}}`.
//!
//! The server only reads; nothing a client sends can change the log.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, Lines};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::{CONTROL_SOCKET, EventLog, LogStats, StoreError, VerifyReport};
use crate::event::Event;

/// Longest request line the server reads.
const MAX_REQUEST: u64 = 64 * 1024;
/// Records written between flushes while catching up.
const FLUSH_EVERY: usize = 256;

/// A request to the control server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Records from `from`; with `follow`, then live ones.
    Scan { from: u64, follow: bool },
    /// [`LogStats`] of the log.
    Stats,
    /// Runs [`EventLog::verify_with`], held also to a checkpoint (seq, hex hash) if given.
    Verify {
        #[serde(default)]
        checkpoint: Option<(u64, String)>,
    },
    /// The durable end, cheaply.
    LastSeq,
}

/// One line of a control server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlReply {
    /// A stored record: its seq and exact bytes as hex.
    Record { seq: u64, rec: String },
    /// End of a non-following scan.
    End { last_seq: u64 },
    /// Answer to `stats`.
    Stats(LogStats),
    /// Answer to `verify`.
    Verify(VerifyReport),
    /// Answer to `last_seq`.
    LastSeq { last_seq: u64 },
    /// The request failed.
    Error { message: String },
}

/// Path of the control socket for a data directory.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(CONTROL_SOCKET)
}

/// Serves `log` on `DIR/control.sock` until `cancel` fires.
pub async fn serve_control(
    log: EventLog,
    dir: &Path,
    cancel: CancellationToken,
) -> Result<(), StoreError> {
    let path = socket_path(dir);
    let err = |message: String| StoreError::Control {
        path: path.clone(),
        message,
    };
    match std::fs::symlink_metadata(&path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(err(
                    "exists and is not a socket; refusing to replace it".into()
                ));
            }
            // We hold the log, so no other live server can own this socket.
            std::fs::remove_file(&path)
                .map_err(|e| err(format!("cannot remove stale socket: {e}")))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(format!("cannot inspect: {e}"))),
    }
    let listener = UnixListener::bind(&path).map_err(|e| err(format!("cannot listen: {e}")))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err(format!("cannot restrict permissions: {e}")))?;
    }
    tracing::info!(socket = %path.display(), "event log control server listening");
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let log = log.clone();
                    let cancel = cancel.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, log, cancel).await {
                            tracing::debug!(error = %e, "control connection ended");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "control server accept failed"),
            },
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    Ok(())
}

async fn handle(
    stream: UnixStream,
    log: EventLog,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let (read, write) = stream.into_split();
    let mut out = BufWriter::new(write);
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let request: ControlRequest = match serde_json::from_str(line.trim()) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("bad request: {e}");
            return reply(&mut out, &ControlReply::Error { message }, true).await;
        }
    };
    match request {
        ControlRequest::LastSeq => {
            let last_seq = log.last_seq();
            reply(&mut out, &ControlReply::LastSeq { last_seq }, true).await
        }
        ControlRequest::Stats => {
            let log2 = log.clone();
            let answer = match tokio::task::spawn_blocking(move || log2.stats()).await {
                Ok(Ok(stats)) => ControlReply::Stats(stats),
                Ok(Err(e)) => ControlReply::Error {
                    message: e.to_string(),
                },
                Err(e) => ControlReply::Error {
                    message: e.to_string(),
                },
            };
            reply(&mut out, &answer, true).await
        }
        ControlRequest::Verify { checkpoint } => {
            let log2 = log.clone();
            let checkpoint = match checkpoint {
                Some((seq, hex)) => match crate::event::ChainHash::from_hex(&hex) {
                    Some(hash) => Some(super::Anchor { seq, hash }),
                    None => {
                        let answer = ControlReply::Error {
                            message: format!("checkpoint hash {hex:?} is not 64 hex digits"),
                        };
                        return reply(&mut out, &answer, true).await;
                    }
                },
                None => None,
            };
            let verify = move || log2.verify_with(checkpoint.as_ref());
            let answer = match tokio::task::spawn_blocking(verify).await {
                Ok(Ok(report)) => ControlReply::Verify(report),
                Ok(Err(e)) => ControlReply::Error {
                    message: e.to_string(),
                },
                Err(e) => ControlReply::Error {
                    message: e.to_string(),
                },
            };
            reply(&mut out, &answer, true).await
        }
        ControlRequest::Scan { from, follow } => {
            let end = if follow { u64::MAX } else { log.last_seq() };
            let mut sub = log.subscribe(from);
            let mut unflushed = 0usize;
            while sub.next_seq() <= end {
                let item = tokio::select! {
                    _ = cancel.cancelled() => break,
                    item = sub.next_raw() => item,
                };
                let answer = match item {
                    None => break,
                    Some(Ok((seq, bytes))) => ControlReply::Record {
                        seq,
                        rec: hex::encode(bytes),
                    },
                    Some(Err(e)) => ControlReply::Error {
                        message: e.to_string(),
                    },
                };
                unflushed += 1;
                // Flush when caught up so a follower sees events as they land.
                let flush = unflushed >= FLUSH_EVERY || sub.next_seq() > log.last_seq();
                reply(&mut out, &answer, flush).await?;
                if flush {
                    unflushed = 0;
                }
            }
            let last_seq = log.last_seq();
            reply(&mut out, &ControlReply::End { last_seq }, true).await
        }
    }
}

async fn reply(
    out: &mut BufWriter<tokio::net::unix::OwnedWriteHalf>,
    answer: &ControlReply,
    flush: bool,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(answer).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line).await?;
    if flush {
        out.flush().await?;
    }
    Ok(())
}

/// Client of another process's control server.
#[derive(Debug, Clone)]
pub struct ControlClient {
    path: PathBuf,
}

impl ControlClient {
    /// A client for the server of data directory `dir`; checks that it answers.
    pub async fn connect(dir: &Path) -> Result<ControlClient, StoreError> {
        let client = ControlClient {
            path: socket_path(dir),
        };
        drop(client.stream().await?);
        Ok(client)
    }

    /// The socket this client talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, message: impl Into<String>) -> StoreError {
        StoreError::Control {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    async fn stream(&self) -> Result<UnixStream, StoreError> {
        UnixStream::connect(&self.path)
            .await
            .map_err(|e| self.err(format!("cannot connect: {e}")))
    }

    async fn request(&self, request: &ControlRequest) -> Result<RemoteLines, StoreError> {
        let stream = self.stream().await?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_vec(request).map_err(|e| self.err(e.to_string()))?;
        line.push(b'\n');
        write
            .write_all(&line)
            .await
            .map_err(|e| self.err(format!("cannot send request: {e}")))?;
        Ok(RemoteLines {
            client: self.clone(),
            lines: BufReader::new(read).lines(),
            _write: write,
        })
    }

    async fn single(&self, request: &ControlRequest) -> Result<ControlReply, StoreError> {
        let mut lines = self.request(request).await?;
        match lines.next_reply().await? {
            Some(ControlReply::Error { message }) => Err(self.err(message)),
            Some(reply) => Ok(reply),
            None => Err(self.err("closed without an answer")),
        }
    }

    /// [`LogStats`] from the server.
    pub async fn stats(&self) -> Result<LogStats, StoreError> {
        match self.single(&ControlRequest::Stats).await? {
            ControlReply::Stats(stats) => Ok(stats),
            other => Err(self.err(format!("unexpected answer to stats: {other:?}"))),
        }
    }

    /// The server's durable end.
    pub async fn last_seq(&self) -> Result<u64, StoreError> {
        match self.single(&ControlRequest::LastSeq).await? {
            ControlReply::LastSeq { last_seq } => Ok(last_seq),
            other => Err(self.err(format!("unexpected answer to last_seq: {other:?}"))),
        }
    }

    /// [`VerifyReport`] from the server, which walks the chain itself.
    pub async fn verify(
        &self,
        checkpoint: Option<&super::Anchor>,
    ) -> Result<VerifyReport, StoreError> {
        let checkpoint = checkpoint.map(|c| (c.seq, c.hash.to_hex()));
        match self.single(&ControlRequest::Verify { checkpoint }).await? {
            ControlReply::Verify(report) => Ok(report),
            other => Err(self.err(format!("unexpected answer to verify: {other:?}"))),
        }
    }

    /// Records from `from`; with `follow`, live ones after them.
    pub async fn scan(&self, from: u64, follow: bool) -> Result<RemoteScan, StoreError> {
        let lines = self.request(&ControlRequest::Scan { from, follow }).await?;
        Ok(RemoteScan {
            lines,
            done: false,
            last_seq: None,
        })
    }
}

struct RemoteLines {
    client: ControlClient,
    lines: Lines<BufReader<OwnedReadHalf>>,
    // Kept open: closing our half early would look like a disconnect.
    _write: tokio::net::unix::OwnedWriteHalf,
}

impl RemoteLines {
    async fn next_reply(&mut self) -> Result<Option<ControlReply>, StoreError> {
        let line = self
            .lines
            .next_line()
            .await
            .map_err(|e| self.client.err(format!("read failed: {e}")))?;
        match line {
            None => Ok(None),
            Some(line) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| self.client.err(format!("bad answer line: {e}"))),
        }
    }
}

/// Events streamed from a control server.
pub struct RemoteScan {
    lines: RemoteLines,
    done: bool,
    last_seq: Option<u64>,
}

impl RemoteScan {
    /// The next event; `None` at the end of the scan or when the server goes away.
    pub async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        if self.done {
            return None;
        }
        let reply = match self.lines.next_reply().await {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let client = &self.lines.client;
        match reply {
            ControlReply::Record { seq, rec } => Some(decode_remote(client, seq, &rec)),
            ControlReply::End { last_seq } => {
                self.done = true;
                self.last_seq = Some(last_seq);
                None
            }
            ControlReply::Error { message } => Some(Err(client.err(message))),
            other => Some(Err(
                client.err(format!("unexpected answer to scan: {other:?}"))
            )),
        }
    }

    /// Whether the server ended the scan cleanly (rather than going away).
    pub fn ended_cleanly(&self) -> bool {
        self.last_seq.is_some()
    }
}

fn decode_remote(client: &ControlClient, seq: u64, rec: &str) -> Result<Event, StoreError> {
    let bytes =
        hex::decode(rec).map_err(|e| client.err(format!("record {seq} is not hex: {e}")))?;
    Event::decode(&bytes).map_err(|error| StoreError::Decode {
        dir: client
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        seq,
        error,
    })
}
