//! Cost anomalies against a learned baseline: a rolling median and MAD of a
//! series' own history. A series is anomalous only when it departs from its
//! own history, never by comparison with others, and only after enough history.

use std::collections::VecDeque;

/// Samples kept per series for the baseline.
pub const HISTORY: usize = 24;
/// Samples needed before a series can be called anomalous.
pub const MIN_HISTORY: usize = 4;

/// A departure from the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    /// The baseline's median.
    pub expected: u64,
    pub actual: u64,
    /// How many samples the baseline held.
    pub window: usize,
}

/// One series' rolling baseline, and whether it is in a departure already (so
/// a step change raises one anomaly, not one per sample).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    history: VecDeque<u64>,
    departed: bool,
}

impl Baseline {
    /// A baseline that starts from recorded samples (oldest first).
    pub fn from_history(samples: impl IntoIterator<Item = u64>) -> Self {
        let mut b = Self::default();
        for s in samples {
            b.push(s);
        }
        b
    }

    /// Adds a sample; returns a departure when it is the first of a new one.
    pub fn observe(&mut self, x: u64) -> Option<Departure> {
        let baseline: Vec<u64> = self.history.iter().copied().collect();
        self.push(x);
        match anomaly(&baseline, x) {
            Some(expected) if !self.departed => {
                self.departed = true;
                Some(Departure {
                    expected,
                    actual: x,
                    window: baseline.len(),
                })
            }
            Some(_) => None,
            None => {
                self.departed = false;
                None
            }
        }
    }

    /// The latest sample.
    pub fn last(&self) -> Option<u64> {
        self.history.back().copied()
    }

    fn push(&mut self, x: u64) {
        self.history.push_back(x);
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }
}

/// The expected value if `x` departs from the baseline, else `None`.
/// Baseline = median; spread = MAD scaled to a standard deviation. A value is
/// anomalous when it exceeds the median by four spreads and by half the median
/// (so a flat series with tiny noise never alerts on a tiny bump).
pub fn anomaly(baseline: &[u64], x: u64) -> Option<u64> {
    if baseline.len() < MIN_HISTORY {
        return None;
    }
    let median = median_f(baseline).round() as u64;
    let deviations: Vec<u64> = baseline.iter().map(|v| v.abs_diff(median)).collect();
    let mad = median_f(&deviations) * 1.4826;
    let threshold = median as f64 + (4.0 * mad).max(median as f64 * 0.5).max(5.0);
    (x as f64 > threshold).then_some(median)
}

fn median_f(v: &[u64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2] as f64
    } else {
        (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(series: &[u64]) -> Vec<(usize, Departure)> {
        let mut b = Baseline::default();
        series
            .iter()
            .enumerate()
            .filter_map(|(i, x)| b.observe(*x).map(|d| (i, d)))
            .collect()
    }

    #[test]
    fn a_flat_series_raises_nothing() {
        assert!(run(&[456; 40]).is_empty());
    }

    #[test]
    fn noise_within_the_band_raises_nothing() {
        let noisy: Vec<u64> = (0..60).map(|i| 1000 + (i * 37 % 11) * 9).collect();
        assert!(run(&noisy).is_empty());
    }

    #[test]
    fn a_real_step_change_raises_exactly_one() {
        let mut series = vec![456u64, 460, 452, 456, 458, 455, 456, 457];
        series.extend([3686; 30]);
        let found = run(&series);
        assert_eq!(found.len(), 1, "{found:?}");
        let (at, d) = found[0];
        assert_eq!(at, 8);
        assert_eq!(
            d,
            Departure {
                expected: 456,
                actual: 3686,
                window: 8
            }
        );
    }

    #[test]
    fn too_little_history_raises_nothing() {
        assert!(run(&[19, 19, 154]).is_empty());
    }

    #[test]
    fn a_second_step_after_settling_raises_again() {
        let mut series = vec![100u64; 10];
        series.extend([400; 30]);
        series.extend([100; 30]);
        series.extend([400; 3]);
        assert_eq!(run(&series).len(), 2);
    }
}
