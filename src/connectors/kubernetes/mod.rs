//! The Kubernetes connector: one instance per kubeconfig context, each its
//! own fleet (`k8s:<context>`). The fleet comes from watches (see [`fleet`]);
//! health, evidence and actions go to the API server through kube's client.
//! The connector knows nothing of who serves the API: a kubeconfig is all.

mod actions;
pub mod analyzers;
mod evidence;
mod facts;
mod fleet;
pub mod ids;
pub mod kubeconfig;
mod owners;
mod preview;
pub mod quantity;
mod rollout;
pub mod usage;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Endpoints, Node, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{ConnectorError, Diagnosis, InfraConnector, Result, Scope, TimeWindow};
use crate::event::{
    Action, ActionOutcome, ConnectorId, Health, HealthStatus, InfraEvent, Provider, Resource,
    ResourceId, Snapshot,
};
use analyzers::{Finding, health_of};
pub use fleet::FleetCache;
use ids::ObjectKey;
pub use kubeconfig::{ClusterTarget, ContextSelection, HOW_TO_ADD, KubernetesConfig, discover};

/// A connection to one context.
pub struct KubeConnector {
    id: ConnectorId,
    client: Client,
    cache: Arc<FleetCache>,
    cancel: CancellationToken,
}

impl Drop for KubeConnector {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl KubeConnector {
    /// Connects to a context and starts its watchers; `changed` is woken on every fleet change.
    pub fn start(target: ClusterTarget, changed: Arc<Notify>) -> Result<KubeConnector> {
        let mut config = target.config;
        // No silent retries: a refused eviction (429 from a disruption budget)
        // or a conflict must reach the action at once; watchers have their own backoff.
        config.default_retry = false;
        let client = Client::try_from(config)
            .map_err(|e| ConnectorError::Backend(format!("{}: {e}", target.context)))?;
        let id = ConnectorId::new(format!("k8s:{}", target.context));
        let cache = Arc::new(FleetCache::new(&target.context, id.clone(), changed));
        let cancel = CancellationToken::new();
        fleet::spawn_watchers(client.clone(), cache.clone(), cancel.clone());
        usage::spawn_poller(client.clone(), cache.clone(), cancel.clone());
        Ok(KubeConnector {
            id,
            client,
            cache,
            cancel,
        })
    }

    /// Connects to every context the selection names (none when no cluster is configured).
    pub async fn start_all(
        selection: &ContextSelection,
        kubeconfig: Option<&std::path::Path>,
        changed: Arc<Notify>,
    ) -> anyhow::Result<Vec<KubeConnector>> {
        discover(selection, kubeconfig)
            .await?
            .into_iter()
            .map(|t| KubeConnector::start(t, changed.clone()).map_err(anyhow::Error::from))
            .collect()
    }

    /// The context this connector serves.
    pub fn context(&self) -> &str {
        &self.cache.context
    }

    /// The live fleet cache (for benchmarks and tests).
    pub fn cache(&self) -> &Arc<FleetCache> {
        &self.cache
    }

    /// Reads pod and node usage from `metrics.k8s.io` now (the poller does
    /// this every [`usage::INTERVAL`]).
    pub async fn refresh_usage(&self) {
        usage::refresh(&self.client, &self.cache).await;
    }

    /// Waits until every watched kind has finished its first list, or `within` passes.
    pub async fn wait_synced(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.cache.synced_notify.notified();
            if self.cache.is_synced() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.cache.is_synced();
            }
        }
    }

    fn key(&self, id: &ResourceId) -> Result<ObjectKey> {
        ids::parse(self.context(), id).ok_or_else(|| ConnectorError::NotFound(id.clone()))
    }

    fn ns_api<K>(&self, ns: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Fetches the object an id names, live, and returns its findings.
    async fn judge(&self, id: &ResourceId) -> Result<Vec<Finding>> {
        self.judge_since(id, None).await
    }

    /// Fetches the object an id names, live, and returns its findings. For
    /// Deployments, StatefulSets and DaemonSets the pods of the newest
    /// revision are judged too; `since` (the time of a change being
    /// validated) makes any restart of theirs after it a finding.
    async fn judge_since(
        &self,
        id: &ResourceId,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Finding>> {
        let k = self.key(id)?;
        let ns = k.namespace.as_str();
        let name = k.name.as_str();
        let not_found = |e: kube::Error| map_err(id, e);
        Ok(match k.kind.as_str() {
            "pod" => {
                analyzers::pod::analyze(&self.ns_api::<Pod>(ns).get(name).await.map_err(not_found)?)
            }
            "deployment" => {
                let d = self
                    .ns_api::<Deployment>(ns)
                    .get(name)
                    .await
                    .map_err(not_found)?;
                let mut f = analyzers::deployment::analyze(&d);
                f.extend(rollout::deployment(self, id, &d, since).await?);
                f
            }
            "replicaset" => analyzers::replicaset::analyze(
                &self
                    .ns_api::<ReplicaSet>(ns)
                    .get(name)
                    .await
                    .map_err(not_found)?,
            ),
            "statefulset" => {
                let s = self
                    .ns_api::<StatefulSet>(ns)
                    .get(name)
                    .await
                    .map_err(not_found)?;
                let mut f = analyzers::statefulset::analyze(&s);
                f.extend(rollout::statefulset(self, id, &s, since).await?);
                f
            }
            "daemonset" => {
                let d = self
                    .ns_api::<DaemonSet>(ns)
                    .get(name)
                    .await
                    .map_err(not_found)?;
                let mut f = analyzers::daemonset::analyze(&d);
                f.extend(rollout::daemonset(self, id, &d, since).await?);
                f
            }
            "job" => {
                analyzers::job::analyze(&self.ns_api::<Job>(ns).get(name).await.map_err(not_found)?)
            }
            "cronjob" => analyzers::cronjob::analyze(
                &self
                    .ns_api::<CronJob>(ns)
                    .get(name)
                    .await
                    .map_err(not_found)?,
            ),
            "node" => analyzers::node::analyze(
                &Api::<Node>::all(self.client.clone())
                    .get(name)
                    .await
                    .map_err(not_found)?,
            ),
            "service" => {
                let svc = self
                    .ns_api::<Service>(ns)
                    .get(name)
                    .await
                    .map_err(not_found)?;
                let ep = self
                    .ns_api::<Endpoints>(ns)
                    .get_opt(name)
                    .await
                    .map_err(not_found)?;
                analyzers::service::analyze(&svc, ep.as_ref())
            }
            "pvc" => analyzers::pvc::analyze(
                &self
                    .ns_api::<PersistentVolumeClaim>(ns)
                    .get(name)
                    .await
                    .map_err(not_found)?,
            ),
            "hpa" => analyzers::hpa::analyze(
                &self
                    .ns_api::<HorizontalPodAutoscaler>(ns)
                    .get(name)
                    .await
                    .map_err(not_found)?,
            ),
            "ingress" => {
                let ing = self
                    .ns_api::<Ingress>(ns)
                    .get(name)
                    .await
                    .map_err(not_found)?;
                let services: Vec<String> = self
                    .ns_api::<Service>(ns)
                    .list_metadata(&Default::default())
                    .await
                    .map_err(not_found)?
                    .items
                    .into_iter()
                    .filter_map(|m| m.metadata.name)
                    .collect();
                analyzers::ingress::analyze(&ing, &services)
            }
            // RBAC objects have no health of their own; they must still exist.
            "role" => {
                self.ns_api::<Role>(ns).get(name).await.map_err(not_found)?;
                Vec::new()
            }
            "clusterrole" => {
                Api::<ClusterRole>::all(self.client.clone())
                    .get(name)
                    .await
                    .map_err(not_found)?;
                Vec::new()
            }
            other => {
                return Err(ConnectorError::Backend(format!(
                    "{id}: kind `{other}` is not one this connector knows"
                )));
            }
        })
    }
}

/// A kube error as a connector error (404 becomes NotFound).
pub(crate) fn map_err(id: &ResourceId, e: kube::Error) -> ConnectorError {
    match &e {
        kube::Error::Api(s) if s.code == 404 => ConnectorError::NotFound(id.clone()),
        _ => ConnectorError::Backend(format!("{id}: {e}")),
    }
}

#[async_trait]
impl InfraConnector for KubeConnector {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn provider(&self) -> Provider {
        Provider::Kubernetes
    }

    async fn list_resources(&self, scope: &Scope) -> Result<Vec<Resource>> {
        let mut all = self.cache.resources();
        if !scope.kinds.is_empty() {
            all.retain(|r| scope.kinds.contains(&r.kind));
        }
        Ok(all)
    }

    async fn health(&self, id: &ResourceId) -> Result<Health> {
        Ok(health_with_others(&self.judge(id).await?))
    }

    async fn validation_health(
        &self,
        id: &ResourceId,
        before: Option<&Snapshot>,
    ) -> Result<Health> {
        // Restarts count from the moment the snapshot before the change was taken.
        match self.judge_since(id, before.map(|s| s.taken_at)).await {
            Ok(findings) => Ok(health_with_others(&findings)),
            Err(ConnectorError::NotFound(_)) => {
                // A pod that is gone is judged on its controller's replacement;
                // the controller comes from the snapshot recorded before the
                // action, so this holds after the console restarts.
                match before.and_then(actions::controller_of) {
                    Some(owner) => actions::replacement_health(self, id, &owner).await,
                    None => Err(ConnectorError::NotFound(id.clone())),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn events(&self, id: &ResourceId, window: TimeWindow) -> Result<Vec<InfraEvent>> {
        let mut out: Vec<InfraEvent> = self
            .cache
            .events(id)
            .into_iter()
            .filter(|e| e.at >= window.from && e.at <= window.to)
            .collect();
        let k = self.key(id)?;
        if k.kind == "deployment" {
            out.extend(
                evidence::rollout_changes(self, &k)
                    .await
                    .into_iter()
                    .filter(|e| e.at >= window.from && e.at <= window.to),
            );
        }
        out.sort_by_key(|e| e.at);
        Ok(out)
    }

    async fn metrics(&self, id: &ResourceId) -> Result<BTreeMap<String, f64>> {
        let mut out = BTreeMap::new();
        if let Some(r) = self.cache.resource(id) {
            for key in ["replicas", "restarts", "ready"] {
                if let Some(v) = r.attributes.get(key).and_then(|v| v.parse::<f64>().ok()) {
                    out.insert(key.to_string(), v);
                }
            }
            if let Some(mib) = r
                .attributes
                .get("memory_limit")
                .and_then(|q| actions::quantity_mib(q))
            {
                out.insert("memory_limit_mib".into(), mib as f64);
            }
        }
        Ok(out)
    }

    fn status(&self) -> Option<(crate::event::ConnectorState, String)> {
        Some(self.cache.status())
    }

    async fn diagnose(&self, id: &ResourceId) -> Result<Diagnosis> {
        evidence::diagnose(self, id).await
    }

    async fn inspect(&self, id: &ResourceId) -> Result<Vec<crate::connectors::DiagnosisEvidence>> {
        evidence::inspect(self, id).await
    }

    async fn snapshot(&self, id: &ResourceId) -> Result<Snapshot> {
        actions::snapshot(self, id).await
    }

    async fn preview(&self, action: &Action) -> Result<crate::event::Preview> {
        preview::preview(self, action).await
    }

    async fn execute(&self, action: &Action) -> Result<ActionOutcome> {
        actions::execute(self, action).await
    }

    async fn resolve_target(&self, action: &Action) -> Result<Action> {
        owners::resolve(self, action).await
    }

    async fn restore(&self, snapshot: &Snapshot) -> Result<ActionOutcome> {
        actions::restore(self, snapshot).await
    }
}

/// The worst finding's health; its message also names the other findings'
/// reasons, so a failed validation says everything that was not yet right.
fn health_with_others(findings: &[Finding]) -> Health {
    let mut h = health_of(findings);
    let others: Vec<&str> = findings
        .iter()
        .map(|f| f.reason.as_str())
        .filter(|r| *r != h.reason)
        .collect();
    if !others.is_empty() {
        h.message = format!("{} (also: {})", h.message, others.join(", "));
    }
    h
}

/// Whether a finding's health is a problem.
pub(crate) fn is_problem(h: &Health) -> bool {
    h.status != HealthStatus::Healthy
}
