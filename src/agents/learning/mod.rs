//! Learning: reads the folded history — resolved incidents, remediation
//! outcomes — and records insights when the figures change: time to resolve
//! per alert, success rate per action, recurring incidents.

use std::collections::BTreeMap;

use super::AgentContext;
use crate::event::EventKind;
use crate::state::{IncidentStatus, State};

const ACTOR: &str = "agent:learning";

/// The learning agent's memory of what it last said per topic.
pub struct LearningAgent {
    said: BTreeMap<String, String>,
}

impl LearningAgent {
    /// Starts from the insights the log already holds.
    pub fn new(state: &State) -> Self {
        Self {
            said: state
                .learning
                .insights
                .iter()
                .map(|i| (i.topic.clone(), i.insight.clone()))
                .collect(),
        }
    }

    /// One learning cycle over a state snapshot; returns insights recorded.
    pub async fn cycle(&mut self, ctx: &AgentContext, state: &State) -> usize {
        let mut n = 0;
        for (topic, insight, metrics) in insights(state) {
            if self.said.get(&topic) == Some(&insight) {
                continue;
            }
            let kind = EventKind::LearningInsight {
                topic: topic.clone(),
                insight: insight.clone(),
                metrics,
            };
            if ctx.record(ACTOR, kind).await.is_ok() {
                self.said.insert(topic, insight);
                n += 1;
            }
        }
        n
    }
}

/// Computes the insights a state supports: (topic, text, figures).
pub fn insights(state: &State) -> Vec<(String, String, BTreeMap<String, f64>)> {
    let mut out = Vec::new();

    // Time to resolve, per alert name.
    let mut by_alert: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut by_fingerprint: BTreeMap<&str, usize> = BTreeMap::new();
    for inc in state.incidents.values() {
        *by_fingerprint.entry(inc.fingerprint.as_str()).or_default() += 1;
        if inc.status != IncidentStatus::Resolved {
            continue;
        }
        let Some(resolved) = inc.resolved_at else {
            continue;
        };
        let alert = inc.alert.clone();
        by_alert
            .entry(alert)
            .or_default()
            .push((resolved - inc.opened_at).num_milliseconds() as f64 / 60_000.0);
    }
    for (alert, minutes) in by_alert {
        let mean = minutes.iter().sum::<f64>() / minutes.len() as f64;
        let mut m = BTreeMap::new();
        m.insert("mttr_minutes".into(), round2(mean));
        m.insert("incidents".into(), minutes.len() as f64);
        out.push((
            format!("mttr:{alert}"),
            format!(
                "{alert}: mean time to resolve {:.1} min over {} incident(s)",
                mean,
                minutes.len()
            ),
            m,
        ));
    }

    // Success rate per action.
    for (action, counts) in &state.learning.by_action {
        let Some(rate) = counts.success_rate() else {
            continue;
        };
        let ran = counts.succeeded + counts.rolled_back + counts.failed;
        let mut m = BTreeMap::new();
        m.insert("success_rate".into(), round2(rate));
        m.insert("runs".into(), ran as f64);
        m.insert("rolled_back".into(), counts.rolled_back as f64);
        out.push((
            format!("action:{action}"),
            format!(
                "{action}: {} of {ran} succeeded ({:.0}%), {} rolled back",
                counts.succeeded,
                rate * 100.0,
                counts.rolled_back
            ),
            m,
        ));
    }

    // Recurring incidents.
    for (fingerprint, count) in by_fingerprint {
        if count >= 2 {
            let mut m = BTreeMap::new();
            m.insert("occurrences".into(), count as f64);
            out.push((
                format!("recurring:{fingerprint}"),
                format!("{fingerprint} has recurred {count} times: consider a lasting fix"),
                m,
            ));
        }
    }
    out
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
