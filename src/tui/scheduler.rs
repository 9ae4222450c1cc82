//! When to draw: a needs-render flag and a minimum interval between frames.
//! Nothing is drawn while nothing changed; a burst of changes (events, keys,
//! resizes) coalesces into one frame at most every `1/max_fps` seconds.

use std::time::{Duration, Instant};

/// The render scheduler.
#[derive(Debug, Clone)]
pub struct Scheduler {
    min_interval: Duration,
    last_frame: Option<Instant>,
    dirty: bool,
}

impl Scheduler {
    /// A scheduler allowing at most `max_fps` frames a second (at least 1).
    pub fn new(max_fps: u32) -> Scheduler {
        Scheduler {
            min_interval: Duration::from_secs(1) / max_fps.max(1),
            last_frame: None,
            dirty: true,
        }
    }

    /// Something on screen changed.
    pub fn mark(&mut self) {
        self.dirty = true;
    }

    /// Whether a frame should be drawn now.
    pub fn due(&self, now: Instant) -> bool {
        self.dirty && self.last_frame.is_none_or(|l| now >= l + self.min_interval)
    }

    /// Records that a frame was drawn.
    pub fn drawn(&mut self, now: Instant) {
        self.dirty = false;
        self.last_frame = Some(now);
    }

    /// When the loop should wake next if nothing arrives: the earliest allowed
    /// frame when dirty, otherwise `idle` (the next clock tick).
    pub fn next_wake(&self, now: Instant, idle: Instant) -> Instant {
        if self.dirty {
            let at = self
                .last_frame
                .map_or(now, |l| (l + self.min_interval).max(now));
            at.min(idle)
        } else {
            idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_frame_is_immediate_then_rate_limited() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(10);
        assert!(s.due(t0), "the first frame is drawn at once");
        s.drawn(t0);
        assert!(
            !s.due(t0 + Duration::from_millis(500)),
            "clean: nothing to draw"
        );
        s.mark();
        s.mark();
        assert!(
            !s.due(t0 + Duration::from_millis(50)),
            "too soon after the last frame"
        );
        let idle = t0 + Duration::from_secs(1);
        assert_eq!(
            s.next_wake(t0 + Duration::from_millis(50), idle),
            t0 + Duration::from_millis(100)
        );
        assert!(s.due(t0 + Duration::from_millis(100)));
        s.drawn(t0 + Duration::from_millis(100));
        assert_eq!(s.next_wake(t0 + Duration::from_millis(120), idle), idle);
    }

    #[test]
    fn zero_fps_is_clamped() {
        let s = Scheduler::new(0);
        assert_eq!(s.min_interval, Duration::from_secs(1));
    }
}
