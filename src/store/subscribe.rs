//! Replay-then-live subscriptions.
//!
//! A subscription tracks the next seq it owes its reader. Anything at or below
//! the durable end is read from sled; anything past it arrives on the live
//! broadcast, whose receiver was created before the durable end was first read.
//! A lagged receiver, or a live batch that skips ahead, sends the subscription
//! back to sled, so it never gaps and never repeats.

use std::collections::VecDeque;

use tokio::sync::broadcast::{self, error::RecvError};

use super::{EventLog, LiveBatch, StoreError, raw_range};
use crate::event::Event;

/// A stored record (seq, exact bytes) or why it could not be read.
type RawItem = Result<(u64, Vec<u8>), StoreError>;

/// Records read from sled per refill.
const REPLAY_CHUNK: u64 = 512;

/// A replay-then-live stream of events.
pub struct Subscription {
    log: EventLog,
    /// Next seq to fetch from sled or the live feed.
    next: u64,
    /// Next seq the reader will get (what has been handed out ends before it).
    pos: u64,
    rx: Option<broadcast::Receiver<LiveBatch>>,
    /// Records read from sled, not yet handed out (decoded lazily), each with
    /// the position the reader is at once it has it.
    replay: VecDeque<(u64, RawItem)>,
    live: Option<(LiveBatch, usize)>,
}

impl Subscription {
    pub(super) fn new(
        log: EventLog,
        from: u64,
        rx: Option<broadcast::Receiver<LiveBatch>>,
    ) -> Self {
        Self {
            log,
            next: from,
            pos: from,
            rx,
            replay: VecDeque::new(),
            live: None,
        }
    }

    /// The seq the next event will have.
    pub fn next_seq(&self) -> u64 {
        self.pos
    }

    /// The next event in seq order; `None` once the log is closed.
    ///
    /// A record that cannot be decoded comes out as an error naming its seq;
    /// the stream then goes on with the next one.
    pub async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if let Some((pos, item)) = self.replay.pop_front() {
                self.pos = pos;
                return Some(item.and_then(|(seq, bytes)| self.decode(seq, &bytes)));
            }
            if let Some(event) = self.take_live() {
                return Some(Ok(event));
            }
            if !self.advance().await {
                return None;
            }
        }
    }

    /// Like [`Subscription::next`] but yields each record's exact stored bytes.
    ///
    /// Live batches only wake it; the bytes are read back from sled. Use either
    /// this or `next` on one subscription, not both.
    pub async fn next_raw(&mut self) -> Option<RawItem> {
        loop {
            if let Some((pos, item)) = self.replay.pop_front() {
                self.pos = pos;
                return Some(item);
            }
            self.live = None;
            if !self.advance().await {
                return None;
            }
        }
    }

    /// Refills from sled or waits for the live feed; false once nothing more can come.
    async fn advance(&mut self) -> bool {
        let durable = self.log.last_seq();
        if self.next <= durable {
            self.refill(durable);
            return true;
        }
        let Some(rx) = self.rx.as_mut() else {
            return false;
        };
        match rx.recv().await {
            Ok(batch) => self.live = Some((batch, 0)),
            // Missed batches are durable: the next turn reads them from sled.
            Err(RecvError::Lagged(_)) => {}
            // The writer is gone; what it made durable is still read from sled.
            Err(RecvError::Closed) => self.rx = None,
        }
        true
    }

    fn decode(&self, seq: u64, bytes: &[u8]) -> Result<Event, StoreError> {
        Event::decode(bytes).map_err(|error| StoreError::Decode {
            dir: self.log.inner.dir.clone(),
            seq,
            error,
        })
    }

    /// The next event from the current live batch, if it is the one owed.
    fn take_live(&mut self) -> Option<Event> {
        let (batch, idx) = self.live.as_mut()?;
        while let Some(event) = batch.get(*idx) {
            *idx += 1;
            if event.seq < self.next {
                continue;
            }
            if event.seq == self.next {
                self.next += 1;
                self.pos = self.next;
                return Some(event.clone());
            }
            // Skipped ahead: what is missing is durable, so read it from sled.
            break;
        }
        self.live = None;
        None
    }

    fn refill(&mut self, durable: u64) {
        let end = durable.min(self.next.saturating_add(REPLAY_CHUNK - 1));
        let inner = &self.log.inner;
        let missing = |from: u64, to: u64| StoreError::Corrupt {
            dir: inner.dir.clone(),
            reason: if from == to {
                format!("seq {from} is missing")
            } else {
                format!("seqs {from}..={to} are missing")
            },
        };
        let mut expected = self.next;
        for item in raw_range(&inner.dir, &inner.events, self.next, end) {
            match item {
                Ok((seq, bytes)) => {
                    if seq > expected {
                        self.replay
                            .push_back((seq, Err(missing(expected, seq - 1))));
                    }
                    self.replay.push_back((seq + 1, Ok((seq, bytes))));
                    expected = seq + 1;
                }
                Err(e) => {
                    // A storage error mid-range: report it and skip the chunk.
                    self.replay.push_back((end + 1, Err(e)));
                    expected = end + 1;
                    break;
                }
            }
        }
        if expected <= end {
            self.replay
                .push_back((end + 1, Err(missing(expected, end))));
        }
        // Errors are reported once; the stream goes on after them.
        self.next = end + 1;
    }
}
