//! When to poll next: the configured interval plus random jitter after a
//! success, and exponential back-off (capped) after throttling or failures.
//! Time comes from the injected clock so the schedule is testable.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

/// One connector's polling schedule.
#[derive(Debug, Clone)]
pub(super) struct Schedule {
    interval: Duration,
    jitter: Duration,
    max_backoff: Duration,
    next_due: Option<DateTime<Utc>>,
    failures: u32,
}

impl Schedule {
    pub fn new(interval: Duration, jitter: Duration, max_backoff: Duration) -> Self {
        Self {
            interval,
            jitter,
            max_backoff,
            next_due: None,
            failures: 0,
        }
    }

    /// Whether a poll should happen now (the first one always does).
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.next_due.is_none_or(|t| now >= t)
    }

    /// After a successful poll: the next one after the interval and a jitter.
    pub fn succeeded(&mut self, now: DateTime<Utc>, rng: &mut impl Rng) {
        self.failures = 0;
        let wait = self.interval + self.sample_jitter(rng);
        self.next_due = Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
    }

    /// After a failed poll: waits twice as long per consecutive failure (up to
    /// the cap), plus jitter; returns how long.
    pub fn failed(&mut self, now: DateTime<Utc>, rng: &mut impl Rng) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let factor = 2u32.saturating_pow(self.failures.min(16));
        let backoff = self
            .interval
            .saturating_mul(factor)
            .min(self.max_backoff)
            .saturating_add(self.sample_jitter(rng));
        self.next_due = Some(now + chrono::Duration::from_std(backoff).unwrap_or_default());
        backoff
    }

    /// Makes the next call poll regardless of the schedule (after an action).
    pub fn poll_soon(&mut self) {
        if self.failures == 0 {
            self.next_due = None;
        }
    }

    fn sample_jitter(&self, rng: &mut impl Rng) -> Duration {
        let max = self.jitter.as_millis() as u64;
        if max == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rng.random_range(0..=max))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn polls_first_then_after_interval_plus_jitter() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut s = Schedule::new(
            Duration::from_secs(60),
            Duration::from_secs(10),
            Duration::from_secs(900),
        );
        assert!(s.due(t0()));
        s.succeeded(t0(), &mut rng);
        assert!(!s.due(t0() + chrono::Duration::seconds(59)));
        assert!(s.due(t0() + chrono::Duration::seconds(70)));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut s = Schedule::new(
            Duration::from_secs(60),
            Duration::ZERO,
            Duration::from_secs(300),
        );
        let waits: Vec<u64> = (0..4).map(|_| s.failed(t0(), &mut rng).as_secs()).collect();
        assert_eq!(waits, vec![120, 240, 300, 300]);
        // A success resets the back-off.
        s.succeeded(t0(), &mut rng);
        assert_eq!(s.failed(t0(), &mut rng).as_secs(), 120);
    }

    #[test]
    fn poll_soon_does_not_cut_a_back_off_short() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut s = Schedule::new(
            Duration::from_secs(60),
            Duration::ZERO,
            Duration::from_secs(300),
        );
        s.failed(t0(), &mut rng);
        s.poll_soon();
        assert!(!s.due(t0()));
        s.succeeded(t0(), &mut rng);
        s.poll_soon();
        assert!(s.due(t0()));
    }
}
