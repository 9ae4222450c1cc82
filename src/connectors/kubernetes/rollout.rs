//! The live half of rollout-aware health: finds the pods of a workload's
//! newest revision (a Deployment's new ReplicaSet by its pod-template-hash, a
//! StatefulSet's `updateRevision` by controller-revision-hash, a DaemonSet's
//! template generation) and judges them with [`analyzers::rollout`].
//!
//! Pods are matched on their label *and* their controller's uid, so a pod a
//! workload owner labels to look like the new revision, but that no
//! controller of this workload made, neither passes nor fails the check.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::ListParams;

use super::analyzers::{Finding, rollout};
use super::{KubeConnector, map_err};
use crate::connectors::Result;
use crate::event::{HealthStatus, ResourceId};

/// Annotation the API server keeps on a DaemonSet, and label the controller
/// puts on its pods, with the pod template's generation.
const DS_TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";
const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";

/// The pod template of a ReplicaSet without the hash label the deployment
/// controller adds: what the deployment's own template looks like.
pub fn template_without_hash(rs: &ReplicaSet) -> Option<serde_json::Value> {
    let mut t = serde_json::to_value(rs.spec.as_ref()?.template.as_ref()?).ok()?;
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
    }
    Some(t)
}

/// Findings for the pods of a deployment's new ReplicaSet.
pub async fn deployment(
    conn: &KubeConnector,
    id: &ResourceId,
    d: &Deployment,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Finding>> {
    let ns = d.namespace().unwrap_or_default();
    let uid = d.uid().unwrap_or_default();
    let template = serde_json::to_value(d.spec.as_ref().map(|s| &s.template))
        .unwrap_or(serde_json::Value::Null);
    let sets = conn
        .ns_api::<ReplicaSet>(&ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| map_err(id, e))?;
    let new = sets.items.into_iter().find(|rs| {
        controlled_by(rs.owner_references(), &uid)
            && template_without_hash(rs).as_ref() == Some(&template)
    });
    let Some(new) = new else {
        return Ok(vec![unknown_revision(format!(
            "no ReplicaSet of deployment {} carries its current pod template yet",
            d.name_any()
        ))]);
    };
    let Some(hash) = new.labels().get("pod-template-hash").cloned() else {
        return Ok(vec![unknown_revision(format!(
            "ReplicaSet {} has no pod-template-hash label",
            new.name_any()
        ))]);
    };
    let pods = owned_pods(
        conn,
        id,
        &ns,
        &format!("pod-template-hash={hash}"),
        &new.uid().unwrap_or_default(),
    )
    .await?;
    Ok(rollout::new_revision_pods(&new.name_any(), &pods, since))
}

/// Findings for the pods of a stateful set's update revision.
pub async fn statefulset(
    conn: &KubeConnector,
    id: &ResourceId,
    s: &StatefulSet,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Finding>> {
    let Some(revision) = s.status.as_ref().and_then(|st| st.update_revision.clone()) else {
        // No update revision yet: the analyzer already says the controller has
        // not observed the set.
        return Ok(Vec::new());
    };
    let ns = s.namespace().unwrap_or_default();
    let pods = owned_pods(
        conn,
        id,
        &ns,
        &format!("controller-revision-hash={revision}"),
        &s.uid().unwrap_or_default(),
    )
    .await?;
    Ok(rollout::new_revision_pods(&revision, &pods, since))
}

/// Findings for the pods of a daemon set's current template generation (all
/// its pods when the generation is not recorded: judging more is safer).
pub async fn daemonset(
    conn: &KubeConnector,
    id: &ResourceId,
    d: &DaemonSet,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Finding>> {
    let ns = d.namespace().unwrap_or_default();
    let generation = d.annotations().get(DS_TEMPLATE_GENERATION).cloned();
    let selector = generation
        .as_ref()
        .map(|g| format!("{POD_TEMPLATE_GENERATION}={g}"))
        .unwrap_or_default();
    let pods = owned_pods(conn, id, &ns, &selector, &d.uid().unwrap_or_default()).await?;
    let revision = match generation {
        Some(g) => format!("{} (template generation {g})", d.name_any()),
        None => format!("{} (any template generation)", d.name_any()),
    };
    Ok(rollout::new_revision_pods(&revision, &pods, since))
}

fn unknown_revision(message: String) -> Finding {
    Finding::new(
        HealthStatus::Unknown,
        "NewRevisionUnknown",
        message,
        "the pods of the latest change cannot be found, so they cannot be judged",
        0.2,
    )
}

fn controlled_by(
    owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    uid: &str,
) -> bool {
    !uid.is_empty()
        && owners
            .iter()
            .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// Pods in `ns` matching `selector` whose controller has uid `owner`.
async fn owned_pods(
    conn: &KubeConnector,
    id: &ResourceId,
    ns: &str,
    selector: &str,
    owner: &str,
) -> Result<Vec<Pod>> {
    let list = conn
        .ns_api::<Pod>(ns)
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| map_err(id, e))?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| controlled_by(p.owner_references(), owner))
        .collect())
}
