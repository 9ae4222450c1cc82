//! State snapshots: start-up restores the newest snapshot and folds only the
//! tail of the log after it, so start-up time does not grow with history.

use crate::state::State;
use crate::store::EventLog;

/// Prefix that marks a snapshot's encoding; a snapshot of another encoding
/// (an older or newer build) is ignored and the log is replayed instead.
const MAGIC: &[u8] = b"shieldops-state-v1\n";

/// Encodes a state for the store.
pub fn encode(state: &State) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    serde_json::to_writer(&mut out, state).expect("state serialises");
    out
}

/// Decodes a snapshot written by [`encode`], if it is of this build's shape.
pub fn decode(bytes: &[u8]) -> Option<State> {
    let body = bytes.strip_prefix(MAGIC)?;
    serde_json::from_slice(body).ok()
}

/// Restores the projected state: newest usable snapshot, then the tail.
pub fn load_state(log: &EventLog) -> anyhow::Result<State> {
    let mut state = match log.latest_snapshot()? {
        Some((seq, bytes)) => match decode(&bytes) {
            Some(s) if s.last_seq == seq => s,
            _ => {
                tracing::warn!(
                    "snapshot at seq {seq} is not readable by this build; replaying the log"
                );
                State::new()
            }
        },
        None => State::new(),
    };
    for event in log.scan(state.last_seq + 1) {
        state.apply(&event?);
    }
    Ok(state)
}
