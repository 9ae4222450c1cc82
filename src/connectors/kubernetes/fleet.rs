//! The live fleet of one context, kept current by kube-runtime watchers: one
//! list, then a watch per kind that resumes from its resourceVersion (and
//! re-lists only when the server says the version has expired). Each change
//! updates one entry and wakes whoever waits on `changed`; nothing polls the
//! API server.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Endpoints, Event as KubeEvent, Node, PersistentVolumeClaim, Pod, Service,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::analyzers::{self, Finding, health_of};
use super::facts::{node_facts, pod_spec_facts, pod_status_facts, rbac_facts, replicaset_facts};
use super::ids;
use crate::event::StringMap;
use crate::event::{ConnectorId, Environment, Health, InfraEvent, Provider, Resource, ResourceId};

/// Kubernetes events remembered per object.
const EVENTS_PER_OBJECT: usize = 20;
/// Objects whose events are remembered (oldest forgotten first).
const OBJECTS_WITH_EVENTS: usize = 20_000;

/// What the watchers know about one context.
pub struct FleetCache {
    pub context: String,
    pub connector: ConnectorId,
    resources: RwLock<HashMap<ResourceId, Resource>>,
    events: Mutex<EventMemory>,
    /// Ready and not-ready endpoint addresses per `namespace/service`.
    endpoints: Mutex<HashMap<String, (usize, usize)>>,
    /// Woken after every applied change.
    pub changed: Arc<Notify>,
    /// Kinds whose first list is complete.
    synced: Mutex<HashSet<&'static str>>,
    pub synced_notify: Notify,
    /// Kinds whose watch last failed, with the error (cleared by its next event).
    failing: Mutex<BTreeMap<&'static str, String>>,
    /// Held by a usage read from its request to its write, so an older
    /// answer never overwrites a newer one.
    pub(super) usage_turn: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct EventMemory {
    by_object: HashMap<ResourceId, VecDeque<InfraEvent>>,
    order: VecDeque<ResourceId>,
}

/// How many kinds the fleet watches (for "fully synced").
pub const WATCHED_KINDS: usize = 15;

impl FleetCache {
    pub fn new(context: &str, connector: ConnectorId, changed: Arc<Notify>) -> Self {
        Self {
            context: context.to_string(),
            connector,
            resources: RwLock::new(HashMap::new()),
            events: Mutex::new(EventMemory::default()),
            endpoints: Mutex::new(HashMap::new()),
            changed,
            synced: Mutex::new(HashSet::new()),
            synced_notify: Notify::new(),
            failing: Mutex::new(BTreeMap::new()),
            usage_turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Every resource, as of now.
    pub fn resources(&self) -> Vec<Resource> {
        self.resources
            .read()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One resource.
    pub fn resource(&self, id: &ResourceId) -> Option<Resource> {
        self.resources.read().ok()?.get(id).cloned()
    }

    /// How many resources are known.
    pub fn len(&self) -> usize {
        self.resources.read().map(|r| r.len()).unwrap_or(0)
    }

    /// Whether no resource is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Kubernetes events remembered for an object, oldest first.
    pub fn events(&self, id: &ResourceId) -> Vec<InfraEvent> {
        self.events
            .lock()
            .ok()
            .and_then(|m| m.by_object.get(id).map(|q| q.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// Whether every watched kind has finished its first list.
    pub fn is_synced(&self) -> bool {
        self.synced
            .lock()
            .map(|s| s.len() >= WATCHED_KINDS)
            .unwrap_or(false)
    }

    /// The context's condition for the console: failing watches, else
    /// still listing, else watching.
    pub fn status(&self) -> (crate::event::ConnectorState, String) {
        use crate::event::ConnectorState;
        let failing = self.failing.lock().map(|f| f.clone()).unwrap_or_default();
        if let Some((kind, error)) = failing.iter().next() {
            return (
                ConnectorState::Failing,
                format!("{} watch(es) failing; {kind}: {error}", failing.len()),
            );
        }
        let listed = self.synced.lock().map(|s| s.len()).unwrap_or(0);
        if listed < WATCHED_KINDS {
            return (
                ConnectorState::Degraded,
                format!("first list in progress ({listed} of {WATCHED_KINDS} kinds)"),
            );
        }
        (ConnectorState::Ok, "watching".into())
    }

    fn watch_result(&self, kind: &'static str, error: Option<String>) {
        if let Ok(mut f) = self.failing.lock() {
            match error {
                Some(e) => {
                    f.insert(kind, e);
                }
                None => {
                    f.remove(kind);
                }
            }
        }
    }

    fn mark_synced(&self, kind: &'static str) {
        if let Ok(mut s) = self.synced.lock() {
            s.insert(kind);
        }
        self.synced_notify.notify_waiters();
    }

    fn upsert(&self, mut r: Resource) {
        let Ok(mut map) = self.resources.write() else {
            return;
        };
        // The last warning comes from the events watch and usage from the
        // metrics poller, not the object: keep them.
        if let Some(old) = map.get(&r.id) {
            for key in std::iter::once("last_warning").chain(super::usage::KEYS) {
                if let Some(v) = old.attributes.get(key) {
                    r.attributes.insert(key.into(), v.clone());
                }
            }
        }
        map.insert(r.id.clone(), r);
    }

    /// Writes usage onto every resource of `kind` (`None` clears it), waking
    /// `changed` when anything differs.
    pub(super) fn set_usage(
        &self,
        kind: &str,
        usage_of: impl Fn(&Resource) -> Option<super::usage::Usage>,
    ) {
        let mut changed = false;
        if let Ok(mut map) = self.resources.write() {
            for r in map.values_mut().filter(|r| r.kind == kind) {
                let written = usage_of(r)
                    .map(|u| u.attributes(&r.attributes))
                    .unwrap_or_default();
                let before: Vec<Option<String>> = super::usage::KEYS
                    .iter()
                    .map(|k| r.attributes.remove(k))
                    .collect();
                for (k, v) in written {
                    r.attributes.insert(k.into(), v);
                }
                changed |= super::usage::KEYS
                    .iter()
                    .zip(before)
                    .any(|(k, b)| r.attributes.get(k) != b.as_ref());
            }
        }
        if changed {
            self.changed.notify_one();
        }
    }

    fn remove(&self, id: &ResourceId) {
        if let Ok(mut map) = self.resources.write() {
            map.remove(id);
        }
    }

    /// Drops resources of `kind` that a fresh list did not return.
    fn retain_listed(&self, kind: &str, listed: &HashSet<ResourceId>) {
        if let Ok(mut map) = self.resources.write() {
            map.retain(|id, r| r.kind != kind || listed.contains(id));
        }
    }

    fn service_endpoints(&self, ns: &str, name: &str) -> Option<(usize, usize)> {
        self.endpoints
            .lock()
            .ok()?
            .get(&format!("{ns}/{name}"))
            .copied()
    }

    fn record_event(&self, ev: &KubeEvent) {
        let obj = &ev.involved_object;
        let (Some(kind), Some(name)) = (&obj.kind, &obj.name) else {
            return;
        };
        let kind = kind_slug(kind);
        let id = ids::id(
            &self.context,
            obj.namespace.as_deref().unwrap_or(""),
            &kind,
            name,
        );
        let at = ev
            .last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| ev.event_time.as_ref().map(|t| t.0))
            .or_else(|| ev.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .map(jiff_to_chrono)
            .unwrap_or_else(chrono::Utc::now);
        let infra = InfraEvent {
            at,
            resource: id.clone(),
            kind: ev.type_.clone().unwrap_or_else(|| "Normal".into()),
            // Whoever can create events in a namespace writes these words:
            // redacted before they reach an attribute or the log.
            reason: crate::redact::line(ev.reason.as_deref().unwrap_or_default()),
            message: crate::redact::line(ev.message.as_deref().unwrap_or_default()),
        };
        if let Ok(mut mem) = self.events.lock() {
            let mem = &mut *mem;
            let queue = mem.by_object.entry(id.clone()).or_insert_with(|| {
                mem.order.push_back(id.clone());
                VecDeque::new()
            });
            // A repeated event (same reason and message) replaces its earlier copy.
            queue.retain(|e| !(e.reason == infra.reason && e.message == infra.message));
            queue.push_back(infra.clone());
            while queue.len() > EVENTS_PER_OBJECT {
                queue.pop_front();
            }
            while mem.order.len() > OBJECTS_WITH_EVENTS {
                if let Some(old) = mem.order.pop_front() {
                    mem.by_object.remove(&old);
                }
            }
        }
        if infra.kind == "Warning"
            && let Ok(mut map) = self.resources.write()
            && let Some(r) = map.get_mut(&id)
        {
            let mut line = format!("{}: {}", infra.reason, infra.message);
            truncate(&mut line, 160);
            r.attributes.insert("last_warning".into(), line);
        }
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
}

/// kube's timestamps (jiff) as the project's (chrono).
pub fn jiff_to_chrono(t: k8s_openapi::jiff::Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

/// `ReplicaSet` → `replicaset`, `PersistentVolumeClaim` → `pvc`, `HorizontalPodAutoscaler` → `hpa`.
pub fn kind_slug(kind: &str) -> String {
    match kind {
        "PersistentVolumeClaim" => "pvc".into(),
        "HorizontalPodAutoscaler" => "hpa".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// A kind the fleet watches and shows.
pub trait Observed:
    kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    /// The id's kind segment.
    const SLUG: &'static str;
    /// What is wrong with it (empty = healthy).
    fn findings(&self, cache: &FleetCache) -> Vec<Finding>;
    /// Facts worth showing beside it.
    fn attributes(&self, _out: &mut StringMap) {}
}

/// The resource the console shows for an object.
pub fn to_resource<K: Observed>(obj: &K, cache: &FleetCache) -> Resource {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let meta = obj.meta();
    let mut labels: StringMap = meta.labels.clone().unwrap_or_default().into();
    let mut attributes = StringMap::new();
    attributes.insert("context".to_string(), cache.context.clone());
    if !ns.is_empty() {
        attributes.insert("namespace".to_string(), ns.clone());
        // Policies match protected namespaces on this label.
        labels.insert("namespace".to_string(), ns.clone());
    }
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        attributes.insert(
            "owner".into(),
            ids::id(&cache.context, &ns, &kind_slug(&owner.kind), &owner.name).0,
        );
    }
    obj.attributes(&mut attributes);
    let team = labels
        .get("team")
        .or_else(|| labels.get("app.kubernetes.io/part-of"))
        .cloned()
        .unwrap_or_else(|| {
            if ns.is_empty() {
                "platform".into()
            } else {
                ns.clone()
            }
        });
    // The cache keeps one of these per object for as long as it exists.
    labels.shrink_to_fit();
    attributes.shrink_to_fit();
    Resource {
        id: ids::id(&cache.context, &ns, K::SLUG, &name),
        name,
        kind: K::SLUG.to_string(),
        provider: Provider::Kubernetes,
        connector: cache.connector.clone(),
        environment: environment(&labels, &ns, &cache.context),
        team,
        labels,
        attributes,
        health: health_of(&obj.findings(cache)),
        created_at: meta
            .creation_timestamp
            .as_ref()
            .map(|t| jiff_to_chrono(t.0))
            .unwrap_or_default(),
    }
}

/// The environment from an `environment`/`env` label, else the namespace or context name.
fn environment(labels: &StringMap, ns: &str, context: &str) -> Environment {
    let hint = labels
        .get("environment")
        .or_else(|| labels.get("env"))
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_else(|| format!("{ns} {context}").to_ascii_lowercase());
    if hint.contains("prod") {
        Environment::Production
    } else if hint.contains("stag") {
        Environment::Staging
    } else {
        Environment::Development
    }
}

/// Follows one kind's watch until cancelled or the stream ends, handing each
/// event to `apply`, which says whether the fleet changed (that wakes
/// discovery). Errors are logged and the stream goes on: its back-off retries,
/// and a 410 Gone makes the watcher re-list by itself.
async fn follow<K>(
    client: Client,
    cache: &FleetCache,
    cancel: &CancellationToken,
    what: &'static str,
    mut apply: impl FnMut(watcher::Event<K>) -> bool,
) where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let api: Api<K> = Api::all(client);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return,
            next = stream.next() => next,
        };
        let Some(event) = next else { return };
        match event {
            Ok(event) => {
                cache.watch_result(what, None);
                if apply(event) {
                    cache.changed.notify_one();
                }
            }
            Err(e) => {
                tracing::warn!(context = %cache.context, kind = what, "watch: {e}");
                cache.watch_result(what, Some(e.to_string()));
            }
        }
    }
}

/// Watches one kind into the cache; a re-list drops what it no longer lists.
pub async fn watch_kind<K: Observed>(
    client: Client,
    cache: Arc<FleetCache>,
    cancel: CancellationToken,
) {
    let mut listing: Option<HashSet<ResourceId>> = None;
    follow::<K>(client, &cache, &cancel, K::SLUG, |event| {
        match event {
            watcher::Event::Init => listing = Some(HashSet::new()),
            watcher::Event::InitApply(obj) => {
                let r = to_resource(&obj, &cache);
                if let Some(seen) = listing.as_mut() {
                    seen.insert(r.id.clone());
                }
                cache.upsert(r);
            }
            watcher::Event::InitDone => {
                if let Some(seen) = listing.take() {
                    cache.retain_listed(K::SLUG, &seen);
                }
                cache.mark_synced(K::SLUG);
            }
            watcher::Event::Apply(obj) => cache.upsert(to_resource(&obj, &cache)),
            watcher::Event::Delete(obj) => cache.remove(&to_resource(&obj, &cache).id),
        }
        true
    })
    .await
}

/// Watches Kubernetes events (remembered per object, warnings shown on the object).
pub async fn watch_events(client: Client, cache: Arc<FleetCache>, cancel: CancellationToken) {
    follow::<KubeEvent>(client, &cache, &cancel, "event", |event| match event {
        watcher::Event::Apply(ev) | watcher::Event::InitApply(ev) => {
            cache.record_event(&ev);
            true
        }
        watcher::Event::InitDone => {
            cache.mark_synced("event");
            true
        }
        _ => false,
    })
    .await
}

/// Watches Endpoints so each Service's health says whether it has ready endpoints.
pub async fn watch_endpoints(client: Client, cache: Arc<FleetCache>, cancel: CancellationToken) {
    follow::<Endpoints>(client, &cache, &cancel, "endpoints", |event| {
        let (ep, gone) = match event {
            watcher::Event::Apply(ep) | watcher::Event::InitApply(ep) => (ep, false),
            watcher::Event::Delete(ep) => (ep, true),
            watcher::Event::InitDone => {
                cache.mark_synced("endpoints");
                return false;
            }
            watcher::Event::Init => return false,
        };
        let ns = ep.namespace().unwrap_or_default();
        let name = ep.name_any();
        let counts = analyzers::service::endpoint_counts(&ep);
        if let Ok(mut m) = cache.endpoints.lock() {
            if gone {
                m.remove(&format!("{ns}/{name}"));
            } else {
                m.insert(format!("{ns}/{name}"), counts);
            }
        }
        // Re-judge the service with its new endpoints.
        let id = ids::id(&cache.context, &ns, "service", &name);
        if let Ok(mut map) = cache.resources.write()
            && let Some(r) = map.get_mut(&id)
        {
            let has_selector = r.attributes.get("selector").is_some_and(|s| !s.is_empty());
            r.health = service_health(has_selector, if gone { None } else { Some(counts) });
            r.attributes.insert(
                "endpoints".into(),
                format!("{}/{}", counts.0, counts.0 + counts.1),
            );
        }
        true
    })
    .await
}

fn service_health(has_selector: bool, counts: Option<(usize, usize)>) -> Health {
    use k8s_openapi::api::core::v1::{EndpointAddress, EndpointSubset, ServiceSpec};
    let svc = Service {
        spec: Some(ServiceSpec {
            selector: has_selector.then(|| BTreeMap::from([("_".to_string(), "_".to_string())])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let ep = counts.map(|(ready, not_ready)| Endpoints {
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress::default(); ready]),
            not_ready_addresses: Some(vec![EndpointAddress::default(); not_ready]),
            ..Default::default()
        }]),
        ..Default::default()
    });
    health_of(&analyzers::service::analyze(&svc, ep.as_ref()))
}

/// Starts every watcher of a context.
pub fn spawn_watchers(client: Client, cache: Arc<FleetCache>, cancel: CancellationToken) {
    macro_rules! watch {
        ($($k:ty),*) => {$(
            tokio::spawn(watch_kind::<$k>(client.clone(), cache.clone(), cancel.clone()));
        )*};
    }
    watch!(
        Pod,
        Deployment,
        ReplicaSet,
        StatefulSet,
        DaemonSet,
        Job,
        CronJob,
        Node,
        Service,
        PersistentVolumeClaim,
        HorizontalPodAutoscaler,
        Role,
        ClusterRole
    );
    tokio::spawn(watch_events(client.clone(), cache.clone(), cancel.clone()));
    tokio::spawn(watch_endpoints(client, cache, cancel));
}

fn first_image(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Option<String> {
    spec.and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
}

fn memory_limit(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Option<String> {
    spec.and_then(|s| s.containers.first())
        .and_then(|c| c.resources.as_ref())
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map(|q| q.0.clone())
}

impl Observed for Pod {
    const SLUG: &'static str = "pod";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::pod::analyze(self)
    }
    fn attributes(&self, out: &mut StringMap) {
        let spec = self.spec.as_ref();
        if let Some(node) = spec.and_then(|s| s.node_name.clone()) {
            out.insert("node".into(), node);
        }
        if let Some(image) = first_image(spec) {
            out.insert("image".into(), image);
        }
        if let Some(m) = memory_limit(spec) {
            out.insert("memory_limit".into(), m);
        }
        pod_spec_facts(spec, out);
        pod_status_facts(self.status.as_ref(), out);
        if let Some(status) = &self.status {
            out.insert("phase".into(), status.phase.clone().unwrap_or_default());
            let cs = status.container_statuses.as_deref().unwrap_or_default();
            let ready = cs.iter().filter(|c| c.ready).count();
            out.insert("ready".into(), format!("{ready}/{}", cs.len()));
            let restarts: i32 = cs.iter().map(|c| c.restart_count).sum();
            out.insert("restarts".into(), restarts.to_string());
        }
    }
}

impl Observed for Deployment {
    const SLUG: &'static str = "deployment";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::deployment::analyze(self)
    }
    fn attributes(&self, out: &mut StringMap) {
        let spec = self.spec.as_ref();
        out.insert(
            "replicas".into(),
            spec.and_then(|s| s.replicas).unwrap_or(1).to_string(),
        );
        let template = spec.and_then(|s| s.template.spec.as_ref());
        if let Some(image) = first_image(template) {
            out.insert("image".into(), image);
        }
        pod_spec_facts(template, out);
        if let Some(rev) = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        {
            out.insert("revision".into(), rev.clone());
        }
        if let Some(s) = &self.status {
            out.insert("ready".into(), s.ready_replicas.unwrap_or(0).to_string());
        }
    }
}

impl Observed for ReplicaSet {
    const SLUG: &'static str = "replicaset";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::replicaset::analyze(self)
    }
    fn attributes(&self, out: &mut StringMap) {
        let replicas = self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        out.insert("replicas".into(), replicas.to_string());
        pod_spec_facts(
            self.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref()),
            out,
        );
        replicaset_facts(self, out);
    }
}

impl Observed for StatefulSet {
    const SLUG: &'static str = "statefulset";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::statefulset::analyze(self)
    }
    fn attributes(&self, out: &mut StringMap) {
        let replicas = self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        out.insert("replicas".into(), replicas.to_string());
        pod_spec_facts(
            self.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            out,
        );
    }
}

impl Observed for DaemonSet {
    const SLUG: &'static str = "daemonset";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::daemonset::analyze(self)
    }
    fn attributes(&self, out: &mut StringMap) {
        pod_spec_facts(
            self.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            out,
        );
    }
}

impl Observed for Job {
    const SLUG: &'static str = "job";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::job::analyze(self)
    }
    fn attributes(&self, out: &mut StringMap) {
        pod_spec_facts(
            self.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            out,
        );
    }
}

impl Observed for CronJob {
    const SLUG: &'static str = "cronjob";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::cronjob::analyze(self)
    }
    fn attributes(&self, out: &mut StringMap) {
        pod_spec_facts(
            self.spec
                .as_ref()
                .and_then(|s| s.job_template.spec.as_ref())
                .and_then(|j| j.template.spec.as_ref()),
            out,
        );
    }
}

/// Roles are not judged for health (that is the compliance controls' work):
/// they carry their wildcard facts.
impl Observed for Role {
    const SLUG: &'static str = "role";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        Vec::new()
    }
    fn attributes(&self, out: &mut StringMap) {
        rbac_facts(self.rules.as_deref(), out);
    }
}

impl Observed for ClusterRole {
    const SLUG: &'static str = "clusterrole";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        Vec::new()
    }
    fn attributes(&self, out: &mut StringMap) {
        rbac_facts(self.rules.as_deref(), out);
    }
}

impl Observed for Node {
    const SLUG: &'static str = "node";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::node::analyze(self)
    }
    fn attributes(&self, out: &mut StringMap) {
        if self.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            out.insert("cordoned".into(), "true".into());
        }
        if let Some(v) = self.status.as_ref().and_then(|s| s.node_info.as_ref()) {
            out.insert("kubelet".into(), v.kubelet_version.clone());
        }
        node_facts(self, out);
    }
}

impl Observed for Service {
    const SLUG: &'static str = "service";
    fn findings(&self, cache: &FleetCache) -> Vec<Finding> {
        let ns = self.namespace().unwrap_or_default();
        let counts = cache.service_endpoints(&ns, &self.name_any());
        let has_selector = self
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_some_and(|s| !s.is_empty());
        let external = self.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName");
        let h = service_health(has_selector && !external, counts);
        if h.status == crate::event::HealthStatus::Healthy {
            Vec::new()
        } else {
            analyzers::service::analyze(self, None)
                .into_iter()
                .map(|mut f| {
                    f.message = h.message.clone();
                    f
                })
                .collect()
        }
    }
    fn attributes(&self, out: &mut StringMap) {
        let sel = self
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .map(|s| {
                s.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        out.insert("selector".into(), sel);
    }
}

impl Observed for PersistentVolumeClaim {
    const SLUG: &'static str = "pvc";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::pvc::analyze(self)
    }
}

impl Observed for HorizontalPodAutoscaler {
    const SLUG: &'static str = "hpa";
    fn findings(&self, _: &FleetCache) -> Vec<Finding> {
        analyzers::hpa::analyze(self)
    }
    fn attributes(&self, out: &mut StringMap) {
        if let Some(s) = &self.spec {
            out.insert(
                "target".into(),
                format!("{}/{}", s.scale_target_ref.kind, s.scale_target_ref.name),
            );
            out.insert("max".into(), s.max_replicas.to_string());
        }
        if let Some(s) = &self.status {
            out.insert(
                "current".into(),
                s.current_replicas.unwrap_or(0).to_string(),
            );
        }
    }
}
