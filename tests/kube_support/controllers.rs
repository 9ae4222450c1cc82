//! TEST DOUBLE, continued: the deployment, ReplicaSet and StatefulSet
//! controllers as far as a rollout needs them, switched on by
//! `TestApiServer::run_controllers`. Pods are made from the pod template
//! with the labels and owner references the real controllers write
//! (`pod-template-hash`, `controller-revision-hash`), and statuses are the
//! ones a real control plane reports:
//!
//! - a Deployment's new ReplicaSet whose pods crash-loop is scaled to the
//!   surge (25%, at least one) while the previous ReplicaSet keeps all but
//!   the allowed unavailable (25%, rounded down): the rollout is stuck, the
//!   old pods stay ready, `Progressing` stays `True` (`ReplicaSetUpdated`)
//!   because the 600 s progress deadline is far away;
//! - a StatefulSet's rolling update replaces pods from the highest ordinal
//!   down and stops at the first updated pod that is not ready;
//!   `currentRevision` moves to `updateRevision` only when every pod is updated and ready.
//!
//! Crash-looping containers report `CrashLoopBackOff` with the last
//! termination (reason, exit code, times) and a restart count, as the kubelet does.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{Change, Inner, Key, fnv, key, now_rfc3339, running_status, store, type_of_kind};

/// How the containers of a pod template fail.
#[derive(Clone, Debug)]
pub struct Crash {
    /// The last termination's reason (`Error`, `OOMKilled`).
    pub reason: &'static str,
    pub exit_code: i32,
}

/// Given a pod template's `spec`, how its containers fail (`None`: they run).
pub(super) type CrashRule = Arc<dyn Fn(&Value) -> Option<Crash> + Send + Sync>;

/// Which pod templates crash.
#[derive(Clone)]
pub(super) struct Controllers {
    pub crash_when: CrashRule,
}

/// The replicas each ReplicaSet of a deployment gets in this reconcile.
pub(super) struct RolloutPlan {
    current: Key,
    prior: Option<Key>,
    stuck: bool,
    replicas: i64,
    sets: Vec<Key>,
}

fn max_surge(replicas: i64) -> i64 {
    ((replicas + 3) / 4).max(1)
}

fn max_unavailable(replicas: i64) -> i64 {
    replicas / 4
}

impl RolloutPlan {
    /// Spec replicas for ReplicaSet `k`.
    pub(super) fn want(&self, k: &Key) -> i64 {
        if *k == self.current {
            if self.stuck {
                max_surge(self.replicas).min(self.replicas)
            } else {
                self.replicas
            }
        } else if self.stuck && self.prior.as_ref() == Some(k) {
            self.replicas - max_unavailable(self.replicas)
        } else {
            0
        }
    }
}

/// The plan for a deployment's ReplicaSets, when the controllers run.
pub(super) fn plan_rollout(
    inner: &Inner,
    template: &Value,
    owned: &[(Key, Value)],
    current: &Key,
    replicas: i64,
) -> Option<RolloutPlan> {
    let c = inner.controllers.as_ref()?;
    let prior = owned
        .iter()
        .filter(|(k, v)| k != current && v["spec"]["replicas"].as_i64().unwrap_or(0) > 0)
        .max_by_key(|(_, v)| v["spec"]["replicas"].as_i64().unwrap_or(0))
        .map(|(k, _)| k.clone());
    let crashes = (c.crash_when)(&template["spec"]).is_some();
    let mut sets: Vec<Key> = owned.iter().map(|(k, _)| k.clone()).collect();
    if !sets.contains(current) {
        sets.push(current.clone());
    }
    Some(RolloutPlan {
        current: current.clone(),
        stuck: crashes && prior.is_some(),
        prior,
        replicas,
        sets,
    })
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn owned_pods(inner: &Inner, ns: &str, uid: &Value) -> Vec<Value> {
    inner
        .objects
        .iter()
        .filter(|((p, pns, _), v)| {
            *p == "pods"
                && pns == ns
                && v["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|r| r["uid"] == *uid))
        })
        .map(|(_, v)| v.clone())
        .collect()
}

/// A crash-looping status for a pod spec: every container waits in
/// `CrashLoopBackOff` after its last termination.
pub fn crash_status(spec: &Value, pod: &str, crash: &Crash) -> Value {
    let now = now_rfc3339();
    let statuses: Vec<Value> = spec["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false,
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                        "message": format!("back-off 40s restarting failed container={} pod={pod}", c["name"].as_str().unwrap_or_default())}},
                    "lastState": {"terminated": {"exitCode": crash.exit_code, "reason": crash.reason,
                        "startedAt": now, "finishedAt": now, "containerID": ""}}}))
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<&str> = spec["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let why = format!("containers with unready status: [{}]", names.join(" "));
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "message": why},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": why}
        ],
        "containerStatuses": statuses,
        "startTime": now,
    })
}

/// Makes a pod from a template for its controller.
fn make_pod(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    ns: &str,
    name: &str,
    owner: (&str, &Value, &Value),
    template: &Value,
    extra_labels: &[(&str, &str)],
) -> Value {
    let crash = inner
        .controllers
        .as_ref()
        .and_then(|c| (c.crash_when)(&template["spec"]));
    let (kind, owner_name, owner_uid) = owner;
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    for (k, v) in extra_labels {
        labels[*k] = json!(v);
    }
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!("node-a");
    let status = match &crash {
        Some(c) => crash_status(&spec, name, c),
        None => running_status(&spec),
    };
    inner.uid += 1;
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
            "uid": format!("00000000-0000-4000-8000-{:012x}", inner.uid),
            "creationTimestamp": now_rfc3339(),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": owner_name, "uid": owner_uid,
                "controller": true, "blockOwnerDeletion": true}]},
        "spec": spec,
        "status": status,
    });
    let pods = type_of_kind("Pod").expect("pods served");
    store(inner, changes, pods, key(pods, ns, name), pod, "ADDED")
}

/// Deletes a pod as its controller would (no replacement).
fn remove_pod(inner: &mut Inner, changes: &broadcast::Sender<Change>, ns: &str, name: &str) {
    let pods = type_of_kind("Pod").expect("pods served");
    if let Some(mut obj) = inner.objects.remove(&key(pods, ns, name)) {
        inner.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        super::publish(inner, changes, pods, "DELETED", obj);
    }
}

/// Gives every ReplicaSet of the plan its pods, writes their statuses, and
/// returns the deployment's status as the deployment controller computes it.
pub(super) fn run_replica_sets(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    ns: &str,
    plan: &RolloutPlan,
    generation: &Value,
) -> Value {
    let rs_type = type_of_kind("ReplicaSet").expect("served");
    let (mut total, mut ready_total, mut updated) = (0i64, 0i64, 0i64);
    for k in &plan.sets {
        let Some(mut rs) = inner.objects.get(k).cloned() else {
            continue;
        };
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(0);
        let uid = rs["metadata"]["uid"].clone();
        let name = k.2.clone();
        let mut pods = owned_pods(inner, ns, &uid);
        pods.sort_by_key(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
        while (pods.len() as i64) > want {
            let p = pods.pop().expect("non-empty");
            remove_pod(
                inner,
                changes,
                ns,
                p["metadata"]["name"].as_str().unwrap_or_default(),
            );
        }
        let template = rs["spec"]["template"].clone();
        while (pods.len() as i64) < want {
            inner.uid += 1;
            let pod_name = format!("{name}-{:05x}", inner.uid & 0xfffff);
            let p = make_pod(
                inner,
                changes,
                ns,
                &pod_name,
                ("ReplicaSet", &json!(name), &uid),
                &template,
                &[],
            );
            pods.push(p);
        }
        let n = pods.len() as i64;
        let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
        total += n;
        ready_total += ready;
        if *k == plan.current {
            updated = n;
        }
        let status = json!({"replicas": n, "readyReplicas": ready, "availableReplicas": ready,
            "fullyLabeledReplicas": n, "observedGeneration": rs["metadata"]["generation"]});
        if rs["status"] != status {
            rs["status"] = status;
            store(inner, changes, rs_type, k.clone(), rs, "MODIFIED");
        }
    }
    let replicas = plan.replicas;
    let done = updated == replicas && ready_total == replicas && total == replicas;
    let available_ok = ready_total >= replicas - max_unavailable(replicas);
    let mut status = json!({
        "observedGeneration": generation, "replicas": total, "updatedReplicas": updated,
        "readyReplicas": ready_total, "availableReplicas": ready_total,
        "conditions": [
            if available_ok {
                json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."})
            } else {
                json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."})
            },
            if done {
                json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{}\" has successfully progressed.", plan.current.2)})
            } else {
                json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": format!("ReplicaSet \"{}\" is progressing.", plan.current.2)})
            }
        ]
    });
    if total > ready_total {
        status["unavailableReplicas"] = json!(total - ready_total);
    }
    status
}

/// Imitates the StatefulSet controller (only when the controllers run).
pub(super) fn reconcile_statefulset(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    ns: &str,
    name: &str,
) {
    if inner.controllers.is_none() {
        return;
    }
    let sts_type = type_of_kind("StatefulSet").expect("served");
    let sk = key(sts_type, ns, name);
    let Some(mut sts) = inner.objects.get(&sk).cloned() else {
        return;
    };
    let template = sts["spec"]["template"].clone();
    let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
    let uid = sts["metadata"]["uid"].clone();
    let update_rev = format!("{name}-{:x}", fnv(&template.to_string()) & 0xffffffffff);
    let current_rev = sts["status"]["currentRevision"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| update_rev.clone());
    let pods_type = type_of_kind("Pod").expect("served");
    let rev_of = |p: &Value| {
        p["metadata"]["labels"]["controller-revision-hash"]
            .as_str()
            .map(String::from)
    };
    let owner = ("StatefulSet", &json!(name), &uid);
    let make = |inner: &mut Inner, pod: &str| {
        make_pod(
            inner,
            changes,
            ns,
            pod,
            owner,
            &template,
            &[
                ("controller-revision-hash", &update_rev),
                ("statefulset.kubernetes.io/pod-name", pod),
            ],
        )
    };
    // Missing ordinals are created at the update revision.
    for i in 0..replicas {
        let pod = format!("{name}-{i}");
        if !inner.objects.contains_key(&key(pods_type, ns, &pod)) {
            make(inner, &pod);
        }
    }
    // Scale-down removes the highest ordinals.
    for p in owned_pods(inner, ns, &uid) {
        let pname = p["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ordinal: i64 = pname
            .rsplit('-')
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        if ordinal >= replicas {
            remove_pod(inner, changes, ns, &pname);
        }
    }
    // Rolling update from the highest ordinal down; an updated pod that is
    // not ready stops it.
    for i in (0..replicas).rev() {
        let pod = format!("{name}-{i}");
        let Some(p) = inner.objects.get(&key(pods_type, ns, &pod)).cloned() else {
            continue;
        };
        if rev_of(&p).as_deref() == Some(update_rev.as_str()) {
            if !is_ready(&p) {
                break;
            }
            continue;
        }
        remove_pod(inner, changes, ns, &pod);
        let new = make(inner, &pod);
        if !is_ready(&new) {
            break;
        }
    }
    let pods = owned_pods(inner, ns, &uid);
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let updated = pods
        .iter()
        .filter(|p| rev_of(p).as_deref() == Some(update_rev.as_str()))
        .count() as i64;
    let finished = updated == replicas && ready == replicas;
    let current_rev = if finished {
        update_rev.clone()
    } else {
        current_rev
    };
    let current = pods
        .iter()
        .filter(|p| rev_of(p).as_deref() == Some(current_rev.as_str()))
        .count() as i64;
    let status = json!({
        "observedGeneration": sts["metadata"]["generation"], "replicas": pods.len(),
        "readyReplicas": ready, "availableReplicas": ready, "currentReplicas": current,
        "updatedReplicas": updated, "currentRevision": current_rev, "updateRevision": update_rev,
        "collisionCount": 0,
    });
    if sts["status"] != status {
        sts["status"] = status;
        store(inner, changes, sts_type, sk, sts, "MODIFIED");
    }
}

/// A StatefulSet `name` in `ns` with `replicas` of `image`, labelled `app: name`.
pub fn statefulset(ns: &str, name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"replicas": replicas, "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image,
                    "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}}}]}}},
    })
}
