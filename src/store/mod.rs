//! The event log on sled: single writer with group commit, hash chain, scan,
//! subscribe, verify and state snapshots. (Interface placeholder: being built.)

use std::path::Path;

use crate::event::{Event, NewEvent};

/// Errors from the event log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Other(String),
}

/// Handle to the event log; cheap to clone.
#[derive(Clone)]
pub struct EventLog {}

/// A replay-then-live stream of events.
pub struct Subscription {}

impl Subscription {
    /// The next event in seq order; `None` once the log is closed.
    pub async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        todo!()
    }
}

/// Outcome of `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    pub first_bad: Option<(u64, String)>,
}

impl EventLog {
    /// Opens (or creates) the log in `dir`.
    pub fn open(_dir: &Path) -> Result<EventLog, StoreError> {
        todo!()
    }
    /// Appends one event; returns once it is durable.
    pub async fn append(&self, _draft: NewEvent) -> Result<Event, StoreError> {
        todo!()
    }
    /// seq of the last durable event (0 = empty).
    pub fn last_seq(&self) -> u64 {
        todo!()
    }
    /// Events from `from` (inclusive) to the current end.
    pub fn scan(&self, _from: u64) -> impl Iterator<Item = Result<Event, StoreError>> + use<> {
        std::iter::empty()
    }
    /// Replay from `from`, then live, with no gap and no duplicate.
    pub fn subscribe(&self, _from: u64) -> Subscription {
        todo!()
    }
    /// Walks the chain; names the first bad seq.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        todo!()
    }
    /// Stores a state snapshot taken at `seq`.
    pub fn save_snapshot(&self, _seq: u64, _bytes: &[u8]) -> Result<(), StoreError> {
        todo!()
    }
    /// The newest snapshot, if any.
    pub fn latest_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        todo!()
    }
    /// Flushes and stops the writer.
    pub async fn close(&self) -> Result<(), StoreError> {
        todo!()
    }
}
