//! Injectable time: the runtime, the agents and the demo fleet never read the
//! wall clock directly, so tests drive time by hand and the demo can run fast.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;

/// A source of "now" and of sleeping until later.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Completes once `d` of this clock's time has passed.
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
}

/// Shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time, optionally sped up: `speed` seconds of clock time pass per real second.
pub struct ScaledClock {
    origin_real: Instant,
    origin: DateTime<Utc>,
    speed: f64,
}

impl ScaledClock {
    /// A clock starting at `origin` and running `speed` times faster than real time.
    pub fn new(origin: DateTime<Utc>, speed: f64) -> Self {
        Self {
            origin_real: Instant::now(),
            origin,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    /// Real time at normal speed.
    pub fn real() -> Self {
        Self::new(Utc::now(), 1.0)
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.origin_real.elapsed().as_secs_f64() * self.speed;
        self.origin + chrono::Duration::microseconds((real * 1e6) as i64)
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        let real = d.div_f64(self.speed);
        Box::pin(tokio::time::sleep(real))
    }
}

/// A clock that moves only when told to: for deterministic tests.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    tick: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        let (tick, _) = watch::channel(start);
        Self {
            now: Arc::new(Mutex::new(start)),
            tick,
        }
    }

    /// Moves time forward, waking sleepers whose deadline has passed.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().expect("clock lock");
        *now += chrono::Duration::from_std(d).unwrap_or_default();
        self.tick.send_replace(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        let deadline = self.now() + chrono::Duration::from_std(d).unwrap_or_default();
        let mut rx = self.tick.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_only_when_advanced_past_deadline() {
        let start = Utc::now();
        let clock = ManualClock::new(start);
        let sleeper = tokio::spawn(clock.sleep(Duration::from_secs(10)));
        clock.advance(Duration::from_secs(5));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(5));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), start + chrono::Duration::seconds(10));
    }
}
