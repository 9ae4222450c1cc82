//! Real connectors for `run` and `serve`: built from the config file and the
//! command line (`--context`). A connector family
//! that is not configured is recorded once as `absent`, with the line the
//! Fleet pane shows to say how to add it.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::connectors::Registry;
use crate::event::{ConnectorId, ConnectorState, EventKind, NewEvent};
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
    record_absent(&setup.absent, &clock, log, state).await?;
    let credentials =
        crate::connectors::credentials::connect(config.credentials.as_ref(), clock.clone()).await;
    record_absent(&credentials.absent, &clock, log, state).await?;
    if setup.connectors.is_empty() && credentials.connectors.is_empty() {
        return Ok(None);
    }
    let mut registry = Registry::new();
    for c in setup.connectors {
        registry.add(c);
    }
    for c in credentials.connectors {
        registry.add(c);
    }
    Ok(Some(registry))
}

/// Records each absent connector family's "how to add it" line, once: a line
/// the log already holds is not recorded again on the next start.
async fn record_absent(
    absent: &[(ConnectorId, String)],
    clock: &SharedClock,
    log: &EventLog,
    state: &State,
) -> anyhow::Result<()> {
    let drafts: Vec<NewEvent> = absent
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
    Ok(())
}

/// The Kubernetes connectors `--context` (else `[kubernetes] contexts`) asks
/// for; none when no cluster is configured, and then the Fleet pane gets one
/// line saying how to add a cluster.
pub async fn kubernetes(
    settings: &crate::connectors::kubernetes::KubernetesConfig,
    contexts: &[String],
    changed: std::sync::Arc<tokio::sync::Notify>,
    clock: &SharedClock,
    log: &EventLog,
    state: &State,
) -> anyhow::Result<Vec<std::sync::Arc<dyn crate::connectors::InfraConnector>>> {
    use crate::connectors::kubernetes::KubeConnector;
    let selection = settings.selection(contexts);
    let connectors =
        KubeConnector::start_all(&selection, settings.kubeconfig.as_deref(), changed).await?;
    if connectors.is_empty() {
        let line = crate::connectors::kubernetes::HOW_TO_ADD.to_string();
        record_absent(&[(ConnectorId::new("k8s"), line)], clock, log, state).await?;
    }
    Ok(connectors
        .into_iter()
        .map(|c| std::sync::Arc::new(c) as std::sync::Arc<dyn crate::connectors::InfraConnector>)
        .collect())
}
