//! Action targets resolve through the owner chain, read live from the test
//! API server (a test double, see tests/kube_support): a pod's action lands
//! on the object whose template it changes, `restart_pod` stays on the pod,
//! and an orphan pod, a ReplicaSet without a Deployment or an owner replaced
//! under the same name are refused with the reason.

mod kube_support;

use std::sync::Arc;

use kube_support::{TestApiServer, deployment, pod, statefulset};
use serde_json::{Value, json};
use shieldops::connectors::InfraConnector;
use shieldops::connectors::kubernetes::KubeConnector;
use shieldops::event::{Action, ResourceId};
use tokio::sync::Notify;

async fn connect(server: &TestApiServer, dir: &std::path::Path) -> KubeConnector {
    kube_support::connect_with(server, dir, Arc::new(Notify::new())).await
}

fn id(s: &str) -> ResourceId {
    ResourceId::new(format!("k8s/test/shop/{s}"))
}

/// A pod controlled by `owner` (its real uid, as the controller writes it).
fn owned_pod(name: &str, owner: &Value) -> Value {
    let mut p = pod("shop", name, None, "node-a", "web:1");
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]);
    p
}

async fn resolve(conn: &KubeConnector, action: &str, target: &str) -> Result<ResourceId, String> {
    conn.resolve_target(&Action::new(action, id(target)))
        .await
        .map(|a| a.target)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_follow_the_owner_chain_to_the_object_the_action_changes() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(deployment("shop", "web", 1, "web:1"));
    let rs = server
        .list("ReplicaSet")
        .into_iter()
        .find(|r| r["metadata"]["name"].as_str().unwrap().starts_with("web-"))
        .unwrap();
    let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
    server.create(owned_pod("web-a", &rs));
    let sts = server.create(statefulset("shop", "db", 1, "pg:16"));
    server.create(owned_pod("db-0", &sts));
    let ds = server.create(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}}));
    server.create(owned_pod("agent-x", &ds));
    // A ReplicaSet nobody owns, and its pod.
    let bare = server.create(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "batch-1", "namespace": "shop", "labels": {"app": "batch"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "batch"}},
            "template": {"metadata": {"labels": {"app": "batch"}}, "spec": {"containers": [{"name": "b", "image": "b:1"}]}}}}));
    server.create(owned_pod("batch-1-x", &bare));
    server.create(pod("shop", "lonely", None, "node-a", "web:1"));
    let conn = connect(&server, dir.path()).await;

    // pod → ReplicaSet → Deployment.
    for action in [
        "set_resources",
        "rollback_deployment",
        "rollout_restart",
        "scale",
    ] {
        assert_eq!(
            resolve(&conn, action, "pod/web-a").await,
            Ok(id("deployment/web")),
            "{action}"
        );
    }
    assert_eq!(
        resolve(&conn, "scale", &format!("replicaset/{rs_name}")).await,
        Ok(id("deployment/web")),
        "scaling a deployment's ReplicaSet would be undone by the deployment"
    );
    // restart_pod stays on the pod.
    assert_eq!(
        resolve(&conn, "restart_pod", "pod/web-a").await,
        Ok(id("pod/web-a"))
    );
    // pod → StatefulSet, pod → DaemonSet.
    assert_eq!(
        resolve(&conn, "set_resources", "pod/db-0").await,
        Ok(id("statefulset/db"))
    );
    assert_eq!(
        resolve(&conn, "rollout_restart", "pod/agent-x").await,
        Ok(id("daemonset/agent"))
    );
    let no_rollback = resolve(&conn, "rollback_deployment", "pod/db-0")
        .await
        .unwrap_err();
    assert!(
        no_rollback.contains("statefulset") && no_rollback.contains("pod db-0"),
        "{no_rollback}"
    );
    // A ReplicaSet without a Deployment: scale acts on it, set_resources is refused.
    assert_eq!(
        resolve(&conn, "scale", "pod/batch-1-x").await,
        Ok(id("replicaset/batch-1"))
    );
    let refused = resolve(&conn, "set_resources", "pod/batch-1-x")
        .await
        .unwrap_err();
    assert!(
        refused.contains("ends at a replicaset")
            && refused.contains("pod batch-1-x → replicaset batch-1"),
        "{refused}"
    );
    // An orphan pod is refused for every action, restart_pod included.
    for action in ["set_resources", "restart_pod", "scale"] {
        let why = resolve(&conn, action, "pod/lonely").await.unwrap_err();
        assert!(why.contains("pod lonely has no owner"), "{action}: {why}");
    }
    // Node actions are not pod-template actions: untouched.
    let cordon = conn
        .resolve_target(&Action::new(
            "cordon",
            ResourceId::new("k8s/test/node/node-a"),
        ))
        .await
        .unwrap();
    assert_eq!(cordon.target, ResourceId::new("k8s/test/node/node-a"));
}

/// An owner deleted and re-created under the same name is another object:
/// the chain is checked by uid and the action refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_replaced_under_the_same_name_is_refused() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sts = server.create(statefulset("shop", "db", 1, "pg:16"));
    server.create(owned_pod("db-0", &sts));
    server.remove("StatefulSet", "shop", "db");
    server.create(statefulset("shop", "db", 1, "pg:16"));
    let conn = connect(&server, dir.path()).await;
    let why = resolve(&conn, "set_resources", "pod/db-0")
        .await
        .unwrap_err();
    assert!(why.contains("uid differs"), "{why}");
}
