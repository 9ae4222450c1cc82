//! The simulated infrastructure: resources as attribute maps, health derived
//! from those attributes, actions that change them and snapshots that put them
//! back. Nothing here is canned: an action changes the attributes, health is
//! recomputed from them, and a restore writes the captured attributes back.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::event::StringMap;
use crate::event::{Action, ActionOutcome, Health, HealthStatus, InfraEvent, Resource, ResourceId};

/// Infrastructure events the world remembers (bounded).
const WORLD_EVENTS: usize = 2_000;

/// One simulated resource: its identity plus the attributes that drive its health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimResource {
    pub resource: Resource,
}

impl SimResource {
    pub(super) fn attr(&self, key: &str) -> Option<&str> {
        self.resource.attributes.get(key).map(String::as_str)
    }
    pub(super) fn num(&self, key: &str) -> f64 {
        self.attr(key)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    }
}

/// Errors from acting on the simulated world.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorldError {
    #[error("resource {0} not found")]
    NotFound(ResourceId),
    #[error("action `{action}` does not apply to a {kind}")]
    Unsupported { action: String, kind: String },
    #[error("parameter `{0}` is missing or not a number")]
    BadParam(String),
}

/// The whole simulated world.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct World {
    pub resources: BTreeMap<ResourceId, SimResource>,
    pub events: VecDeque<InfraEvent>,
}

impl World {
    /// Adds or replaces a resource.
    pub fn insert(&mut self, resource: Resource) {
        self.resources
            .insert(resource.id.clone(), SimResource { resource });
    }

    /// Records an infrastructure event.
    pub fn record(&mut self, event: InfraEvent) {
        self.events.push_back(event);
        while self.events.len() > WORLD_EVENTS {
            self.events.pop_front();
        }
    }

    pub(super) fn get(&self, id: &ResourceId) -> Result<&SimResource, WorldError> {
        self.resources
            .get(id)
            .ok_or_else(|| WorldError::NotFound(id.clone()))
    }

    /// Pods owned by a deployment.
    pub fn pods_of(&self, deployment: &ResourceId) -> Vec<ResourceId> {
        self.resources
            .values()
            .filter(|r| r.attr("owner") == Some(deployment.as_str()))
            .map(|r| r.resource.id.clone())
            .collect()
    }

    /// The resource with its health derived at `now`.
    pub fn observe(&self, id: &ResourceId, now: DateTime<Utc>) -> Result<Resource, WorldError> {
        let sim = self.get(id)?;
        let mut resource = sim.resource.clone();
        resource.health = self.health_of(sim, now);
        Ok(resource)
    }

    /// Health derived from attributes, with the reason a real system would give.
    fn health_of(&self, r: &SimResource, now: DateTime<Utc>) -> Health {
        let starting = r
            .attr("ready_at")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t.with_timezone(&Utc) > now);
        match r.resource.kind.as_str() {
            "pod" => {
                if starting {
                    return Health::new(
                        HealthStatus::Degraded,
                        "ContainerCreating",
                        "container is starting",
                    );
                }
                let limit = r.num("memory_limit_mib");
                let need = r.num("memory_need_mib");
                if limit > 0.0 && need > limit {
                    // As kubectl shows it: the container's last termination
                    // reason, with the back-off and the exit code beside it.
                    return Health::new(
                        HealthStatus::Unhealthy,
                        "OOMKilled",
                        format!(
                            "CrashLoopBackOff; last terminated: OOMKilled, exit code 137 (needs {need:.0}Mi, limit {limit:.0}Mi), restarts {}",
                            r.num("restarts") as u64
                        ),
                    );
                }
                let latency = r.num("latency_ms");
                let slo = r.num("latency_slo_ms");
                if slo > 0.0 && latency > slo {
                    return Health::new(
                        HealthStatus::Degraded,
                        "HighLatency",
                        format!("p99 latency {latency:.0} ms over the {slo:.0} ms objective"),
                    );
                }
                Health::healthy()
            }
            "deployment" => {
                let pods = self.pods_of(&r.resource.id);
                let unavailable = pods
                    .iter()
                    .filter_map(|p| self.resources.get(p))
                    .filter(|p| self.health_of(p, now).status != HealthStatus::Healthy)
                    .count();
                if unavailable == 0 {
                    Health::healthy()
                } else {
                    Health::new(
                        HealthStatus::Degraded,
                        "MinimumReplicasUnavailable",
                        format!("{unavailable} of {} replicas unavailable", pods.len()),
                    )
                }
            }
            "node" | "host" => {
                if r.attr("state") == Some("rebooting") && starting {
                    return Health::new(HealthStatus::Unhealthy, "Rebooting", "host is rebooting");
                }
                let disk = r.num("disk_used_pct");
                if disk >= 90.0 {
                    let reason = if r.resource.kind == "node" {
                        "DiskPressure"
                    } else {
                        "DiskAlmostFull"
                    };
                    return Health::new(
                        HealthStatus::Degraded,
                        reason,
                        format!("{disk:.0}% of / used"),
                    );
                }
                if let Some((unit, _)) = r
                    .resource
                    .attributes
                    .iter()
                    .find(|(k, v)| k.starts_with("service:") && v.as_str() == "failed")
                {
                    return Health::new(
                        HealthStatus::Unhealthy,
                        "UnitFailed",
                        format!("{} failed", unit.trim_start_matches("service:")),
                    );
                }
                if r.attr("cordoned") == Some("true") {
                    return Health::new(
                        HealthStatus::Degraded,
                        "Unschedulable",
                        "node is cordoned",
                    );
                }
                Health::healthy()
            }
            "ec2_instance" => match r.attr("state") {
                Some("stopped") => {
                    Health::new(HealthStatus::Unhealthy, "stopped", "instance is stopped")
                }
                Some("pending") if starting => {
                    Health::new(HealthStatus::Degraded, "pending", "instance is starting")
                }
                _ if r.attr("status_check") == Some("impaired") => Health::new(
                    HealthStatus::Unhealthy,
                    "instance_status_check",
                    "instance reachability check failed",
                ),
                _ => Health::healthy(),
            },
            "credential" => {
                let expires = r
                    .attr("expires_at")
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc));
                match expires {
                    Some(t) if t <= now => Health::new(
                        HealthStatus::Unhealthy,
                        "Expired",
                        format!("expired {}", t.date_naive()),
                    ),
                    Some(t) if t - now <= Duration::days(7) => Health::new(
                        HealthStatus::Degraded,
                        "ExpiringSoon",
                        format!("expires in {} days", (t - now).num_days()),
                    ),
                    _ => Health::healthy(),
                }
            }
            _ => Health::healthy(),
        }
    }

    /// Numeric facts about a resource, for evidence.
    pub fn metrics(&self, id: &ResourceId) -> Result<BTreeMap<String, f64>, WorldError> {
        let r = self.get(id)?;
        let mut m = BTreeMap::new();
        for key in [
            "memory_limit_mib",
            "memory_need_mib",
            "restarts",
            "latency_ms",
            "latency_slo_ms",
            "rps",
            "disk_used_pct",
            "cpu_util_pct",
            "cpu_request_millicores",
            "cpu_usage_millicores",
            "hourly_cost_cents",
            "replicas",
            "load1",
        ] {
            if let Some(v) = r.attr(key).and_then(|v| v.parse::<f64>().ok()) {
                m.insert(key.to_string(), v);
            }
        }
        if let (Some(limit), Some(need)) = (m.get("memory_limit_mib"), m.get("memory_need_mib"))
            && *limit > 0.0
        {
            m.insert("memory_usage_ratio".into(), need / limit);
        }
        Ok(m)
    }

    /// Captures the target and, for a deployment, its pods.
    pub fn capture(&self, id: &ResourceId) -> Result<serde_json::Value, WorldError> {
        let r = self.get(id)?;
        let mut captured = BTreeMap::new();
        captured.insert(id.clone(), r.resource.attributes.clone());
        if r.resource.kind == "deployment" {
            for pod in self.pods_of(id) {
                if let Some(p) = self.resources.get(&pod) {
                    captured.insert(pod, p.resource.attributes.clone());
                }
            }
        }
        Ok(serde_json::to_value(captured).expect("attribute maps serialise"))
    }

    /// Writes captured attributes back; returns the resources restored.
    pub fn put_back(
        &mut self,
        data: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, String> {
        let captured: BTreeMap<ResourceId, StringMap> =
            serde_json::from_value(data.clone()).map_err(|e| format!("snapshot data: {e}"))?;
        let mut restored = Vec::new();
        for (id, attrs) in captured {
            let Some(r) = self.resources.get_mut(&id) else {
                return Err(format!("{id} no longer exists"));
            };
            r.resource.attributes = attrs;
            restored.push(id.to_string());
            self.record(InfraEvent {
                at: now,
                resource: id,
                kind: "change".into(),
                reason: "Restored".into(),
                message: "attributes restored from snapshot".into(),
            });
        }
        Ok(restored)
    }

    /// Applies an action; the change is real in this world.
    pub fn apply(
        &mut self,
        action: &Action,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, WorldError> {
        let kind = self.get(&action.target)?.resource.kind.clone();
        let ready = |secs: i64| (now + Duration::seconds(secs)).to_rfc3339();
        let unsupported = || WorldError::Unsupported {
            action: action.name.clone(),
            kind: kind.clone(),
        };
        let number = |name: &str| -> Result<u64, WorldError> {
            action
                .params
                .get(name)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| WorldError::BadParam(name.to_string()))
        };
        let mut steps = Vec::new();
        let target = action.target.clone();
        match (action.name.as_str(), kind.as_str()) {
            ("set_resources", "deployment") => {
                // Any of the pod template's resource fields; at least one.
                let mut patched = Vec::new();
                for (field, label) in super::preview::RESOURCE_FIELDS {
                    if action.params.contains_key(field) {
                        let v = number(field)?;
                        let unit = if field.ends_with("_mib") { "Mi" } else { "m" };
                        patched.push((field, v, format!("{label} {v}{unit}")));
                    }
                }
                if patched.is_empty() {
                    return Err(WorldError::BadParam("memory_limit_mib".into()));
                }
                for (field, v, _) in &patched {
                    self.set(&target, field, v.to_string());
                }
                let what: Vec<&str> = patched.iter().map(|p| p.2.as_str()).collect();
                steps.push(format!("patched {target} {}", what.join(", ")));
                for pod in self.pods_of(&target) {
                    for (field, v, _) in &patched {
                        self.set(&pod, field, v.to_string());
                    }
                    self.set(&pod, "restarts", "0".into());
                    self.set(&pod, "ready_at", ready(8));
                    steps.push(format!("replaced pod {pod}"));
                }
            }
            ("rollout_restart", "deployment") => {
                for pod in self.pods_of(&target) {
                    self.set(&pod, "ready_at", ready(6));
                    steps.push(format!("restarted pod {pod}"));
                }
            }
            ("rollback_deployment", "deployment") => {
                let r = self.get(&target)?;
                let previous = r.attr("previous_image").unwrap_or_default().to_string();
                if previous.is_empty() {
                    return Err(WorldError::BadParam("previous_image".into()));
                }
                let current = r.attr("image").unwrap_or_default().to_string();
                let revision = r.num("revision") as u64 + 1;
                self.set(&target, "image", previous.clone());
                self.set(&target, "previous_image", current);
                self.set(&target, "revision", revision.to_string());
                steps.push(format!(
                    "rolled {target} back to {previous} (revision {revision})"
                ));
                for pod in self.pods_of(&target) {
                    self.set(&pod, "image", previous.clone());
                    self.set(&pod, "ready_at", ready(6));
                }
            }
            ("scale", "deployment") => {
                let replicas = number("replicas")?;
                self.set(&target, "replicas", replicas.to_string());
                steps.push(format!("scaled {target} to {replicas} replicas"));
            }
            ("restart_pod", "pod") => {
                let restarts = self.get(&target)?.num("restarts") as u64 + 1;
                self.set(&target, "restarts", restarts.to_string());
                self.set(&target, "ready_at", ready(5));
                steps.push(format!("deleted pod {target}; controller recreated it"));
            }
            ("cordon_node", "node") => {
                self.set(&target, "cordoned", "true".into());
                steps.push(format!("cordoned {target}"));
            }
            ("uncordon_node", "node") => {
                self.set(&target, "cordoned", "false".into());
                steps.push(format!("uncordoned {target}"));
            }
            ("clean_disk", "node" | "host") => {
                let targets = super::preview::clean_targets(action)
                    .map_err(|_| WorldError::BadParam("targets".into()))?;
                let min_free = super::preview::min_free_ratio(action)
                    .map_err(|_| WorldError::BadParam("min_free_ratio".into()))?;
                let before = self.get(&target)?.num("disk_used_pct");
                let reclaimable = self.get(&target)?.num("reclaimable_pct");
                let after = super::preview::disk_after(before, reclaimable, &targets);
                let left = reclaimable - (before - after);
                self.set(&target, "disk_used_pct", format!("{after:.0}"));
                self.set(&target, "reclaimable_pct", format!("{:.0}", left.max(0.0)));
                steps.push(format!(
                    "moved {} to quarantine: {before:.0}% → {after:.0}%",
                    targets.join(" and ")
                ));
                if let Some(min) = min_free
                    && (100.0 - after) / 100.0 < min
                {
                    self.record(InfraEvent {
                        at: now,
                        resource: target.clone(),
                        kind: "change".into(),
                        reason: action.name.clone(),
                        message: steps.join("; "),
                    });
                    return Ok(ActionOutcome {
                        success: false,
                        message: format!(
                            "only {:.0}% free after cleaning; {:.0}% was required",
                            100.0 - after,
                            min * 100.0
                        ),
                        steps,
                    });
                }
            }
            ("reboot_instance", "ec2_instance" | "host") => {
                self.set(
                    &target,
                    "state",
                    if kind == "host" {
                        "rebooting"
                    } else {
                        "pending"
                    }
                    .into(),
                );
                self.set(&target, "ready_at", ready(20));
                self.set(&target, "status_check", "ok".into());
                steps.push(format!("rebooted {target}"));
            }
            ("stop_instance", "ec2_instance") => {
                self.set(&target, "state", "stopped".into());
                steps.push(format!("stopped {target}"));
            }
            ("start_instance", "ec2_instance") => {
                self.set(&target, "state", "pending".into());
                self.set(&target, "ready_at", ready(15));
                steps.push(format!("started {target}"));
            }
            ("resize_instance", "ec2_instance") => {
                let new_type = action
                    .params
                    .get("instance_type")
                    .cloned()
                    .ok_or_else(|| WorldError::BadParam("instance_type".into()))?;
                let cost = super::fleet::hourly_cents(&new_type);
                // The same work on a different number of vCPUs shows a different utilisation.
                let r = self.get(&target)?;
                let old_type = r.attr("instance_type").unwrap_or_default().to_string();
                if let (Some(before), Some(after)) = (
                    super::fleet::vcpus(&old_type),
                    super::fleet::vcpus(&new_type),
                ) {
                    let util = (r.num("cpu_util_pct") * before as f64 / after as f64).min(100.0);
                    self.set(&target, "cpu_util_pct", format!("{util:.0}"));
                }
                self.set(&target, "instance_type", new_type.clone());
                self.set(&target, "hourly_cost_cents", cost.to_string());
                self.set(&target, "state", "pending".into());
                self.set(&target, "ready_at", ready(30));
                steps.push(format!(
                    "stopped, changed type to {new_type}, started {target}"
                ));
            }
            ("restart_service", "host") => {
                let unit = action
                    .params
                    .get("service")
                    .cloned()
                    .ok_or_else(|| WorldError::BadParam("service".into()))?;
                let key = format!("service_restarts:{unit}");
                let restarts = self.get(&target)?.num(&key) as u64 + 1;
                self.set(&target, &format!("service:{unit}"), "active".into());
                self.set(&target, &key, restarts.to_string());
                steps.push(format!("restarted {unit} on {target}"));
            }
            ("rotate_credential", "credential") => {
                let version = self.get(&target)?.num("version") as u64 + 1;
                self.set(&target, "version", version.to_string());
                self.set(
                    &target,
                    "expires_at",
                    (now + Duration::days(90)).to_rfc3339(),
                );
                self.set(&target, "rotated_at", now.to_rfc3339());
                steps.push(format!("wrote version {version} of {target}"));
            }
            _ => return Err(unsupported()),
        }
        self.record(InfraEvent {
            at: now,
            resource: target,
            kind: "change".into(),
            reason: action.name.clone(),
            message: steps.join("; "),
        });
        Ok(ActionOutcome {
            success: true,
            message: format!("{} applied", action.name),
            steps,
        })
    }

    /// Sets one attribute (the scenario and actions go through here).
    pub fn set(&mut self, id: &ResourceId, key: &str, value: String) {
        if let Some(r) = self.resources.get_mut(id) {
            r.resource.attributes.insert(key.to_string(), value);
        }
    }
}
