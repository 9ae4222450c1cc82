//! Learning: reads the event log itself — incidents, remediations, ranked
//! hypotheses and operators' verdicts — and records `learning_insight` events
//! when a figure changes: time to resolve per incident type and its trend,
//! success, restores and time to validation per playbook, hypothesis accuracy,
//! recurring incidents, and thresholds with the evidence behind them.
//!
//! A cycle runs on schedule, when an incident resolves, and on `:learn`.

pub mod insights;
pub mod tally;

use std::collections::BTreeMap;

use super::AgentContext;
use crate::event::EventKind;
use crate::state::State;
pub use insights::{Insight, insights};
pub use tally::Tally;

const ACTOR: &str = "agent:learning";

/// The learning agent: its tally of the log so far and what it last said per topic.
pub struct LearningAgent {
    tally: Tally,
    said: BTreeMap<String, String>,
}

impl LearningAgent {
    /// Starts from the state the runtime folded at start-up (so the first
    /// cycle reads only what came after it) and the insights already said.
    pub fn new(state: &State) -> Self {
        Self {
            tally: Tally::from_state(state),
            said: state
                .learning
                .latest
                .iter()
                .map(|(topic, i)| (topic.clone(), i.insight.clone()))
                .collect(),
        }
    }

    /// One learning cycle: folds in the events since the last one and
    /// records the insights that changed; returns how many were recorded.
    pub async fn cycle(&mut self, ctx: &AgentContext) -> usize {
        let log = ctx.log.clone();
        let mut tally = std::mem::take(&mut self.tally);
        let from = tally.last_seq + 1;
        // The scan reads the store synchronously: keep it off the async workers.
        // It hands back the tally it reached and, if it stopped early, why.
        let scanned = tokio::task::spawn_blocking(move || {
            let result = tally.fold_log(&log, from);
            (tally, result.err())
        })
        .await;
        match scanned {
            Ok((t, error)) => {
                self.tally = t;
                if let Some(e) = error {
                    ctx.report_error("learning", format!("reading the log: {e}"))
                        .await;
                }
            }
            Err(e) => {
                ctx.report_error("learning", format!("the log scan stopped: {e}"))
                    .await;
                return 0;
            }
        }
        let drafts = self.changed(insights(&self.tally));
        let n = drafts.len();
        if let Err(e) = ctx.record_many(ACTOR, drafts).await {
            tracing::error!("learning agent could not record: {e}");
            return 0;
        }
        n
    }

    /// The insights whose text differs from what was last said, as events.
    fn changed(&mut self, found: Vec<Insight>) -> Vec<EventKind> {
        let mut out = Vec::new();
        for i in found {
            if self.said.get(&i.topic) == Some(&i.insight) {
                continue;
            }
            self.said.insert(i.topic.clone(), i.insight.clone());
            out.push(EventKind::LearningInsight {
                topic: i.topic,
                insight: i.insight,
                metrics: i.metrics,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;
