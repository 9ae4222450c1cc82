//! The event log on sled: single writer with group commit, hash chain, scan,
//! subscribe, verify and state snapshots.
//!
//! Layout of the data directory (sled lives here and nowhere else in the crate):
//! - tree `events`: key = seq as 8-byte big-endian, value = the exact bytes from
//!   [`Event::seal`] (32-byte digest ‖ canonical JSON body);
//! - tree `meta`: the marker saying this is a ShieldOps event log and its store
//!   format version;
//! - tree `snapshots`: seq → opaque state snapshot bytes; only the newest
//!   [`KEEP_SNAPSHOTS`] are kept.
//!
//! sled lets one process open a database; [`control`] serves the log to other
//! processes over a Unix socket and [`cli`] uses it when the directory is locked.

pub mod cli;
pub mod control;
mod subscribe;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::event::{ChainHash, DecodeError, Event, NewEvent};

pub use control::serve_control;
pub use subscribe::Subscription;

/// Version of the on-disk store layout this build writes and reads.
pub const STORE_FORMAT_VERSION: u64 = 1;
/// How many state snapshots are kept; older ones are deleted on save.
pub const KEEP_SNAPSHOTS: usize = 3;
/// Name of the control socket inside the data directory.
pub const CONTROL_SOCKET: &str = "control.sock";

const MAGIC: &[u8] = b"shieldops-eventlog";
const META_MAGIC: &[u8] = b"magic";
const META_VERSION: &[u8] = b"store_format";
const TREE_EVENTS: &[u8] = b"events";
const TREE_META: &[u8] = b"meta";
const TREE_SNAPSHOTS: &[u8] = b"snapshots";
/// Entries sled itself keeps in a database directory.
const SLED_FILES: &[&str] = &["conf", "db", "blobs", "heap"];
/// Live batches buffered per subscriber before it lags and rescans from sled.
const LIVE_CAPACITY: usize = 1024;
/// Append requests that may wait for the writer before appenders are held back.
const QUEUE_CAPACITY: usize = 4096;

/// Errors from the event log. Each names the data directory it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Anything without a more specific variant.
    #[error("{0}")]
    Other(String),
    /// The storage engine failed.
    #[error("event log {dir}: storage error: {message}")]
    Storage { dir: PathBuf, message: String },
    /// The directory holds something that is not a ShieldOps event log.
    #[error("{dir} is not a ShieldOps event log: {reason}")]
    Foreign { dir: PathBuf, reason: String },
    /// The log was written by a newer build.
    #[error(
        "event log {dir} uses store format {found}; this build reads up to {STORE_FORMAT_VERSION} (upgrade shieldops)"
    )]
    NewerFormat { dir: PathBuf, found: u64 },
    /// Another process has the log open.
    #[error("event log {dir} is locked by another process")]
    Locked { dir: PathBuf },
    /// There is no log at the path and it was not to be created.
    #[error("no event log at {dir}")]
    NotFound { dir: PathBuf },
    /// The storage files are damaged.
    #[error("event log {dir} is damaged: {reason}")]
    Corrupt { dir: PathBuf, reason: String },
    /// A stored record could not be decoded.
    #[error("event log {dir}: record at seq {seq} cannot be read: {error}")]
    Decode {
        dir: PathBuf,
        seq: u64,
        error: DecodeError,
    },
    /// The log was closed (or its writer stopped after a storage error).
    #[error("event log {dir} is closed")]
    Closed { dir: PathBuf },
    /// A caller passed something the log cannot accept.
    #[error("event log {dir}: {message}")]
    Invalid { dir: PathBuf, message: String },
    /// The control socket of another process failed or answered nonsense.
    #[error("control socket {path}: {message}")]
    Control { path: PathBuf, message: String },
}

/// Outcome of `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Records checked (all of them when the chain is intact; those before the first bad one otherwise).
    pub checked: u64,
    /// The first bad seq and why.
    pub first_bad: Option<(u64, String)>,
}

/// Summary figures about a log, as `shieldops log stats` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStats {
    /// Number of records.
    pub events: u64,
    /// seq of the last durable record (0 = empty).
    pub last_seq: u64,
    /// Time of the first record.
    pub first_at: Option<DateTime<Utc>>,
    /// Time of the last record.
    pub last_at: Option<DateTime<Utc>>,
    /// Records per kind name.
    pub per_kind: BTreeMap<String, u64>,
    /// Bytes the storage files take on disk.
    pub size_on_disk: u64,
}

/// How to open a log.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Create the directory and an empty log if there is none.
    pub create: bool,
    /// How long to keep retrying while another process holds the lock
    /// (a `shieldops log` reader holds it only briefly).
    pub lock_wait: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            create: true,
            lock_wait: Duration::from_secs(3),
        }
    }
}

/// A batch of events the writer made durable, shared with live subscribers.
type LiveBatch = Arc<Vec<Event>>;

/// Handle to the event log; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    snapshots: sled::Tree,
    /// seq of the last record that is durable (flushed); written only by the writer.
    durable: Arc<AtomicU64>,
    groups: Arc<AtomicU64>,
    requests: Mutex<Option<mpsc::Sender<writer::Request>>>,
    live: Mutex<Option<broadcast::Sender<LiveBatch>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the last request sender stops the writer; joining it makes
        // sure sled's file lock is released when the last handle goes away.
        self.requests.lock().map(|mut r| r.take()).ok();
        if let Ok(mut w) = self.writer.lock()
            && let Some(handle) = w.take()
        {
            let _ = handle.join();
        }
    }
}

impl EventLog {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> Result<EventLog, StoreError> {
        Self::open_with(dir, &OpenOptions::default())
    }

    /// Opens the log in `dir` with explicit options.
    pub fn open_with(dir: &Path, opts: &OpenOptions) -> Result<EventLog, StoreError> {
        Self::open_gated(dir, opts, None)
    }

    fn open_gated(
        dir: &Path,
        opts: &OpenOptions,
        gate: Option<std::sync::mpsc::Receiver<()>>,
    ) -> Result<EventLog, StoreError> {
        let dir = dir.to_path_buf();
        inspect_dir(&dir, opts.create)?;
        let started = Instant::now();
        let db = loop {
            match open_sled(&dir) {
                Err(StoreError::Locked { .. }) if started.elapsed() < opts.lock_wait => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let (events, _meta, snapshots) = init_trees(&dir, &db)?;
        let (last_seq, prev_hash) = tail_of(&dir, &events)?;
        let durable = Arc::new(AtomicU64::new(last_seq));
        let groups = Arc::new(AtomicU64::new(0));
        let (req_tx, req_rx) = mpsc::channel(QUEUE_CAPACITY);
        let (live_tx, _) = broadcast::channel(LIVE_CAPACITY);
        let state = writer::Writer {
            dir: dir.clone(),
            db: db.clone(),
            events: events.clone(),
            durable: durable.clone(),
            live: live_tx.clone(),
            next_seq: last_seq + 1,
            prev_hash,
            groups: groups.clone(),
            gate,
        };
        let handle = std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || state.run(req_rx))
            .map_err(|e| storage(&dir, format!("cannot start the writer thread: {e}")))?;
        Ok(EventLog {
            inner: Arc::new(Inner {
                dir,
                db,
                events,
                snapshots,
                durable,
                groups,
                requests: Mutex::new(Some(req_tx)),
                live: Mutex::new(Some(live_tx)),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Appends one event; returns once it is durable.
    pub async fn append(&self, draft: NewEvent) -> Result<Event, StoreError> {
        let mut events = self.submit(vec![draft]).await?;
        events.pop().ok_or_else(|| self.closed())
    }

    /// Appends events atomically with consecutive seqs; returns once all are durable.
    pub async fn append_many(&self, drafts: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(drafts).await
    }

    async fn submit(&self, drafts: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let tx = self
            .inner
            .requests
            .lock()
            .map_err(|_| self.closed())?
            .clone()
            .ok_or_else(|| self.closed())?;
        let (ack, wait) = oneshot::channel();
        tx.send(writer::Request::Append { drafts, ack })
            .await
            .map_err(|_| self.closed())?;
        wait.await.map_err(|_| self.closed())?
    }

    fn closed(&self) -> StoreError {
        StoreError::Closed {
            dir: self.inner.dir.clone(),
        }
    }

    /// Group commits (one sled batch and one flush each) since this handle opened.
    pub fn groups_committed(&self) -> u64 {
        self.inner.groups.load(Ordering::Relaxed)
    }

    /// seq of the last durable event (0 = empty).
    pub fn last_seq(&self) -> u64 {
        self.inner.durable.load(Ordering::Acquire)
    }

    /// Events from `from` (inclusive) to the current end.
    pub fn scan(&self, from: u64) -> impl Iterator<Item = Result<Event, StoreError>> + use<> {
        let dir = self.inner.dir.clone();
        self.scan_raw(from).map(move |item| {
            let (seq, bytes) = item?;
            Event::decode(&bytes).map_err(|error| StoreError::Decode {
                dir: dir.clone(),
                seq,
                error,
            })
        })
    }

    /// Stored records (seq, exact bytes) from `from` to the current durable end.
    pub fn scan_raw(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, Vec<u8>), StoreError>> + use<> {
        raw_range(&self.inner.dir, &self.inner.events, from, self.last_seq())
    }

    /// Replay from `from`, then live, with no gap and no duplicate.
    pub fn subscribe(&self, from: u64) -> Subscription {
        // The receiver must exist before the durable end is first read: every
        // batch made durable after that read is then certain to reach it.
        let rx = self
            .inner
            .live
            .lock()
            .ok()
            .and_then(|live| live.as_ref().map(broadcast::Sender::subscribe));
        Subscription::new(self.clone(), from.max(1), rx)
    }

    /// Walks the chain; names the first bad seq.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let end = self.last_seq();
        let mut checked = 0u64;
        let mut expected = 1u64;
        let mut prev = ChainHash::GENESIS;
        let bad = |seq: u64, checked: u64, reason: String| {
            Ok(VerifyReport {
                checked,
                first_bad: Some((seq, reason)),
            })
        };
        for item in self.inner.events.iter() {
            let (key, value) = item.map_err(|e| sled_error(&self.inner.dir, e))?;
            let Ok(key) = <[u8; 8]>::try_from(key.as_ref()) else {
                return bad(
                    expected,
                    checked,
                    format!(
                        "a key of {} bytes sits where seq {expected} should",
                        key.len()
                    ),
                );
            };
            let seq = u64::from_be_bytes(key);
            if seq > end {
                break;
            }
            if seq != expected {
                return bad(
                    expected,
                    checked,
                    format!("seq {expected} is missing (the next record is seq {seq})"),
                );
            }
            if !Event::check(&value) {
                return bad(
                    seq,
                    checked,
                    "stored digest does not match the record body".into(),
                );
            }
            let event = match Event::decode(&value) {
                Ok(event) => event,
                Err(e) => return bad(seq, checked, format!("record cannot be decoded: {e}")),
            };
            if event.seq != seq {
                return bad(
                    seq,
                    checked,
                    format!(
                        "record body says seq {} but is stored at seq {seq}",
                        event.seq
                    ),
                );
            }
            if event.prev_hash != prev {
                return bad(
                    seq,
                    checked,
                    format!(
                        "prev_hash {} does not match the previous record's hash {}",
                        event.prev_hash.to_hex(),
                        prev.to_hex()
                    ),
                );
            }
            prev = event.hash;
            checked += 1;
            expected += 1;
        }
        if checked < end {
            return bad(
                expected,
                checked,
                format!("seq {expected} is missing (the log should end at seq {end})"),
            );
        }
        Ok(VerifyReport {
            checked,
            first_bad: None,
        })
    }

    /// Counts records per kind and reads the first and last times.
    pub fn stats(&self) -> Result<LogStats, StoreError> {
        #[derive(Deserialize)]
        struct KindOnly<'a> {
            #[serde(borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        let dir = &self.inner.dir;
        let mut stats = LogStats {
            events: 0,
            last_seq: self.last_seq(),
            first_at: None,
            last_at: None,
            per_kind: BTreeMap::new(),
            size_on_disk: self.size_on_disk()?,
        };
        let mut last = None;
        for item in self.scan_raw(1) {
            let (seq, bytes) = item?;
            let decode_err = |error| StoreError::Decode {
                dir: dir.clone(),
                seq,
                error,
            };
            if stats.first_at.is_none() {
                stats.first_at = Some(Event::decode(&bytes).map_err(decode_err)?.at);
            }
            let body = bytes
                .get(32..)
                .ok_or(DecodeError::Truncated(bytes.len()))
                .map_err(decode_err)?;
            let kind: KindOnly = serde_json::from_slice(body)
                .map_err(|e| decode_err(DecodeError::Json(e.to_string())))?;
            *stats.per_kind.entry(kind.kind.into_owned()).or_default() += 1;
            stats.events += 1;
            last = Some((seq, bytes));
        }
        if let Some((seq, bytes)) = last {
            let event = Event::decode(&bytes).map_err(|error| StoreError::Decode {
                dir: dir.clone(),
                seq,
                error,
            })?;
            stats.last_at = Some(event.at);
        }
        Ok(stats)
    }

    /// Bytes the storage files take on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner
            .db
            .size_on_disk()
            .map_err(|e| sled_error(&self.inner.dir, e))
    }

    /// Stores a state snapshot taken at `seq`.
    pub fn save_snapshot(&self, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = &self.inner.dir;
        let last = self.last_seq();
        if seq > last {
            return Err(StoreError::Invalid {
                dir: dir.clone(),
                message: format!("snapshot at seq {seq} is past the end of the log (seq {last})"),
            });
        }
        let snaps = &self.inner.snapshots;
        snaps
            .insert(seq.to_be_bytes(), bytes)
            .map_err(|e| sled_error(dir, e))?;
        let keys: Vec<sled::IVec> = snaps
            .iter()
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| sled_error(dir, e))?;
        let excess = keys.len().saturating_sub(KEEP_SNAPSHOTS);
        for key in &keys[..excess] {
            snaps.remove(key).map_err(|e| sled_error(dir, e))?;
        }
        self.inner.db.flush().map_err(|e| sled_error(dir, e))?;
        Ok(())
    }

    /// The newest snapshot, if any.
    pub fn latest_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let dir = &self.inner.dir;
        let Some((key, value)) = self
            .inner
            .snapshots
            .last()
            .map_err(|e| sled_error(dir, e))?
        else {
            return Ok(None);
        };
        let seq = <[u8; 8]>::try_from(key.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt {
                dir: dir.clone(),
                reason: format!("snapshot key of {} bytes", key.len()),
            })?;
        Ok(Some((seq, value.to_vec())))
    }

    /// Flushes and stops the writer; later appends fail with [`StoreError::Closed`].
    pub async fn close(&self) -> Result<(), StoreError> {
        let tx = self.inner.requests.lock().ok().and_then(|mut r| r.take());
        let mut result = Ok(());
        if let Some(tx) = tx {
            let (done, wait) = oneshot::channel();
            if tx.send(writer::Request::Close { done }).await.is_ok() {
                result = wait.await.unwrap_or(Ok(()));
            }
        }
        let handle = self.inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            // The writer has answered `Close`, so it is already on its way out.
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        // With the writer's sender gone too, live subscribers see the end.
        self.inner.live.lock().ok().and_then(|mut l| l.take());
        result?;
        self.inner
            .db
            .flush()
            .map(|_| ())
            .map_err(|e| sled_error(&self.inner.dir, e))
    }
}

fn storage(dir: &Path, message: String) -> StoreError {
    StoreError::Storage {
        dir: dir.to_path_buf(),
        message,
    }
}

fn sled_error(dir: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { at, .. } => StoreError::Corrupt {
            dir: dir.to_path_buf(),
            reason: match at {
                Some(at) => format!("storage engine found corruption at {at:?}"),
                None => "storage engine found corruption".into(),
            },
        },
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked {
                dir: dir.to_path_buf(),
            }
        }
        other => storage(dir, other.to_string()),
    }
}

/// Refuses directories that hold something other than a log before sled touches them.
fn inspect_dir(dir: &Path, create: bool) -> Result<(), StoreError> {
    let foreign = |reason: String| StoreError::Foreign {
        dir: dir.to_path_buf(),
        reason,
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Err(StoreError::NotFound {
                    dir: dir.to_path_buf(),
                });
            }
            create_private_dir(dir).map_err(|e| storage(dir, format!("cannot create: {e}")))?;
            return Ok(());
        }
        Err(e) => return Err(storage(dir, format!("cannot read: {e}"))),
        Ok(meta) if !meta.is_dir() => return Err(foreign("it is not a directory".into())),
        Ok(_) => {}
    }
    let entries = std::fs::read_dir(dir).map_err(|e| storage(dir, format!("cannot list: {e}")))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| storage(dir, format!("cannot list: {e}")))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    let has_sled = dir.join("conf").is_file() && dir.join("db").is_file();
    if !has_sled {
        let others: Vec<&String> = names.iter().filter(|n| !is_ours_or_incidental(n)).collect();
        if let Some(first) = others.first() {
            return Err(foreign(format!(
                "it holds other files ({first}{}) and no event log",
                if others.len() > 1 {
                    format!(" and {} more", others.len() - 1)
                } else {
                    String::new()
                }
            )));
        }
        if !create {
            return Err(StoreError::NotFound {
                dir: dir.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Names that may sit in a data directory beside (or before) the log itself.
fn is_ours_or_incidental(name: &str) -> bool {
    SLED_FILES.contains(&name)
        || name.starts_with("snap.")
        || name == CONTROL_SOCKET
        || name.starts_with('.')
        || name == "logs"
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn open_sled(dir: &Path) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        // The writer flushes every group itself; the background flusher would
        // only add contention.
        .flush_every_ms(None);
    // sled may panic on some damaged files; a damaged log must be an error.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(match sled_error(dir, e) {
            StoreError::Storage { dir, message } => StoreError::Corrupt {
                dir,
                reason: format!("cannot open the storage files: {message}"),
            },
            other => other,
        }),
        Err(panic) => Err(StoreError::Corrupt {
            dir: dir.to_path_buf(),
            reason: format!(
                "the storage engine failed while opening it: {}",
                panic_message(&panic)
            ),
        }),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Checks (or, for a fresh database, writes) the marker and opens the trees.
fn init_trees(
    dir: &Path,
    db: &sled::Db,
) -> Result<(sled::Tree, sled::Tree, sled::Tree), StoreError> {
    let se = |e| sled_error(dir, e);
    let foreign = |reason: String| StoreError::Foreign {
        dir: dir.to_path_buf(),
        reason,
    };
    let names = db.tree_names();
    let has_meta = names.iter().any(|n| n.as_ref() == TREE_META);
    if has_meta {
        let meta = db.open_tree(TREE_META).map_err(se)?;
        match meta.get(META_MAGIC).map_err(se)? {
            Some(m) if m.as_ref() == MAGIC => {}
            _ => {
                return Err(foreign(
                    "a sled database without the ShieldOps marker".into(),
                ));
            }
        }
        let version = meta
            .get(META_VERSION)
            .map_err(se)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt {
                dir: dir.to_path_buf(),
                reason: "the store format version is missing or malformed".into(),
            })?;
        if version > STORE_FORMAT_VERSION {
            return Err(StoreError::NewerFormat {
                dir: dir.to_path_buf(),
                found: version,
            });
        }
        let events = db.open_tree(TREE_EVENTS).map_err(se)?;
        let snapshots = db.open_tree(TREE_SNAPSHOTS).map_err(se)?;
        return Ok((events, meta, snapshots));
    }
    // No marker: only a database that is still entirely empty may become ours
    // (a crash between sled creating its files and the marker being written).
    let empty = names.len() <= 1 && db.is_empty();
    if !empty {
        let trees: Vec<String> = names
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        return Err(foreign(format!(
            "a sled database that is not a ShieldOps event log (trees: {})",
            trees.join(", ")
        )));
    }
    let meta = db.open_tree(TREE_META).map_err(se)?;
    let events = db.open_tree(TREE_EVENTS).map_err(se)?;
    let snapshots = db.open_tree(TREE_SNAPSHOTS).map_err(se)?;
    meta.insert(META_VERSION, &STORE_FORMAT_VERSION.to_be_bytes())
        .map_err(se)?;
    // The marker goes last so a half-initialised database is still "empty".
    meta.insert(META_MAGIC, MAGIC).map_err(se)?;
    db.flush().map_err(se)?;
    Ok((events, meta, snapshots))
}

/// seq and digest of the last stored record, where the writer continues.
fn tail_of(dir: &Path, events: &sled::Tree) -> Result<(u64, ChainHash), StoreError> {
    let Some((key, value)) = events.last().map_err(|e| sled_error(dir, e))? else {
        return Ok((0, ChainHash::GENESIS));
    };
    let seq = <[u8; 8]>::try_from(key.as_ref())
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            dir: dir.to_path_buf(),
            reason: format!("the last key is {} bytes, not an 8-byte seq", key.len()),
        })?;
    let digest: [u8; 32] = value
        .get(..32)
        .and_then(|d| d.try_into().ok())
        .ok_or_else(|| StoreError::Decode {
            dir: dir.to_path_buf(),
            seq,
            error: DecodeError::Truncated(value.len()),
        })?;
    Ok((seq, ChainHash(digest)))
}

/// Raw records in `from..=end`, with keys checked to be 8-byte seqs.
fn raw_range(
    dir: &Path,
    events: &sled::Tree,
    from: u64,
    end: u64,
) -> impl Iterator<Item = Result<(u64, Vec<u8>), StoreError>> + use<> {
    let dir = dir.to_path_buf();
    let from = from.max(1);
    let iter = if from <= end {
        Some(events.range(from.to_be_bytes()..=end.to_be_bytes()))
    } else {
        None
    };
    iter.into_iter().flatten().map(move |item| {
        let (key, value) = item.map_err(|e| sled_error(&dir, e))?;
        let seq = <[u8; 8]>::try_from(key.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt {
                dir: dir.clone(),
                reason: format!("a key of {} bytes in the events tree", key.len()),
            })?;
        Ok((seq, value.to_vec()))
    })
}

#[cfg(test)]
mod tests;
