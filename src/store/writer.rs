//! The single writer: group commit on three dedicated threads.
//!
//! Appenders queue requests. The sequencer takes everything queued (up to a
//! cap), assigns dense seqs, chains hashes and encodes the records into one
//! sled batch. The applier applies each batch to sled in order. The flusher
//! takes every batch applied so far, flushes once, and only then acknowledges
//! each caller and publishes to live subscribers; between the flush and the
//! acknowledgement it writes the new head into the anchor file. The stages overlap: while
//! sled applies one group the next is being encoded, and while a flush waits
//! on the disk both keep going. A batch is acknowledged only by a flush that
//! started after it was applied, so every acknowledged event is durable.
//!
//! In cluster mode the sequencer hands each sealed group to a [`Replicate`]
//! before the applier sees it: the group reaches sled only once the replicated
//! log stored it, and a refusal rewinds the sequencer as if the group had never
//! been sealed. Records read back from the replicated log arrive as
//! [`Request::Raw`]: checked against the chain and stored byte for byte.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::anchor::{Anchor, AnchorWriter};
use super::{LiveBatch, StoreError, sled_error};
use crate::event::{ChainHash, Event, NewEvent};

/// Events after which the sequencer stops adding requests to a group. Small
/// groups keep the stages overlapping: with 1024 appenders in flight, one
/// group of everything would leave the sequencer idle while sled applies it
/// and the applier idle while the next is encoded. Flushes still cover every
/// group applied meanwhile, so they do not get smaller. Measured in
/// `benches/eventlog.rs`: 128–256 beat both 64 and no limit.
pub(super) const MAX_GROUP_EVENTS: usize = 256;
/// Encoded batches that may wait for the applier before the sequencer waits too.
const SEALED_QUEUE: usize = 4;
/// Applied batches that may wait for the flusher before the applier waits too.
const APPLIED_QUEUE: usize = 64;

pub(super) type Ack = oneshot::Sender<Result<Vec<Event>, StoreError>>;
type Done = oneshot::Sender<Result<(), StoreError>>;

/// Stores a leader's sealed records in the replicated log before the local
/// log does (cluster mode). Called on the sequencer's thread, so it blocks.
pub trait Replicate: Send + Sync {
    /// Stores `records` (seq, exact stored bytes, in seq order) durably, or
    /// says why not; on an error none of them is written locally.
    fn replicate(&self, records: &[(u64, &[u8])]) -> Result<(), String>;
}

/// What appenders send the writer.
pub(super) enum Request {
    Append { drafts: Vec<NewEvent>, ack: Ack },
    Raw { records: Vec<Vec<u8>>, ack: Ack },
    Close { done: Done },
}

impl Request {
    /// Events the request appends.
    fn events(&self) -> usize {
        match self {
            Request::Append { drafts, .. } => drafts.len(),
            Request::Raw { records, .. } => records.len(),
            Request::Close { .. } => 0,
        }
    }
}

/// A group encoded by the sequencer, not yet in sled: its records, last seq and callers.
struct Sealed {
    batch: sled::Batch,
    last: Anchor,
    acks: Vec<(Vec<Event>, Ack)>,
}

/// What flows from one stage to the next, in seq order.
enum Stage<T> {
    Batch(T),
    Close { done: Done },
}

/// A batch now in sled but not yet durable: its last record's head and its callers.
struct Applied {
    last: Anchor,
    acks: Vec<(Vec<Event>, Ack)>,
}

/// The writer's state; owned by its threads.
pub(super) struct Writer {
    pub dir: PathBuf,
    pub db: sled::Db,
    pub events: sled::Tree,
    pub durable: Arc<AtomicU64>,
    pub live: broadcast::Sender<LiveBatch>,
    pub next_seq: u64,
    pub prev_hash: ChainHash,
    /// Group commits (flushes) done; lets tests and benches see how appends were grouped.
    pub groups: Arc<AtomicU64>,
    /// The head kept outside sled; written after each flush, before acks
    /// (moved to the flusher when the writer runs).
    pub anchor: Option<AnchorWriter>,
    /// Test hook: when set, each group waits for a token before it is drained,
    /// so a test can queue appends and see them committed as one group.
    pub gate: Option<std_mpsc::Receiver<()>>,
    /// Cluster mode: where appended groups are stored first.
    pub replicate: Option<Arc<dyn Replicate>>,
}

/// Set after a storage error: what was written is unknown, so no more appends.
#[derive(Clone, Default)]
struct Failed(Arc<Mutex<Option<String>>>);

impl Failed {
    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, reason: String) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // The first error is the one worth reporting.
        slot.get_or_insert(reason);
    }
}

/// Answers every caller in `acks` with a storage error.
fn refuse_all(dir: &Path, acks: Vec<(Vec<Event>, Ack)>, message: &str) {
    for (_, ack) in acks {
        let _ = ack.send(Err(StoreError::Storage {
            dir: dir.to_path_buf(),
            message: message.to_string(),
        }));
    }
}

fn stopped_message(reason: &str) -> String {
    format!("the writer stopped after an earlier error: {reason}")
}

impl Writer {
    /// Runs all stages until `Close` or until every handle is gone.
    pub fn run(mut self, rx: mpsc::Receiver<Request>) {
        let failed = Failed::default();
        let (sealed_tx, sealed_rx) = std_mpsc::sync_channel(SEALED_QUEUE);
        let (applied_tx, applied_rx) = std_mpsc::sync_channel(APPLIED_QUEUE);
        let applier = Applier {
            dir: self.dir.clone(),
            events: self.events.clone(),
            failed: failed.clone(),
        };
        let flusher = Flusher {
            dir: self.dir.clone(),
            db: self.db.clone(),
            anchor: self.anchor.take(),
            durable: self.durable.clone(),
            live: self.live.clone(),
            groups: self.groups.clone(),
            failed: failed.clone(),
        };
        let flusher = std::thread::Builder::new()
            .name("eventlog-flusher".into())
            .spawn(move || flusher.run(applied_rx));
        let applier = match flusher {
            Ok(flusher) => std::thread::Builder::new()
                .name("eventlog-applier".into())
                .spawn(move || applier.run(sealed_rx, applied_tx))
                .map(|applier| (applier, flusher)),
            Err(e) => Err(e),
        };
        match applier {
            Ok((applier, flusher)) => {
                self.sequence(rx, sealed_tx, failed);
                let _ = applier.join();
                let _ = flusher.join();
            }
            Err(e) => {
                // Dropping the unused ends stops whichever stage did start.
                failed.set(format!("cannot start the writer threads: {e}"));
                let (tx, _) = std_mpsc::sync_channel(0);
                self.sequence(rx, tx, failed);
            }
        }
    }

    fn sequence(
        mut self,
        mut rx: mpsc::Receiver<Request>,
        sealed: std_mpsc::SyncSender<Stage<Sealed>>,
        failed: Failed,
    ) {
        let mut group = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            if let Some(gate) = &self.gate {
                let _ = gate.recv();
            }
            let mut close = None;
            match first {
                Request::Close { done } => close = Some(done),
                append => group.push(append),
            }
            let mut events = group.first().map_or(0, Request::events);
            while close.is_none() && events < MAX_GROUP_EVENTS {
                match rx.try_recv() {
                    Ok(Request::Close { done }) => close = Some(done),
                    Ok(append) => {
                        events += append.events();
                        group.push(append);
                    }
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                match failed.get() {
                    Some(reason) => self.refuse(&mut group, &reason),
                    // The applier only goes away after a storage error, and
                    // then the batch's callers learn of it when it drops.
                    None => {
                        if let Some(batch) = self.seal(&mut group) {
                            let _ = sealed.send(Stage::Batch(batch));
                        }
                    }
                }
            }
            if let Some(done) = close {
                // Appends still queued behind `Close` are refused when `rx` drops.
                drop(rx);
                if let Err(std_mpsc::SendError(Stage::Close { done })) =
                    sealed.send(Stage::Close { done })
                {
                    let _ = done.send(Ok(()));
                }
                return;
            }
        }
    }

    fn refuse(&self, group: &mut Vec<Request>, reason: &str) {
        for req in group.drain(..) {
            if let Request::Append { ack, .. } | Request::Raw { ack, .. } = req {
                let _ = ack.send(Err(StoreError::Storage {
                    dir: self.dir.clone(),
                    message: stopped_message(reason),
                }));
            }
        }
    }

    /// Assigns seqs, chains and encodes one group into a sled batch; `None`
    /// when the replicated log refused it (its callers have been told).
    fn seal(&mut self, group: &mut Vec<Request>) -> Option<Sealed> {
        let start = (self.next_seq, self.prev_hash);
        let mut batch = sled::Batch::default();
        let mut acks = Vec::with_capacity(group.len());
        // Records this node seals itself, which the replicated log must take first.
        let mut fresh: Vec<(u64, Vec<u8>)> = Vec::new();
        for req in group.drain(..) {
            match req {
                Request::Append { drafts, ack } => {
                    let mut events = Vec::with_capacity(drafts.len());
                    for draft in drafts {
                        let (event, bytes) = Event::seal(self.next_seq, self.prev_hash, draft);
                        batch.insert(&self.next_seq.to_be_bytes(), bytes.as_slice());
                        if self.replicate.is_some() {
                            fresh.push((self.next_seq, bytes));
                        }
                        self.prev_hash = event.hash;
                        self.next_seq += 1;
                        events.push(event);
                    }
                    acks.push((events, ack));
                }
                Request::Raw { records, ack } => match self.continue_chain(&records) {
                    Ok(events) => {
                        for (event, bytes) in events.iter().zip(records) {
                            batch.insert(&event.seq.to_be_bytes(), bytes);
                        }
                        acks.push((events, ack));
                    }
                    Err(e) => {
                        let _ = ack.send(Err(e));
                    }
                },
                Request::Close { .. } => {}
            }
        }
        if let (Some(replicate), false) = (&self.replicate, fresh.is_empty()) {
            let records: Vec<(u64, &[u8])> =
                fresh.iter().map(|(s, b)| (*s, b.as_slice())).collect();
            if let Err(reason) = replicate.replicate(&records) {
                // Nothing of the group may reach sled: rewind as if unsealed.
                (self.next_seq, self.prev_hash) = start;
                for (_, ack) in acks {
                    let _ = ack.send(Err(StoreError::Refused {
                        dir: self.dir.clone(),
                        reason: reason.clone(),
                    }));
                }
                return None;
            }
        }
        if acks.is_empty() {
            return None;
        }
        Some(Sealed {
            batch,
            last: Anchor {
                seq: self.next_seq - 1,
                hash: self.prev_hash,
            },
            acks,
        })
    }

    /// Checks that `records` continue the chain at the next seq, each intact;
    /// on success advances the sequencer past them.
    fn continue_chain(&mut self, records: &[Vec<u8>]) -> Result<Vec<Event>, StoreError> {
        let (mut next, mut prev) = (self.next_seq, self.prev_hash);
        let mut events = Vec::with_capacity(records.len());
        for bytes in records {
            let discontinuous = |reason: String| StoreError::Discontinuous {
                dir: self.dir.clone(),
                seq: next,
                reason,
            };
            let event = Event::decode(bytes)
                .map_err(|e| discontinuous(format!("record cannot be decoded: {e}")))?;
            super::check_record(event.seq, next, bytes, Some(prev)).map_err(discontinuous)?;
            prev = event.hash;
            next += 1;
            events.push(event);
        }
        (self.next_seq, self.prev_hash) = (next, prev);
        Ok(events)
    }
}

/// The second stage: applies each encoded batch to sled, in order.
struct Applier {
    dir: PathBuf,
    events: sled::Tree,
    failed: Failed,
}

impl Applier {
    fn run(
        self,
        rx: std_mpsc::Receiver<Stage<Sealed>>,
        applied: std_mpsc::SyncSender<Stage<Applied>>,
    ) {
        while let Ok(stage) = rx.recv() {
            let Sealed { batch, last, acks } = match stage {
                Stage::Batch(sealed) => sealed,
                Stage::Close { done } => {
                    if let Err(std_mpsc::SendError(Stage::Close { done })) =
                        applied.send(Stage::Close { done })
                    {
                        let _ = done.send(Ok(()));
                    }
                    return;
                }
            };
            // Batches sealed after the one that failed chain from records
            // that may not be in sled, so none of them may be applied.
            if let Some(reason) = self.failed.get() {
                refuse_all(&self.dir, acks, &stopped_message(&reason));
                continue;
            }
            match self.events.apply_batch(batch) {
                Ok(()) => {
                    // The flusher only goes away after a storage error.
                    let _ = applied.send(Stage::Batch(Applied { last, acks }));
                }
                Err(e) => {
                    let reason = sled_error(&self.dir, e).to_string();
                    self.failed.set(reason.clone());
                    refuse_all(&self.dir, acks, &reason);
                }
            }
        }
    }
}

/// The last stage: one flush for every batch applied before it started.
struct Flusher {
    dir: PathBuf,
    db: sled::Db,
    anchor: Option<AnchorWriter>,
    durable: Arc<AtomicU64>,
    live: broadcast::Sender<LiveBatch>,
    groups: Arc<AtomicU64>,
    failed: Failed,
}

impl Flusher {
    fn run(mut self, rx: std_mpsc::Receiver<Stage<Applied>>) {
        let mut pending = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut close = None;
            match first {
                Stage::Close { done } => close = Some(done),
                Stage::Batch(batch) => pending.push(batch),
            }
            while close.is_none() {
                match rx.try_recv() {
                    Ok(Stage::Close { done }) => close = Some(done),
                    Ok(Stage::Batch(batch)) => pending.push(batch),
                    Err(_) => break,
                }
            }
            // Every batch in `pending` was applied before this flush began.
            let flushed = self
                .db
                .flush()
                .map_err(|e| sled_error(&self.dir, e))
                .and_then(|_| self.write_anchor(&pending));
            match &flushed {
                Ok(_) if !pending.is_empty() => self.acknowledge(&mut pending),
                Ok(_) => {}
                Err(e) => self.fail(&mut pending, &e.to_string()),
            }
            if let Some(done) = close {
                let _ = done.send(flushed.map(|_| ()));
                return;
            }
        }
        let _ = self.db.flush();
    }

    /// Makes the newest head in `pending` the anchor (after sled's flush, so
    /// the anchor never runs ahead of what sled holds durably).
    fn write_anchor(&mut self, pending: &[Applied]) -> Result<(), StoreError> {
        let (Some(anchor), Some(last)) = (
            &mut self.anchor,
            pending.iter().map(|b| b.last).max_by_key(|a| a.seq),
        ) else {
            return Ok(());
        };
        anchor.write(&last).map_err(|e| StoreError::Storage {
            dir: self.dir.clone(),
            message: format!("cannot write the anchor {}: {e}", super::ANCHOR_FILE),
        })
    }

    fn acknowledge(&self, pending: &mut Vec<Applied>) {
        let last = pending.iter().map(|b| b.last.seq).max().unwrap_or(0);
        // Order matters for subscribers: durable end first, then the broadcast.
        self.durable.store(last, Ordering::Release);
        self.groups.fetch_add(1, Ordering::Relaxed);
        let publish = self.live.receiver_count() > 0;
        let mut published = Vec::new();
        for batch in pending.drain(..) {
            for (events, ack) in batch.acks {
                if publish {
                    published.extend(events.iter().cloned());
                }
                let _ = ack.send(Ok(events));
            }
        }
        if publish {
            let _ = self.live.send(Arc::new(published));
        }
    }

    fn fail(&self, pending: &mut Vec<Applied>, reason: &str) {
        self.failed.set(reason.to_string());
        for batch in pending.drain(..) {
            refuse_all(&self.dir, batch.acks, reason);
        }
    }
}
