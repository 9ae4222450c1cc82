//! Kubernetes snapshots keep only what a restore needs: every action the
//! connector supports runs through snapshot → execute → restore against the
//! test API server (a test double, see tests/kube_support) on objects whose
//! containers carry a literal secret in `env` and in the
//! `last-applied-configuration` annotation, everything the runs produce is
//! recorded in a real event log, and neither the log's files nor `log export`
//! hold the secret. Restores put the captured fields back and leave unrelated
//! concurrent changes alone.

mod demo_support;
mod kube_support;

use std::path::Path;

use chrono::Utc;
use kube_support::{TestApiServer, connect, deployment, node, pod};
use serde_json::{Value, json};
use shieldops::connectors::InfraConnector;
use shieldops::event::{Action, EventKind, Evidence, NewEvent, ResourceId};
use shieldops::store::EventLog;

fn id(s: &str) -> ResourceId {
    ResourceId::new(format!("k8s/test/{s}"))
}

/// Gives every container of `object`'s pod spec (at `spec` or
/// `spec.template.spec`) a literal secret env value, and the object the
/// `last-applied-configuration` annotation `kubectl apply` leaves, which
/// repeats it.
fn with_secret(mut object: Value, secret: &str) -> Value {
    let spec = if object["spec"]["template"].is_object() {
        &mut object["spec"]["template"]["spec"]
    } else {
        &mut object["spec"]
    };
    for c in spec["containers"].as_array_mut().unwrap() {
        c["env"] = json!([
            {"name": "DB_PASSWORD", "value": secret},
            {"name": "LOG_LEVEL", "value": "info"}
        ]);
    }
    let applied = serde_json::to_string(&object).unwrap();
    object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!(applied);
    object
}

fn workload(kind: &str, ns: &str, name: &str, image: &str) -> Value {
    let mut w = deployment(ns, name, 2, image);
    w["kind"] = json!(kind);
    if kind == "DaemonSet" {
        w["spec"].as_object_mut().unwrap().remove("replicas");
    }
    if kind != "Deployment" {
        w["spec"]
            .as_object_mut()
            .unwrap()
            .remove("revisionHistoryLimit");
    }
    w
}

/// What a restore must put back, read straight from the server's JSON.
fn restorable(object: &Value) -> Value {
    let t = &object["spec"]["template"];
    json!({
        "replicas": object["spec"]["replicas"],
        "unschedulable": object["spec"]["unschedulable"],
        "restartedAt": t["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "containers": t["spec"]["containers"].as_array().map(|cs| cs.iter().map(|c| json!({
            "name": c["name"], "image": c["image"], "resources": c["resources"]
        })).collect::<Vec<_>>()),
    })
}

/// Every file under `dir`, read raw.
fn files_under(dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
}

fn hits(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_kubernetes_action_puts_a_secret_in_the_log() {
    let secret = format!("hunter2-{:016x}", rand::random::<u64>());
    let pem_body = format!(
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC{:016x}",
        rand::random::<u64>()
    );
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();

    server.create(node("node-a"));
    server.create(with_secret(
        workload("Deployment", "shop", "web", "web:1"),
        &secret,
    ));
    // A second revision, so there is something to roll back to.
    server.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    });
    server.create(with_secret(
        workload("StatefulSet", "shop", "db", "pg:16"),
        &secret,
    ));
    server.create(with_secret(
        workload("DaemonSet", "shop", "agent", "agent:1"),
        &secret,
    ));
    server.create(with_secret(
        workload("ReplicaSet", "shop", "cache", "redis:7"),
        &secret,
    ));
    server.create(with_secret(
        pod("shop", "web-abc-1", Some("web-abc"), "node-a", "web:1"),
        &secret,
    ));
    // What the workload owner can also put in front of the connector: log
    // lines (a PEM key across lines, a password) and a Warning event message.
    server.set_log(
        "shop",
        "web-abc-1",
        "app",
        false,
        &format!(
            "starting\nconnecting with DB_PASSWORD={secret}\n-----BEGIN PRIVATE KEY-----\n{pem_body}\nAAAA\n-----END PRIVATE KEY-----\nready\n"
        ),
    );
    server.create(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-abc-1.1", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "name": "web-abc-1", "namespace": "shop"},
        "type": "Warning", "reason": "Failed", "count": 1,
        "lastTimestamp": Utc::now().to_rfc3339(),
        "message": format!("Error: container env: \"DB_PASSWORD\": \"{secret}\" rejected"),
    }));
    let conn = connect(&server, dir.path()).await;

    let runs: &[(&str, &str, &str)] = &[
        ("restart_pod", "shop/pod/web-abc-1", "Pod"),
        ("rollout_restart", "shop/deployment/web", "Deployment"),
        ("rollout_restart", "shop/statefulset/db", "StatefulSet"),
        ("rollout_restart", "shop/daemonset/agent", "DaemonSet"),
        ("scale", "shop/deployment/web", "Deployment"),
        ("scale", "shop/statefulset/db", "StatefulSet"),
        ("scale", "shop/replicaset/cache", "ReplicaSet"),
        ("rollback_deployment", "shop/deployment/web", "Deployment"),
        ("set_resources", "shop/deployment/web", "Deployment"),
        ("set_resources", "shop/statefulset/db", "StatefulSet"),
        ("set_resources", "shop/daemonset/agent", "DaemonSet"),
        ("cordon", "node/node-a", "Node"),
        ("uncordon", "node/node-a", "Node"),
        ("drain", "node/node-a", "Node"),
    ];
    let mut events = Vec::new();
    let record = |events: &mut Vec<NewEvent>, kind: EventKind| {
        events.push(NewEvent::new(Utc::now(), "test", kind));
    };
    for r in conn.list_resources(&Default::default()).await.unwrap() {
        record(&mut events, EventKind::ResourceDiscovered { resource: r });
    }
    let pod_id = id("shop/pod/web-abc-1");
    let mut evidence = conn.diagnose(&pod_id).await.unwrap().evidence;
    evidence.extend(conn.inspect(&pod_id).await.unwrap());
    assert!(
        evidence
            .iter()
            .any(|e| e.detail.iter().any(|l| l.contains("connecting with"))),
        "the log tail reached the evidence: {evidence:?}"
    );
    for (n, e) in evidence.into_iter().enumerate() {
        record(
            &mut events,
            EventKind::EvidenceCollected {
                investigation: 1,
                evidence: Evidence {
                    id: format!("e{n}"),
                    source: e.source,
                    summary: e.summary,
                    detail: e.detail,
                },
            },
        );
    }

    for (n, (name, target, kind)) in runs.iter().enumerate() {
        let target_id = id(target);
        let (ns, obj_name) = match target.split('/').collect::<Vec<_>>()[..] {
            ["node", name] => ("", name),
            [ns, _, name] => (ns, name),
            _ => unreachable!(),
        };
        if *name == "uncordon" {
            server.update("Node", "", "node-a", |n| {
                n["spec"]["unschedulable"] = json!(true)
            });
        }
        let before = server.get(kind, ns, obj_name).map(|o| restorable(&o));
        let remediation = n as u64 + 1;
        let snapshot = conn.snapshot(&target_id).await.unwrap();
        record(
            &mut events,
            EventKind::SnapshotTaken {
                remediation,
                snapshot: snapshot.clone(),
            },
        );
        let mut action = Action::new(*name, target_id.clone());
        match *name {
            "scale" => action = action.with("replicas", "4"),
            "set_resources" => action = action.with("memory_limit_mib", "384"),
            _ => {}
        }
        let outcome = conn.execute(&action).await.unwrap();
        assert!(outcome.success, "{name} on {target}: {outcome:?}");
        let changed = server.get(kind, ns, obj_name).map(|o| restorable(&o));
        if *kind != "Pod" && *name != "drain" {
            assert_ne!(changed, before, "{name} on {target} changed nothing");
        }
        record(
            &mut events,
            EventKind::ActionExecuted {
                remediation,
                outcome,
            },
        );
        let restored = conn.restore(&snapshot).await.unwrap();
        assert!(
            restored.success,
            "restore after {name} on {target}: {restored:?}"
        );
        if *kind != "Pod" {
            assert_eq!(
                server.get(kind, ns, obj_name).map(|o| restorable(&o)),
                before,
                "restore after {name} on {target} put back what was captured"
            );
        }
        record(
            &mut events,
            EventKind::RemediationRestored {
                remediation,
                outcome: restored,
            },
        );
    }
    // The restored deployment still holds its secret: the restore took it
    // from the live ReplicaSet, not from the log.
    assert_eq!(
        server.get("Deployment", "shop", "web").unwrap()["spec"]["template"]["spec"]["containers"]
            [0]["env"][0]["value"],
        json!(secret)
    );

    let data = dir.path().join("data");
    let log = EventLog::open(&shieldops::cli::log_dir(&data)).unwrap();
    let count = events.len();
    log.append_many(events).await.unwrap();
    log.close().await.unwrap();
    drop(log);

    let mut files = Vec::new();
    files_under(&data, &mut files);
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert!(bytes > 0 && count > runs.len() * 3);
    let out = demo_support::shieldops(dir.path())
        .args(["log", "export", "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export = String::from_utf8_lossy(&out.stdout);
    assert_eq!(export.lines().count(), count, "every event exported");
    for needle in [
        secret.as_str(),
        pem_body.as_str(),
        "last-applied-configuration",
    ] {
        let leaked: Vec<&str> = export.lines().filter(|l| l.contains(needle)).collect();
        assert!(leaked.is_empty(), "{needle} in log export: {leaked:#?}");
    }
    for needle in [
        secret.as_str(),
        pem_body.as_str(),
        "last-applied-configuration",
    ] {
        for (path, content) in &files {
            assert_eq!(hits(content, needle), 0, "{needle} in {}", path.display());
        }
    }
    assert!(export.contains("snapshot_taken") && export.contains("[REDACTED]"));
}

/// The search above can see a secret in the log's files: the same secret in
/// a recorded event is found there (the log is not compressed or encoded
/// away from a byte search).
#[tokio::test]
async fn the_raw_search_finds_a_recorded_secret() {
    let secret = format!("hunter2-{:016x}", rand::random::<u64>());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = EventLog::open(&shieldops::cli::log_dir(&data)).unwrap();
    log.append(NewEvent::new(
        Utc::now(),
        "test",
        EventKind::RemediationRestored {
            remediation: 1,
            outcome: shieldops::event::ActionOutcome {
                success: true,
                message: secret.clone(),
                steps: vec![],
            },
        },
    ))
    .await
    .unwrap();
    log.close().await.unwrap();
    drop(log);
    let mut files = Vec::new();
    files_under(&data, &mut files);
    assert!(files.iter().map(|(_, c)| hits(c, &secret)).sum::<usize>() > 0);
}

/// Changes someone else makes between the action and the restore, outside
/// the fields the action changed, survive the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_leave_unrelated_concurrent_changes_alone() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut web = deployment("shop", "web", 2, "web:1");
    web["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "envoy:1"}));
    server.create(with_secret(web, "s1"));
    server.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    });
    let conn = connect(&server, dir.path()).await;
    let target = id("shop/deployment/web");

    // set_resources, then a label, the sidecar's image and the app's env
    // change; the restore puts the memory limit back and nothing else.
    let snap = conn.snapshot(&target).await.unwrap();
    let out = conn
        .execute(&Action::new("set_resources", target.clone()).with("memory_limit_mib", "512"))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    server.update("Deployment", "shop", "web", |d| {
        d["metadata"]["labels"]["team"] = json!("payments");
        let t = &mut d["spec"]["template"];
        t["metadata"]["labels"]["tier"] = json!("front");
        t["spec"]["containers"][0]["env"][1]["value"] = json!("debug");
    });
    let restored = conn.restore(&snap).await.unwrap();
    assert!(restored.success, "{restored:?}");
    let d = server.get("Deployment", "shop", "web").unwrap();
    let app = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(app["resources"]["limits"]["memory"], "256Mi");
    assert_eq!(app["env"][1]["value"], "debug");
    assert_eq!(d["metadata"]["labels"]["team"], "payments");
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["tier"], "front");

    // A rollback (web:2 with LOG_LEVEL=warn → web:1 with info), then someone
    // labels the template and sets the sidecar's env; the restore undoes the
    // rollback's own changes only.
    let mut api = deployment("shop", "api", 2, "api:1");
    api["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "envoy:1"}));
    server.create(with_secret(api, "s1"));
    server.update("Deployment", "shop", "api", |d| {
        let app = &mut d["spec"]["template"]["spec"]["containers"][0];
        app["image"] = json!("api:2");
        app["env"][1]["value"] = json!("warn");
    });
    let target = id("shop/deployment/api");
    let snap = conn.snapshot(&target).await.unwrap();
    let out = conn
        .execute(&Action::new("rollback_deployment", target.clone()))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    let app = |server: &TestApiServer| {
        server.get("Deployment", "shop", "api").unwrap()["spec"]["template"]["spec"]["containers"]
            [0]
        .clone()
    };
    assert_eq!(
        (
            app(&server)["image"].clone(),
            app(&server)["env"][1]["value"].clone()
        ),
        (json!("api:1"), json!("info"))
    );
    server.update("Deployment", "shop", "api", |d| {
        let t = &mut d["spec"]["template"];
        t["metadata"]["labels"]["tier"] = json!("back");
        t["spec"]["containers"][1]["env"] = json!([{"name": "ENVOY_LOG", "value": "trace"}]);
    });
    let restored = conn.restore(&snap).await.unwrap();
    assert!(restored.success, "{restored:?}");
    assert_eq!(
        (
            app(&server)["image"].clone(),
            app(&server)["env"][1]["value"].clone()
        ),
        (json!("api:2"), json!("warn"))
    );
    let d = server.get("Deployment", "shop", "api").unwrap();
    let t = &d["spec"]["template"];
    assert_eq!(t["spec"]["containers"][1]["env"][0]["value"], "trace");
    assert_eq!(t["metadata"]["labels"]["tier"], "back");
}
