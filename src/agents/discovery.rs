//! Discovery: keeps the fleet in the log current. Only changes become events —
//! a new resource, a health change (with its reason), changed attributes, a
//! resource that is gone, a connector whose own condition changed — never a
//! re-list of everything.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::AgentContext;
use crate::connectors::{Listing, Scope};
use crate::event::{
    ConnectorId, ConnectorState, EventKind, Health, Resource, ResourceId, StringMap,
};
use crate::state::State;

const ACTOR: &str = "agent:discovery";

/// The discovery agent's memory of what the log already says.
pub struct Discovery {
    known: HashMap<ResourceId, Known>,
    /// The connector conditions the log already says.
    statuses: HashMap<ConnectorId, (ConnectorState, String)>,
}

/// What a poll is compared with: only the parts a diff looks at (a whole
/// copy of every resource cost as much as a third copy of the fleet).
#[derive(Debug)]
struct Known {
    connector: ConnectorId,
    health: Health,
    attributes: StringMap,
}

impl Known {
    fn of(r: &Resource) -> Self {
        Self {
            connector: r.connector.clone(),
            health: r.health.clone(),
            attributes: r.attributes.clone(),
        }
    }
}

impl Discovery {
    /// Starts from what the projected state already knows, so a restart emits nothing new.
    pub fn from_state(state: &State) -> Self {
        Self {
            known: state
                .fleet
                .resources
                .iter()
                .map(|(id, v)| (id.clone(), Known::of(&v.resource)))
                .collect(),
            statuses: state
                .fleet
                .connectors
                .iter()
                .map(|(id, v)| (id.clone(), (v.status, v.message.clone())))
                .collect(),
        }
    }

    /// Polls every connector once; returns how many events were recorded.
    pub async fn poll(&mut self, ctx: &AgentContext) -> usize {
        let mut drafts = Vec::new();
        let mut answered: BTreeSet<ConnectorId> = BTreeSet::new();
        let mut seen: BTreeSet<ResourceId> = BTreeSet::new();
        // Connectors are asked concurrently: a slow one (a fleet of SSH
        // hosts, this machine under load) does not delay the others' answers.
        let answers = futures::future::join_all(ctx.registry.all().map(|connector| async move {
            let result = connector.refresh(&Scope::default()).await;
            (connector, result, connector.status())
        }))
        .await;
        for (connector, result, status) in answers {
            if let Some(status) = &status
                && self.statuses.get(connector.id()) != Some(status)
            {
                self.statuses.insert(connector.id().clone(), status.clone());
                drafts.push(EventKind::ConnectorStatus {
                    connector: connector.id().clone(),
                    status: status.0,
                    message: status.1.clone(),
                });
            }
            match result {
                Ok(Listing::Fresh(resources)) => {
                    answered.insert(connector.id().clone());
                    for r in resources {
                        seen.insert(r.id.clone());
                        drafts.extend(self.diff(r));
                    }
                }
                // Nothing looked at again: nothing can be gone either.
                Ok(Listing::Unchanged) => {}
                // A connector that reports its own condition has said why above.
                Err(_) if status.is_some() => {}
                Err(e) => {
                    ctx.report_error("discovery", format!("{}: {e}", connector.id()))
                        .await
                }
            }
        }
        let gone: Vec<ResourceId> = self
            .known
            .iter()
            .filter(|(id, r)| answered.contains(&r.connector) && !seen.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.known.remove(&id);
            drafts.push(EventKind::ResourceGone { resource: id });
        }
        let count = drafts.len();
        if let Err(e) = ctx.record_many(ACTOR, drafts).await {
            tracing::error!("discovery could not record: {e}");
        }
        count
    }

    fn diff(&mut self, current: Resource) -> Vec<EventKind> {
        let Some(old) = self.known.get(&current.id) else {
            self.known.insert(current.id.clone(), Known::of(&current));
            return vec![EventKind::ResourceDiscovered { resource: current }];
        };
        let mut out = Vec::new();
        let mut changes = BTreeMap::new();
        for (k, v) in &current.attributes {
            if old.attributes.get(k) != Some(v) {
                changes.insert(k.clone(), v.clone());
            }
        }
        for k in old.attributes.keys() {
            if !current.attributes.contains_key(k) {
                changes.insert(k.clone(), String::new());
            }
        }
        if !changes.is_empty() {
            out.push(EventKind::ResourceChanged {
                resource: current.id.clone(),
                changes,
            });
        }
        if old.health != current.health {
            out.push(EventKind::HealthChanged {
                resource: current.id.clone(),
                health: current.health.clone(),
            });
        }
        self.known.insert(current.id.clone(), Known::of(&current));
        out
    }
}
