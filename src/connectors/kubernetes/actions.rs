//! Actions, the snapshots taken before them, and restores that put the
//! captured state back (and then read it back to prove it).
//!
//! A snapshot holds only the fields the actions change, never the object
//! (see [`snapshot`](mod@snapshot)).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::evidence::revisions;
use super::ids::ObjectKey;
use super::rollout::template_without_hash;
use super::{KubeConnector, is_problem, map_err};

mod snapshot;
use crate::connectors::{ConnectorError, Result};
use crate::event::{Action, ActionOutcome, Health, HealthStatus, ResourceId};
pub use snapshot::{controller_of, restore, snapshot};

/// Field manager recorded on every change this connector makes.
const MANAGER: &str = "shieldops";

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    }
}

/// `256Mi`, `1Gi`, `512M`, `268435456` → MiB.
pub fn quantity_mib(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(q.len());
    let (num, unit) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let bytes = n * match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some((bytes / (1024.0 * 1024.0)).ceil() as u64)
}

/// The JSON of the object an id names.
pub(super) async fn get_json(
    conn: &KubeConnector,
    id: &ResourceId,
    k: &ObjectKey,
) -> Result<Value> {
    let ns = k.namespace.as_str();
    let name = k.name.as_str();
    let e = |e| map_err(id, e);
    let v = match k.kind.as_str() {
        "pod" => serde_json::to_value(conn.ns_api::<Pod>(ns).get(name).await.map_err(e)?),
        "deployment" => {
            serde_json::to_value(conn.ns_api::<Deployment>(ns).get(name).await.map_err(e)?)
        }
        "statefulset" => {
            serde_json::to_value(conn.ns_api::<StatefulSet>(ns).get(name).await.map_err(e)?)
        }
        "daemonset" => {
            serde_json::to_value(conn.ns_api::<DaemonSet>(ns).get(name).await.map_err(e)?)
        }
        "replicaset" => {
            serde_json::to_value(conn.ns_api::<ReplicaSet>(ns).get(name).await.map_err(e)?)
        }
        "node" => serde_json::to_value(
            Api::<Node>::all(conn.client.clone())
                .get(name)
                .await
                .map_err(e)?,
        ),
        other => {
            return Err(ConnectorError::Unsupported {
                action: format!("snapshot of a {other}"),
                resource: id.clone(),
            });
        }
    };
    v.map_err(|e| ConnectorError::Backend(format!("{id}: {e}")))
}

/// RFC 7386 merge patch that turns `from` into `to`.
pub fn merge_diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = serde_json::Map::new();
            for (k, v) in b {
                match a.get(k) {
                    Some(old) if old == v => {}
                    Some(old) => {
                        out.insert(k.clone(), merge_diff(old, v));
                    }
                    None => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in a.keys() {
                if !b.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        (_, to) => to.clone(),
    }
}

pub(super) fn bad(action: &Action, param: &str, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::BadParam {
        action: action.name.clone(),
        param: param.into(),
        reason: reason.into(),
    }
}

pub(super) fn unsupported(action: &Action) -> ConnectorError {
    ConnectorError::Unsupported {
        action: action.name.clone(),
        resource: action.target.clone(),
    }
}

fn outcome(success: bool, message: impl Into<String>, steps: Vec<String>) -> ActionOutcome {
    ActionOutcome {
        success,
        message: message.into(),
        steps,
    }
}

/// Patches a workload (deployment, statefulset, daemonset) with a JSON value.
async fn patch_workload(
    conn: &KubeConnector,
    id: &ResourceId,
    k: &ObjectKey,
    patch: Patch<Value>,
) -> Result<Value> {
    let ns = k.namespace.as_str();
    let name = k.name.as_str();
    let e = |e| map_err(id, e);
    let p = params();
    let v = match k.kind.as_str() {
        "deployment" => serde_json::to_value(
            conn.ns_api::<Deployment>(ns)
                .patch(name, &p, &patch)
                .await
                .map_err(e)?,
        ),
        "statefulset" => serde_json::to_value(
            conn.ns_api::<StatefulSet>(ns)
                .patch(name, &p, &patch)
                .await
                .map_err(e)?,
        ),
        "daemonset" => serde_json::to_value(
            conn.ns_api::<DaemonSet>(ns)
                .patch(name, &p, &patch)
                .await
                .map_err(e)?,
        ),
        "replicaset" => serde_json::to_value(
            conn.ns_api::<ReplicaSet>(ns)
                .patch(name, &p, &patch)
                .await
                .map_err(e)?,
        ),
        "pod" => serde_json::to_value(
            conn.ns_api::<Pod>(ns)
                .patch(name, &p, &patch)
                .await
                .map_err(e)?,
        ),
        "node" => serde_json::to_value(
            Api::<Node>::all(conn.client.clone())
                .patch(name, &p, &patch)
                .await
                .map_err(e)?,
        ),
        other => {
            return Err(ConnectorError::Backend(format!(
                "{id}: cannot patch a {other}"
            )));
        }
    };
    v.map_err(|e| ConnectorError::Backend(format!("{id}: {e}")))
}

/// Runs an action.
pub async fn execute(conn: &KubeConnector, action: &Action) -> Result<ActionOutcome> {
    let id = &action.target;
    let k = conn.key(id)?;
    let kind = k.kind.as_str();
    // The playbooks' and policies' names for the node actions are accepted too.
    let name = super::preview::canonical(&action.name);
    // What runs is what was approved: a parameter this action would ignore
    // is refused here as in the preview.
    super::preview::check(action, kind)?;
    match (name, kind) {
        ("restart_pod", "pod") => restart_pod(conn, id, &k).await,
        ("rollout_restart", "deployment" | "statefulset" | "daemonset") => {
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}});
            let after = patch_workload(conn, id, &k, Patch::Strategic(patch)).await?;
            Ok(outcome(
                true,
                format!("{kind} {} restarted at {at}", k.name),
                vec![format!(
                    "patched pod template annotation kubectl.kubernetes.io/restartedAt={at} (generation {})",
                    after["metadata"]["generation"]
                )],
            ))
        }
        ("scale", "deployment" | "statefulset" | "replicaset") => {
            let replicas: i32 = action
                .params
                .get("replicas")
                .ok_or_else(|| bad(action, "replicas", "required"))?
                .parse()
                .map_err(|_| bad(action, "replicas", "not a whole number"))?;
            if !(0..=1000).contains(&replicas) {
                return Err(bad(action, "replicas", "must be between 0 and 1000"));
            }
            let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
            let e = |e| map_err(id, e);
            let p = params();
            let scale = match kind {
                "deployment" => conn
                    .ns_api::<Deployment>(&k.namespace)
                    .patch_scale(&k.name, &p, &patch)
                    .await
                    .map_err(e)?,
                "statefulset" => conn
                    .ns_api::<StatefulSet>(&k.namespace)
                    .patch_scale(&k.name, &p, &patch)
                    .await
                    .map_err(e)?,
                _ => conn
                    .ns_api::<ReplicaSet>(&k.namespace)
                    .patch_scale(&k.name, &p, &patch)
                    .await
                    .map_err(e)?,
            };
            let now = scale.spec.and_then(|s| s.replicas).unwrap_or(-1);
            Ok(outcome(
                now == replicas,
                format!("{kind} {} scaled to {now}", k.name),
                vec![format!("patched scale subresource: replicas {replicas}")],
            ))
        }
        ("rollback_deployment", "deployment") => rollback(conn, id, &k).await,
        ("set_resources", "deployment" | "statefulset" | "daemonset") => {
            set_resources(conn, action, &k).await
        }
        ("cordon" | "uncordon", "node") => {
            let on = name == "cordon";
            let patch = json!({"spec": {"unschedulable": if on { Value::Bool(true) } else { Value::Null }}});
            patch_workload(conn, id, &k, Patch::Merge(patch)).await?;
            Ok(outcome(
                true,
                format!("node {} {name}ed", k.name),
                vec![format!("spec.unschedulable = {on}")],
            ))
        }
        ("drain", "node") => drain(conn, id, &k).await,
        _ => Err(unsupported(action)),
    }
}

async fn restart_pod(
    conn: &KubeConnector,
    id: &ResourceId,
    k: &ObjectKey,
) -> Result<ActionOutcome> {
    let pods = conn.ns_api::<Pod>(&k.namespace);
    let pod = pods.get(&k.name).await.map_err(|e| map_err(id, e))?;
    let owner = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| format!("{}/{}", o.kind, o.name));
    let Some(owner) = owner else {
        // A bare pod is not recreated by anyone: deleting it would be final.
        return Err(ConnectorError::Unsupported {
            action: "restart_pod (a pod without a controller would not come back)".into(),
            resource: id.clone(),
        });
    };
    pods.delete(&k.name, &DeleteParams::default())
        .await
        .map_err(|e| map_err(id, e))?;
    Ok(outcome(
        true,
        format!("pod {} deleted; {owner} recreates it", k.name),
        vec![format!("deleted pod {}/{}", k.namespace, k.name)],
    ))
}

/// The health of a restarted pod: its controller's replacement.
pub async fn replacement_health(
    conn: &KubeConnector,
    id: &ResourceId,
    owner: &str,
) -> Result<Health> {
    let k = conn.key(id)?;
    let (kind, name) = owner.split_once('/').unwrap_or(("", owner));
    let pods = conn
        .ns_api::<Pod>(&k.namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| map_err(id, e))?;
    let mut replacements: Vec<Pod> = pods
        .items
        .into_iter()
        .filter(|p| {
            p.owner_references()
                .iter()
                .any(|o| o.kind == kind && o.name == name)
        })
        .collect();
    replacements
        .sort_by_key(|p| std::cmp::Reverse(p.metadata.creation_timestamp.clone().map(|t| t.0)));
    match replacements.first() {
        None => Ok(Health::new(
            HealthStatus::Degraded,
            "AwaitingReplacement",
            format!("{owner} has not recreated the pod yet"),
        )),
        Some(p) => {
            let h = super::analyzers::health_of(&super::analyzers::pod::analyze(p));
            if is_problem(&h) {
                Ok(h)
            } else {
                Ok(Health::new(
                    HealthStatus::Healthy,
                    "Replaced",
                    format!("replaced by pod {}", p.name_any()),
                ))
            }
        }
    }
}

/// The deployment's revision, the ReplicaSet of the revision before it and
/// that revision's number (what `kubectl rollout undo` goes back to).
pub(super) async fn previous_revision(
    conn: &KubeConnector,
    d: &Deployment,
) -> Option<(i64, ReplicaSet, i64)> {
    let rev = |a: &BTreeMap<String, String>| -> i64 {
        a.get("deployment.kubernetes.io/revision")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    };
    let current = rev(d.annotations());
    revisions(conn, d)
        .await
        .into_iter()
        .map(|rs| (rev(rs.annotations()), rs))
        .find(|(r, _)| *r < current && *r > 0)
        .map(|(r, rs)| (current, rs, r))
}

/// `kubectl rollout undo`: the pod template of the previous revision's ReplicaSet.
async fn rollback(conn: &KubeConnector, id: &ResourceId, k: &ObjectKey) -> Result<ActionOutcome> {
    let d = conn
        .ns_api::<Deployment>(&k.namespace)
        .get(&k.name)
        .await
        .map_err(|e| map_err(id, e))?;
    let Some((current_rev, previous, previous_rev)) = previous_revision(conn, &d).await else {
        return Ok(outcome(
            false,
            format!(
                "deployment {} has no previous revision to roll back to",
                k.name
            ),
            vec![],
        ));
    };
    let previous = &previous;
    let desired = template_without_hash(previous).ok_or_else(|| {
        ConnectorError::Backend(format!(
            "{id}: replica set {} has no template",
            previous.name_any()
        ))
    })?;
    let current = serde_json::to_value(d.spec.as_ref().map(|s| &s.template)).unwrap_or(Value::Null);
    let patch = json!({"spec": {"template": merge_diff(&current, &desired)}});
    let after = patch_workload(conn, id, k, Patch::Merge(patch)).await?;
    let back = after["spec"]["template"] == desired;
    Ok(outcome(
        back,
        format!(
            "deployment {} rolled back from revision {current_rev} to revision {previous_rev}'s template ({})",
            k.name,
            previous.name_any()
        ),
        vec![format!(
            "patched spec.template to replica set {} (revision {previous_rev})",
            previous.name_any(),
        )],
    ))
}

async fn set_resources(
    conn: &KubeConnector,
    action: &Action,
    k: &ObjectKey,
) -> Result<ActionOutcome> {
    let id = &action.target;
    let object = get_json(conn, id, k).await?;
    let change = super::preview::ResourceChange::parse(action, &object)?;
    let after = patch_workload(conn, id, k, Patch::Strategic(change.patch())).await?;
    // Judged on what was set, read back from the API server.
    let missing = change.not_applied(&after);
    let what = change.describe();
    let mut steps = vec![format!(
        "strategic-merge patched container {}: {what}",
        change.container
    )];
    steps.extend(missing.iter().map(|m| format!("read back: {m}")));
    Ok(outcome(
        missing.is_empty(),
        format!(
            "{} {}: container {} {what}",
            k.kind, k.name, change.container
        ),
        steps,
    ))
}

/// Cordons, then evicts every pod but daemon and mirror pods; a PodDisruptionBudget
/// that refuses an eviction stops the drain (no force).
async fn drain(conn: &KubeConnector, id: &ResourceId, k: &ObjectKey) -> Result<ActionOutcome> {
    patch_workload(
        conn,
        id,
        k,
        Patch::Merge(json!({"spec": {"unschedulable": true}})),
    )
    .await?;
    let mut steps = vec![format!("cordoned node {}", k.name)];
    let pods = Api::<Pod>::all(conn.client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={}", k.name)))
        .await
        .map_err(|e| map_err(id, e))?;
    for pod in pods.items {
        let daemon = pod.owner_references().iter().any(|o| o.kind == "DaemonSet");
        let mirror = pod
            .annotations()
            .contains_key("kubernetes.io/config.mirror");
        let done = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let ns = pod.namespace().unwrap_or_default();
        if daemon || mirror || done {
            steps.push(format!(
                "skipped {ns}/{} ({})",
                pod.name_any(),
                if daemon {
                    "daemon set"
                } else if mirror {
                    "mirror pod"
                } else {
                    "finished"
                }
            ));
            continue;
        }
        match conn
            .ns_api::<Pod>(&ns)
            .evict(&pod.name_any(), &EvictParams::default())
            .await
        {
            Ok(_) => steps.push(format!("evicted {ns}/{}", pod.name_any())),
            Err(kube::Error::Api(s)) if s.code == 429 => {
                steps.push(format!(
                    "eviction of {ns}/{} refused: {}",
                    pod.name_any(),
                    s.message
                ));
                return Ok(outcome(
                    false,
                    format!(
                        "drain of {} stopped: a PodDisruptionBudget protects {ns}/{}",
                        k.name,
                        pod.name_any()
                    ),
                    steps,
                ));
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(map_err(id, e)),
        }
    }
    Ok(outcome(true, format!("node {} drained", k.name), steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity_mib("256Mi"), Some(256));
        assert_eq!(quantity_mib("1Gi"), Some(1024));
        assert_eq!(quantity_mib("268435456"), Some(256));
        assert_eq!(quantity_mib("lots"), None);
    }

    #[test]
    fn merge_diff_removes_added_keys_and_replaces_lists() {
        let from = json!({"metadata": {"annotations": {"restartedAt": "x", "keep": "1"}}, "spec": {"containers": [{"name": "a", "image": "2"}]}});
        let to = json!({"metadata": {"annotations": {"keep": "1"}}, "spec": {"containers": [{"name": "a", "image": "1"}]}});
        let d = merge_diff(&from, &to);
        assert_eq!(
            d,
            json!({"metadata": {"annotations": {"restartedAt": null}}, "spec": {"containers": [{"name": "a", "image": "1"}]}})
        );
    }
}
