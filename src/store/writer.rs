//! The single writer: group commit on two dedicated threads.
//!
//! Appenders queue requests. The sequencer takes everything queued (up to a
//! cap), assigns dense seqs, chains hashes and applies one sled batch. The
//! flusher takes every batch applied so far, flushes once, and only then
//! acknowledges each caller and publishes to live subscribers. The two stages
//! overlap, so encoding the next group costs no time while a flush waits on
//! the disk. A batch is acknowledged only by a flush that started after it
//! was applied, so every acknowledged event is durable.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::{LiveBatch, StoreError, sled_error};
use crate::event::{ChainHash, Event, NewEvent};

/// Most requests folded into one batch; bounds the latency of the first.
const MAX_GROUP_REQUESTS: usize = 4096;
/// Applied batches that may wait for the flusher before the sequencer waits too.
const APPLIED_QUEUE: usize = 64;

type Ack = oneshot::Sender<Result<Vec<Event>, StoreError>>;

/// What appenders send the writer.
pub(super) enum Request {
    Append {
        drafts: Vec<NewEvent>,
        ack: Ack,
    },
    Close {
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// What the sequencer hands the flusher.
enum Applied {
    /// A batch now in sled but not yet durable: its last seq and its callers.
    Batch {
        last: u64,
        acks: Vec<(Vec<Event>, Ack)>,
    },
    Close {
        done: oneshot::Sender<Result<(), StoreError>>,
    },
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
    /// Test hook: when set, each group waits for a token before it is drained,
    /// so a test can queue appends and see them committed as one group.
    pub gate: Option<std_mpsc::Receiver<()>>,
}

/// Set after a storage error: what was written is unknown, so no more appends.
type Failed = Arc<Mutex<Option<String>>>;

impl Writer {
    /// Runs both stages until `Close` or until every handle is gone.
    pub fn run(self, rx: mpsc::Receiver<Request>) {
        let failed: Failed = Arc::new(Mutex::new(None));
        let (applied_tx, applied_rx) = std_mpsc::sync_channel(APPLIED_QUEUE);
        let flusher = Flusher {
            dir: self.dir.clone(),
            db: self.db.clone(),
            durable: self.durable.clone(),
            live: self.live.clone(),
            groups: self.groups.clone(),
            failed: failed.clone(),
        };
        let flusher = std::thread::Builder::new()
            .name("eventlog-flusher".into())
            .spawn(move || flusher.run(applied_rx));
        match flusher {
            Ok(handle) => {
                self.sequence(rx, applied_tx, failed);
                let _ = handle.join();
            }
            Err(e) => {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(format!("cannot start the flusher thread: {e}"));
                let (tx, _) = std_mpsc::sync_channel(0);
                self.sequence(rx, tx, failed);
            }
        }
    }

    fn sequence(
        mut self,
        mut rx: mpsc::Receiver<Request>,
        applied: std_mpsc::SyncSender<Applied>,
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
            while close.is_none() && group.len() < MAX_GROUP_REQUESTS {
                match rx.try_recv() {
                    Ok(Request::Close { done }) => close = Some(done),
                    Ok(append) => group.push(append),
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                let stopped = failed.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match stopped {
                    Some(reason) => self.refuse(&mut group, &reason),
                    None => {
                        if let Some(batch) = self.apply(&mut group, &failed) {
                            // The flusher only goes away after a storage error.
                            let _ = applied.send(batch);
                        }
                    }
                }
            }
            if let Some(done) = close {
                // Appends still queued behind `Close` are refused when `rx` drops.
                drop(rx);
                if let Err(std_mpsc::SendError(Applied::Close { done })) =
                    applied.send(Applied::Close { done })
                {
                    let _ = done.send(Ok(()));
                }
                return;
            }
        }
    }

    fn refuse(&self, group: &mut Vec<Request>, reason: &str) {
        for req in group.drain(..) {
            if let Request::Append { ack, .. } = req {
                let _ = ack.send(Err(StoreError::Storage {
                    dir: self.dir.clone(),
                    message: format!("the writer stopped after an earlier error: {reason}"),
                }));
            }
        }
    }

    /// Seals and applies one batch; `None` (callers answered) if sled refused it.
    fn apply(&mut self, group: &mut Vec<Request>, failed: &Failed) -> Option<Applied> {
        let mut batch = sled::Batch::default();
        let mut acks = Vec::with_capacity(group.len());
        let mut seq = self.next_seq;
        let mut prev = self.prev_hash;
        for req in group.drain(..) {
            let Request::Append { drafts, ack } = req else {
                continue;
            };
            let mut events = Vec::with_capacity(drafts.len());
            for draft in drafts {
                let (event, bytes) = Event::seal(seq, prev, draft);
                batch.insert(&seq.to_be_bytes(), bytes);
                prev = event.hash;
                seq += 1;
                events.push(event);
            }
            acks.push((events, ack));
        }
        if let Err(e) = self.events.apply_batch(batch) {
            let err = sled_error(&self.dir, e).to_string();
            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(err.clone());
            for (_, ack) in acks {
                let _ = ack.send(Err(StoreError::Storage {
                    dir: self.dir.clone(),
                    message: err.clone(),
                }));
            }
            return None;
        }
        self.next_seq = seq;
        self.prev_hash = prev;
        Some(Applied::Batch {
            last: seq - 1,
            acks,
        })
    }
}

/// The second stage: one flush for every batch applied before it started.
struct Flusher {
    dir: PathBuf,
    db: sled::Db,
    durable: Arc<AtomicU64>,
    live: broadcast::Sender<LiveBatch>,
    groups: Arc<AtomicU64>,
    failed: Failed,
}

impl Flusher {
    fn run(self, rx: std_mpsc::Receiver<Applied>) {
        let mut pending = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut close = None;
            match first {
                Applied::Close { done } => close = Some(done),
                batch => pending.push(batch),
            }
            while close.is_none() {
                match rx.try_recv() {
                    Ok(Applied::Close { done }) => close = Some(done),
                    Ok(batch) => pending.push(batch),
                    Err(_) => break,
                }
            }
            // Every batch in `pending` was applied before this flush began.
            let flushed = self.db.flush().map_err(|e| sled_error(&self.dir, e));
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

    fn acknowledge(&self, pending: &mut Vec<Applied>) {
        let last = pending.iter().fold(0, |m, b| match b {
            Applied::Batch { last, .. } => m.max(*last),
            Applied::Close { .. } => m,
        });
        // Order matters for subscribers: durable end first, then the broadcast.
        self.durable.store(last, Ordering::Release);
        self.groups.fetch_add(1, Ordering::Relaxed);
        let publish = self.live.receiver_count() > 0;
        let mut published = Vec::new();
        for batch in pending.drain(..) {
            if let Applied::Batch { acks, .. } = batch {
                for (events, ack) in acks {
                    if publish {
                        published.extend(events.iter().cloned());
                    }
                    let _ = ack.send(Ok(events));
                }
            }
        }
        if publish {
            let _ = self.live.send(Arc::new(published));
        }
    }

    fn fail(&self, pending: &mut Vec<Applied>, reason: &str) {
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        for batch in pending.drain(..) {
            if let Applied::Batch { acks, .. } = batch {
                for (_, ack) in acks {
                    let _ = ack.send(Err(StoreError::Storage {
                        dir: self.dir.clone(),
                        message: reason.to_string(),
                    }));
                }
            }
        }
    }
}
