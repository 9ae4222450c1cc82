//! How long each agent's cycle takes, in real time, as histograms for the
//! `/metrics` endpoint. Real time (not the injected clock) on purpose: this
//! measures the work the machine does, which a sped-up demo does not shorten.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the histogram buckets.
pub const BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// One agent's cycle durations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Count of cycles at or below each of [`BUCKETS`] (cumulative, like Prometheus).
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_secs: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.cumulative.len() != BUCKETS.len() {
            self.cumulative = vec![0; BUCKETS.len()];
        }
        for (slot, bound) in self.cumulative.iter_mut().zip(BUCKETS) {
            if secs <= *bound {
                *slot += 1;
            }
        }
        self.count += 1;
        self.sum_secs += secs;
    }
}

/// Cycle histograms per agent; shared by the agents' tasks and the metrics endpoint.
#[derive(Debug, Default)]
pub struct LoopStats {
    agents: Mutex<BTreeMap<&'static str, Histogram>>,
}

impl LoopStats {
    /// Records one cycle of `agent`.
    pub fn observe(&self, agent: &'static str, took: Duration) {
        if let Ok(mut agents) = self.agents.lock() {
            agents.entry(agent).or_default().observe(took.as_secs_f64());
        }
    }

    /// Every agent's histogram so far.
    pub fn snapshot(&self) -> Vec<(String, Histogram)> {
        self.agents
            .lock()
            .map(|a| a.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let stats = LoopStats::default();
        stats.observe("cost", Duration::from_millis(3));
        stats.observe("cost", Duration::from_millis(70));
        let snap = stats.snapshot();
        let (name, h) = &snap[0];
        assert_eq!(name, "cost");
        assert_eq!(h.count, 2);
        assert_eq!(h.cumulative[0], 0); // ≤ 1 ms
        assert_eq!(h.cumulative[1], 1); // ≤ 5 ms
        assert_eq!(h.cumulative[4], 2); // ≤ 100 ms
        assert!((h.sum_secs - 0.073).abs() < 1e-9);
    }
}
