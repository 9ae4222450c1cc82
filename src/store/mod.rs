//! The event log on sled: single writer with group commit, hash chain, scan,
//! subscribe, verify and state snapshots.
//!
//! Layout of the data directory (sled lives here and nowhere else in the crate):
//! - tree `events`: key = seq as 8-byte big-endian, value = the exact bytes from
//!   [`Event::seal`] (32-byte digest ‖ canonical JSON body);
//! - tree `meta`: the marker saying this is a ShieldOps event log and its store
//!   format version;
//! - tree `snapshots`: seq → a reference (length, SHA-256) to the state
//!   snapshot file `state/<seq>.state`; only the newest [`KEEP_SNAPSHOTS`] are
//!   kept (see [`snapshots`]);
//! - file `head.anchor` (outside sled): the last acknowledged (seq, hash), see
//!   [`anchor`]. A log shorter than its anchor, or one whose record at the
//!   anchor's seq has another hash, is damaged.
//!
//! Readers never write: [`EventLog::open_read_only`] copies the storage files
//! into a private temporary directory and opens the copy, because sled repairs
//! what it opens. A writer opens only a log that verifies up to its anchor
//! (from the newest state snapshot on); a damaged log is refused, and
//! `shieldops log salvage` copies its verified prefix elsewhere.
//!
//! sled lets one process open a database; [`control`] serves the log to other
//! processes over a Unix socket and [`cli`] uses it when the directory is locked.

mod anchor;
pub mod cli;
pub mod control;
mod readonly;
mod settings;
mod snapshots;
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

pub use anchor::{ANCHOR_FILE, Anchor};
pub use control::serve_control;
pub use settings::{CheckpointConfig, StoreConfig};
pub use subscribe::Subscription;
pub use writer::Replicate;

/// Version of the on-disk store layout this build writes and reads
/// (2: the head is anchored in `head.anchor`; a format-1 log gets its anchor
/// when a writer first opens it).
pub const STORE_FORMAT_VERSION: u64 = 2;
/// The first store format whose every log has an anchor file.
const ANCHORED_FORMAT: u64 = 2;
/// Default bound on sled's page cache: enough for the recent tail and the
/// snapshots, far below sled's own 1 GiB default (README, Performance).
pub const DEFAULT_CACHE_BYTES: u64 = 32 * 1024 * 1024;
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
    /// The log does not verify up to its anchor: approvals and actions must not
    /// be resumed from it.
    #[error(
        "event log {dir} does not verify: first bad or missing seq {seq}: {reason}; {unaccounted} acknowledged event(s) unaccounted for. The runtime will not resume approvals or actions from an untrusted history. `shieldops log verify` shows the damage; `shieldops log salvage --to NEW_DIR` copies the verified prefix into a new data directory and leaves this one untouched for forensics"
    )]
    Damaged {
        dir: PathBuf,
        seq: u64,
        reason: String,
        unaccounted: u64,
    },
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
    /// The replicated log did not store the group (cluster mode): nothing of
    /// it was written here. A leader that sees this is no longer fit to lead.
    #[error("event log {dir}: the replicated log refused the append: {reason}")]
    Refused { dir: PathBuf, reason: String },
    /// A record offered by [`EventLog::append_raw`] does not continue the chain.
    #[error("event log {dir}: record offered at seq {seq} does not continue the chain: {reason}")]
    Discontinuous {
        dir: PathBuf,
        seq: u64,
        reason: String,
    },
}

/// Outcome of `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Records checked (all of them when the chain is intact; those before the first bad one otherwise).
    pub checked: u64,
    /// The first bad or missing seq and why.
    pub first_bad: Option<(u64, String)>,
    /// The seq of the anchor (or checkpoint) the log was held against; `None`
    /// for a format-1 log that has no anchor yet.
    #[serde(default)]
    pub anchored_at: Option<u64>,
    /// Acknowledged events (up to the anchor) that are missing or not intact.
    #[serde(default)]
    pub unaccounted: u64,
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
    /// Bound on sled's page cache, in bytes.
    pub cache_bytes: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            create: true,
            lock_wait: Duration::from_secs(3),
            cache_bytes: DEFAULT_CACHE_BYTES,
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
    /// The anchor as it stood when the log was opened (what verify holds it to).
    anchor: Option<Anchor>,
    /// For a read-only handle: why the original's anchor cannot be trusted.
    anchor_problem: Option<String>,
    /// The first record the writer verified when it opened the log (the
    /// newest usable snapshot's seq, or 1).
    verified_from: u64,
    /// For a read-only handle: the private copy it reads, removed on drop
    /// (declared last so sled is dropped first).
    copy: Option<readonly::Copy>,
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
        Self::open_gated(dir, opts, None, None)
    }

    /// Opens the log in `dir` so that every group of [`EventLog::append`]s is
    /// first stored by `replicate` (cluster mode: the replicated stream) and
    /// only then written here; a refusal refuses the group.
    pub fn open_replicated(
        dir: &Path,
        opts: &OpenOptions,
        replicate: Arc<dyn Replicate>,
    ) -> Result<EventLog, StoreError> {
        Self::open_gated(dir, opts, None, Some(replicate))
    }

    fn open_gated(
        dir: &Path,
        opts: &OpenOptions,
        gate: Option<std::sync::mpsc::Receiver<()>>,
        replicate: Option<Arc<dyn Replicate>>,
    ) -> Result<EventLog, StoreError> {
        let dir = dir.to_path_buf();
        inspect_dir(&dir, opts.create)?;
        let db = patiently(opts.lock_wait, || open_sled(&dir, &dir, opts.cache_bytes))?;
        let trees = init_trees(&dir, &db)?;
        let (last_seq, prev_hash) = tail_of(&dir, &trees.events)?;
        let anchor = anchor::read(&dir).map_err(|e| damaged_anchor(&dir, last_seq, e))?;
        let held_to = match anchor {
            Some(anchor) => Some(anchor),
            // Format 1 predates anchors; the whole chain is checked below and
            // the anchor starts from its tail.
            None if trees.version < ANCHORED_FORMAT => None,
            // A crash between writing the marker and creating the anchor.
            None if last_seq == 0 => None,
            None => {
                return Err(StoreError::Damaged {
                    dir: dir.clone(),
                    seq: last_seq + 1,
                    reason: format!(
                        "the anchor file {ANCHOR_FILE} is missing, so a cut-off tail cannot be ruled out"
                    ),
                    unaccounted: 0,
                });
            }
        };
        // What the runtime resumes from is the newest state snapshot plus the
        // records after it: those must verify. `log verify` checks them all.
        let from = match held_to {
            Some(_) => latest_snapshot_seq(&dir, &trees.snapshots)?.unwrap_or(1),
            None => 1,
        };
        let report = verify_range(&dir, &trees.events, from, last_seq, held_to.as_ref())?;
        if let Some((seq, reason)) = report.first_bad {
            return Err(StoreError::Damaged {
                dir: dir.clone(),
                seq,
                reason,
                unaccounted: report.unaccounted,
            });
        }
        let tail = Anchor {
            seq: last_seq,
            hash: prev_hash,
        };
        let anchor_writer = anchor::AnchorWriter::open(&dir, tail)
            .map_err(|e| storage(&dir, format!("cannot open {ANCHOR_FILE}: {e}")))?;
        if trees.version < ANCHORED_FORMAT {
            trees
                .meta
                .insert(META_VERSION, &STORE_FORMAT_VERSION.to_be_bytes())
                .map_err(|e| sled_error(&dir, e))?;
            db.flush().map_err(|e| sled_error(&dir, e))?;
        }
        let durable = Arc::new(AtomicU64::new(last_seq));
        let groups = Arc::new(AtomicU64::new(0));
        let (req_tx, req_rx) = mpsc::channel(QUEUE_CAPACITY);
        let (live_tx, _) = broadcast::channel(LIVE_CAPACITY);
        let state = writer::Writer {
            dir: dir.clone(),
            db: db.clone(),
            events: trees.events.clone(),
            durable: durable.clone(),
            live: live_tx.clone(),
            next_seq: last_seq + 1,
            prev_hash,
            groups: groups.clone(),
            anchor: Some(anchor_writer),
            gate,
            replicate,
        };
        let handle = std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || state.run(req_rx))
            .map_err(|e| storage(&dir, format!("cannot start the writer thread: {e}")))?;
        Ok(EventLog {
            inner: Arc::new(Inner {
                dir,
                db,
                events: trees.events,
                snapshots: trees.snapshots,
                durable,
                groups,
                requests: Mutex::new(Some(req_tx)),
                live: Mutex::new(Some(live_tx)),
                writer: Mutex::new(Some(handle)),
                anchor: Some(anchor.unwrap_or(tail)),
                anchor_problem: None,
                verified_from: from,
                copy: None,
            }),
        })
    }

    /// Opens the log in `dir` for reading only: nothing under `dir` is ever
    /// modified, damaged or not.
    ///
    /// sled repairs what it opens, so this copies the storage files into a
    /// private temporary directory (holding a shared lock on the original so
    /// no writer starts meanwhile) and opens the copy. Appends on the handle
    /// fail. [`StoreError::Locked`] when a writer holds the directory beyond
    /// `opts.lock_wait`: ask its control server instead.
    pub fn open_read_only(dir: &Path, opts: &OpenOptions) -> Result<EventLog, StoreError> {
        let dir = dir.to_path_buf();
        inspect_dir(&dir, false)?;
        let copy = patiently(opts.lock_wait, || readonly::Copy::take(&dir))?;
        let db = open_sled(copy.path(), &dir, opts.cache_bytes)?;
        let trees = init_trees(&dir, &db)?;
        let (last_seq, _) = tail_of(&dir, &trees.events)?;
        let (anchor, anchor_problem) = copy.anchor(trees.version);
        Ok(EventLog {
            inner: Arc::new(Inner {
                dir,
                db,
                events: trees.events,
                snapshots: trees.snapshots,
                durable: Arc::new(AtomicU64::new(last_seq)),
                groups: Arc::new(AtomicU64::new(0)),
                requests: Mutex::new(None),
                live: Mutex::new(None),
                writer: Mutex::new(None),
                anchor,
                anchor_problem,
                verified_from: 1,
                copy: Some(copy),
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

    /// Appends records stored elsewhere first (cluster mode: read from the
    /// replicated stream), byte for byte, after checking that each one is
    /// intact and continues the chain at the next seq. Returns the events once
    /// durable; a record that does not fit refuses the whole call.
    pub async fn append_raw(&self, records: Vec<Vec<u8>>) -> Result<Vec<Event>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.request(|ack| writer::Request::Raw { records, ack })
            .await
    }

    async fn submit(&self, drafts: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        self.request(|ack| writer::Request::Append { drafts, ack })
            .await
    }

    async fn request(
        &self,
        make: impl FnOnce(writer::Ack) -> writer::Request,
    ) -> Result<Vec<Event>, StoreError> {
        let tx = self
            .inner
            .requests
            .lock()
            .map_err(|_| self.closed())?
            .clone()
            .ok_or_else(|| self.closed())?;
        let (ack, wait) = oneshot::channel();
        tx.send(make(ack)).await.map_err(|_| self.closed())?;
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

    /// Walks the whole chain and holds it to the anchor; names the first bad or missing seq.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = self.verify_against(self.current_anchor().as_ref())?;
        if let (None, Some(problem)) = (&report.first_bad, &self.inner.anchor_problem) {
            report.first_bad = Some((self.last_seq() + 1, problem.clone()));
        }
        Ok(report)
    }

    /// Verifies only what was appended since `known`, a (seq, hash) an earlier
    /// verify of this log found intact: the record at `known.seq` must still
    /// have that hash and every record after it must link on. Returns the
    /// report and the head it verified up to, for the next call. With no
    /// `known`, verifies from [`EventLog::verified_from`] (the whole log when
    /// that is 1) to the head.
    pub fn verify_since(
        &self,
        known: Option<Anchor>,
    ) -> Result<(VerifyReport, Option<Anchor>), StoreError> {
        let dir = &self.inner.dir;
        let events = &self.inner.events;
        let report = match known {
            None if self.verified_from() <= 1 => self.verify()?,
            None => {
                let end = self.last_seq();
                let head = self.current_anchor();
                verify_range(dir, events, self.verified_from(), end, head.as_ref())?
            }
            Some(known) => match record_hash(dir, events, known.seq)? {
                Some(hash) if hash == known.hash => {
                    let end = self.last_seq();
                    let head = self.current_anchor();
                    verify_linked(dir, events, known.seq + 1, Some(hash), end, head.as_ref())?
                }
                stored => VerifyReport {
                    checked: known.seq.saturating_sub(1),
                    first_bad: Some((
                        known.seq,
                        format!(
                            "the record at seq {} has hash {}, but {} was verified there before: history was rewritten",
                            known.seq,
                            stored.map_or("-".into(), |h| h.to_hex()),
                            known.hash.to_hex()
                        ),
                    )),
                    anchored_at: None,
                    unaccounted: 0,
                },
            },
        };
        let head = match &report.first_bad {
            None if report.checked > 0 => {
                record_hash(dir, events, report.checked)?.map(|hash| Anchor {
                    seq: report.checked,
                    hash,
                })
            }
            _ => None,
        };
        Ok((report, head))
    }

    /// [`EventLog::verify`], then, if it passed, the same held to `checkpoint`
    /// (a head kept elsewhere, e.g. from an audit witness).
    pub fn verify_with(&self, checkpoint: Option<&Anchor>) -> Result<VerifyReport, StoreError> {
        let report = self.verify()?;
        match checkpoint {
            Some(checkpoint) if report.first_bad.is_none() => self.verify_against(Some(checkpoint)),
            _ => Ok(report),
        }
    }

    /// Walks the whole chain and holds it to `head` (an anchor or a
    /// checkpoint kept elsewhere) instead of the log's own anchor.
    pub fn verify_against(&self, head: Option<&Anchor>) -> Result<VerifyReport, StoreError> {
        // A writer anchors a group just before it counts it as durable, so the
        // anchor may be one group ahead of `last_seq`: those records are in sled.
        let end = match (head, self.is_writer()) {
            (Some(head), true) => self.last_seq().max(head.seq),
            _ => self.last_seq(),
        };
        verify_range(&self.inner.dir, &self.inner.events, 1, end, head)
    }

    /// The head a verify holds the log to: a writer's newest anchor (it moves
    /// with every group), a reader's as it was when the copy was taken.
    fn current_anchor(&self) -> Option<Anchor> {
        if self.is_writer() {
            anchor::read(&self.inner.dir)
                .ok()
                .flatten()
                .or(self.inner.anchor)
        } else {
            self.inner.anchor
        }
    }

    fn is_writer(&self) -> bool {
        self.inner.copy.is_none()
    }

    /// The first record verified when this handle opened the log: replaying
    /// from an older point than the snapshot at this seq needs a full verify
    /// first (`runtime::snapshots::load_state`).
    pub fn verified_from(&self) -> u64 {
        self.inner.verified_from
    }

    /// The anchor the log was opened with (`None` for a format-1 log read
    /// before any writer gave it one).
    pub fn anchor(&self) -> Option<Anchor> {
        self.inner.anchor
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
        self.save_snapshot_with(seq, &mut |out| out.write_all(bytes))
    }

    /// Stores a state snapshot taken at `seq`, streamed out by `write` (a
    /// snapshot of a large fleet is never held whole in memory to be saved).
    pub fn save_snapshot_with(
        &self,
        seq: u64,
        write: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let dir = &self.inner.dir;
        let last = self.last_seq();
        if seq > last {
            return Err(StoreError::Invalid {
                dir: dir.clone(),
                message: format!("snapshot at seq {seq} is past the end of the log (seq {last})"),
            });
        }
        snapshots::save(dir, &self.inner.db, &self.inner.snapshots, seq, write)
    }

    /// The newest intact snapshot, if any.
    pub fn latest_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        snapshots::latest(&self.inner.dir, &self.inner.snapshots)
    }

    /// Writes records `1..=upto` of this log, byte for byte, into a new log at
    /// `to` (which must not exist or be empty), anchored at its last record.
    pub fn salvage_into(&self, to: &Path, upto: u64) -> Result<Anchor, StoreError> {
        match std::fs::read_dir(to).map(|mut entries| entries.next().is_some()) {
            Ok(true) => {
                return Err(StoreError::Invalid {
                    dir: to.to_path_buf(),
                    message: "salvage writes only into a new or empty directory".into(),
                });
            }
            Ok(false) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_private_dir(to).map_err(|e| storage(to, format!("cannot create: {e}")))?;
            }
            Err(e) => return Err(storage(to, format!("cannot read: {e}"))),
        }
        let db = open_sled(to, to, DEFAULT_CACHE_BYTES)?;
        let trees = init_trees(to, &db)?;
        let mut last = Anchor {
            seq: 0,
            hash: ChainHash::GENESIS,
        };
        let mut batch = sled::Batch::default();
        for (n, item) in raw_range(&self.inner.dir, &self.inner.events, 1, upto).enumerate() {
            let (seq, bytes) = item?;
            let hash = bytes
                .get(..32)
                .and_then(|d| d.try_into().ok())
                .map(ChainHash);
            last = Anchor {
                seq,
                hash: hash.unwrap_or(ChainHash::GENESIS),
            };
            batch.insert(&seq.to_be_bytes(), bytes);
            if n % 4096 == 4095 {
                let full = std::mem::take(&mut batch);
                trees
                    .events
                    .apply_batch(full)
                    .map_err(|e| sled_error(to, e))?;
            }
        }
        trees
            .events
            .apply_batch(batch)
            .map_err(|e| sled_error(to, e))?;
        db.flush().map_err(|e| sled_error(to, e))?;
        anchor::AnchorWriter::open(to, last)
            .map_err(|e| storage(to, format!("cannot write {ANCHOR_FILE}: {e}")))?;
        Ok(last)
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

/// Retries `open` while another process holds the directory, for up to `wait`.
fn patiently<T>(
    wait: Duration,
    mut open: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    loop {
        match open() {
            Err(StoreError::Locked { .. }) if started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
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
        || name == snapshots::SNAPSHOT_DIR
        || name == CONTROL_SOCKET
        || name == ANCHOR_FILE
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

/// Opens the sled database at `path`; errors name `dir` (the data directory
/// the caller asked for, which differs from `path` for a read-only copy).
fn open_sled(path: &Path, dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
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

/// The trees of an opened log and the store format it was written in.
struct Trees {
    events: sled::Tree,
    meta: sled::Tree,
    snapshots: sled::Tree,
    version: u64,
}

/// Checks (or, for a fresh database, writes) the marker and opens the trees.
fn init_trees(dir: &Path, db: &sled::Db) -> Result<Trees, StoreError> {
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
        return Ok(Trees {
            events,
            meta,
            snapshots,
            version,
        });
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
    Ok(Trees {
        events,
        meta,
        snapshots,
        version: STORE_FORMAT_VERSION,
    })
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

/// seq of the newest snapshot start-up can use, if any.
fn latest_snapshot_seq(dir: &Path, tree: &sled::Tree) -> Result<Option<u64>, StoreError> {
    snapshots::latest_seq(dir, tree)
}

/// A damaged or unreadable anchor file: the log cannot be trusted up to anywhere.
fn damaged_anchor(dir: &Path, last_seq: u64, e: anchor::AnchorError) -> StoreError {
    StoreError::Damaged {
        dir: dir.to_path_buf(),
        seq: last_seq + 1,
        reason: format!("{e}, so a cut-off tail cannot be ruled out"),
        unaccounted: 0,
    }
}

/// Walks the chain over `from..=end` and holds it to `head`.
///
/// From `from > 1` on, the first record's own `prev_hash` is taken as given
/// (the records before it are not read). Names the first bad or missing seq
/// and, against `head`, how many acknowledged events are not accounted for.
fn verify_range(
    dir: &Path,
    events: &sled::Tree,
    from: u64,
    end: u64,
    head: Option<&Anchor>,
) -> Result<VerifyReport, StoreError> {
    let from = from.max(1);
    let prev = (from == 1).then_some(ChainHash::GENESIS);
    verify_linked(dir, events, from, prev, end, head)
}

/// [`verify_range`] where the record at `from` must link to `prev` (the hash
/// of the record before it, when known).
fn verify_linked(
    dir: &Path,
    events: &sled::Tree,
    from: u64,
    mut prev: Option<ChainHash>,
    end: u64,
    head: Option<&Anchor>,
) -> Result<VerifyReport, StoreError> {
    let mut checked = from - 1;
    let mut expected = from;
    let mut first_bad = None;
    for item in events.range(from.to_be_bytes()..) {
        let (key, value) = item.map_err(|e| sled_error(dir, e))?;
        let Ok(key) = <[u8; 8]>::try_from(key.as_ref()) else {
            first_bad = Some((
                expected,
                format!(
                    "a key of {} bytes sits where seq {expected} should",
                    key.len()
                ),
            ));
            break;
        };
        let seq = u64::from_be_bytes(key);
        if seq > end {
            break;
        }
        if let Err(reason) = check_record(seq, expected, &value, prev) {
            first_bad = Some((expected.min(seq), reason));
            break;
        }
        prev = Some(ChainHash(value[..32].try_into().unwrap_or([0; 32])));
        checked = seq;
        expected = seq + 1;
    }
    if first_bad.is_none() && checked < end {
        first_bad = Some((
            expected,
            format!("seq {expected} is missing (the log should end at seq {end})"),
        ));
    }
    let mut unaccounted = 0;
    if let Some(head) = head {
        if first_bad.is_none() && head.seq > end {
            first_bad = Some((
                end + 1,
                format!(
                    "seqs {}..={} are missing: the anchor says seq {} (hash {}) was acknowledged, but the log ends at seq {end}",
                    end + 1,
                    head.seq,
                    head.seq,
                    head.hash.to_hex()
                ),
            ));
        }
        if first_bad.is_none() && head.seq >= from.max(1) {
            let stored = record_hash(dir, events, head.seq)?;
            if stored != Some(head.hash) {
                first_bad = Some((
                    head.seq,
                    format!(
                        "the record at seq {} has hash {} but the anchor says {}: history up to it was rewritten",
                        head.seq,
                        stored.map_or("-".into(), |h| h.to_hex()),
                        head.hash.to_hex()
                    ),
                ));
            }
        }
    }
    if let Some((bad, _)) = &first_bad {
        let top = head.map_or(end, |h| h.seq.max(end));
        unaccounted = top.saturating_sub(bad.saturating_sub(1));
    }
    Ok(VerifyReport {
        checked: checked - (from - 1),
        first_bad,
        anchored_at: head.map(|h| h.seq),
        unaccounted,
    })
}

/// Checks one stored record found at `seq` where `expected` was due.
fn check_record(
    seq: u64,
    expected: u64,
    value: &[u8],
    prev: Option<ChainHash>,
) -> Result<(), String> {
    if seq != expected {
        return Err(format!(
            "seq {expected} is missing (the next record is seq {seq})"
        ));
    }
    if !Event::check(value) {
        return Err("stored digest does not match the record body".into());
    }
    let event = Event::decode(value).map_err(|e| format!("record cannot be decoded: {e}"))?;
    if event.seq != seq {
        return Err(format!(
            "record body says seq {} but is stored at seq {seq}",
            event.seq
        ));
    }
    if let Some(prev) = prev
        && event.prev_hash != prev
    {
        return Err(format!(
            "prev_hash {} does not match the previous record's hash {}",
            event.prev_hash.to_hex(),
            prev.to_hex()
        ));
    }
    Ok(())
}

/// The stored digest of the record at `seq`, if there is one.
fn record_hash(dir: &Path, events: &sled::Tree, seq: u64) -> Result<Option<ChainHash>, StoreError> {
    Ok(events
        .get(seq.to_be_bytes())
        .map_err(|e| sled_error(dir, e))?
        .and_then(|v| v.get(..32).and_then(|d| d.try_into().ok()).map(ChainHash)))
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
