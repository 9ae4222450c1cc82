//! Real connectors for `run`: built from the config file. A connector family
//! that is not configured is recorded once as `absent`, with the line the
//! Fleet pane shows to say how to add it.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::connectors::Registry;
use crate::event::{ConnectorState, EventKind, NewEvent};
use crate::state::State;
use crate::store::EventLog;

/// The configured real connectors, or `None` when there are none (the demo
/// fleet is watched instead).
pub async fn configured(
    config: &Config,
    clock: SharedClock,
    log: &EventLog,
    state: &State,
) -> anyhow::Result<Option<Registry>> {
    let setup = crate::connectors::aws::connect(config.aws.as_ref(), clock.clone()).await;
    let drafts: Vec<NewEvent> = setup
        .absent
        .iter()
        .filter(|(id, line)| {
            state
                .fleet
                .connectors
                .get(id)
                .is_none_or(|v| v.status != ConnectorState::Absent || v.message != *line)
        })
        .map(|(id, line)| {
            NewEvent::new(
                clock.now(),
                "runtime",
                EventKind::ConnectorStatus {
                    connector: id.clone(),
                    status: ConnectorState::Absent,
                    message: line.clone(),
                },
            )
        })
        .collect();
    if !drafts.is_empty() {
        log.append_many(drafts).await?;
    }
    if setup.connectors.is_empty() {
        return Ok(None);
    }
    let mut registry = Registry::new();
    for c in setup.connectors {
        registry.add(c);
    }
    Ok(Some(registry))
}
