//! Asking a remediation's connector what the action would change before
//! anyone is asked to approve it. Fail closed: a preview that cannot be had
//! (no connector, no preview for that action, a parameter the connector would
//! ignore, the live object unreadable, no answer in time) refuses the proposal.

use std::time::Duration;

use crate::connectors::Registry;
use crate::event::{Action, PolicyDecision, Preview};
use crate::state::State;

/// How long a preview may wait on a connector.
pub const PREVIEW_TIMEOUT: Duration = Duration::from_secs(20);

/// A preview's answer, sent back to the supervisor with the decision it follows.
#[derive(Debug)]
pub struct Previewed {
    pub remediation: u64,
    pub decision: PolicyDecision,
    pub result: Result<Preview, String>,
}

/// What `action` would change, from the connector that owns its target.
pub async fn ask(
    registry: &Registry,
    state_connector: Option<crate::event::ConnectorId>,
    action: &Action,
) -> Result<Preview, String> {
    let id = state_connector.ok_or_else(|| format!("{} is not in the fleet", action.target))?;
    let connector = registry
        .get(&id)
        .ok_or_else(|| format!("connector {id} is not running here"))?;
    match tokio::time::timeout(PREVIEW_TIMEOUT, connector.preview(action)).await {
        Ok(Ok(preview)) if preview.changes.is_empty() => Err(format!(
            "{id} showed no change for `{}` on {}",
            action.name, action.target
        )),
        Ok(Ok(preview)) => Ok(preview),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "{id} did not answer within {}s",
            PREVIEW_TIMEOUT.as_secs()
        )),
    }
}

/// The connector that owns the target of remediation `id`, as the fleet knows it.
pub fn connector_of(state: &State, id: u64) -> Option<crate::event::ConnectorId> {
    let rem = state.remediations.get(&id)?;
    state
        .fleet
        .get(&rem.action.target)
        .map(|v| v.resource.connector.clone())
}
