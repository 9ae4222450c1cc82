//! Keeps the test API server (a test double, see tests/kube_support) honest:
//! the real `kubectl` can get, describe, scale and roll back against it, and
//! the objects it serves validate against the official Kubernetes schemas.
//! Both tools come from scripts/install-test-deps.sh.

mod kube_support;

use kube_support::{TestApiServer, deployment, kubectl, node, pod, tool};
use serde_json::{Value, json};

async fn cluster() -> TestApiServer {
    let server = TestApiServer::start().await;
    server.create(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}));
    server.create(node("node-a"));
    server.create(deployment("shop", "web", 2, "web:1"));
    server.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    });
    let rs = server
        .list("ReplicaSet")
        .into_iter()
        .find(|r| r["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2")
        .expect("current replica set");
    let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
    let created = server.create(pod(
        "shop",
        &format!("{rs_name}-x1"),
        Some(&rs_name),
        "node-a",
        "web:2",
    ));
    let uid = created["metadata"]["uid"].clone();
    server.create(json!({"apiVersion":"v1","kind":"Event","metadata":{"name":"web-x1.1","namespace":"shop"},
        "involvedObject":{"kind":"Pod","name":format!("{rs_name}-x1"),"namespace":"shop","uid":uid,"apiVersion":"v1"},
        "reason":"Pulled","message":"Successfully pulled image \"web:2\"","type":"Normal","count":1,
        "firstTimestamp":"2026-06-03T10:00:00Z","lastTimestamp":"2026-06-03T10:00:00Z","source":{"component":"kubelet"}}));
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_describes_scales_and_rolls_back() {
    let server = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = server.write_kubeconfig(dir.path(), "test");

    let (ok, out) = kubectl(&kc, &["get", "pods", "-n", "shop", "-o", "json"]).await;
    assert!(ok, "{out}");
    let list: Value =
        serde_json::from_str(&out[..out.rfind('}').map_or(0, |i| i + 1)]).expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    let (ok, out) = kubectl(&kc, &["get", "deployments", "-n", "shop"]).await;
    assert!(ok && out.contains("web"), "{out}");
    let (ok, out) = kubectl(&kc, &["get", "nodes"]).await;
    assert!(ok && out.contains("node-a"), "{out}");
    // RBAC objects are served in the real wire format too.
    server.create(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "ops-admin"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    }));
    server.create(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader", "namespace": "shop"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    }));
    let (ok, out) = kubectl(&kc, &["get", "clusterroles"]).await;
    assert!(ok && out.contains("ops-admin"), "{out}");
    let (ok, out) = kubectl(&kc, &["get", "roles", "-n", "shop", "-o", "name"]).await;
    assert!(
        ok && out.contains("role.rbac.authorization.k8s.io/reader"),
        "{out}"
    );
    let (ok, out) = kubectl(&kc, &["describe", "clusterrole", "ops-admin"]).await;
    assert!(ok && out.contains("*.*"), "{out}");

    let (ok, out) = kubectl(&kc, &["describe", "deployment", "web", "-n", "shop"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("web:2") && out.contains("NewReplicaSet"),
        "{out}"
    );
    let (ok, out) = kubectl(&kc, &["describe", "pod", "-n", "shop"]).await;
    assert!(ok && out.contains("Successfully pulled image"), "{out}");

    let (ok, out) = kubectl(
        &kc,
        &["scale", "deployment/web", "-n", "shop", "--replicas=4"],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        server.get("Deployment", "shop", "web").unwrap()["spec"]["replicas"],
        4
    );

    let (ok, out) = kubectl(&kc, &["rollout", "undo", "deployment/web", "-n", "shop"]).await;
    assert!(ok, "{out}");
    let d = server.get("Deployment", "shop", "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "web:1"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );

    // Errors come back as Status objects kubectl understands.
    let (ok, out) = kubectl(&kc, &["get", "deployment", "nope", "-n", "shop"]).await;
    assert!(!ok && out.contains("not found"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_objects_validate_against_the_official_schemas() {
    let server = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for kind in [
        "Deployment",
        "ReplicaSet",
        "Pod",
        "Node",
        "Event",
        "Namespace",
    ] {
        for (i, obj) in server.list(kind).into_iter().enumerate() {
            let path = dir.path().join(format!("{kind}-{i}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(&obj).unwrap()).unwrap();
            files.push(path);
        }
    }
    assert!(files.len() >= 6);
    let out = tokio::process::Command::new(tool("kubernetes-validate"))
        .args(["-k", "1.34.0"])
        .args(&files)
        .output()
        .await
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
}
