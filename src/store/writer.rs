//! The single writer: group commit on a dedicated thread.
//!
//! Appenders queue requests; the writer takes everything queued (up to a cap),
//! assigns dense seqs and chains hashes, writes one sled batch, flushes once,
//! and only then acknowledges each caller and publishes to live subscribers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::{LiveBatch, StoreError, sled_error};
use crate::event::{ChainHash, Event, NewEvent};

/// Most requests folded into one group commit; bounds the latency of the first.
const MAX_GROUP_REQUESTS: usize = 4096;

/// What appenders send the writer.
pub(super) enum Request {
    Append {
        drafts: Vec<NewEvent>,
        ack: oneshot::Sender<Result<Vec<Event>, StoreError>>,
    },
    Close {
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// The writer's state; owned by its thread.
pub(super) struct Writer {
    pub dir: PathBuf,
    pub db: sled::Db,
    pub events: sled::Tree,
    pub durable: Arc<AtomicU64>,
    pub live: broadcast::Sender<LiveBatch>,
    pub next_seq: u64,
    pub prev_hash: ChainHash,
    /// Set after a storage error: what was written is unknown, so no more appends.
    pub failed: Option<String>,
    /// Group commits done; lets tests and benches see how appends were grouped.
    pub groups: Arc<AtomicU64>,
    /// Test hook: when set, each group waits for a token before it is drained,
    /// so a test can queue appends and see them committed as one group.
    pub gate: Option<std::sync::mpsc::Receiver<()>>,
}

impl Writer {
    /// Runs until `Close` or until every handle is gone.
    pub fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut group = Vec::new();
        loop {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
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
                self.commit(&mut group);
            }
            if let Some(done) = close {
                let result = self
                    .db
                    .flush()
                    .map(|_| ())
                    .map_err(|e| sled_error(&self.dir, e));
                // Appends still queued behind `Close` are refused when `rx` drops.
                drop(rx);
                let _ = done.send(result);
                return;
            }
        }
        let _ = self.db.flush();
    }

    fn commit(&mut self, group: &mut Vec<Request>) {
        if let Some(reason) = &self.failed {
            let reason = reason.clone();
            for req in group.drain(..) {
                if let Request::Append { ack, .. } = req {
                    let _ = ack.send(Err(StoreError::Storage {
                        dir: self.dir.clone(),
                        message: format!("the writer stopped after an earlier error: {reason}"),
                    }));
                }
            }
            return;
        }
        let mut batch = sled::Batch::default();
        let mut sealed: Vec<(Vec<Event>, oneshot::Sender<_>)> = Vec::with_capacity(group.len());
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
            sealed.push((events, ack));
        }
        let written = self
            .events
            .apply_batch(batch)
            .and_then(|()| self.db.flush().map(|_| ()));
        if let Err(e) = written {
            let err = sled_error(&self.dir, e);
            self.failed = Some(err.to_string());
            for (_, ack) in sealed {
                let _ = ack.send(Err(StoreError::Storage {
                    dir: self.dir.clone(),
                    message: err.to_string(),
                }));
            }
            return;
        }
        self.next_seq = seq;
        self.prev_hash = prev;
        // Order matters for subscribers: durable end first, then the broadcast.
        self.durable.store(seq - 1, Ordering::Release);
        self.groups.fetch_add(1, Ordering::Relaxed);
        let publish = self.live.receiver_count() > 0;
        let mut published = Vec::new();
        for (events, ack) in sealed {
            if publish {
                published.extend(events.iter().cloned());
            }
            let _ = ack.send(Ok(events));
        }
        if publish {
            let _ = self.live.send(Arc::new(published));
        }
    }
}
