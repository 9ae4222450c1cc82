//! The demo fleet: an in-process simulated infrastructure that fulfils the
//! whole connector contract. Kubernetes, AWS and Linux resources are each
//! owned by their own connector instance, so routing mistakes show up as
//! errors here exactly as they would against real systems.
//!
//! The world is persisted beside the event log (when given a path) so that a
//! killed demo comes back to the infrastructure it left, as real
//! infrastructure would outlive the console.

mod fleet;
mod preview;
pub mod scenario;
mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{ConnectorError, InfraConnector, Registry, Result, Scope, TimeWindow};
use crate::clock::SharedClock;
use crate::event::{
    Action, ActionOutcome, Alert, ConnectorId, Health, InfraEvent, Preview, Provider, Resource,
    ResourceId, Snapshot,
};
pub use fleet::{aws_connector, hourly_cents, k8s_connector, linux_connector};
use scenario::Scenario;
pub use world::{World, WorldError};

/// What is persisted: the world and how far the scenario got.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Persisted {
    seed: u64,
    started_at: DateTime<Utc>,
    next_step: usize,
    world: World,
}

/// The shared simulated world behind every sim connector.
pub struct Sim {
    inner: Mutex<Persisted>,
    path: Option<PathBuf>,
    clock: SharedClock,
}

impl Sim {
    /// Opens the persisted world at `path` if it exists, else generates one from `seed`.
    pub fn open(seed: u64, path: Option<PathBuf>, clock: SharedClock) -> anyhow::Result<Arc<Sim>> {
        let persisted = match &path {
            Some(p) if p.exists() => {
                let bytes = std::fs::read(p)?;
                serde_json::from_slice::<Persisted>(&bytes).map_err(|e| {
                    anyhow::anyhow!("{}: demo world file is unreadable: {e}", p.display())
                })?
            }
            _ => {
                let now = clock.now();
                Persisted {
                    seed,
                    started_at: now,
                    next_step: 0,
                    world: fleet::generate(seed, now),
                }
            }
        };
        let sim = Arc::new(Sim {
            inner: Mutex::new(persisted),
            path,
            clock,
        });
        sim.save();
        Ok(sim)
    }

    /// A registry with one connector per simulated provider/context.
    pub fn registry(self: &Arc<Self>) -> Registry {
        let mut registry = Registry::new();
        let mut ids: Vec<(ConnectorId, Provider)> = Vec::new();
        for r in self.lock().world.resources.values() {
            let key = (r.resource.connector.clone(), r.resource.provider);
            if !ids.contains(&key) {
                ids.push(key);
            }
        }
        for (id, provider) in ids {
            registry.add(Arc::new(SimConnector {
                id,
                provider,
                sim: self.clone(),
            }));
        }
        registry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Persisted> {
        // A panic while holding this lock would be a bug in this module; the
        // data is still consistent (every mutation is a single assignment).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self) {
        let Some(path) = &self.path else { return };
        let bytes = {
            let inner = self.lock();
            serde_json::to_vec(&*inner).expect("the world serialises")
        };
        let tmp = path.with_extension("tmp");
        let result = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            tracing::warn!(
                "could not persist the demo world to {}: {e}",
                path.display()
            );
        }
    }

    /// Sets attributes of a resource, or of every pod of a deployment, as a
    /// real incident would change them (the scenario player and tests use this).
    pub fn set_attrs(&self, id: &ResourceId, attrs: &[(&str, &str)]) {
        {
            let mut inner = self.lock();
            let world = &mut inner.world;
            let mut targets = world.pods_of(id);
            if targets.is_empty() {
                targets.push(id.clone());
            }
            for target in targets {
                for (k, v) in attrs {
                    world.set(&target, k, v.to_string());
                }
            }
        }
        self.save();
    }

    /// Reads the world (for tests and restore checks).
    pub fn with_world<T>(&self, f: impl FnOnce(&World) -> T) -> T {
        f(&self.lock().world)
    }

    /// Plays the scenario from where it left off, sending alerts as they fire.
    /// Returns once the scenario's duration has passed.
    pub async fn play(
        self: Arc<Self>,
        scenario: Scenario,
        alerts: mpsc::Sender<(Alert, oneshot::Sender<()>)>,
        cancel: CancellationToken,
    ) {
        loop {
            let (started, next) = {
                let inner = self.lock();
                (inner.started_at, inner.next_step)
            };
            let Some(step) = scenario.steps.get(next).cloned() else {
                break;
            };
            let due = started + chrono::Duration::seconds(step.at_secs as i64);
            if !self.wait_until(due, &cancel).await {
                return;
            }
            let alert = {
                let mut inner = self.lock();
                let now = self.clock.now();
                let world = &mut inner.world;
                for set in &step.set {
                    let targets = match (&set.target, &set.pods_of) {
                        (Some(t), _) => vec![ResourceId::new(t.clone())],
                        (None, Some(d)) => world.pods_of(&ResourceId::new(d.clone())),
                        _ => vec![],
                    };
                    for target in targets {
                        for (k, v) in &set.attrs {
                            world.set(&target, k, v.clone());
                        }
                    }
                }
                if let Some(e) = &step.event
                    && let Ok(resource) =
                        scenario::resolve(world, e.resource.as_ref(), e.first_pod_of.as_ref())
                {
                    world.record(InfraEvent {
                        at: now,
                        resource,
                        kind: e.kind.clone(),
                        reason: e.reason.clone(),
                        message: e.message.clone(),
                    });
                }
                step.alert.as_ref().and_then(|a| {
                    scenario::resolve(world, a.resource.as_ref(), a.first_pod_of.as_ref())
                        .ok()
                        .map(|r| scenario::alert_for(a, r))
                })
            };
            // The step's attribute changes are idempotent (a replay may record
            // its infrastructure event twice); the step counts as done only
            // once its alert is durably recorded, so a crash in between
            // re-applies it and re-sends the alert rather than losing it.
            self.save();
            if !step.note.is_empty() {
                tracing::info!(step = next + 1, "scenario: {}", step.note);
            }
            if let Some(alert) = alert {
                let (ack, recorded) = oneshot::channel();
                if alerts.send((alert, ack)).await.is_err() || recorded.await.is_err() {
                    return;
                }
            }
            self.lock().next_step = next + 1;
            self.save();
        }
        let started = self.lock().started_at;
        let end = started + chrono::Duration::seconds(scenario.duration_secs as i64);
        self.wait_until(end, &cancel).await;
    }

    async fn wait_until(&self, due: DateTime<Utc>, cancel: &CancellationToken) -> bool {
        let now = self.clock.now();
        if due > now {
            let wait = (due - now).to_std().unwrap_or_default();
            tokio::select! {
                _ = self.clock.sleep(wait) => true,
                _ = cancel.cancelled() => false,
            }
        } else {
            !cancel.is_cancelled()
        }
    }
}

/// One connector instance over the simulated world: owns only its own resources.
pub struct SimConnector {
    id: ConnectorId,
    provider: Provider,
    sim: Arc<Sim>,
}

impl SimConnector {
    fn owned(&self, world: &World, id: &ResourceId) -> Result<()> {
        match world.resources.get(id) {
            Some(r) if r.resource.connector == self.id => Ok(()),
            _ => Err(ConnectorError::NotFound(id.clone())),
        }
    }
}

fn world_error(e: WorldError) -> ConnectorError {
    match e {
        WorldError::NotFound(id) => ConnectorError::NotFound(id),
        WorldError::Unsupported { action, kind } => ConnectorError::Unsupported {
            action,
            resource: ResourceId::new(kind),
        },
        WorldError::BadParam(p) => ConnectorError::BadParam {
            action: String::new(),
            param: p,
            reason: "missing or malformed".into(),
        },
    }
}

#[async_trait]
impl InfraConnector for SimConnector {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn provider(&self) -> Provider {
        self.provider
    }

    fn simulated(&self) -> bool {
        true
    }

    async fn list_resources(&self, scope: &Scope) -> Result<Vec<Resource>> {
        let now = self.sim.clock.now();
        let inner = self.sim.lock();
        Ok(inner
            .world
            .resources
            .values()
            .filter(|r| r.resource.connector == self.id)
            .filter(|r| scope.kinds.is_empty() || scope.kinds.contains(&r.resource.kind))
            .filter_map(|r| inner.world.observe(&r.resource.id, now).ok())
            .collect())
    }

    async fn health(&self, id: &ResourceId) -> Result<Health> {
        let now = self.sim.clock.now();
        let inner = self.sim.lock();
        self.owned(&inner.world, id)?;
        inner
            .world
            .observe(id, now)
            .map(|r| r.health)
            .map_err(world_error)
    }

    async fn events(&self, id: &ResourceId, window: TimeWindow) -> Result<Vec<InfraEvent>> {
        let inner = self.sim.lock();
        self.owned(&inner.world, id)?;
        Ok(inner
            .world
            .events
            .iter()
            .filter(|e| &e.resource == id && e.at >= window.from && e.at <= window.to)
            .cloned()
            .collect())
    }

    async fn metrics(&self, id: &ResourceId) -> Result<BTreeMap<String, f64>> {
        let inner = self.sim.lock();
        self.owned(&inner.world, id)?;
        inner.world.metrics(id).map_err(world_error)
    }

    async fn snapshot(&self, id: &ResourceId) -> Result<Snapshot> {
        let now = self.sim.clock.now();
        let inner = self.sim.lock();
        self.owned(&inner.world, id)?;
        let data = inner.world.capture(id).map_err(world_error)?;
        let count = data.as_object().map(|o| o.len()).unwrap_or(0);
        Ok(Snapshot {
            resource: id.clone(),
            connector: self.id.clone(),
            taken_at: now,
            data,
            summary: format!("attributes of {count} resource(s) captured"),
        })
    }

    async fn preview(&self, action: &Action) -> Result<Preview> {
        let inner = self.sim.lock();
        self.owned(&inner.world, &action.target)?;
        inner.world.preview(action)
    }

    async fn execute(&self, action: &Action) -> Result<ActionOutcome> {
        let now = self.sim.clock.now();
        let outcome = {
            let mut inner = self.sim.lock();
            self.owned(&inner.world, &action.target)?;
            // A parameter the world would ignore is refused here too, not only
            // in the preview: what runs is what was approved.
            let kind = &inner.world.resources[&action.target].resource.kind;
            if let Some(takes) = preview::takes(&action.name, kind) {
                super::check_params(action, takes)?;
            }
            inner
                .world
                .apply(action, now)
                .map_err(|e| match world_error(e) {
                    ConnectorError::BadParam { param, reason, .. } => ConnectorError::BadParam {
                        action: action.name.clone(),
                        param,
                        reason,
                    },
                    ConnectorError::Unsupported { action: a, .. } => ConnectorError::Unsupported {
                        action: a,
                        resource: action.target.clone(),
                    },
                    other => other,
                })?
        };
        self.sim.save();
        Ok(outcome)
    }

    async fn restore(&self, snapshot: &Snapshot) -> Result<ActionOutcome> {
        super::check_snapshot_owner(snapshot, &self.id)?;
        let now = self.sim.clock.now();
        let restored = {
            let mut inner = self.sim.lock();
            self.owned(&inner.world, &snapshot.resource)?;
            inner
                .world
                .put_back(&snapshot.data, now)
                .map_err(|e| ConnectorError::BadSnapshot(snapshot.resource.clone(), e))?
        };
        self.sim.save();
        Ok(ActionOutcome {
            success: true,
            message: format!("restored {} resource(s) from snapshot", restored.len()),
            steps: restored.iter().map(|r| format!("restored {r}")).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::event::HealthStatus;
    use std::time::Duration;

    fn sim() -> (Arc<Sim>, ManualClock) {
        let clock = ManualClock::new(Utc::now());
        let sim = Sim::open(42, None, Arc::new(clock.clone())).unwrap();
        (sim, clock)
    }

    const CHECKOUT: &str = "k8s/demo-prod/checkout/deployment/checkout-api";

    #[tokio::test]
    async fn every_action_restores_exactly() {
        let (sim, _clock) = sim();
        let registry = sim.registry();
        let cases: Vec<Action> = vec![
            Action::new("set_resources", ResourceId::new(CHECKOUT)).with("memory_limit_mib", "512"),
            Action::new("rollout_restart", ResourceId::new(CHECKOUT)),
            Action::new("rollback_deployment", ResourceId::new(CHECKOUT)),
            Action::new("scale", ResourceId::new(CHECKOUT)).with("replicas", "6"),
            Action::new(
                "cordon_node",
                ResourceId::new("k8s/demo-prod/node/node-prod-1"),
            ),
            Action::new(
                "clean_disk",
                ResourceId::new("k8s/demo-stg/node/node-stg-2"),
            ),
            Action::new("clean_disk", ResourceId::new("linux/web-prod-1")),
            Action::new("reboot_instance", ResourceId::new("linux/db-prod-0")),
            Action::new(
                "stop_instance",
                ResourceId::new("aws/us-east-1/ec2/i-0d4c05987d6135191"),
            ),
            Action::new(
                "resize_instance",
                ResourceId::new("aws/us-east-1/ec2/i-0d4c05987d6135191"),
            )
            .with("instance_type", "m5.large"),
            Action::new(
                "rotate_credential",
                ResourceId::new("aws/us-east-1/secret/payments-db-password"),
            ),
            Action::new("restart_service", ResourceId::new("linux/web-prod-0"))
                .with("service", "nginx"),
        ];
        for action in cases {
            let owner = sim.with_world(|w| w.resources[&action.target].resource.connector.clone());
            let connector = registry.get(&owner).unwrap();
            let before = sim.with_world(|w| w.capture(&action.target).unwrap());
            let snapshot = connector.snapshot(&action.target).await.unwrap();
            connector.execute(&action).await.unwrap();
            let changed = sim.with_world(|w| w.capture(&action.target).unwrap());
            assert_ne!(before, changed, "{} changed nothing", action.name);
            connector.restore(&snapshot).await.unwrap();
            let after = sim.with_world(|w| w.capture(&action.target).unwrap());
            assert_eq!(before, after, "{} was not restored", action.name);
        }
    }

    #[tokio::test]
    async fn previews_read_the_live_values_and_refuse_ignored_parameters() {
        let (sim, _clock) = sim();
        let registry = sim.registry();
        let k8s = registry
            .get(&k8s_connector(crate::event::Environment::Production))
            .unwrap();
        let dep = ResourceId::new(CHECKOUT);
        let (limit, replicas) = sim.with_world(|w| {
            let a = &w.resources[&dep].resource.attributes;
            (a["memory_limit_mib"].clone(), a["replicas"].clone())
        });
        let p = k8s
            .preview(&Action::new("set_resources", dep.clone()).with("memory_limit_mib", "448"))
            .await
            .unwrap();
        assert_eq!(p.lines(), [format!("memory limit: {limit}Mi → 448Mi")]);
        let p = k8s
            .preview(&Action::new("scale", dep.clone()).with("replicas", "2"))
            .await
            .unwrap();
        assert_eq!(p.lines(), [format!("replicas: {replicas} → 2")]);
        // The proposer's belief about the current count must be the live one.
        let err = k8s
            .preview(
                &Action::new("scale", dep.clone())
                    .with("replicas", "2")
                    .with("current_replicas", "40"),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("live value is {replicas}")), "{err}");
        // A parameter the world would ignore is refused by name, in the
        // preview and in execution alike, and nothing changes.
        let ignored = Action::new("set_resources", dep.clone())
            .with("memory_limit_mib", "448")
            .with("cpu_limit_millis", "500");
        for err in [
            k8s.preview(&ignored).await.unwrap_err(),
            k8s.execute(&ignored).await.unwrap_err(),
        ] {
            let err = err.to_string();
            assert!(
                err.contains("`cpu_limit_millis`") && err.contains("ignored"),
                "{err}"
            );
        }
        let now =
            sim.with_world(|w| w.resources[&dep].resource.attributes["memory_limit_mib"].clone());
        assert_eq!(now, limit);
        let aws = registry.get(&aws_connector()).unwrap();
        let p = aws
            .preview(
                &Action::new(
                    "resize_instance",
                    ResourceId::new("aws/us-east-1/ec2/i-0d4c05987d6135191"),
                )
                .with("instance_type", "m5.large"),
            )
            .await
            .unwrap();
        let itype = sim.with_world(|w| {
            w.resources[&ResourceId::new("aws/us-east-1/ec2/i-0d4c05987d6135191")]
                .resource
                .attributes["instance_type"]
                .clone()
        });
        assert_eq!(p.lines(), [format!("instance type: {itype} → m5.large")]);
    }

    #[tokio::test]
    async fn actions_are_refused_by_a_connector_that_does_not_own_the_target() {
        let (sim, _clock) = sim();
        let registry = sim.registry();
        let wrong = registry.get(&aws_connector()).unwrap();
        let err = wrong
            .execute(&Action::new("rollout_restart", ResourceId::new(CHECKOUT)))
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectorError::NotFound(_)));
    }

    #[tokio::test]
    async fn oom_is_fixed_by_raising_the_limit_after_pods_restart() {
        let (sim, clock) = sim();
        let registry = sim.registry();
        let k8s = registry
            .get(&k8s_connector(crate::event::Environment::Production))
            .unwrap();
        let dep = ResourceId::new(CHECKOUT);
        let pod = sim.with_world(|w| w.pods_of(&dep)[0].clone());
        sim.inner
            .lock()
            .unwrap()
            .world
            .set(&pod, "memory_need_mib", "340".into());
        let h = k8s.health(&pod).await.unwrap();
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.reason, "OOMKilled");
        assert!(h.message.contains("CrashLoopBackOff"));
        assert!(h.message.contains("exit code 137"));
        k8s.execute(&Action::new("set_resources", dep.clone()).with("memory_limit_mib", "512"))
            .await
            .unwrap();
        assert_eq!(k8s.health(&pod).await.unwrap().reason, "ContainerCreating");
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            k8s.health(&pod).await.unwrap().status,
            HealthStatus::Healthy
        );
    }
}
