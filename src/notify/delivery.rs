//! Retrying a delivery: exponential back-off with jitter, and a circuit
//! breaker per channel so a dead receiver is rested instead of hammered.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

/// Exponential back-off: the n-th retry waits about `initial · 2ⁿ⁻¹`, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts per notification, the first included.
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after failed attempt `attempt` (1-based): "equal jitter", half
    /// the exponential step plus a random part of the other half, so retries
    /// from many consoles spread out yet never come sooner than half the step.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let step = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max);
        let half = step / 2;
        let extra = rng.random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(extra)
    }
}

/// A circuit breaker: closed (deliver), open (refuse until the cooldown has
/// passed), then half-open (one trial delivery decides).
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    open_until: Option<DateTime<Utc>>,
}

/// Why the breaker refused an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerOpen {
    pub until: DateTime<Utc>,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failures in a row.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            open_until: None,
        }
    }

    /// Whether an attempt may be made now. Past the cooldown, one trial is let
    /// through (half-open); its failure opens the breaker again at once.
    pub fn allow(&self, now: DateTime<Utc>) -> Result<(), BreakerOpen> {
        match self.open_until {
            Some(until) if now < until => Err(BreakerOpen { until }),
            _ => Ok(()),
        }
    }

    /// The attempt worked: closed again.
    pub fn success(&mut self) {
        self.failures = 0;
        self.open_until = None;
    }

    /// The attempt failed at `now`.
    pub fn failure(&mut self, now: DateTime<Utc>) {
        self.failures = self.failures.saturating_add(1);
        let half_open = self.open_until.is_some();
        if half_open || self.failures >= self.threshold {
            self.open_until =
                Some(now + chrono::Duration::from_std(self.cooldown).unwrap_or_default());
        }
    }

    /// Whether the breaker is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.allow(now).is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_caps() {
        let b = Backoff {
            max_attempts: 8,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for (attempt, step) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let d = b.delay(attempt, &mut rng).as_millis() as u64;
                assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d}ms");
                seen.insert(d);
            }
            assert!(seen.len() > 10, "jitter spreads the waits: {seen:?}");
        }
    }

    #[test]
    fn breaker_opens_after_threshold_rests_then_half_opens() {
        let t0 = Utc::now();
        let secs = |s| t0 + chrono::Duration::seconds(s);
        let mut br = Breaker::new(3, Duration::from_secs(60));
        br.failure(t0);
        br.failure(t0);
        assert!(br.allow(t0).is_ok(), "two failures: still closed");
        br.failure(t0);
        assert_eq!(br.allow(secs(59)), Err(BreakerOpen { until: secs(60) }));
        // Half-open: one trial; its failure reopens for a whole cooldown.
        assert!(br.allow(secs(60)).is_ok());
        br.failure(secs(60));
        assert!(br.is_open(secs(119)));
        assert!(br.allow(secs(120)).is_ok());
        br.success();
        assert!(br.allow(secs(120)).is_ok());
        br.failure(secs(121));
        assert!(br.allow(secs(121)).is_ok(), "a success reset the count");
    }
}
