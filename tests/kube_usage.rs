//! Pod and node usage from the resource metrics API (`metrics.k8s.io`). The
//! test API server's metrics are first checked with the real `kubectl top`
//! (installed by scripts/install-test-deps.sh); then the connector reads
//! them, each failure shape (not served, down, forbidden, no sample yet)
//! leaves usage unknown with its reason and never zero, and the cost agent in
//! the real runtime rightsizes a workload from the fetched numbers — and
//! recommends nothing, saying why, when usage is unknown.

mod kube_support;
mod runtime_support;

use std::sync::Arc;
use std::time::Duration;

use kube_support::{MetricsMode, TestApiServer, deployment, kubectl, pod};
use serde_json::{Value, json};
use shieldops::clock::ManualClock;
use shieldops::connectors::kubernetes::KubeConnector;
use shieldops::connectors::{InfraConnector, Registry};
use shieldops::event::{Resource, USAGE_UNKNOWN};
use shieldops::runtime::RuntimeOptions;
use shieldops::state::State;

use runtime_support::{Driven, shipped_policy, start_time};

/// A priced node: an m5.xlarge in us-east-1 (4 vCPU, 16 GiB).
fn priced_node(name: &str) -> Value {
    let mut n = kube_support::node(name);
    n["metadata"]["labels"]["node.kubernetes.io/instance-type"] = json!("m5.xlarge");
    n["metadata"]["labels"]["topology.kubernetes.io/region"] = json!("us-east-1");
    n["metadata"]["labels"]["topology.kubernetes.io/zone"] = json!("us-east-1a");
    n["status"]["capacity"] = json!({"cpu": "4", "memory": "16Gi", "pods": "110"});
    n["status"]["allocatable"] = json!({"cpu": "3920m", "memory": "15991852Ki", "pods": "110"});
    n
}

/// `shop/web` (a Deployment) with two pods on `node-a`, each requesting 2 CPUs
/// and 4 GiB; metrics-server says they use 180m/210m and 256 MiB.
async fn cluster() -> (TestApiServer, Vec<String>) {
    let server = TestApiServer::start().await;
    server.create(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}));
    server.create(priced_node("node-a"));
    server.create(deployment("shop", "web", 2, "web:1"));
    let rs = server
        .list("ReplicaSet")
        .into_iter()
        .next()
        .expect("the deployment's replica set");
    let rs = rs["metadata"]["name"].as_str().unwrap().to_string();
    let mut pods = Vec::new();
    for i in 1..=2 {
        let name = format!("{rs}-p{i}");
        let mut p = pod("shop", &name, Some(&rs), "node-a", "web:1");
        p["spec"]["containers"][0]["resources"] = json!({
            "requests": {"cpu": "2", "memory": "4Gi"},
            "limits": {"cpu": "2", "memory": "4Gi"}});
        server.create(p);
        pods.push(name);
    }
    // Real metrics-server forms: nanocores and KiB.
    server.set_pod_metrics("shop", &pods[0], &[("app", "180000000n", "262144Ki")]);
    server.set_pod_metrics("shop", &pods[1], &[("app", "210m", "256Mi")]);
    server.set_node_metrics("node-a", "1234567890n", "4Gi");
    (server, pods)
}

/// The row of `kubectl top` output whose first column is `name`, split.
fn row(out: &str, name: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_top_reads_the_doubles_metrics_api() {
    let (server, pods) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = server.write_kubeconfig(dir.path(), "test");

    let (ok, out) = kubectl(&kc, &["top", "pod", "-n", "shop"]).await;
    assert!(ok, "{out}");
    // kubectl rounds nanocores up to whole millicores and shows MiB.
    assert_eq!(row(&out, &pods[0])[1..], ["180m", "256Mi"], "{out}");
    assert_eq!(row(&out, &pods[1])[1..], ["210m", "256Mi"], "{out}");

    let (ok, out) = kubectl(&kc, &["top", "node"]).await;
    assert!(ok, "{out}");
    // 1.23456789 cores of 3.92 allocatable (31%); 4 GiB of 15617 MiB (26%).
    assert_eq!(
        row(&out, "node-a")[1..],
        ["1235m", "31%", "4096Mi", "26%"],
        "{out}"
    );

    let (ok, out) = kubectl(&kc, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("PodMetrics") && out.contains("NodeMetrics"),
        "{out}"
    );

    // Without metrics-server kubectl says so, as it does against a real cluster.
    server.set_metrics_mode(MetricsMode::NotServed);
    let (ok, out) = kubectl(&kc, &["top", "pod", "-n", "shop"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("Metrics API not available"), "{out}");
    server.set_metrics_mode(MetricsMode::Forbidden);
    let (ok, out) = kubectl(&kc, &["top", "pod", "-n", "shop"]).await;
    assert!(!ok && out.contains("forbidden"), "{out}");
}

fn find<'a>(fleet: &'a [Resource], kind: &str, name: &str) -> &'a Resource {
    fleet
        .iter()
        .find(|r| r.kind == kind && r.name == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_reads_pod_and_node_usage() {
    let (server, pods) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = kube_support::connect(&server, dir.path()).await;
    conn.refresh_usage().await;
    let fleet = conn.list_resources(&Default::default()).await.unwrap();
    let p0 = find(&fleet, "pod", &pods[0]);
    assert_eq!(p0.attributes["cpu_usage_millicores"], "180");
    assert_eq!(p0.attributes["memory_usage_mib"], "256");
    assert!(!p0.attributes.contains_key(USAGE_UNKNOWN));
    assert_eq!(
        find(&fleet, "pod", &pods[1]).attributes["cpu_usage_millicores"],
        "210"
    );
    let node = find(&fleet, "node", "node-a");
    assert_eq!(node.attributes["cpu_usage_millicores"], "1234.6");
    assert_eq!(node.attributes["memory_usage_mib"], "4096");
    // What the cost agent prices the node by.
    assert_eq!(node.attributes["instance_type"], "m5.xlarge");
    assert_eq!(node.attributes["cpu_capacity_millicores"], "4000");

    // A watch event replacing the pod keeps the usage the poller wrote.
    server.update("Pod", "shop", &pods[0], |p| {
        p["metadata"]["labels"]["touched"] = json!("yes");
    });
    assert!(
        kube_support::eventually(Duration::from_secs(10), || {
            conn.cache()
                .resources()
                .iter()
                .any(|r| r.name == pods[0] && r.labels.get("touched").is_some())
        })
        .await
    );
    let fleet = conn.list_resources(&Default::default()).await.unwrap();
    assert_eq!(
        find(&fleet, "pod", &pods[0]).attributes["cpu_usage_millicores"],
        "180"
    );
}

/// Usage of every running pod and every node after one read in `mode`.
async fn unknown_after(mode: MetricsMode) -> Vec<(String, Option<String>, Option<String>)> {
    let (server, _) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = kube_support::connect(&server, dir.path()).await;
    conn.refresh_usage().await;
    server.set_metrics_mode(mode);
    conn.refresh_usage().await;
    conn.list_resources(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "pod" || r.kind == "node")
        .map(|r| {
            (
                r.name.clone(),
                r.attributes.get("cpu_usage_millicores").cloned(),
                r.attributes.get(USAGE_UNKNOWN).cloned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_missing_metrics_shape_leaves_usage_unknown_with_its_reason() {
    for (mode, expect) in [
        (
            MetricsMode::NotServed,
            "usage unknown: metrics.k8s.io not served (404); install metrics-server",
        ),
        (
            MetricsMode::Unavailable,
            "usage unknown: metrics.k8s.io unavailable (503): metrics-server is not answering (service unavailable)",
        ),
        (
            MetricsMode::Forbidden,
            "no permission to list pods.metrics.k8s.io (403); grant get/list on pods.metrics.k8s.io and nodes.metrics.k8s.io",
        ),
    ] {
        let seen = unknown_after(mode).await;
        assert_eq!(seen.len(), 3, "{mode:?}: {seen:?}");
        for (name, cpu, why) in seen {
            // Usage known a moment ago is not kept as if it still held.
            assert_eq!(cpu, None, "{mode:?}: {name}");
            let why = why.unwrap_or_else(|| panic!("{mode:?}: {name} has no reason"));
            let expect = if name == "node-a" {
                expect.replacen("list pods.metrics", "list nodes.metrics", 1)
            } else {
                expect.to_string()
            };
            assert!(why.contains(&expect), "{mode:?}: {name}: {why}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_running_pod_is_unknown_a_finished_one_is_not_nor_a_bad_quantity_known() {
    let (server, pods) = cluster().await;
    server.set_pod_metrics("shop", &pods[1], &[("app", "210m", "lots")]);
    let fresh = pod("shop", "web-new", None, "node-a", "web:1");
    server.create(fresh);
    let mut done = pod("shop", "migrate-1", None, "node-a", "web:1");
    done["status"]["phase"] = json!("Succeeded");
    server.create(done);
    let dir = tempfile::tempdir().unwrap();
    let conn = kube_support::connect(&server, dir.path()).await;
    conn.refresh_usage().await;
    let fleet = conn.list_resources(&Default::default()).await.unwrap();
    let new = find(&fleet, "pod", "web-new");
    assert!(!new.attributes.contains_key("cpu_usage_millicores"));
    assert_eq!(
        new.attributes[USAGE_UNKNOWN],
        "usage unknown: metrics.k8s.io has no sample for this pod yet"
    );
    // A finished pod uses nothing: no figure, and nothing unknown either.
    let finished = find(&fleet, "pod", "migrate-1");
    assert!(!finished.attributes.contains_key("cpu_usage_millicores"));
    assert!(!finished.attributes.contains_key(USAGE_UNKNOWN));
    let bad = find(&fleet, "pod", &pods[1]);
    assert!(!bad.attributes.contains_key("cpu_usage_millicores"));
    assert!(bad.attributes[USAGE_UNKNOWN].contains("malformed"));
}

/// The real runtime on the double's cluster, on simulated time.
async fn runtime_on(server: &TestApiServer, dir: &std::path::Path) -> (Driven, Arc<KubeConnector>) {
    let conn = Arc::new(kube_support::connect(server, dir).await);
    conn.refresh_usage().await;
    let mut registry = Registry::new();
    registry.add(conn.clone());
    let driven = Driven::start(
        ManualClock::new(start_time()),
        registry,
        shipped_policy(),
        None,
        RuntimeOptions::default(),
    )
    .settling(Duration::from_millis(50));
    (driven, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_agent_rightsizes_a_workload_from_fetched_usage() {
    let (server, pods) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (h, _conn) = runtime_on(&server, dir.path()).await;
    let state = h
        .until("a workload recommendation", |s: &State| {
            !s.cost.recommendations.is_empty()
        })
        .await;
    let rec = state.cost.recommendations.values().next().unwrap();
    let action = rec.action.as_ref().expect("an action");
    // p95 of 180m and 210m is 210m; max memory 256 MiB + 20% = 307.2 → 320 MiB.
    assert_eq!(action.name, "set_resources");
    assert_eq!(action.params["cpu_request_millicores"], "210");
    assert_eq!(action.params["memory_request_mib"], "320");
    assert!(
        rec.title.contains("CPU 2000m→210m, memory 4096Mi→320Mi"),
        "{}",
        rec.title
    );
    let owner = pods[0].rsplit_once('-').unwrap().0;
    assert!(rec.resource.as_str().ends_with(owner), "{}", rec.resource);
    // The node is priced and its pods allocated: the workload has a cost sample.
    assert!(
        state
            .cost
            .resources
            .keys()
            .any(|id| id.as_str().ends_with(owner)),
        "{:?}",
        state.cost.resources.keys().collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_usage_gives_no_recommendation_and_the_agent_says_why() {
    let (server, _) = cluster().await;
    server.set_metrics_mode(MetricsMode::NotServed);
    let dir = tempfile::tempdir().unwrap();
    let (h, _conn) = runtime_on(&server, dir.path()).await;
    let state = h.agent_says("cost", "usage unknown").await;
    let status = &state.agents["cost"].status;
    assert!(
        status.ends_with(
            "; usage unknown for 3 resource(s): metrics.k8s.io not served (404); install metrics-server"
        ),
        "{status}"
    );
    // Several more samples: still nothing recommended from unknown usage.
    let state = h.run_for(60).await;
    assert!(
        state.cost.recommendations.is_empty(),
        "{:?}",
        state.cost.recommendations
    );
    // The fleet in the log carries the reason the Cost pane shows.
    let reasons: Vec<&String> = state
        .fleet
        .resources
        .values()
        .filter_map(|v| v.resource.attributes.get(USAGE_UNKNOWN))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_using_more_than_it_requests_is_charged_for_it_and_flagged() {
    let (server, pods) = cluster().await;
    // Requests of 2 CPUs each; use steady at 180m and 210m for a while.
    let dir = tempfile::tempdir().unwrap();
    let (h, conn) = runtime_on(&server, dir.path()).await;
    let owner = pods[0].rsplit_once('-').unwrap().0.to_string();
    let samples = |s: &State| {
        s.cost
            .resources
            .iter()
            .find(|(id, _)| id.as_str().ends_with(&owner))
            .map(|(_, e)| e.history.clone())
            .unwrap_or_default()
    };
    let before = h
        .until("a baseline of the workload's cost", |s: &State| {
            !samples(s).is_empty()
        })
        .await;
    let steady = *samples(&before).back().unwrap();
    h.run_for(60).await;
    // Both pods now burst to 3.5 CPUs, far over their requests.
    for p in &pods {
        server.set_pod_metrics("shop", p, &[("app", "3500m", "256Mi")]);
    }
    conn.refresh_usage().await;
    let state = h
        .until("an anomaly for the workload", |s: &State| {
            s.cost
                .anomalies
                .iter()
                .any(|a| a.resource.as_str().ends_with(&owner))
        })
        .await;
    let a = state
        .cost
        .anomalies
        .iter()
        .find(|a| a.resource.as_str().ends_with(&owner))
        .unwrap();
    assert_eq!(a.expected_cents, steady);
    // Charged by use over request: 7 CPUs instead of 4 requested.
    assert!(a.actual_cents > steady * 3 / 2, "{a:?} from {steady}");
    assert_eq!(*samples(&state).back().unwrap(), a.actual_cents);
}
