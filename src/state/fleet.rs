//! The fleet projection: every known resource with its health and history.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{
    ConnectorId, ConnectorState, Event, EventKind, HealthStatus, Resource, ResourceId,
};

/// Events remembered per resource for the drill-down.
const EVENTS_PER_RESOURCE: usize = 20;

/// A resource and what the console shows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceView {
    pub resource: Resource,
    pub discovered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest events that touched this resource (seq, summary), newest last.
    pub recent: VecDeque<(u64, String)>,
    /// Incidents raised on this resource.
    pub incidents: Vec<u64>,
    /// Remediations that targeted this resource.
    pub remediations: Vec<u64>,
    /// The latest inspection an operator asked for (events, log tail).
    #[serde(default)]
    pub inspection: Option<Inspection>,
}

/// What the connector said when the resource was last inspected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub at: DateTime<Utc>,
    pub requested_by: String,
    pub evidence: Vec<crate::event::Evidence>,
    pub error: Option<String>,
}

/// Counts of resources by health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthCounts {
    pub healthy: usize,
    pub degraded: usize,
    pub unhealthy: usize,
    pub unknown: usize,
}

/// The latest condition a connector reported about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorView {
    pub status: ConnectorState,
    pub message: String,
    pub since: DateTime<Utc>,
}

/// All resources, keyed by id, and the connectors' own conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    pub resources: BTreeMap<ResourceId, ResourceView>,
    /// Connector (or connector family, for an absent one) → its latest status.
    #[serde(default)]
    pub connectors: BTreeMap<ConnectorId, ConnectorView>,
}

impl Fleet {
    pub(super) fn apply(&mut self, event: &Event) {
        let line = (event.seq, crate::event::summary(&event.kind));
        match &event.kind {
            EventKind::ResourceDiscovered { resource } => {
                let view = self
                    .resources
                    .entry(resource.id.clone())
                    .or_insert_with(|| ResourceView {
                        resource: resource.clone(),
                        discovered_at: event.at,
                        updated_at: event.at,
                        recent: VecDeque::new(),
                        incidents: Vec::new(),
                        remediations: Vec::new(),
                        inspection: None,
                    });
                view.resource = resource.clone();
                view.updated_at = event.at;
                push_bounded(&mut view.recent, line);
            }
            EventKind::ResourceChanged { resource, changes } => {
                if let Some(view) = self.resources.get_mut(resource) {
                    for (k, v) in changes {
                        if v.is_empty() {
                            view.resource.attributes.remove(k);
                        } else {
                            view.resource.attributes.insert(k.clone(), v.clone());
                        }
                    }
                    view.updated_at = event.at;
                    push_bounded(&mut view.recent, line);
                }
            }
            EventKind::ResourceGone { resource } => {
                self.resources.remove(resource);
            }
            EventKind::ConnectorStatus {
                connector,
                status,
                message,
            } => {
                self.connectors.insert(
                    connector.clone(),
                    ConnectorView {
                        status: *status,
                        message: message.clone(),
                        since: event.at,
                    },
                );
            }
            EventKind::HealthChanged { resource, health } => {
                if let Some(view) = self.resources.get_mut(resource) {
                    view.resource.health = health.clone();
                    view.updated_at = event.at;
                    push_bounded(&mut view.recent, line);
                }
            }
            EventKind::ResourceInspected {
                resource,
                requested_by,
                evidence,
                error,
            } => {
                if let Some(view) = self.resources.get_mut(resource) {
                    view.inspection = Some(Inspection {
                        at: event.at,
                        requested_by: requested_by.clone(),
                        evidence: evidence.clone(),
                        error: error.clone(),
                    });
                }
            }
            _ => {}
        }
    }

    /// Notes an event about a resource in its drill-down history.
    pub(super) fn note(&mut self, id: &ResourceId, seq: u64, summary: String) {
        if let Some(view) = self.resources.get_mut(id) {
            push_bounded(&mut view.recent, (seq, summary));
        }
    }

    /// Counts resources by health status.
    pub fn health_counts(&self) -> HealthCounts {
        let mut counts = HealthCounts::default();
        for view in self.resources.values() {
            match view.resource.health.status {
                HealthStatus::Healthy => counts.healthy += 1,
                HealthStatus::Degraded => counts.degraded += 1,
                HealthStatus::Unhealthy => counts.unhealthy += 1,
                HealthStatus::Unknown => counts.unknown += 1,
            }
        }
        counts
    }

    /// Looks up a resource.
    pub fn get(&self, id: &ResourceId) -> Option<&ResourceView> {
        self.resources.get(id)
    }
}

fn push_bounded(queue: &mut VecDeque<(u64, String)>, line: (u64, String)) {
    queue.push_back(line);
    while queue.len() > EVENTS_PER_RESOURCE {
        queue.pop_front();
    }
}
