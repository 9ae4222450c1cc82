//! Kubernetes previews read the live object from the API server (the test
//! double of tests/kube_support): each action's current → new values, a stale
//! stated value refused, an orphan pod's restart refused, and nothing changed
//! by looking.

mod kube_support;

use std::sync::Arc;
use std::time::Duration;

use kube_support::{TestApiServer, deployment, node, pod};
use serde_json::json;
use shieldops::connectors::InfraConnector;
use shieldops::connectors::kubernetes::{ClusterTarget, KubeConnector};
use shieldops::event::{Action, ResourceId};
use tokio::sync::Notify;

async fn connect(server: &TestApiServer, dir: &std::path::Path) -> KubeConnector {
    let path = server.write_kubeconfig(dir, "test");
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let conn = KubeConnector::start(
        ClusterTarget {
            context: "test".into(),
            config,
        },
        Arc::new(Notify::new()),
    )
    .unwrap();
    assert!(conn.wait_synced(Duration::from_secs(20)).await);
    conn
}

fn id(s: &str) -> ResourceId {
    ResourceId::new(format!("k8s/test/{s}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_shows_its_live_values_and_looking_changes_nothing() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(deployment("shop", "web", 4, "web:1"));
    // A new image rolls out as revision 2, so there is a revision to go back to.
    server.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2-broken");
    });
    server.create(node("node-a"));
    server.create(pod(
        "shop",
        "web-abc-1",
        Some("web-abc"),
        "node-a",
        "web:2-broken",
    ));
    server.create(pod("shop", "bare", None, "node-a", "web:1"));
    let conn = connect(&server, dir.path()).await;
    let web = id("shop/deployment/web");
    let before = server.get("Deployment", "shop", "web").unwrap();

    let lines = |p: shieldops::event::Preview| p.lines();
    assert_eq!(
        lines(
            conn.preview(
                &Action::new("set_resources", web.clone()).with("memory_limit_mib", "384")
            )
            .await
            .unwrap()
        ),
        ["app memory limit: 256Mi → 384Mi"]
    );
    assert_eq!(
        lines(
            conn.preview(&Action::new("scale", web.clone()).with("replicas", "2"))
                .await
                .unwrap()
        ),
        ["replicas: 4 → 2"]
    );
    let err = conn
        .preview(
            &Action::new("scale", web.clone())
                .with("replicas", "2")
                .with("current_replicas", "8"),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("current_replicas") && err.contains("live value is 4"),
        "{err}"
    );
    let rollback = conn
        .preview(&Action::new("rollback_deployment", web.clone()).with("reason", "crash loop"))
        .await
        .unwrap();
    assert_eq!(rollback.changes[0].field, "revision");
    assert_eq!(rollback.changes[0].current, "2");
    assert!(
        rollback.changes[0].new.starts_with("1 ("),
        "{:?}",
        rollback.changes
    );
    assert!(
        rollback
            .lines()
            .contains(&"app image: web:2-broken → web:1".to_string()),
        "{:?}",
        rollback.lines()
    );
    assert!(rollback.notes.contains(&"reason: crash loop".to_string()));
    assert_eq!(
        lines(
            conn.preview(&Action::new("cordon_node", id("node/node-a")))
                .await
                .unwrap()
        ),
        ["scheduling: schedulable → cordoned"]
    );
    let drain = conn
        .preview(&Action::new("drain", id("node/node-a")))
        .await
        .unwrap();
    assert_eq!(drain.changes[1].field, "pods on the node");
    assert_eq!(drain.changes[1].current, "2");
    let restart = conn
        .preview(&Action::new("restart_pod", id("shop/pod/web-abc-1")))
        .await
        .unwrap();
    assert!(
        restart.changes[0]
            .new
            .contains("ReplicaSet/web-abc recreates it"),
        "{:?}",
        restart.changes
    );
    // A pod nobody recreates is refused before anyone is asked.
    let err = conn
        .preview(&Action::new("restart_pod", id("shop/pod/bare")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("without a controller"), "{err}");
    // Looking changed nothing.
    assert_eq!(server.get("Deployment", "shop", "web").unwrap(), before);
    assert!(server.get("Pod", "shop", "bare").is_some());
    assert_eq!(
        server.get("Node", "", "node-a").unwrap()["spec"]["unschedulable"],
        serde_json::Value::Null
    );
}
