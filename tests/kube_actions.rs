//! Every Kubernetes action and its restore, against the test API server (a
//! test double, see tests/kube_support): each action changes the object the
//! way kubectl would, and each restore puts the captured state back.

mod kube_support;

use std::sync::Arc;
use std::time::Duration;

use kube_support::{TestApiServer, deployment, eventually, node, pod};
use serde_json::json;
use shieldops::connectors::InfraConnector;
use shieldops::connectors::kubernetes::KubeConnector;
use shieldops::event::{Action, HealthStatus, ResourceId};
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(20);

async fn connect(server: &TestApiServer, dir: &std::path::Path) -> KubeConnector {
    kube_support::connect_with(server, dir, Arc::new(Notify::new())).await
}

fn id(s: &str) -> ResourceId {
    ResourceId::new(format!("k8s/test/{s}"))
}

fn template(server: &TestApiServer) -> serde_json::Value {
    server.get("Deployment", "shop", "web").unwrap()["spec"]["template"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_restart_and_restore() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(deployment("shop", "web", 2, "web:1"));
    let conn = connect(&server, dir.path()).await;
    let target = id("shop/deployment/web");
    let before = template(&server);
    let snap = conn.snapshot(&target).await.unwrap();
    let out = conn
        .execute(&Action::new("rollout_restart", target.clone()))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    let after = template(&server);
    assert!(after["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string());
    assert_eq!(
        server.get("Deployment", "shop", "web").unwrap()["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        conn.health(&target).await.unwrap().status,
        HealthStatus::Healthy
    );
    let restored = conn.restore(&snap).await.unwrap();
    assert!(restored.success, "{restored:?}");
    assert_eq!(template(&server), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_and_restore() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(deployment("shop", "web", 2, "web:1"));
    let conn = connect(&server, dir.path()).await;
    let target = id("shop/deployment/web");
    let snap = conn.snapshot(&target).await.unwrap();
    let out = conn
        .execute(&Action::new("scale", target.clone()).with("replicas", "5"))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert_eq!(
        server.get("Deployment", "shop", "web").unwrap()["spec"]["replicas"],
        5
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.starts_with("PATCH /apis/apps/v1/namespaces/shop/deployments/web/scale"))
    );
    let bad = conn
        .execute(&Action::new("scale", target.clone()).with("replicas", "many"))
        .await;
    assert!(bad.is_err());
    assert!(conn.restore(&snap).await.unwrap().success);
    assert_eq!(
        server.get("Deployment", "shop", "web").unwrap()["spec"]["replicas"],
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_uses_the_previous_replica_set_template_and_restore_undoes_it() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(deployment("shop", "web", 2, "web:1"));
    // A new image rolls out as revision 2.
    server.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2-broken");
    });
    let v1 = {
        let mut t = template(&server);
        t["spec"]["containers"][0]["image"] = json!("web:1");
        t
    };
    let conn = connect(&server, dir.path()).await;
    let target = id("shop/deployment/web");
    let snap = conn.snapshot(&target).await.unwrap();
    let out = conn
        .execute(&Action::new("rollback_deployment", target.clone()))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert_eq!(template(&server), v1);
    // As with `kubectl rollout undo`, the old ReplicaSet comes back as revision 3.
    assert_eq!(
        server.get("Deployment", "shop", "web").unwrap()["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let restored = conn.restore(&snap).await.unwrap();
    assert!(restored.success, "{restored:?}");
    assert_eq!(
        template(&server)["spec"]["containers"][0]["image"],
        "web:2-broken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_resources_and_restore() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(deployment("shop", "web", 2, "web:1"));
    let conn = connect(&server, dir.path()).await;
    let target = id("shop/deployment/web");
    let snap = conn.snapshot(&target).await.unwrap();
    let out = conn
        .execute(&Action::new("set_resources", target.clone()).with("memory_limit_mib", "384"))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    let c = &template(&server)["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["memory"], "384Mi");
    assert_eq!(
        c["resources"]["limits"]["cpu"], "500m",
        "other limits are kept"
    );
    let bad = conn
        .execute(
            &Action::new("set_resources", target.clone())
                .with("container", "nope")
                .with("memory_limit_mib", "384"),
        )
        .await;
    assert!(bad.is_err());
    assert!(conn.restore(&snap).await.unwrap().success);
    assert_eq!(
        template(&server)["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "256Mi"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_pod_is_validated_on_its_replacement() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(pod("shop", "web-abc-1", Some("web-abc"), "node-a", "web:1"));
    server.create(pod("shop", "bare", None, "node-a", "web:1"));
    let conn = connect(&server, dir.path()).await;
    let target = id("shop/pod/web-abc-1");
    let snap = conn.snapshot(&target).await.unwrap();
    let out = conn
        .execute(&Action::new("restart_pod", target.clone()))
        .await
        .unwrap();
    assert!(out.success);
    assert!(server.get("Pod", "shop", "web-abc-1").is_none());
    let h = conn.validation_health(&target, Some(&snap)).await.unwrap();
    assert_eq!(
        (h.status, h.reason.as_str()),
        (HealthStatus::Healthy, "Replaced"),
        "{h:?}"
    );
    // The console restarts mid-validation: a new connector knows nothing of
    // the deletion; the snapshot recorded in the log is enough.
    drop(conn);
    let conn = connect(&server, dir.path()).await;
    assert!(
        conn.health(&target).await.is_err(),
        "the pod itself is gone"
    );
    let h = conn.validation_health(&target, Some(&snap)).await.unwrap();
    assert_eq!(
        (h.status, h.reason.as_str()),
        (HealthStatus::Healthy, "Replaced"),
        "{h:?}"
    );
    // Without the snapshot nothing says which controller replaces it.
    assert!(conn.validation_health(&target, None).await.is_err());
    let r = conn.restore(&snap).await.unwrap();
    assert!(
        r.success && r.message.contains("recreated by ReplicaSet/web-abc"),
        "{r:?}"
    );
    // A pod nobody would recreate is not deleted.
    assert!(
        conn.execute(&Action::new("restart_pod", id("shop/pod/bare")))
            .await
            .is_err()
    );
    assert!(server.get("Pod", "shop", "bare").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_uncordon_and_restore() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(node("node-a"));
    let conn = connect(&server, dir.path()).await;
    let target = id("node/node-a");
    let snap = conn.snapshot(&target).await.unwrap();
    assert!(
        conn.execute(&Action::new("cordon", target.clone()))
            .await
            .unwrap()
            .success
    );
    assert_eq!(
        server.get("Node", "", "node-a").unwrap()["spec"]["unschedulable"],
        true
    );
    assert!(conn.restore(&snap).await.unwrap().success);
    assert!(server.get("Node", "", "node-a").unwrap()["spec"]["unschedulable"].is_null());
    assert!(
        conn.execute(&Action::new("cordon", target.clone()))
            .await
            .unwrap()
            .success
    );
    let cordoned = conn.snapshot(&target).await.unwrap();
    assert!(
        conn.execute(&Action::new("uncordon", target.clone()))
            .await
            .unwrap()
            .success
    );
    assert!(server.get("Node", "", "node-a").unwrap()["spec"]["unschedulable"].is_null());
    assert!(conn.restore(&cordoned).await.unwrap().success);
    assert_eq!(
        server.get("Node", "", "node-a").unwrap()["spec"]["unschedulable"],
        true
    );
    let _ = eventually(WAIT, || true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_respects_disruption_budgets_and_restore_uncordons() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(node("node-a"));
    server.create(pod("shop", "web-abc-1", Some("web-abc"), "node-a", "web:1"));
    let mut daemon = pod("kube-system", "fluentd-1", None, "node-a", "fluentd:1");
    daemon["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "uid": "ds", "controller": true}]);
    server.create(daemon);
    server.create(pod("db", "pg-0", None, "node-a", "pg:16"));
    server.create(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "pg", "namespace": "db"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "pg-0"}}},
        "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}}));
    let conn = connect(&server, dir.path()).await;
    let target = id("node/node-a");
    let snap = conn.snapshot(&target).await.unwrap();
    let out = conn
        .execute(&Action::new("drain", target.clone()))
        .await
        .unwrap();
    assert!(!out.success, "the budget must stop the drain: {out:?}");
    assert!(
        out.message.contains("PodDisruptionBudget"),
        "{}",
        out.message
    );
    assert!(
        server.get("Pod", "db", "pg-0").is_some(),
        "the protected pod stays"
    );
    assert!(
        server.get("Pod", "kube-system", "fluentd-1").is_some(),
        "daemon pods are not evicted"
    );
    assert_eq!(
        server.get("Node", "", "node-a").unwrap()["spec"]["unschedulable"],
        true
    );
    assert!(conn.restore(&snap).await.unwrap().success);
    assert!(server.get("Node", "", "node-a").unwrap()["spec"]["unschedulable"].is_null());

    // With the budget allowing a disruption, the drain completes.
    server.update("PodDisruptionBudget", "db", "pg", |p| {
        p["status"]["disruptionsAllowed"] = json!(1)
    });
    let out = conn
        .execute(&Action::new("drain", target.clone()))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert!(server.get("Pod", "db", "pg-0").is_none());
    assert!(server.get("Pod", "shop", "web-abc-1").is_none());
}
