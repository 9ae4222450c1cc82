//! A per-host circuit breaker: after a few consecutive failures a host is
//! skipped (answered at once with an error) until a cool-down has passed, and
//! the cool-down doubles while the host keeps failing, so one dead host never
//! holds up a fleet poll. The caller passes the time, so tests drive it.

use std::sync::Mutex;
use std::time::Duration;

use std::time::Instant;

/// Consecutive failures before the breaker opens.
const THRESHOLD: u32 = 3;
/// First cool-down; doubled per further failure up to [`MAX_COOL_DOWN`].
const COOL_DOWN: Duration = Duration::from_secs(30);
const MAX_COOL_DOWN: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

/// Tracks one host's recent failures.
#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<State>,
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long the breaker stays open, or `None` when a call may go ahead
    /// (closed, or half-open: the cool-down has passed and one try is due).
    pub fn open_for(&self, now: Instant) -> Option<Duration> {
        let s = self.lock();
        let until = s.open_until?;
        (until > now).then(|| until - now)
    }

    /// A call succeeded: close.
    pub fn success(&self) {
        *self.lock() = State::default();
    }

    /// A call failed: count it, and open (or re-open, longer) past the threshold.
    pub fn failure(&self, now: Instant) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        if s.failures >= THRESHOLD {
            let doublings = (s.failures - THRESHOLD).min(8);
            let cool = (COOL_DOWN * 2u32.pow(doublings)).min(MAX_COOL_DOWN);
            s.open_until = Some(now + cool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_repeated_failures_and_half_opens_after_the_cool_down() {
        let b = Breaker::default();
        let t0 = Instant::now();
        b.failure(t0);
        b.failure(t0);
        assert!(b.open_for(t0).is_none(), "two failures keep it closed");
        b.failure(t0);
        assert_eq!(b.open_for(t0), Some(COOL_DOWN));
        let t1 = t0 + COOL_DOWN;
        assert!(b.open_for(t1).is_none(), "half-open: one try is due");
        b.failure(t1);
        assert_eq!(
            b.open_for(t1),
            Some(COOL_DOWN * 2),
            "a failed retry doubles it"
        );
        b.success();
        assert!(b.open_for(t1).is_none());
        b.failure(t1);
        assert!(b.open_for(t1).is_none(), "a success resets the count");
    }
}
