//! Sizes the agents and connectors propose, computed in one place so that an
//! investigation's hypothesis, a connector's own finding, the playbook branch that
//! acts on them and the action the approver sees all quote the same number.

/// Headroom over observed memory demand that a raised limit gives.
pub const OOM_HEADROOM: f64 = 0.25;
/// Memory limits are raised in steps of this many MiB.
pub const MEMORY_STEP_MIB: f64 = 64.0;

/// The memory limit, MiB, to raise an OOM-killed workload to: the observed
/// demand (its peak working set) plus 25%, rounded up to a 64 MiB step, and
/// never less than one step above the current limit (a raise must raise).
/// Without an observed demand, one step above the current limit.
pub fn oom_memory_limit_mib(limit_mib: f64, demand_mib: Option<f64>) -> u64 {
    let floor = limit_mib.max(0.0) + MEMORY_STEP_MIB;
    let wanted = demand_mib
        .filter(|d| d.is_finite() && *d > 0.0)
        .map_or(0.0, |d| {
            (d * (1.0 + OOM_HEADROOM) / MEMORY_STEP_MIB).ceil() * MEMORY_STEP_MIB
        });
    wanted.max(floor).ceil() as u64
}

/// The `p`th percentile (nearest rank) of `samples`: rightsizing and the
/// usage connectors report (a CloudWatch window's p95) use the same one.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    Some(s[rank.min(s.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_limit_is_a_quarter_over_demand_in_64_mib_steps() {
        // The demo: a 256Mi limit, 340Mi demand: 425 → 448.
        assert_eq!(oom_memory_limit_mib(256.0, Some(340.0)), 448);
        // Demand just over the limit still raises by at least a step.
        assert_eq!(oom_memory_limit_mib(512.0, Some(260.0)), 576);
        // Unknown demand (absent, or nonsense from a broken metric).
        assert_eq!(oom_memory_limit_mib(256.0, None), 320);
        assert_eq!(oom_memory_limit_mib(256.0, Some(f64::NAN)), 320);
        assert_eq!(oom_memory_limit_mib(512.0, Some(600.0)), 768);
    }
}
