//! Which object an action really changes. A pod's template belongs to its
//! controller, and a ReplicaSet's to its Deployment: a change made lower in
//! the chain is undone by the controller above it (or, for a pod, lost when
//! the pod is replaced). So every action but `restart_pod` goes to the top
//! of the controller chain (pod → ReplicaSet → Deployment, pod → StatefulSet,
//! pod → DaemonSet) and is refused when that object is not one the action
//! supports. Each link is read live and checked by uid, so an owner deleted
//! and re-created under the same name is not mistaken for the original.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use super::ids::{self, ObjectKey};
use super::{KubeConnector, map_err};
use crate::connectors::{ConnectorError, Result};
use crate::event::{Action, ResourceId};

/// The longest owner chain followed (pod → job → cronjob is three).
const MAX_LINKS: usize = 4;

/// Controller kinds whose objects the chain is followed through.
const OWNER_KINDS: &[&str] = &[
    "replicaset",
    "deployment",
    "statefulset",
    "daemonset",
    "job",
    "cronjob",
];

/// The kinds (id slugs) an action changes; `None` for actions that do not
/// act through pod templates (node actions) or that this connector does not know.
fn supported(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "restart_pod" => &["pod"],
        "rollout_restart" | "set_resources" => &["deployment", "statefulset", "daemonset"],
        "scale" => &["deployment", "statefulset", "replicaset"],
        "rollback_deployment" => &["deployment"],
        _ => return None,
    })
}

fn refuse(action: &Action, why: String) -> ConnectorError {
    ConnectorError::Unsupported {
        action: format!("{} ({why})", action.name),
        resource: action.target.clone(),
    }
}

/// The action aimed at the object it should change (see the module comment),
/// or a refusal that says why none fits.
pub async fn resolve(conn: &KubeConnector, action: &Action) -> Result<Action> {
    let Some(kinds) = supported(action.name.as_str()) else {
        return Ok(action.clone());
    };
    let start = conn.key(&action.target)?;
    let mut chain = vec![start.clone()];
    let mut meta = metadata(conn, &action.target, &start).await?;
    if start.kind == "pod" && controller(&meta).is_none() {
        return Err(refuse(
            action,
            format!(
                "pod {} has no owner: nothing would recreate it and no controller's template holds its spec; change it by hand",
                start.name
            ),
        ));
    }
    if action.name == "restart_pod" {
        return if start.kind == "pod" {
            Ok(action.clone())
        } else {
            Err(refuse(
                action,
                format!("it restarts a pod, not a {}", start.kind),
            ))
        };
    }
    while let Some(owner) = controller(&meta) {
        if chain.len() > MAX_LINKS {
            return Err(refuse(
                action,
                format!("owner chain longer than {MAX_LINKS} links"),
            ));
        }
        let key = ObjectKey {
            namespace: start.namespace.clone(),
            kind: owner.kind.to_ascii_lowercase(),
            name: owner.name.clone(),
        };
        if !OWNER_KINDS.contains(&key.kind.as_str()) {
            return Err(refuse(
                action,
                format!(
                    "its controller is a {} {}, which this connector does not change; a change below it would be undone",
                    owner.kind, owner.name
                ),
            ));
        }
        let id = ids::id(conn.context(), &key.namespace, &key.kind, &key.name);
        let owner_meta = match metadata(conn, &id, &key).await {
            Ok(m) => m,
            Err(ConnectorError::NotFound(_)) => {
                return Err(refuse(
                    action,
                    format!("its owner {} {} no longer exists", owner.kind, owner.name),
                ));
            }
            Err(e) => return Err(e),
        };
        if owner_meta.uid.as_deref() != Some(owner.uid.as_str()) {
            return Err(refuse(
                action,
                format!(
                    "its owner {} {} was replaced by another object of that name (uid differs)",
                    owner.kind, owner.name
                ),
            ));
        }
        chain.push(key);
        meta = owner_meta;
    }
    let top = chain.last().expect("the chain holds the target");
    let path: Vec<String> = chain
        .iter()
        .map(|k| format!("{} {}", k.kind, k.name))
        .collect();
    if !kinds.contains(&top.kind.as_str()) {
        let why = if chain.len() > 1 {
            format!(
                "it changes a {}; the owner chain {} ends at a {}, whose controller would undo a change below it",
                kinds.join(" or "),
                path.join(" → "),
                top.kind
            )
        } else {
            format!("it changes a {}, not a {}", kinds.join(" or "), top.kind)
        };
        return Err(refuse(action, why));
    }
    let mut resolved = action.clone();
    resolved.target = ids::id(conn.context(), &top.namespace, &top.kind, &top.name);
    Ok(resolved)
}

fn controller(meta: &ObjectMeta) -> Option<OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .cloned()
}

/// The live metadata of an object of a kind that can sit in an owner chain.
async fn metadata(conn: &KubeConnector, id: &ResourceId, k: &ObjectKey) -> Result<ObjectMeta> {
    async fn get<K>(conn: &KubeConnector, id: &ResourceId, k: &ObjectKey) -> Result<ObjectMeta>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let obj: K = conn
            .ns_api::<K>(&k.namespace)
            .get(&k.name)
            .await
            .map_err(|e| map_err(id, e))?;
        Ok(obj.meta().clone())
    }
    match k.kind.as_str() {
        "pod" => get::<Pod>(conn, id, k).await,
        "replicaset" => get::<ReplicaSet>(conn, id, k).await,
        "deployment" => get::<Deployment>(conn, id, k).await,
        "statefulset" => get::<StatefulSet>(conn, id, k).await,
        "daemonset" => get::<DaemonSet>(conn, id, k).await,
        "job" => get::<Job>(conn, id, k).await,
        "cronjob" => get::<CronJob>(conn, id, k).await,
        // Cluster-scoped objects (nodes) and other kinds own nothing we act through.
        _ => Ok(ObjectMeta::default()),
    }
}
