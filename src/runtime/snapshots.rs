//! State snapshots: start-up restores the newest snapshot and folds only the
//! tail of the log after it, so start-up time does not grow with history.

use crate::state::State;
use crate::store::EventLog;

/// Prefix that marks a snapshot's encoding; a snapshot of another encoding
/// (an older or newer build) is ignored and the log is replayed instead.
const MAGIC: &[u8] = b"shieldops-state-v1\n";

/// Encodes a state for the store.
pub fn encode(state: &State) -> Vec<u8> {
    let mut out = Vec::new();
    write(state, &mut out).expect("state serialises");
    out
}

/// Streams the encoding of `state` to `out` (what [`encode`] returns, without
/// a buffer the size of the whole snapshot).
pub fn write(state: &State, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    serde_json::to_writer(out, state).map_err(std::io::Error::other)
}

/// Saves a snapshot of `state` at its last seq.
pub fn save(log: &EventLog, state: &State) -> Result<(), crate::store::StoreError> {
    log.save_snapshot_with(state.last_seq, &mut |out| write(state, out))
}

/// Decodes a snapshot written by [`encode`], if it is of this build's shape.
pub fn decode(bytes: &[u8]) -> Option<State> {
    let body = bytes.strip_prefix(MAGIC)?;
    let mut state: State = serde_json::from_slice(body).ok()?;
    state.compact();
    Some(state)
}

/// Restores the projected state: newest usable snapshot, then the tail.
///
/// The writer verified the log from its newest snapshot on when it opened it.
/// If that snapshot cannot be used after all (damaged file, another build's
/// shape), the records before it are folded too, so the whole chain is
/// verified first: nothing is resumed from an untrusted history.
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
    if state.last_seq + 1 < log.verified_from() {
        let report = log.verify()?;
        if let Some((seq, why)) = report.first_bad {
            anyhow::bail!(
                "the event log in {} does not verify at seq {seq} ({why}); run `shieldops log salvage`",
                log.dir().display()
            );
        }
    }
    for event in log.scan(state.last_seq + 1) {
        state.apply(&event?);
    }
    Ok(state)
}
