//! The Kubernetes connector's fleet against the test API server (a test
//! double, see tests/kube_support): initial sync, live changes, resuming
//! after `410 Gone` and after a dropped connection, health with reasons.

mod kube_support;

use std::sync::Arc;
use std::time::Duration;

use kube_support::{TestApiServer, deployment, eventually, node, pod};
use serde_json::json;
use shieldops::connectors::kubernetes::{ContextSelection, KubeConnector, discover};
use shieldops::connectors::{InfraConnector, Scope};
use shieldops::event::{HealthStatus, ResourceId};
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(20);

async fn connect(server: &TestApiServer, dir: &std::path::Path) -> KubeConnector {
    kube_support::connect_with(server, dir, Arc::new(Notify::new())).await
}

fn pod_id(ns: &str, name: &str) -> ResourceId {
    ResourceId::new(format!("k8s/test/{ns}/pod/{name}"))
}

async fn health_of(
    conn: &KubeConnector,
    id: &ResourceId,
) -> Option<(HealthStatus, String, String)> {
    conn.list_resources(&Scope::default())
        .await
        .ok()?
        .into_iter()
        .find(|r| &r.id == id)
        .map(|r| (r.health.status, r.health.reason, r.health.message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_syncs_and_follows_changes() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(node("node-a"));
    server.create(deployment("shop", "web", 2, "web:1"));
    server.create(pod("shop", "web-1", Some("web-abc"), "node-a", "web:1"));
    let conn = connect(&server, dir.path()).await;
    let all = conn.list_resources(&Scope::default()).await.unwrap();
    let web1 = all
        .iter()
        .find(|r| r.id == pod_id("shop", "web-1"))
        .expect("pod listed");
    assert_eq!(web1.health.status, HealthStatus::Healthy);
    assert_eq!(web1.attributes["node"], "node-a");
    assert_eq!(web1.labels["namespace"], "shop");
    assert!(all.iter().any(|r| r.id.as_str() == "k8s/test/node/node-a"));
    assert!(
        all.iter()
            .any(|r| r.id.as_str() == "k8s/test/shop/deployment/web")
    );
    assert_eq!(conn.id().0, "k8s:test");

    // A crash loop arrives through the watch, with its reason and exit code.
    server.update("Pod", "shop", "web-1", |p| {
        p["status"]["containerStatuses"][0]["ready"] = json!(false);
        p["status"]["containerStatuses"][0]["restartCount"] = json!(4);
        p["status"]["containerStatuses"][0]["state"] =
            json!({"waiting": {"reason": "CrashLoopBackOff"}});
        p["status"]["containerStatuses"][0]["lastState"] =
            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}});
    });
    let id = pod_id("shop", "web-1");
    let mut seen = None;
    assert!(
        eventually(WAIT, || {
            seen = futures::executor::block_on(health_of(&conn, &id));
            seen.as_ref().is_some_and(|h| h.1 == "CrashLoopBackOff")
        })
        .await,
        "crash loop not seen: {seen:?}"
    );
    let (_, _, message) = seen.unwrap();
    assert!(
        message.contains("OOMKilled") && message.contains("137"),
        "{message}"
    );

    // Healthy node conditions (KernelReady=True) raise nothing; DiskPressure=True does.
    let node_id = ResourceId::new("k8s/test/node/node-a");
    assert_eq!(
        conn.health(&node_id).await.unwrap().status,
        HealthStatus::Healthy
    );
    server.update("Node", "", "node-a", |n| {
        n["status"]["conditions"][1] = json!({"type": "DiskPressure", "status": "True", "reason": "KubeletHasDiskPressure"});
    });
    assert_eq!(conn.health(&node_id).await.unwrap().reason, "DiskPressure");

    // A deletion removes the resource; no list was repeated to learn it.
    let lists_before = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/pods"))
        .count();
    server.remove("Pod", "shop", "web-1");
    assert!(
        eventually(WAIT, || futures::executor::block_on(health_of(&conn, &id))
            .is_none())
        .await
    );
    let lists_after = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/pods"))
        .count();
    assert_eq!(
        lists_before, lists_after,
        "the fleet must follow the watch, not re-list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_after_410_gone_with_a_fresh_list() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(pod("shop", "a", None, "node-a", "x:1"));
    server.create(pod("shop", "b", None, "node-a", "x:1"));
    let conn = connect(&server, dir.path()).await;
    // The first list has been answered (b is known) before the stall begins;
    // otherwise that list could already carry the changes below and no 410
    // would ever be needed.
    assert!(
        eventually(WAIT, || {
            futures::executor::block_on(conn.list_resources(&Scope::default()))
                .unwrap()
                .iter()
                .any(|r| r.id == pod_id("shop", "b"))
        })
        .await,
        "the first sync did not complete"
    );
    let lists_before = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/pods"))
        .count();

    // While the watch is stalled, b goes away and c appears; then history is compacted
    // and the connection drops: resuming from the old resourceVersion gets 410 Gone.
    server.pause_watches(true);
    server.remove("Pod", "shop", "b");
    server.create(pod("shop", "c", None, "node-a", "x:1"));
    server.compact();
    server.cut_watches();
    server.pause_watches(false);

    assert!(
        eventually(WAIT, || {
            let ids: Vec<String> =
                futures::executor::block_on(conn.list_resources(&Scope::default()))
                    .unwrap()
                    .into_iter()
                    .map(|r| r.id.0)
                    .collect();
            ids.contains(&pod_id("shop", "c").0) && !ids.contains(&pod_id("shop", "b").0)
        })
        .await,
        "the fleet did not recover after 410 Gone"
    );
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .filter(|r| r.starts_with("GET /api/v1/pods"))
            .count()
            > lists_before,
        "a 410 must lead to a fresh list"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("WATCH /api/v1/pods") && r.contains("resourceVersion="))
    );
    assert!(
        server.gone_sent() > 0,
        "the server never answered 410 Gone: the recovery above proves nothing about it"
    );
}

/// More objects than fit a page: the server returns pages with `continue`
/// tokens and the fleet still holds every object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_list_follows_continue_tokens_across_pages() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.limit_pages(4);
    for i in 0..25 {
        server.create(pod("shop", &format!("p-{i:02}"), None, "node-a", "x:1"));
    }
    let conn = connect(&server, dir.path()).await;
    let pods: Vec<String> = conn
        .list_resources(&Scope::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "pod")
        .map(|r| r.id.0)
        .collect();
    assert_eq!(pods.len(), 25, "{pods:?}");
    for i in 0..25 {
        assert!(pods.contains(&pod_id("shop", &format!("p-{i:02}")).0));
    }
    let pod_lists: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /api/v1/pods"))
        .collect();
    assert!(
        pod_lists.iter().filter(|r| r.contains("continue=")).count() >= 6,
        "25 pods in pages of 4 take 7 requests: {pod_lists:?}"
    );
    assert!(server.pages_served() >= 7, "{}", server.pages_served());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_resumes_from_the_last_resource_version() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(pod("shop", "a", None, "node-a", "x:1"));
    let conn = connect(&server, dir.path()).await;
    let lists_before = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/pods"))
        .count();

    server.pause_watches(true);
    server.create(pod("shop", "late", None, "node-a", "x:1"));
    server.cut_watches();
    server.pause_watches(false);

    assert!(
        eventually(WAIT, || futures::executor::block_on(health_of(
            &conn,
            &pod_id("shop", "late")
        ))
        .is_some())
        .await,
        "the change made while the connection was down never arrived"
    );
    let lists_after = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/pods"))
        .count();
    assert_eq!(
        lists_before, lists_after,
        "a dropped watch resumes without re-listing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_are_found_as_kubectl_finds_them() {
    let one = TestApiServer::start().await;
    let two = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = one.write_kubeconfig(dir.path(), "alpha");
    let b = two.write_kubeconfig(dir.path(), "beta");
    // KUBECONFIG lists both files; the first file's current-context wins.
    let list = std::env::join_paths([&a, &b]).unwrap();
    // SAFETY: this test binary's other tests do not read KUBECONFIG.
    unsafe { std::env::set_var("KUBECONFIG", &list) };
    let current = discover(&ContextSelection::Current, None).await.unwrap();
    assert_eq!(
        current
            .iter()
            .map(|t| t.context.as_str())
            .collect::<Vec<_>>(),
        ["alpha"]
    );
    let all = discover(&ContextSelection::All, None).await.unwrap();
    assert_eq!(all.len(), 2);
    let named = discover(&ContextSelection::Named(vec!["beta".into()]), None)
        .await
        .unwrap();
    assert_eq!(named[0].context, "beta");
    let err = discover(&ContextSelection::Named(vec!["gamma".into()]), None)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("gamma") && err.to_string().contains("alpha"));
    // No kubeconfig at all: no cluster, not an error.
    unsafe { std::env::set_var("KUBECONFIG", "") };
    unsafe { std::env::set_var("HOME", dir.path().join("nohome")) };
    let none = discover(&ContextSelection::Current, None).await.unwrap();
    assert!(none.is_empty());
    // `[kubernetes] kubeconfig` replaces kubectl's search; a missing file is an error.
    let from_config = discover(&ContextSelection::All, Some(&b)).await.unwrap();
    assert_eq!(from_config.len(), 1);
    assert_eq!(from_config[0].context, "beta");
    let err = discover(&ContextSelection::Current, Some(&dir.path().join("nope")))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("nope"), "{err}");
    unsafe { std::env::remove_var("KUBECONFIG") };
}

/// The compliance facts other parts match on: pods and workload templates
/// carry privilege, root, limits and images; Roles and ClusterRoles are
/// watched into the fleet with their wildcard rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_facts_and_rbac_are_watched() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut priv_pod = pod("shop", "priv-1", None, "node-a", "web:1");
    priv_pod["spec"]["containers"][0]["securityContext"] =
        json!({"privileged": true, "runAsUser": 0});
    // Only a memory limit: cpu is missing.
    priv_pod["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "64Mi"}});
    server.create(priv_pod);
    let mut web = deployment("shop", "web", 1, "web:2");
    web["spec"]["template"]["spec"]["securityContext"] = json!({"runAsNonRoot": true});
    web["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "500m", "memory": "256Mi"}});
    server.create(web);
    server.create(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "ops-admin"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    }));
    server.create(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader", "namespace": "shop"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    }));
    let conn = connect(&server, dir.path()).await;
    let attrs = |id: &str| {
        let id = ResourceId::new(id);
        conn.cache()
            .resource(&id)
            .unwrap_or_else(|| panic!("{id} not in the fleet"))
            .attributes
    };
    let p = attrs("k8s/test/shop/pod/priv-1");
    assert_eq!(p["security.privileged"], "true");
    assert_eq!(p["security.run_as_root"], "true");
    assert_eq!(p["resources.limits"], "missing");
    assert_eq!(p["images"], "web:1");
    let d = attrs("k8s/test/shop/deployment/web");
    assert_eq!(d["security.privileged"], "false");
    assert_eq!(d["security.run_as_root"], "false");
    assert_eq!(d["resources.limits"], "set");
    assert_eq!(d["images"], "web:2");
    let cr = attrs("k8s/test/clusterrole/ops-admin");
    assert_eq!(cr["rbac.wildcard"], "true");
    assert_eq!(cr["rbac.wildcard_rules"], "* on */*");
    let role = attrs("k8s/test/shop/role/reader");
    assert_eq!(role["rbac.wildcard"], "false");
    assert_eq!(role["namespace"], "shop");
    assert_eq!(
        conn.health(&ResourceId::new("k8s/test/shop/role/reader"))
            .await
            .unwrap()
            .status,
        HealthStatus::Healthy
    );

    // Narrowing the ClusterRole arrives through its watch.
    server.update("ClusterRole", "", "ops-admin", |r| {
        r["rules"] =
            json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]);
    });
    let id = ResourceId::new("k8s/test/clusterrole/ops-admin");
    assert!(
        eventually(WAIT, || conn
            .cache()
            .resource(&id)
            .is_some_and(|r| r.attributes["rbac.wildcard"] == "false"))
        .await,
        "the narrowed ClusterRole was not seen"
    );
    server.remove("Role", "shop", "reader");
    let id = ResourceId::new("k8s/test/shop/role/reader");
    assert!(eventually(WAIT, || conn.cache().resource(&id).is_none()).await);
}
