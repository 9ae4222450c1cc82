//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;

use super::hub::Projection;
use crate::event::ConnectorState;
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
    let labelled = |out: &mut String,
                    name: &str,
                    help: &str,
                    label: &str,
                    keys: &[&'static str],
                    map: &std::collections::BTreeMap<&'static str, u64>| {
        head(out, name, "counter", help);
        for k in keys {
            let v = map.get(k).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
        }
    };
    labelled(
        &mut out,
        "shieldops_remediations_finished_total",
        "Remediations finished since this server started, by how they ended.",
        "status",
        &[
            "succeeded",
            "rolled_back",
            "failed",
            "denied",
            "expired",
            "aborted",
        ],
        &c.remediations,
    );
    labelled(
        &mut out,
        "shieldops_restores_total",
        "Snapshots restored after a failed action or validation, by outcome.",
        "outcome",
        &["success", "failure"],
        &c.restores,
    );
    labelled(
        &mut out,
        "shieldops_notifications_total",
        "Notification attempts, by outcome (gave_up: no further attempt for that event and channel).",
        "outcome",
        &["sent", "failed", "gave_up"],
        &c.notifications,
    );
    head(
        &mut out,
        "shieldops_agent_errors_total",
        "counter",
        "Errors agents reported (a connector that did not answer, a broken playbook, ...).",
    );
    let _ = writeln!(out, "shieldops_agent_errors_total {}", c.agent_errors);
    head(
        &mut out,
        "shieldops_projection_last_seq",
        "gauge",
        "Seq of the last event this server has folded; behind shieldops_event_log_last_seq while it catches up.",
    );
    let _ = writeln!(
        out,
        "shieldops_projection_last_seq {}",
        i.projection.state.last_seq
    );
    let connectors = &i.projection.state.fleet.connectors;
    head(
        &mut out,
        "shieldops_connectors",
        "gauge",
        "Connectors by their latest reported status.",
    );
    for status in [
        ConnectorState::Ok,
        ConnectorState::Degraded,
        ConnectorState::Failing,
        ConnectorState::Absent,
    ] {
        let n = connectors.values().filter(|v| v.status == status).count();
        let _ = writeln!(
            out,
            "shieldops_connectors{{status=\"{}\"}} {n}",
            status.as_str()
        );
    }
    head(
        &mut out,
        "shieldops_connector_failing",
        "gauge",
        "1 while a connector reports that it is not answering (expired credentials, no permission), else 0.",
    );
    for (id, view) in connectors {
        let _ = writeln!(
            out,
            "shieldops_connector_failing{{connector=\"{}\"}} {}",
            label_value(&id.to_string()),
            u8::from(view.status == ConnectorState::Failing)
        );
    }
    if let Some(earliest) = i
        .projection
        .state
        .approval_queue()
        .iter()
        .filter_map(|r| r.expires_at)
        .min()
    {
        head(
            &mut out,
            "shieldops_approval_earliest_expiry_timestamp_seconds",
            "gauge",
            "When the first pending approval's time to live ends (Unix seconds); absent when none is pending.",
        );
        let _ = writeln!(
            out,
            "shieldops_approval_earliest_expiry_timestamp_seconds {}",
            earliest.timestamp()
        );
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

/// A label value in the exposition format: `\\`, `\"` and `\n` escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
        counters.remediations.insert("rolled_back", 2);
        counters.notifications.insert("gave_up", 1);
        counters.agent_errors = 4;
        let mut state = State::new();
        state.last_seq = 38;
        state.fleet.connectors.insert(
            crate::event::ConnectorId::new("k8s:\"prod\"\n"),
            crate::state::ConnectorView {
                status: ConnectorState::Failing,
                message: "expired".into(),
                since: chrono::Utc::now(),
            },
        );
        let p = Projection {
            state,
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
            "shieldops_remediations_finished_total{status=\"rolled_back\"} 2",
            "shieldops_remediations_finished_total{status=\"succeeded\"} 0",
            "shieldops_restores_total{outcome=\"failure\"} 0",
            "shieldops_notifications_total{outcome=\"gave_up\"} 1",
            "shieldops_agent_errors_total 4",
            "shieldops_projection_last_seq 38",
            "shieldops_connectors{status=\"failing\"} 1",
            "shieldops_connectors{status=\"ok\"} 0",
            "shieldops_connector_failing{connector=\"k8s:\\\"prod\\\"\\n\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // No approval is pending: no expiry to show.
        assert!(!text.contains("shieldops_approval_earliest_expiry"));
    }
}
