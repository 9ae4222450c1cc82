//! Snapshots that keep only what a restore needs, and restores that patch
//! exactly those fields back.
//!
//! A snapshot lives for ever in the hash-chained log and reaches every viewer
//! and `log export`, so it holds no object: only the fields the connector's
//! actions change (replicas, each container's image and resources, the
//! `restartedAt` template annotation, a node's schedulability, a pod's
//! controller) and, for a deployment, references to the ReplicaSets of the
//! current and previous revisions. Environment values, Secret data and the
//! `last-applied-configuration` annotation never enter it.
//!
//! A restore reads the object, sets the captured fields back, undoes a
//! rollback by a three-way merge between the two revisions' templates (read
//! live from their ReplicaSets), and sends the difference as a merge patch
//! guarded by the object's `resourceVersion`: what someone else changed in
//! the meantime, outside those fields, stays. It then reads the object again
//! and checks every restored field.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Patch;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::evidence::revisions;
use super::super::ids::ObjectKey;
use super::super::{KubeConnector, map_err};
use super::{get_json, merge_diff, outcome, patch_workload, replacement_health};
use crate::connectors::{ConnectorError, Result, check_snapshot_owner};
use crate::event::{ActionOutcome, HealthStatus, ResourceId, Snapshot};

/// Pod template annotation `kubectl rollout restart` sets.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// Annotation holding a deployment's (and its ReplicaSets') revision.
const REVISION: &str = "deployment.kubernetes.io/revision";
/// Label the deployment controller adds to each ReplicaSet's template.
const TEMPLATE_HASH: &str = "pod-template-hash";
/// Times a restore rereads and retries when the object changed under it.
const CONFLICT_RETRIES: usize = 3;

/// What a snapshot records: the kinds' fields the actions change, nothing else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Captured {
    /// `spec.replicas` of a deployment, statefulset or replicaset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// Each container's image and resources (workloads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerFields>,
    /// The pod template's `restartedAt` annotation (workloads; absent = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<String>,
    /// `spec.unschedulable` of a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<bool>,
    /// `Kind/name` of a pod's controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// A deployment's current and previous revisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Revisions>,
}

/// The fields of one container an action can change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerFields {
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    /// `resources` as the API server returned it (`{}` when unset).
    #[serde(default)]
    pub resources: Value,
}

/// A deployment's revision at snapshot time and the one a rollback goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revisions {
    pub number: i64,
    pub current: ReplicaSetRef,
    #[serde(default)]
    pub previous: Option<ReplicaSetRef>,
}

/// A ReplicaSet by name, uid and template hash (all three are public in the
/// cluster: the hash is part of every pod's name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSetRef {
    pub name: String,
    pub uid: String,
    pub template_hash: String,
}

/// The recorded form: `{"kind", "fields"}`. Logs written before this form
/// hold `{"kind", "object"}` (the whole object); those are read into the same
/// fields.
#[derive(Debug, Deserialize)]
struct Recorded {
    kind: String,
    #[serde(default)]
    fields: Option<Captured>,
    #[serde(default)]
    object: Option<Value>,
}

fn workload(kind: &str) -> bool {
    matches!(
        kind,
        "deployment" | "statefulset" | "daemonset" | "replicaset"
    )
}

/// The fields of `object` (a `kind`, as JSON) the actions change.
pub fn capture(kind: &str, object: &Value) -> Captured {
    let mut c = Captured::default();
    match kind {
        "node" => {
            c.unschedulable = Some(object["spec"]["unschedulable"].as_bool().unwrap_or(false))
        }
        "pod" => {
            c.controller = object["metadata"]["ownerReferences"]
                .as_array()
                .and_then(|o| o.iter().find(|r| r["controller"] == true))
                .and_then(|o| Some(format!("{}/{}", o["kind"].as_str()?, o["name"].as_str()?)));
        }
        k if workload(k) => {
            if k != "daemonset" {
                c.replicas = Some(object["spec"]["replicas"].as_i64().unwrap_or(1));
            }
            let template = &object["spec"]["template"];
            c.containers = template["spec"]["containers"]
                .as_array()
                .map(|cs| cs.iter().filter_map(container_fields).collect())
                .unwrap_or_default();
            c.restarted_at = template["metadata"]["annotations"][RESTARTED_AT]
                .as_str()
                .map(String::from);
        }
        _ => {}
    }
    c
}

fn container_fields(c: &Value) -> Option<ContainerFields> {
    Some(ContainerFields {
        name: c["name"].as_str()?.to_string(),
        image: c["image"].as_str().map(String::from),
        resources: match &c["resources"] {
            Value::Null => json!({}),
            r => r.clone(),
        },
    })
}

/// The fields `snapshot` recorded, parsed (either form).
pub fn recorded(snapshot: &Snapshot) -> Option<(String, Captured)> {
    let r: Recorded = serde_json::from_value(snapshot.data.clone()).ok()?;
    let fields = match (r.fields, r.object) {
        (Some(f), _) => f,
        (None, Some(o)) => capture(&r.kind, &o),
        (None, None) => return None,
    };
    Some((r.kind, fields))
}

fn rs_ref(rs: &ReplicaSet) -> ReplicaSetRef {
    ReplicaSetRef {
        name: rs.name_any(),
        uid: rs.uid().unwrap_or_default(),
        template_hash: rs.labels().get(TEMPLATE_HASH).cloned().unwrap_or_default(),
    }
}

fn revision_of(annotations: &BTreeMap<String, String>) -> i64 {
    annotations
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The deployment's current revision's ReplicaSet and the one a rollback
/// would move to (the newest older revision, as `rollback_deployment` picks).
async fn deployment_revisions(conn: &KubeConnector, d: &Deployment) -> Option<Revisions> {
    let number = revision_of(d.annotations());
    let owned = revisions(conn, d).await;
    let current = owned
        .iter()
        .find(|rs| revision_of(rs.annotations()) == number && number > 0)?;
    let previous = owned.iter().find(|rs| {
        let r = revision_of(rs.annotations());
        r < number && r > 0
    });
    Some(Revisions {
        number,
        current: rs_ref(current),
        previous: previous.map(rs_ref),
    })
}

/// Captures the fields the actions on the object change.
pub async fn snapshot(conn: &KubeConnector, id: &ResourceId) -> Result<Snapshot> {
    let k = conn.key(id)?;
    let object = super::get_json(conn, id, &k).await?;
    let mut fields = capture(&k.kind, &object);
    if k.kind == "deployment" {
        let d = conn
            .ns_api::<Deployment>(&k.namespace)
            .get(&k.name)
            .await
            .map_err(|e| map_err(id, e))?;
        fields.revision = deployment_revisions(conn, &d).await;
    }
    let summary = match k.kind.as_str() {
        "node" => format!(
            "node {} (unschedulable: {})",
            k.name,
            fields.unschedulable.unwrap_or(false)
        ),
        "pod" => format!(
            "pod {} (controller: {})",
            k.name,
            fields.controller.as_deref().unwrap_or("none")
        ),
        kind => {
            let mut s = format!("{kind} {}:", k.name);
            if let Some(r) = fields.replicas {
                s.push_str(&format!(" {r} replicas,"));
            }
            let images: Vec<String> = fields
                .containers
                .iter()
                .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("?")))
                .collect();
            s.push_str(&format!(" images {}", images.join(" ")));
            if let Some(r) = &fields.revision {
                s.push_str(&format!(", revision {} ({})", r.number, r.current.name));
            }
            s
        }
    };
    Ok(Snapshot {
        resource: id.clone(),
        connector: conn.id.clone(),
        taken_at: chrono::Utc::now(),
        data: json!({"kind": k.kind, "fields": fields}),
        summary,
    })
}

/// `Kind/name` of the controller of the pod a snapshot captured, if any.
pub fn controller_of(snapshot: &Snapshot) -> Option<String> {
    match recorded(snapshot)? {
        (kind, fields) if kind == "pod" => fields.controller,
        _ => None,
    }
}

/// Puts the captured fields back and reads the object again to check them.
pub async fn restore(conn: &KubeConnector, snapshot: &Snapshot) -> Result<ActionOutcome> {
    let id = &snapshot.resource;
    check_snapshot_owner(snapshot, &conn.id)?;
    let k = conn.key(id)?;
    let (kind, fields) = recorded(snapshot)
        .ok_or_else(|| ConnectorError::BadSnapshot(id.clone(), "no fields captured".into()))?;
    if kind != k.kind {
        return Err(ConnectorError::BadSnapshot(
            id.clone(),
            format!("captured a {kind}, the id names a {}", k.kind),
        ));
    }
    match k.kind.as_str() {
        w if workload(w) => restore_workload(conn, id, &k, &fields).await,
        "node" => {
            let was = fields.unschedulable.unwrap_or(false);
            let patch = json!({"spec": {"unschedulable": if was { Value::Bool(true) } else { Value::Null }}});
            patch_workload(conn, id, &k, Patch::Merge(patch)).await?;
            let after = get_json(conn, id, &k).await?;
            let same = after["spec"]["unschedulable"].as_bool().unwrap_or(false) == was;
            Ok(outcome(
                same,
                format!(
                    "node {} schedulable state restored (unschedulable: {was}); evicted pods stay where their controllers placed them",
                    k.name
                ),
                vec![
                    format!("spec.unschedulable = {was}"),
                    read_back(same, "spec.unschedulable"),
                ],
            ))
        }
        "pod" => restore_pod(conn, id, &k, &fields).await,
        other => Err(ConnectorError::BadSnapshot(
            id.clone(),
            format!("cannot restore a {other}"),
        )),
    }
}

fn read_back(same: bool, what: &str) -> String {
    if same {
        format!("read back: {what} as captured")
    } else {
        format!("read back: {what} DIFFERS from the snapshot")
    }
}

/// A pod is not recreated from the log (its spec may hold secrets): a
/// restarted pod's restore is its controller's replacement.
async fn restore_pod(
    conn: &KubeConnector,
    id: &ResourceId,
    k: &ObjectKey,
    fields: &Captured,
) -> Result<ActionOutcome> {
    let pods = conn.ns_api::<Pod>(&k.namespace);
    if pods
        .get_opt(&k.name)
        .await
        .map_err(|e| map_err(id, e))?
        .is_some()
    {
        return Ok(outcome(
            true,
            format!("pod {} still exists", k.name),
            vec![],
        ));
    }
    let Some(owner) = &fields.controller else {
        return Ok(outcome(
            false,
            format!(
                "pod {} is gone and has no controller; its spec is not kept in the log, so it cannot be recreated",
                k.name
            ),
            vec![],
        ));
    };
    let h = replacement_health(conn, id, owner).await?;
    Ok(outcome(
        h.reason == "Replaced" || h.status == HealthStatus::Healthy,
        format!("pod {} was recreated by {owner}: {}", k.name, h.message),
        vec![format!("checked {owner}'s pods")],
    ))
}

/// The template of a recorded ReplicaSet, live, without its hash label;
/// `None` when it is gone or is no longer the same object.
async fn revision_template(conn: &KubeConnector, ns: &str, r: &ReplicaSetRef) -> Option<Value> {
    let rs = conn
        .ns_api::<ReplicaSet>(ns)
        .get_opt(&r.name)
        .await
        .ok()??;
    if rs.uid().as_deref() != Some(r.uid.as_str()) {
        return None;
    }
    super::template_without_hash(&rs)
}

async fn restore_workload(
    conn: &KubeConnector,
    id: &ResourceId,
    k: &ObjectKey,
    fields: &Captured,
) -> Result<ActionOutcome> {
    // The two revisions' templates, for undoing a rollback (read live: the
    // log never held them).
    let mut steps = Vec::new();
    let mut revisions = None;
    if let Some(r) = &fields.revision
        && let Some(previous) = &r.previous
    {
        match (
            revision_template(conn, &k.namespace, &r.current).await,
            revision_template(conn, &k.namespace, previous).await,
        ) {
            (Some(want), Some(base)) => revisions = Some((base, want)),
            _ => steps.push(format!(
                "the ReplicaSets of revision {} ({}) or the one before ({}) are gone: only the captured fields are put back",
                r.number, r.current.name, previous.name
            )),
        }
    }
    for _ in 0..CONFLICT_RETRIES {
        let now = get_json(conn, id, k).await?;
        let mut desired = now.clone();
        let mut undone = Vec::new();
        if let Some((base, want)) = &revisions {
            undone = undo_revision_change(&mut desired["spec"]["template"], base, want);
        }
        put_fields(&mut desired, fields);
        if desired == now {
            steps.push("already as captured".into());
            return Ok(outcome(
                true,
                format!("{} {} already as captured", k.kind, k.name),
                steps,
            ));
        }
        let mut patch = merge_diff(&now, &desired);
        // Optimistic concurrency: the API server refuses the patch if the
        // object changed since it was read, and the restore reads again.
        patch["metadata"]["resourceVersion"] = now["metadata"]["resourceVersion"].clone();
        match patch_workload(conn, id, k, Patch::Merge(patch)).await {
            Err(ConnectorError::Backend(m)) if m.contains("code: 409") => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let after = get_json(conn, id, k).await?;
        let mut differs = fields_differ(&after, fields);
        if let Some((_, want)) = &revisions {
            differs.extend(
                undone
                    .iter()
                    .filter(|p| lookup(&after["spec"]["template"], p) != lookup(want, p))
                    .map(|p| format!("spec.template.{}", show(p))),
            );
        }
        if !undone.is_empty() {
            steps.push(format!(
                "undid the revision change in {} template field(s): {}",
                undone.len(),
                undone.iter().map(show).collect::<Vec<_>>().join(", ")
            ));
        }
        steps.push(
            "merge-patched the captured fields (replicas, container images and resources, restartedAt) back, guarded by resourceVersion".into(),
        );
        let same = differs.is_empty();
        steps.push(if same {
            "read back: every restored field as captured".into()
        } else {
            format!(
                "read back: DIFFERS from the snapshot in {}",
                differs.join(", ")
            )
        });
        return Ok(outcome(
            same,
            format!(
                "{} {} restored to its captured fields{}",
                k.kind,
                k.name,
                fields
                    .replicas
                    .map(|r| format!(" ({r} replicas)"))
                    .unwrap_or_default()
            ),
            steps,
        ));
    }
    Ok(outcome(
        false,
        format!(
            "{} {} kept changing under the restore ({CONFLICT_RETRIES} conflicts): not restored",
            k.kind, k.name
        ),
        steps,
    ))
}

/// Sets the captured fields on `object` (a workload as JSON).
fn put_fields(object: &mut Value, fields: &Captured) {
    if let Some(r) = fields.replicas {
        object["spec"]["replicas"] = json!(r);
    }
    let template = &mut object["spec"]["template"];
    match &fields.restarted_at {
        Some(at) => template["metadata"]["annotations"][RESTARTED_AT] = json!(at),
        None => {
            if let Some(a) = template["metadata"]["annotations"].as_object_mut() {
                a.remove(RESTARTED_AT);
                // The API server drops an empty map; so does the restore.
                if a.is_empty()
                    && let Some(m) = template["metadata"].as_object_mut()
                {
                    m.remove("annotations");
                }
            }
        }
    }
    if let Some(containers) = template["spec"]["containers"].as_array_mut() {
        for c in containers.iter_mut() {
            let Some(want) = fields
                .containers
                .iter()
                .find(|w| c["name"] == w.name.as_str())
            else {
                continue;
            };
            match &want.image {
                Some(i) => c["image"] = json!(i),
                None => {
                    if let Some(o) = c.as_object_mut() {
                        o.remove("image");
                    }
                }
            }
            c["resources"] = want.resources.clone();
        }
    }
}

/// The captured fields `object` does not hold as captured.
fn fields_differ(object: &Value, fields: &Captured) -> Vec<String> {
    let now = capture(
        if fields.replicas.is_some() {
            "deployment"
        } else {
            "daemonset"
        },
        object,
    );
    let mut out = Vec::new();
    if fields.replicas.is_some() && now.replicas != fields.replicas {
        out.push("spec.replicas".to_string());
    }
    if now.restarted_at != fields.restarted_at {
        out.push(format!("annotation {RESTARTED_AT}"));
    }
    for want in &fields.containers {
        match now.containers.iter().find(|c| c.name == want.name) {
            Some(c) if c == want => {}
            Some(_) => out.push(format!("container {}", want.name)),
            None => out.push(format!("container {} (gone)", want.name)),
        }
    }
    out
}

/// One step into a pod template: an object key, or a list element by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Key(String),
    Named(String),
}

type Path = Vec<Seg>;

fn show(p: &Path) -> String {
    p.iter()
        .map(|s| match s {
            Seg::Key(k) => k.clone(),
            Seg::Named(n) => format!("[{n}]"),
        })
        .collect::<Vec<_>>()
        .join(".")
        .replace(".[", "[")
}

fn named_list(a: &[Value]) -> bool {
    !a.is_empty() && a.iter().all(|e| e["name"].is_string())
}

/// Every leaf of `v` by path; lists of named objects (containers, env,
/// volumes, ports) are walked by name, other lists are leaves.
fn flatten(v: &Value, prefix: &mut Path, out: &mut BTreeMap<Path, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                prefix.push(Seg::Key(k.clone()));
                flatten(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) if named_list(a) => {
            for e in a {
                prefix.push(Seg::Named(e["name"].as_str().unwrap_or_default().into()));
                flatten(e, prefix, out);
                prefix.pop();
            }
        }
        leaf => {
            out.insert(prefix.clone(), leaf.clone());
        }
    }
}

fn lookup(v: &Value, p: &[Seg]) -> Option<Value> {
    let mut cur = v;
    for s in p {
        cur = match s {
            Seg::Key(k) => cur.get(k)?,
            Seg::Named(n) => cur.as_array()?.iter().find(|e| e["name"] == n.as_str())?,
        };
    }
    // An empty object or list is a leaf in `flatten` and a value here.
    Some(cur.clone())
}

/// Sets (or, with `None`, removes) the leaf at `p`; removing a named
/// element's `name` removes the element.
fn set_path(v: &mut Value, p: &[Seg], value: Option<Value>) {
    let Some((last, parents)) = p.split_last() else {
        return;
    };
    if let (Some((Seg::Named(n), grand)), Seg::Key(k), None) = (parents.split_last(), last, &value)
        && k == "name"
    {
        let mut cur = &mut *v;
        for s in grand {
            match step(cur, s, false) {
                Some(next) => cur = next,
                None => return,
            }
        }
        if let Some(a) = cur.as_array_mut() {
            a.retain(|e| e["name"] != n.as_str());
        }
        return;
    }
    let mut cur = &mut *v;
    for s in parents {
        match step(cur, s, value.is_some()) {
            Some(next) => cur = next,
            None => return,
        }
    }
    match (last, value) {
        (Seg::Key(k), Some(x)) => {
            if !cur.is_object() {
                *cur = json!({});
            }
            cur[k.as_str()] = x;
        }
        (Seg::Key(k), None) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(k);
            }
        }
        // A named element is never a leaf of `flatten`.
        (Seg::Named(_), _) => {}
    }
}

fn step<'a>(cur: &'a mut Value, s: &Seg, create: bool) -> Option<&'a mut Value> {
    match s {
        Seg::Key(k) => {
            if create && !cur.is_object() {
                *cur = json!({});
            }
            let m = cur.as_object_mut()?;
            if create {
                Some(m.entry(k.clone()).or_insert(Value::Null))
            } else {
                m.get_mut(k)
            }
        }
        Seg::Named(n) => {
            if create && !cur.is_array() {
                *cur = json!([]);
            }
            let a = cur.as_array_mut()?;
            let i = match a.iter().position(|e| e["name"] == n.as_str()) {
                Some(i) => i,
                None if create => {
                    a.push(json!({"name": n}));
                    a.len() - 1
                }
                None => return None,
            };
            a.get_mut(i)
        }
    }
}

/// Undoes a move from revision template `want` to `base` in `template`, as a
/// three-way merge: each field the two revisions differ in is set back to
/// `want` where `template` still holds `base`'s value; a field someone else
/// changed since (neither value) is left alone, and so is every field the
/// revisions share. Returns the fields set back.
fn undo_revision_change(template: &mut Value, base: &Value, want: &Value) -> Vec<Path> {
    let (mut b, mut w, mut now) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    flatten(base, &mut Vec::new(), &mut b);
    flatten(want, &mut Vec::new(), &mut w);
    flatten(template, &mut Vec::new(), &mut now);
    let mut paths: Vec<&Path> = b.keys().chain(w.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut undone = Vec::new();
    for p in paths {
        let (bv, wv, nv) = (b.get(p), w.get(p), now.get(p));
        if bv == wv || nv == wv || nv != bv {
            continue;
        }
        set_path(template, p, wv.cloned());
        undone.push(p.clone());
    }
    undone
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(image: &str, env: &str, extra_label: Option<&str>) -> Value {
        let mut t = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [
                {"name": "app", "image": image, "env": [{"name": "DB_PASSWORD", "value": env}],
                 "resources": {"limits": {"memory": "256Mi"}}},
                {"name": "sidecar", "image": "envoy:1"}
            ]}
        });
        if let Some(l) = extra_label {
            t["metadata"]["labels"]["team"] = json!(l);
        }
        t
    }

    #[test]
    fn capture_keeps_no_env_and_no_annotations() {
        let object = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"env\":\"hunter2\"}"}},
            "spec": {"replicas": 3, "template": template("web:2", "hunter2", None)}
        });
        let c = capture("deployment", &object);
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("last-applied"), "{text}");
        assert_eq!(c.replicas, Some(3));
        assert_eq!(c.containers.len(), 2);
        assert_eq!(c.containers[0].image.as_deref(), Some("web:2"));
        assert_eq!(c.containers[1].resources, json!({}));
    }

    #[test]
    fn undoing_a_rollback_keeps_a_concurrent_change() {
        // Snapshot at revision 2 (want); the rollback moved to revision 1
        // (base); meanwhile someone added a label.
        let want = template("web:2", "new-secret", None);
        let base = template("web:1", "old-secret", None);
        let mut now = template("web:1", "old-secret", Some("payments"));
        let undone = undo_revision_change(&mut now, &base, &want);
        assert_eq!(now, template("web:2", "new-secret", Some("payments")));
        assert_eq!(undone.len(), 2, "{undone:?}");
    }

    #[test]
    fn no_rollback_means_nothing_undone() {
        let want = template("web:2", "s2", None);
        let base = template("web:1", "s1", None);
        let mut now = template("web:2", "s2", Some("x"));
        let before = now.clone();
        assert!(undo_revision_change(&mut now, &base, &want).is_empty());
        assert_eq!(now, before);
    }

    #[test]
    fn a_container_the_rollback_removed_comes_back_and_one_it_added_goes() {
        let mut want = template("web:2", "s", None);
        want["spec"]["containers"][1] = json!({"name": "metrics", "image": "prom:1"});
        let base = template("web:2", "s", None);
        let mut now = base.clone();
        undo_revision_change(&mut now, &base, &want);
        let names: Vec<&str> = now["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["app", "metrics"]);
        assert_eq!(
            now["spec"]["containers"][1],
            json!({"name": "metrics", "image": "prom:1"})
        );
    }

    #[test]
    fn put_fields_sets_only_the_captured_fields() {
        let fields = capture(
            "deployment",
            &json!({"spec": {"replicas": 2, "template": template("web:1", "s", None)}}),
        );
        let mut object =
            json!({"spec": {"replicas": 5, "template": template("web:9", "changed", Some("t"))}});
        object["spec"]["template"]["metadata"]["annotations"] =
            json!({RESTARTED_AT: "2026-01-01T00:00:00Z"});
        object["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"limits": {"memory": "1Gi"}});
        put_fields(&mut object, &fields);
        assert_eq!(object["spec"]["replicas"], 2);
        let app = &object["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(app["image"], "web:1");
        assert_eq!(app["resources"], json!({"limits": {"memory": "256Mi"}}));
        assert_eq!(
            app["env"][0]["value"], "changed",
            "env is not the snapshot's"
        );
        assert_eq!(
            object["spec"]["template"]["metadata"]["labels"]["team"],
            "t"
        );
        assert!(
            object["spec"]["template"]["metadata"]
                .get("annotations")
                .is_none()
        );
        assert!(fields_differ(&object, &fields).is_empty());
    }

    #[test]
    fn legacy_snapshots_read_into_fields() {
        let snap = Snapshot {
            resource: ResourceId::new("k8s/c/ns/pod/p"),
            connector: crate::event::ConnectorId::new("k8s"),
            taken_at: chrono::Utc::now(),
            data: json!({"kind": "pod", "object": {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": true}]}}}),
            summary: String::new(),
        };
        assert_eq!(controller_of(&snap).as_deref(), Some("ReplicaSet/web-1"));
    }
}
