//! Evidence for investigations from the Kubernetes connector, against the
//! test API server (a test double, see tests/kube_support): events, the
//! previous container's log tail with secrets redacted, the owner chain, the
//! rollout history, and findings that cite them.

mod kube_support;
mod runtime_support;

use std::sync::Arc;
use std::time::Duration;

use kube_support::{TestApiServer, deployment, node, pod};
use serde_json::json;
use shieldops::connectors::InfraConnector;
use shieldops::connectors::kubernetes::{ClusterTarget, KubeConnector};
use shieldops::event::ResourceId;
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_pod_evidence_is_cited_and_redacted() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(node("node-a"));
    server.create(deployment("shop", "web", 2, "web:1"));
    server.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    });
    let rs = server
        .list("ReplicaSet")
        .into_iter()
        .find(|r| r["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2")
        .unwrap();
    let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
    let pod_name = format!("{rs_name}-x1");
    let mut p = pod("shop", &pod_name, Some(&rs_name), "node-a", "web:2");
    p["metadata"]["ownerReferences"][0]["uid"] = rs["metadata"]["uid"].clone();
    p["status"]["containerStatuses"][0]["ready"] = json!(false);
    p["status"]["containerStatuses"][0]["restartCount"] = json!(6);
    p["status"]["containerStatuses"][0]["state"] =
        json!({"waiting": {"reason": "CrashLoopBackOff"}});
    p["status"]["containerStatuses"][0]["lastState"] =
        json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}});
    server.create(p);
    server.create(json!({"apiVersion":"v1","kind":"Event","metadata":{"name":"x1.1","namespace":"shop"},
        "involvedObject":{"kind":"Pod","name":pod_name,"namespace":"shop"},
        "reason":"BackOff","message":"Back-off restarting failed container app","type":"Warning","count":6,
        "lastTimestamp":"2026-06-03T10:00:00Z"}));
    let mut log = String::new();
    for i in 0..80 {
        log.push_str(&format!("line {i}: working\n"));
    }
    log.push_str("connecting to db with password=hunter2 token: abc.def.ghi\n");
    log.push_str("java.lang.OutOfMemoryError: Java heap space\n");
    server.set_log("shop", &pod_name, "app", true, &log);

    let kc =
        kube::config::Kubeconfig::read_from(server.write_kubeconfig(dir.path(), "test")).unwrap();
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

    let id = ResourceId::new(format!("k8s/test/shop/pod/{pod_name}"));
    let d = conn.diagnose(&id).await.unwrap();
    let source = |s: &str| {
        d.evidence
            .iter()
            .find(|e| e.source == s)
            .unwrap_or_else(|| panic!("no {s} evidence: {d:?}"))
    };

    let logs = source("previous_logs");
    assert!(logs.detail.len() <= 50, "the log tail is bounded");
    let text = logs.detail.join("\n");
    assert!(text.contains("OutOfMemoryError"));
    assert!(
        !text.contains("hunter2") && !text.contains("abc.def.ghi"),
        "{text}"
    );
    assert!(text.contains("password=[REDACTED]"));

    assert!(
        source("k8s_events")
            .detail
            .iter()
            .any(|l| l.contains("BackOff") && l.contains("x6"))
    );
    assert_eq!(
        source("owner_chain").detail.last().unwrap(),
        "deployment/web"
    );
    let rollouts = source("rollouts");
    assert!(
        rollouts.summary.contains("web:1") && rollouts.summary.contains("web:2"),
        "{}",
        rollouts.summary
    );
    assert!(source("node_pressure").summary.contains("no pressure"));

    let top = d
        .findings
        .iter()
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
        .unwrap();
    assert!(top.title.contains("OOMKilled"), "{top:?}");
    assert!(top.sources.contains(&"previous_logs".to_string()));
    let action = top.action.as_ref().expect("an action");
    assert_eq!(action.name, "set_resources");
    assert_eq!(action.target.as_str(), "k8s/test/shop/deployment/web");
    // One figure for every OOM fix (`sizing`): 256Mi + one 64 MiB step.
    assert_eq!(action.params["memory_limit_mib"], "320");
}

/// The drill-down's inspection through the real runtime: a viewer's
/// `inspect` command makes the runtime ask the connector, and the recorded
/// `resource_inspected` event carries the pod's events and its current and
/// previous log tails, bounded and redacted. Read-only mode allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_through_the_runtime_is_recorded_bounded_and_redacted() {
    use runtime_support::{Driven, shipped_policy, start_time};
    use shieldops::clock::ManualClock;
    use shieldops::connectors::Registry;
    use shieldops::runtime::RuntimeOptions;
    use shieldops::runtime::command::Command;

    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(node("node-a"));
    let mut p = pod("shop", "web-1", None, "node-a", "web:1");
    p["status"]["containerStatuses"][0]["restartCount"] = json!(2);
    server.create(p);
    server.create(json!({"apiVersion":"v1","kind":"Event","metadata":{"name":"web-1.1","namespace":"shop"},
        "involvedObject":{"kind":"Pod","name":"web-1","namespace":"shop"},
        "reason":"Unhealthy","message":"Readiness probe failed: HTTP probe failed with statuscode: 503",
        "type":"Warning","count":4,"lastTimestamp":"2026-06-03T10:00:00Z"}));
    let mut log = String::new();
    for i in 0..120 {
        log.push_str(&format!("request {i} served\n"));
    }
    log.push_str("auth header Authorization: Bearer eyJhbGciOi.secret.part\n");
    log.push_str(&format!("{}\n", "x".repeat(1000)));
    server.set_log("shop", "web-1", "app", false, &log);
    server.set_log(
        "shop",
        "web-1",
        "app",
        true,
        "panic: password=hunter2 rejected\n",
    );

    let kc =
        kube::config::Kubeconfig::read_from(server.write_kubeconfig(dir.path(), "test")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let changed = Arc::new(Notify::new());
    let conn = KubeConnector::start(
        ClusterTarget {
            context: "test".into(),
            config,
        },
        changed.clone(),
    )
    .unwrap();
    assert!(conn.wait_synced(Duration::from_secs(20)).await);
    let mut registry = Registry::new();
    registry.add(Arc::new(conn));
    let options = RuntimeOptions {
        read_only: true,
        fleet_changed: changed,
        ..Default::default()
    };
    let driven = Driven::start(
        ManualClock::new(start_time()),
        registry,
        shipped_policy(),
        None,
        options,
    );
    let id = ResourceId::new("k8s/test/shop/pod/web-1");
    driven
        .until("the pod discovered", |s| s.fleet.get(&id).is_some())
        .await;

    let missing = driven
        .command(
            "victor",
            Command::Inspect {
                resource: ResourceId::new("k8s/test/shop/pod/nope"),
            },
        )
        .await;
    assert!(missing.unwrap_err().contains("nope"));
    let reply = driven
        .command(
            "victor",
            Command::Inspect {
                resource: id.clone(),
            },
        )
        .await;
    assert!(reply.unwrap().contains("inspecting"));
    let state = driven
        .until("the inspection recorded", |s| {
            s.fleet.get(&id).is_some_and(|v| v.inspection.is_some())
        })
        .await;
    let inspection = state.fleet.get(&id).unwrap().inspection.clone().unwrap();
    assert_eq!(inspection.requested_by, "victor");
    assert_eq!(inspection.error, None);
    let source = |s: &str| {
        inspection
            .evidence
            .iter()
            .find(|e| e.source == s)
            .unwrap_or_else(|| panic!("no {s}: {inspection:?}"))
    };
    let events = source("k8s_events");
    assert!(
        events
            .detail
            .iter()
            .any(|l| l.contains("Readiness probe failed") && l.contains("x4")),
        "{events:?}"
    );
    let logs = source("logs");
    assert_eq!(logs.detail.len(), 50, "bounded to the last 50 lines");
    let text = logs.detail.join("\n");
    assert!(text.contains("request 119 served") && !text.contains("request 60 served"));
    assert!(!text.contains("eyJhbGciOi.secret.part"), "{text}");
    assert!(
        logs.detail.iter().all(|l| l.chars().count() <= 310),
        "long lines are cut"
    );
    let previous = source("previous_logs");
    assert!(
        previous
            .detail
            .iter()
            .any(|l| l.contains("password=[REDACTED]"))
            && !previous.detail.join("\n").contains("hunter2"),
        "{previous:?}"
    );
    driven.stop().await;
}
