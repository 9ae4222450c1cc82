//! Rollout-aware validation through the real runtime, against the test API
//! server (a test double, see tests/kube_support) running its controllers:
//! a change whose new pods crash-loop while the old pods stay ready fails
//! validation within its window, the snapshot is restored, the pod template
//! read back equals the snapshot, and the remediation finishes as restored.
//! The alert names a pod; the action lands on the pod's workload through the
//! owner chain.

mod kube_support;
mod runtime_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube_support::{Crash, TestApiServer, deployment, node, statefulset};
use serde_json::{Value, json};
use shieldops::clock::ManualClock;
use shieldops::connectors::Registry;
use shieldops::event::{Alert, AlertStatus, EventKind, RemediationOutcome, ResourceId, Severity};
use shieldops::runtime::command::Command;
use shieldops::runtime::{Intake, RuntimeOptions};
use shieldops::state::{Stage, State};
use tokio::sync::Notify;

use runtime_support::{Driven, shipped_policy, start_time};

/// Playbooks that make one change on the alert's pod and validate it for 60 s.
fn playbooks(dir: &std::path::Path) -> std::path::PathBuf {
    let books = dir.join("playbooks");
    std::fs::create_dir_all(&books).unwrap();
    let book = |name: &str, alert: &str, action: &str, params: &str| {
        format!(
            "name: {name}\ndescription: A change made on the alert's pod's workload.\ntrigger:\n  alerts: [{alert}]\n\
             investigate:\n  - evidence: health\n    why: what the pod is doing\n\
             decide:\n  - id: change\n    when: 'resource.kind == \"pod\"'\n    description: make the change\n    action:\n      name: {action}\n{params}\
             validate:\n  expect:\n    health: healthy\n  timeout_secs: 60\n  interval_secs: 5\n  stable_polls: 2\n\
             on_failure:\n  restore: true\n  escalate: [team-oncall]\n  message: the change broke the rollout; restored.\n"
        )
    };
    std::fs::write(
        books.join("lower-memory.yaml"),
        book(
            "test-lower-memory",
            "TestLowerMemory",
            "set_resources",
            "      params:\n        memory_limit_mib: \"64\"\n",
        ),
    )
    .unwrap();
    std::fs::write(
        books.join("roll-back.yaml"),
        book("test-roll-back", "TestRollBack", "rollback_deployment", ""),
    )
    .unwrap();
    books
}

/// Pods crash when their template limits memory to 64Mi (OOM-killed) or
/// runs the broken image (exit 1).
fn crash_when(spec: &Value) -> Option<Crash> {
    let c = &spec["containers"][0];
    if c["resources"]["limits"]["memory"] == "64Mi" {
        return Some(Crash {
            reason: "OOMKilled",
            exit_code: 137,
        });
    }
    (c["image"] == "web:broken").then_some(Crash {
        reason: "Error",
        exit_code: 1,
    })
}

struct Setup {
    server: TestApiServer,
    driven: Driven,
    _dir: tempfile::TempDir,
}

async fn start(server: TestApiServer) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let changed = Arc::new(Notify::new());
    let conn = kube_support::connect_with(&server, dir.path(), changed.clone()).await;
    let mut registry = Registry::new();
    registry.add(Arc::new(conn));
    let options = RuntimeOptions {
        fleet_changed: changed,
        ..Default::default()
    };
    let books = playbooks(dir.path());
    let driven = Driven::start(
        ManualClock::new(start_time()),
        registry,
        shipped_policy(),
        Some(&books),
        options,
    )
    // Every health poll is a few HTTP round trips to the test server.
    .settling(Duration::from_millis(150));
    Setup {
        server,
        driven,
        _dir: dir,
    }
}

async fn alert(h: &Driven, name: &str, resource: &ResourceId) {
    h.runtime()
        .intake
        .send(Intake::Alert {
            alert: Alert {
                name: name.into(),
                severity: Severity::High,
                fingerprint: format!("{name}@{resource}"),
                resource: resource.clone(),
                summary: name.into(),
                labels: BTreeMap::from([("namespace".to_string(), "shop".to_string())]),
                status: AlertStatus::Firing,
                source: "test".into(),
            },
            recorded: None,
            posted_by: None,
        })
        .await
        .unwrap();
}

/// The first pod the server holds whose name starts with `prefix`.
fn a_pod(server: &TestApiServer, prefix: &str) -> ResourceId {
    let name = server
        .list("Pod")
        .into_iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
        .find(|n| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("no pod {prefix}*"));
    ResourceId::new(format!("k8s/test/shop/pod/{name}"))
}

/// Approves the one remediation when it asks, then waits for it to finish.
async fn run_to_the_end(h: &Driven) -> shieldops::state::Remediation {
    let state = h
        .until("a remediation past the policy", |s: &State| {
            s.remediations
                .values()
                .any(|r| !matches!(r.stage, Stage::Proposed))
        })
        .await;
    let rem = state.remediations.values().next().unwrap().clone();
    if rem.stage == Stage::AwaitingApproval {
        for who in ["alice", "bob"]
            .iter()
            .take(rem.required_approvals.max(1) as usize)
        {
            let reply = h
                .command(
                    who,
                    Command::Approve {
                        remediation: rem.id,
                        comment: "go".into(),
                    },
                )
                .await;
            assert!(reply.is_ok(), "{reply:?}");
        }
    }
    let state = h
        .until("the remediation finished", |s: &State| {
            matches!(s.remediations[&rem.id].stage, Stage::Finished(_))
        })
        .await;
    state.remediations[&rem.id].clone()
}

/// Starts the runtime, waits for `pod`, raises `alert` on it and runs the
/// remediation it brings to the end.
async fn alert_and_finish(
    server: TestApiServer,
    pod: &ResourceId,
    name: &str,
) -> (Setup, shieldops::state::Remediation) {
    let s = start(server).await;
    s.driven
        .until("the pod discovered", |st| st.fleet.get(pod).is_some())
        .await;
    alert(&s.driven, name, pod).await;
    let rem = run_to_the_end(&s.driven).await;
    (s, rem)
}

/// What every scenario must show once the remediation is over.
fn assert_restored(rem: &shieldops::state::Remediation, kind: &str, template_now: &Value) {
    let (passed, detail) = rem.validation.clone().expect("validated");
    assert!(!passed, "a crash-looping new revision validated: {detail}");
    assert!(
        detail.contains("NewRevisionFailing") || detail.contains("RolloutIncomplete"),
        "the reason names what failed: {detail}"
    );
    let restore = rem.restore.as_ref().expect("the restore ran");
    assert!(restore.success, "{restore:?}");
    let snapshot = rem.snapshot.as_ref().expect("snapshot recorded");
    assert_eq!(snapshot.data["kind"], kind);
    // The snapshot holds only what the actions change: each container's
    // name, image and resources. The template read back must match them.
    let read_back: Vec<Value> = template_now["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c["name"],
                "image": c["image"],
                "resources": if c["resources"].is_null() { serde_json::json!({}) } else { c["resources"].clone() },
            })
        })
        .collect();
    assert_eq!(
        Value::Array(read_back),
        snapshot.data["fields"]["containers"],
        "the pod template read back differs from the snapshot"
    );
    assert_eq!(rem.stage, Stage::Finished(RemediationOutcome::RolledBack));
    assert!(
        rem.detail
            .as_deref()
            .is_some_and(|d| d.contains("restored")),
        "{:?}",
        rem.detail
    );
}

/// `remediation_finished` in the log itself (not only the projection) says restored.
fn finished_event_says_restored(h: &Driven, id: u64) {
    let found = h.log.scan(0).filter_map(Result::ok).any(|e| {
        matches!(&e.kind, EventKind::RemediationFinished { remediation, status, detail }
            if *remediation == id && *status == RemediationOutcome::RolledBack && detail.contains("restored"))
    });
    assert!(found, "no remediation_finished saying restored for #{id}");
}

fn template(server: &TestApiServer, kind: &str, name: &str) -> Value {
    server.get(kind, "shop", name).unwrap()["spec"]["template"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_resources_whose_new_pods_crash_loop_is_restored() {
    let server = TestApiServer::start().await;
    server.run_controllers(crash_when);
    server.create(node("node-a"));
    server.create(deployment("shop", "web", 3, "web:1"));
    let before = template(&server, "Deployment", "web");
    let pod = a_pod(&server, "web-");
    let (s, rem) = alert_and_finish(server, &pod, "TestLowerMemory").await;
    let h = &s.driven;

    assert_eq!(rem.action.name, "set_resources");
    assert_eq!(
        rem.action.target,
        ResourceId::new("k8s/test/shop/deployment/web"),
        "the pod's action lands on its deployment"
    );
    assert!(rem.reason.contains("resolved to"), "{}", rem.reason);
    assert!(rem.execution.as_ref().is_some_and(|o| o.success));
    assert_restored(
        &rem,
        "deployment",
        &template(&s.server, "Deployment", "web"),
    );
    assert_eq!(template(&s.server, "Deployment", "web"), before);
    finished_event_says_restored(h, rem.id);
    // While it was broken the old pods kept serving: nothing of the new
    // revision is left, and all three pods are the old template's again.
    let pods = s.server.list("Pod");
    assert_eq!(pods.len(), 3, "{pods:#?}");
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["resources"]["limits"]["memory"] == "256Mi")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_to_a_bad_revision_is_restored() {
    let server = TestApiServer::start().await;
    server.run_controllers(crash_when);
    server.create(node("node-a"));
    // Revision 1 was the broken image; revision 2 fixed it.
    server.create(deployment("shop", "web", 2, "web:broken"));
    server.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    });
    let before = template(&server, "Deployment", "web");
    let pod = a_pod(&server, "web-");
    let (s, rem) = alert_and_finish(server, &pod, "TestRollBack").await;
    let h = &s.driven;

    assert_eq!(rem.action.name, "rollback_deployment");
    assert_eq!(
        rem.action.target,
        ResourceId::new("k8s/test/shop/deployment/web")
    );
    assert!(
        rem.execution.as_ref().is_some_and(|o| o.success),
        "{:?}",
        rem.execution
    );
    assert_restored(
        &rem,
        "deployment",
        &template(&s.server, "Deployment", "web"),
    );
    assert_eq!(
        template(&s.server, "Deployment", "web")["spec"]["containers"][0]["image"],
        "web:2"
    );
    assert_eq!(template(&s.server, "Deployment", "web"), before);
    finished_event_says_restored(h, rem.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_update_whose_new_pod_crash_loops_is_restored() {
    let server = TestApiServer::start().await;
    server.run_controllers(crash_when);
    server.create(node("node-a"));
    server.create(statefulset("shop", "db", 3, "pg:16"));
    let before = template(&server, "StatefulSet", "db");
    let pod = ResourceId::new("k8s/test/shop/pod/db-0");
    let (s, rem) = alert_and_finish(server, &pod, "TestLowerMemory").await;
    let h = &s.driven;

    assert_eq!(rem.action.name, "set_resources");
    assert_eq!(
        rem.action.target,
        ResourceId::new("k8s/test/shop/statefulset/db"),
        "the pod's action lands on its stateful set"
    );
    assert_restored(
        &rem,
        "statefulset",
        &template(&s.server, "StatefulSet", "db"),
    );
    assert_eq!(template(&s.server, "StatefulSet", "db"), before);
    finished_event_says_restored(h, rem.id);
    let sts = s.server.get("StatefulSet", "shop", "db").unwrap();
    assert_eq!(
        sts["status"]["currentRevision"], sts["status"]["updateRevision"],
        "the set is whole again on its original revision"
    );
}

/// A pod nobody owns: the proposal is refused before any policy or approval,
/// and the refusal with its reason is in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_pods_change_is_refused_and_the_reason_recorded() {
    let server = TestApiServer::start().await;
    server.create(node("node-a"));
    server.create(kube_support::pod("shop", "lonely", None, "node-a", "web:1"));
    let pod = ResourceId::new("k8s/test/shop/pod/lonely");
    let s = start(server).await;
    let h = &s.driven;
    h.until("the pod discovered", |st| st.fleet.get(&pod).is_some())
        .await;
    alert(h, "TestLowerMemory", &pod).await;
    let refused = |h: &Driven| {
        h.log
            .scan(0)
            .filter_map(Result::ok)
            .find_map(|e| match e.kind {
                EventKind::AgentError { error, .. } if error.contains("has no owner") => {
                    Some(error)
                }
                _ => None,
            })
    };
    h.until("the refusal recorded", |_| refused(h).is_some())
        .await;
    let error = refused(h).unwrap();
    assert!(
        error.contains("set_resources") && error.contains("pod lonely"),
        "{error}"
    );
    assert!(h.state().remediations.is_empty(), "nothing was proposed");
    assert_eq!(
        s.server.get("Pod", "shop", "lonely").unwrap()["spec"]["containers"][0]["resources"]["limits"]
            ["memory"],
        "256Mi"
    );
}
