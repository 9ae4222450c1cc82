//! Discovery: keeps the fleet in the log current. Only changes become events —
//! a new resource, a health change (with its reason), changed attributes, a
//! resource that is gone — never a re-list of everything.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::AgentContext;
use crate::connectors::Scope;
use crate::event::{ConnectorId, EventKind, Resource, ResourceId};
use crate::state::State;

const ACTOR: &str = "agent:discovery";

/// The discovery agent's memory of what the log already says.
pub struct Discovery {
    known: HashMap<ResourceId, Resource>,
}

impl Discovery {
    /// Starts from what the projected state already knows, so a restart emits nothing new.
    pub fn from_state(state: &State) -> Self {
        Self {
            known: state
                .fleet
                .resources
                .iter()
                .map(|(id, v)| (id.clone(), v.resource.clone()))
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
            (connector, connector.list_resources(&Scope::default()).await)
        }))
        .await;
        for (connector, answer) in answers {
            match answer {
                Ok(resources) => {
                    answered.insert(connector.id().clone());
                    for r in resources {
                        seen.insert(r.id.clone());
                        drafts.extend(self.diff(r));
                    }
                }
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
            self.known.insert(current.id.clone(), current.clone());
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
        self.known.insert(current.id.clone(), current);
        out
    }
}
