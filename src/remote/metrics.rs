//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;

use super::hub::Projection;
use crate::runtime::loop_stats::{BUCKETS, Histogram};

/// What one scrape shows.
pub struct Inputs<'a> {
    pub projection: &'a Projection,
    pub log_last_seq: u64,
    pub loop_stats: &'a [(String, Histogram)],
    pub sessions: usize,
    pub in_flight: usize,
}

/// Renders the exposition text: each family's HELP and TYPE, then its samples.
pub fn render(i: &Inputs<'_>) -> String {
    let c = &i.projection.counters;
    let mut out = String::new();
    let head = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    head(
        &mut out,
        "shieldops_events_appended_total",
        "counter",
        "Events appended to the log since this server started.",
    );
    let _ = writeln!(out, "shieldops_events_appended_total {}", c.events);
    head(
        &mut out,
        "shieldops_event_log_last_seq",
        "gauge",
        "Seq of the last durable event in the log.",
    );
    let _ = writeln!(out, "shieldops_event_log_last_seq {}", i.log_last_seq);
    head(
        &mut out,
        "shieldops_approvals_pending",
        "gauge",
        "Remediations waiting for approval.",
    );
    let _ = writeln!(
        out,
        "shieldops_approvals_pending {}",
        i.projection.state.approval_queue().len()
    );
    head(
        &mut out,
        "shieldops_in_flight",
        "gauge",
        "Open incidents, running investigations and unfinished remediations.",
    );
    let _ = writeln!(out, "shieldops_in_flight {}", i.in_flight);
    head(
        &mut out,
        "shieldops_policy_decisions_total",
        "counter",
        "Policy decisions on proposed remediations, by result.",
    );
    for result in ["allow", "deny"] {
        let v = c.decisions.get(result).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "shieldops_policy_decisions_total{{result=\"{result}\"}} {v}"
        );
    }
    head(
        &mut out,
        "shieldops_approvals_total",
        "counter",
        "Approval outcomes since this server started, by outcome.",
    );
    for outcome in ["granted", "denied", "expired"] {
        let v = c.approvals.get(outcome).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "shieldops_approvals_total{{outcome=\"{outcome}\"}} {v}"
        );
    }
    head(
        &mut out,
        "shieldops_actions_total",
        "counter",
        "Remediation actions executed since this server started, by outcome.",
    );
    for outcome in ["success", "failure"] {
        let v = c.actions.get(outcome).copied().unwrap_or(0);
        let _ = writeln!(out, "shieldops_actions_total{{outcome=\"{outcome}\"}} {v}");
    }
    head(
        &mut out,
        "shieldops_remote_sessions",
        "gauge",
        "Consoles attached over WebSocket.",
    );
    let _ = writeln!(out, "shieldops_remote_sessions {}", i.sessions);
    head(
        &mut out,
        "shieldops_agent_loop_duration_seconds",
        "histogram",
        "Real time each agent cycle took, by agent.",
    );
    for (agent, h) in i.loop_stats {
        for (bound, count) in BUCKETS.iter().zip(&h.cumulative) {
            let _ = writeln!(
                out,
                "shieldops_agent_loop_duration_seconds_bucket{{agent=\"{agent}\",le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "shieldops_agent_loop_duration_seconds_bucket{{agent=\"{agent}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "shieldops_agent_loop_duration_seconds_sum{{agent=\"{agent}\"}} {}",
            h.sum_secs
        );
        let _ = writeln!(
            out,
            "shieldops_agent_loop_duration_seconds_count{{agent=\"{agent}\"}} {}",
            h.count
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::hub::{Counters, Projection};
    use crate::state::State;

    #[test]
    fn every_family_has_its_header_and_samples() {
        let mut counters = Counters {
            events: 12,
            ..Counters::default()
        };
        counters.decisions.insert("allow", 2);
        counters.actions.insert("failure", 1);
        let p = Projection {
            state: State::new(),
            hash: crate::event::ChainHash::GENESIS,
            counters,
        };
        let stats = crate::runtime::loop_stats::LoopStats::default();
        stats.observe("cost", std::time::Duration::from_millis(2));
        let text = render(&Inputs {
            projection: &p,
            log_last_seq: 40,
            loop_stats: &stats.snapshot(),
            sessions: 3,
            in_flight: 1,
        });
        for line in [
            "shieldops_events_appended_total 12",
            "shieldops_event_log_last_seq 40",
            "shieldops_approvals_pending 0",
            "shieldops_policy_decisions_total{result=\"allow\"} 2",
            "shieldops_policy_decisions_total{result=\"deny\"} 0",
            "shieldops_actions_total{outcome=\"failure\"} 1",
            "shieldops_remote_sessions 3",
            "shieldops_agent_loop_duration_seconds_bucket{agent=\"cost\",le=\"0.005\"} 1",
            "shieldops_agent_loop_duration_seconds_count{agent=\"cost\"} 1",
            "# TYPE shieldops_agent_loop_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
