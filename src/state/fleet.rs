//! The fleet projection: every known resource with its health and history.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{
    ConnectorId, ConnectorState, Event, EventKind, HealthStatus, Resource, ResourceId,
};

/// Events remembered per resource for the drill-down. What each resource
/// keeps is multiplied by the fleet (README, Performance › console memory);
/// older events are in the log (`shieldops log export`).
const EVENTS_PER_RESOURCE: usize = 10;

/// A resource and what the console shows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceView {
    pub resource: Resource,
    pub discovered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest events that touched this resource (seq, summary without
    /// the resource's own id), newest last. Lines are shared ([`history`]).
    #[serde(with = "history")]
    pub recent: VecDeque<(u64, Arc<str>)>,
    /// Incidents raised on this resource.
    pub incidents: Vec<u64>,
    /// Remediations that targeted this resource.
    pub remediations: Vec<u64>,
    /// The latest inspection an operator asked for (events, log tail);
    /// boxed because few resources have one.
    #[serde(default)]
    pub inspection: Option<Box<Inspection>>,
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
    /// Behind an `Arc`: a map node holds eleven entries, and eleven whole
    /// views made each node several kilobytes, mostly empty slots. Shared, so
    /// a cloned fleet (the runtime's and the screen's fold start from the
    /// same one) costs the map, not the views: a fold copies a view only when
    /// an event changes it (`Arc::make_mut`).
    #[serde(with = "shared_views")]
    pub resources: BTreeMap<ResourceId, Arc<ResourceView>>,
    /// Connector (or connector family, for an absent one) → its latest status.
    #[serde(default)]
    pub connectors: BTreeMap<ConnectorId, ConnectorView>,
}

impl Fleet {
    pub(super) fn apply(&mut self, event: &Event) {
        let line = || (event.seq, crate::event::summary(&event.kind));
        match &event.kind {
            EventKind::ResourceDiscovered { resource } => {
                match self.resources.get_mut(&resource.id).map(Arc::make_mut) {
                    Some(view) => {
                        view.resource = resource.clone();
                        view.updated_at = event.at;
                    }
                    None => {
                        self.resources.insert(
                            resource.id.clone(),
                            Arc::new(ResourceView {
                                resource: resource.clone(),
                                discovered_at: event.at,
                                updated_at: event.at,
                                recent: VecDeque::new(),
                                incidents: Vec::new(),
                                remediations: Vec::new(),
                                inspection: None,
                            }),
                        );
                    }
                }
                if let Some(view) = self.resources.get_mut(&resource.id).map(Arc::make_mut) {
                    push_bounded(&mut view.recent, &resource.id, line());
                }
            }
            EventKind::ResourceChanged { resource, changes } => {
                if let Some(view) = self.resources.get_mut(resource).map(Arc::make_mut) {
                    for (k, v) in changes {
                        if v.is_empty() {
                            view.resource.attributes.remove(k);
                        } else {
                            view.resource.attributes.insert(k.clone(), v.clone());
                        }
                    }
                    view.updated_at = event.at;
                    push_bounded(&mut view.recent, resource, line());
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
                if let Some(view) = self.resources.get_mut(resource).map(Arc::make_mut) {
                    view.resource.health = health.clone();
                    view.updated_at = event.at;
                    push_bounded(&mut view.recent, resource, line());
                }
            }
            EventKind::ResourceInspected {
                resource,
                requested_by,
                evidence,
                error,
            } => {
                if let Some(view) = self.resources.get_mut(resource).map(Arc::make_mut) {
                    view.inspection = Some(Box::new(Inspection {
                        at: event.at,
                        requested_by: requested_by.clone(),
                        evidence: evidence.clone(),
                        error: error.clone(),
                    }));
                }
            }
            _ => {}
        }
    }

    /// Notes an event about a resource in its drill-down history.
    pub(super) fn note(&mut self, id: &ResourceId, seq: u64, summary: String) {
        if let Some(view) = self.resources.get_mut(id).map(Arc::make_mut) {
            push_bounded(&mut view.recent, id, (seq, summary));
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
        self.resources.get(id).map(|view| &**view)
    }
}

/// Adds `line` to a resource's history, dropping the oldest past the bound.
/// The resource's own id is cut from the front of the summary: the history is
/// shown under the resource, and the id is most of each line's size.
fn push_bounded(queue: &mut VecDeque<(u64, Arc<str>)>, id: &ResourceId, line: (u64, String)) {
    let (seq, summary) = line;
    let summary = match summary.strip_prefix(id.as_str()) {
        Some(rest) if rest.starts_with(' ') => history::intern(rest.trim_start()),
        _ => history::intern(&summary),
    };
    if queue.capacity() < EVENTS_PER_RESOURCE {
        queue.reserve_exact(EVENTS_PER_RESOURCE - queue.len());
    }
    queue.push_back((seq, summary));
    while queue.len() > EVENTS_PER_RESOURCE {
        queue.pop_front();
    }
}

impl Fleet {
    /// Gives back what decoding a snapshot over-allocated: a decoded history
    /// grows by doubling, to more room than [`EVENTS_PER_RESOURCE`] needs.
    pub(super) fn compact(&mut self) {
        // Only views this fold owns alone: compacting a shared one would copy it.
        for view in self.resources.values_mut().filter_map(Arc::get_mut) {
            view.recent.shrink_to_fit();
        }
    }
}

/// The serialised form of the shared views: a plain map of views, decoded
/// straight into `Arc`s (no second map while a large snapshot loads).
mod shared_views {
    use super::*;
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde::ser::Serializer;

    type Views = BTreeMap<ResourceId, Arc<ResourceView>>;

    pub fn serialize<S: Serializer>(views: &Views, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(views.iter().map(|(id, view)| (id, &**view)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Views, D::Error> {
        struct ViewsVisitor;
        impl<'de> Visitor<'de> for ViewsVisitor {
            type Value = Views;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of resource ids to resource views")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Views, A::Error> {
                let mut views = Views::new();
                while let Some((id, view)) = map.next_entry::<ResourceId, ResourceView>()? {
                    views.insert(id, Arc::new(view));
                }
                Ok(views)
            }
        }
        d.deserialize_map(ViewsVisitor)
    }
}

/// Resource history lines, one shared copy of each distinct text.
///
/// Without the resource's id, most lines repeat across the fleet ("is
/// degraded: ProbeFailed"); sharing the text makes a line cost a pointer
/// instead of an allocation per resource (README, Performance › console
/// memory). The table is
/// only a cache: values, equality and the serialised form are plain strings.
mod history {
    use super::*;
    use serde::de::Deserializer;
    use serde::ser::Serializer;

    struct Table {
        lines: HashSet<Arc<str>>,
        /// Size after the last sweep; the next sweep is due at twice that.
        swept_at: usize,
    }

    static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| {
        Mutex::new(Table {
            lines: HashSet::new(),
            swept_at: 0,
        })
    });

    /// The shared copy of `text`.
    pub(super) fn intern(text: &str) -> Arc<str> {
        let Ok(mut table) = TABLE.lock() else {
            return Arc::from(text);
        };
        if let Some(line) = table.lines.get(text) {
            return line.clone();
        }
        if table.lines.len() >= (2 * table.swept_at).max(4096) {
            // Lines no resource holds any more (only the table does).
            table.lines.retain(|line| Arc::strong_count(line) > 1);
            table.swept_at = table.lines.len();
        }
        let line: Arc<str> = Arc::from(text);
        table.lines.insert(line.clone());
        line
    }

    pub(super) fn serialize<S: Serializer>(
        lines: &VecDeque<(u64, Arc<str>)>,
        out: S,
    ) -> Result<S::Ok, S::Error> {
        out.collect_seq(lines.iter().map(|(seq, text)| (seq, &**text)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        input: D,
    ) -> Result<VecDeque<(u64, Arc<str>)>, D::Error> {
        let lines: Vec<(u64, std::borrow::Cow<'de, str>)> = Deserialize::deserialize(input)?;
        Ok(lines
            .into_iter()
            .map(|(seq, text)| (seq, intern(&text)))
            .collect())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn equal_lines_share_one_copy_and_serialise_as_strings() {
            let a = intern("is degraded: ProbeFailed (history test)");
            let b = intern(&String::from("is degraded: ProbeFailed (history test)"));
            assert!(Arc::ptr_eq(&a, &b));
            let lines: VecDeque<(u64, Arc<str>)> = [(7, a)].into();
            #[derive(Serialize, Deserialize)]
            struct Holder {
                #[serde(with = "super")]
                lines: VecDeque<(u64, Arc<str>)>,
            }
            let json = serde_json::to_string(&Holder { lines }).unwrap();
            assert_eq!(
                json,
                r#"{"lines":[[7,"is degraded: ProbeFailed (history test)"]]}"#
            );
            let back: Holder = serde_json::from_str(&json).unwrap();
            assert!(Arc::ptr_eq(&back.lines[0].1, &b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ChainHash, Environment, Health, NewEvent, Provider};

    fn event(seq: u64, kind: EventKind) -> Event {
        let at = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .unwrap()
            .to_utc();
        Event::seal(seq, ChainHash::GENESIS, NewEvent::new(at, "test", kind)).0
    }

    fn pod(name: &str) -> Resource {
        Resource {
            id: ResourceId::new(format!("k8s/prod/pod/{name}")),
            name: name.into(),
            kind: "pod".into(),
            provider: Provider::Kubernetes,
            connector: ConnectorId::new("k8s:prod"),
            environment: Environment::Production,
            team: "shop".into(),
            labels: Default::default(),
            attributes: Default::default(),
            health: Health::healthy(),
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_cloned_fleet_shares_views_until_an_event_changes_one() {
        let mut fleet = Fleet::default();
        let (a, b) = (pod("a"), pod("b"));
        fleet.apply(&event(
            1,
            EventKind::ResourceDiscovered {
                resource: a.clone(),
            },
        ));
        fleet.apply(&event(
            2,
            EventKind::ResourceDiscovered {
                resource: b.clone(),
            },
        ));
        let mut other = fleet.clone();
        for id in [&a.id, &b.id] {
            assert!(Arc::ptr_eq(&fleet.resources[id], &other.resources[id]));
        }

        let mut sick = Health::healthy();
        sick.status = HealthStatus::Unhealthy;
        other.apply(&event(
            3,
            EventKind::HealthChanged {
                resource: a.id.clone(),
                health: sick,
            },
        ));
        assert!(!Arc::ptr_eq(
            &fleet.resources[&a.id],
            &other.resources[&a.id]
        ));
        assert!(Arc::ptr_eq(
            &fleet.resources[&b.id],
            &other.resources[&b.id]
        ));
        assert_eq!(
            fleet.get(&a.id).unwrap().resource.health.status,
            HealthStatus::Healthy
        );
        assert_eq!(
            other.get(&a.id).unwrap().resource.health.status,
            HealthStatus::Unhealthy
        );

        // Serialised as a plain map of views, and read back whole.
        let json = serde_json::to_value(&other).unwrap();
        assert_eq!(json["resources"][a.id.as_str()]["resource"]["name"], "a");
        let back: Fleet = serde_json::from_value(json).unwrap();
        assert_eq!(back, other);
    }
}
