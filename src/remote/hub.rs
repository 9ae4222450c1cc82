//! The server's own projection of the log: the state a new console starts
//! from (with the digest of the record it ends at) and the counters behind
//! `/metrics`. One task folds every event once, with the same pure
//! [`State::apply`] the consoles use; sessions ask it for a copy.

use std::collections::BTreeMap;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::event::{ChainHash, EventKind};
use crate::state::State;
use crate::store::EventLog;

/// Counters since the server started, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Events folded since start.
    pub events: u64,
    /// Policy decisions by result (`allow`, `deny`).
    pub decisions: BTreeMap<&'static str, u64>,
    /// Executed actions by outcome (`success`, `failure`).
    pub actions: BTreeMap<&'static str, u64>,
    /// Approval outcomes (`granted`, `denied`, `expired`).
    pub approvals: BTreeMap<&'static str, u64>,
    /// Finished remediations by outcome (`succeeded`, `rolled_back`, …).
    pub remediations: BTreeMap<&'static str, u64>,
    /// Restores by outcome (`success`, `failure`).
    pub restores: BTreeMap<&'static str, u64>,
    /// Notification attempts by outcome (`sent`, `failed`, `gave_up`).
    pub notifications: BTreeMap<&'static str, u64>,
    /// Errors agents reported.
    pub agent_errors: u64,
}

impl Counters {
    fn count(&mut self, kind: &EventKind) {
        self.events += 1;
        let (map, key) = match kind {
            EventKind::PolicyDecided { decision, .. } => (
                &mut self.decisions,
                if decision.allow { "allow" } else { "deny" },
            ),
            EventKind::ActionExecuted { outcome, .. } => (
                &mut self.actions,
                if outcome.success {
                    "success"
                } else {
                    "failure"
                },
            ),
            EventKind::ApprovalGranted { .. } => (&mut self.approvals, "granted"),
            EventKind::ApprovalDenied { .. } => (&mut self.approvals, "denied"),
            EventKind::ApprovalExpired { .. } => (&mut self.approvals, "expired"),
            EventKind::RemediationFinished { status, .. } => {
                (&mut self.remediations, status.as_str())
            }
            EventKind::RemediationRestored { outcome, .. } => (
                &mut self.restores,
                if outcome.success {
                    "success"
                } else {
                    "failure"
                },
            ),
            EventKind::NotificationSent { .. } => (&mut self.notifications, "sent"),
            // A give-up is also a failed attempt: both counters move.
            EventKind::NotificationFailed { gave_up, .. } => {
                if *gave_up {
                    *self.notifications.entry("gave_up").or_default() += 1;
                }
                (&mut self.notifications, "failed")
            }
            EventKind::AgentError { .. } => {
                self.agent_errors += 1;
                return;
            }
            _ => return,
        };
        *map.entry(key).or_default() += 1;
    }
}

/// The projection at one seq.
#[derive(Debug, Clone)]
pub struct Projection {
    pub state: State,
    /// Digest of the record at `state.last_seq` (genesis at 0).
    pub hash: ChainHash,
    pub counters: Counters,
}

/// Handle to the projection task; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    requests: mpsc::Sender<oneshot::Sender<Projection>>,
}

impl Hub {
    /// Starts folding from `state` (already folded up to `state.last_seq`).
    pub fn start(log: EventLog, state: State, cancel: CancellationToken) -> anyhow::Result<Hub> {
        let hash = if state.last_seq == 0 {
            ChainHash::GENESIS
        } else {
            let (_, bytes) = log
                .scan_raw(state.last_seq)
                .next()
                .ok_or_else(|| anyhow::anyhow!("seq {} is missing", state.last_seq))??;
            let digest: [u8; 32] = bytes
                .get(..32)
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| anyhow::anyhow!("record {} is truncated", state.last_seq))?;
            ChainHash(digest)
        };
        let (tx, mut rx) = mpsc::channel::<oneshot::Sender<Projection>>(64);
        let mut projection = Projection {
            state,
            hash,
            counters: Counters::default(),
        };
        let mut sub = log.subscribe(projection.state.last_seq + 1);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    // Answer from what is folded so far; a session then
                    // subscribes after its seq, so nothing is missed.
                    request = rx.recv() => match request {
                        Some(reply) => { let _ = reply.send(projection.clone()); }
                        None => return,
                    },
                    next = sub.next() => match next {
                        Some(Ok(event)) => {
                            projection.counters.count(&event.kind);
                            projection.hash = event.hash;
                            projection.state.apply(&event);
                        }
                        Some(Err(e)) => {
                            // A record this build cannot read: the chain check in
                            // `log verify` names it; consoles see it skipped.
                            tracing::error!("projection skipped a record: {e}");
                        }
                        None => return,
                    },
                }
            }
        });
        Ok(Hub { requests: tx })
    }

    /// The projection as of now.
    pub async fn projection(&self) -> Option<Projection> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).await.ok()?;
        rx.await.ok()
    }
}
