//! What is approved is what runs, through the real runtime: after the policy
//! allows a remediation and before anyone is asked to approve it, the target's
//! connector reads the live object and the change (current → new) is recorded;
//! a proposal whose preview fails — a parameter the connector would ignore —
//! is refused with the reason and never reaches an approver. On the test
//! Kubernetes API server (a test double, see tests/kube_support) and on the
//! demo fleet.

mod kube_support;
mod runtime_support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube_support::{TestApiServer, deployment};
use serde_json::Value;
use shieldops::clock::Clock;
use shieldops::clock::ManualClock;
use shieldops::connectors::Registry;
use shieldops::connectors::kubernetes::{ClusterTarget, KubeConnector};
use shieldops::connectors::sim::Sim;
use shieldops::event::{Action, EventKind, NewEvent, PolicyDecision, ResourceId, Risk};
use shieldops::runtime::RuntimeOptions;
use shieldops::runtime::command::Command;
use shieldops::runtime::policy::PolicyGate;
use shieldops::state::{Stage, State};
use tokio::sync::Notify;

use runtime_support::{Driven, shipped_policy, start_time};

/// Allows everything with one approval: these tests are about what happens
/// between the allow and the approval request, not about the policy.
struct OneApproval;

impl PolicyGate for OneApproval {
    fn decide(&self, _state: &State, _id: u64, _team: &str, _now: DateTime<Utc>) -> PolicyDecision {
        PolicyDecision {
            allow: true,
            deny: vec![],
            required_approvals: 1,
            risk: Risk::Medium,
            controls: vec![],
            bundle_hash: String::new(),
            input_digest: String::new(),
        }
    }
}

/// The remediation's events in log order, as JSON.
fn events_of(driven: &Driven, rem: u64) -> Vec<Value> {
    driven
        .log
        .scan(1)
        .map(|e| e.unwrap().to_json())
        .filter(|e| e["remediation"] == rem)
        .collect()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn kube(server: &TestApiServer, dir: &std::path::Path) -> Arc<KubeConnector> {
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
    Arc::new(conn)
}

/// Proposes `action` as an operator would, once its target is in the fleet.
async fn propose(driven: &Driven, action: Action) -> u64 {
    let target = action.target.clone();
    let state = driven
        .until("the target in the fleet", |s| {
            s.fleet.get(&target).is_some()
        })
        .await;
    let view = state.fleet.get(&target).unwrap();
    let kind = EventKind::RemediationProposed {
        incident: None,
        investigation: None,
        action,
        environment: view.resource.environment,
        team: view.resource.team.clone(),
        reason: "requests follow usage".into(),
        requested_by: "bob".into(),
        playbook: None,
    };
    driven
        .log
        .append(NewEvent::new(driven.clock.now(), "operator:bob", kind))
        .await
        .unwrap()
        .seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_set_resources_is_previewed_from_the_live_object_before_approval_and_sets_requests() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(deployment("shop", "web", 2, "web:1"));
    let conn = kube(&server, dir.path()).await;
    let mut registry = Registry::new();
    registry.add(conn.clone());
    let clock = ManualClock::new(start_time());
    let driven = Driven::start(
        clock,
        registry,
        Arc::new(OneApproval),
        None,
        RuntimeOptions::default(),
    )
    .settling(Duration::from_millis(100));
    let target = ResourceId::new("k8s/test/shop/deployment/web");
    // What a Kubernetes rightsizing recommendation proposes: two requests.
    let rem = propose(
        &driven,
        Action::new("set_resources", target.clone())
            .with("cpu_request_millicores", "250")
            .with("memory_request_mib", "192"),
    )
    .await;
    let state = driven
        .until("the approval request", |s| {
            s.remediations[&rem].stage != Stage::Proposed
        })
        .await;
    assert_eq!(state.remediations[&rem].stage, Stage::AwaitingApproval);
    let events = events_of(&driven, rem);
    let order = kinds(&events);
    let previewed = order.iter().position(|k| k == "remediation_previewed");
    let requested = order.iter().position(|k| k == "approval_requested");
    assert!(
        previewed.is_some() && previewed < requested,
        "the preview must come before the approval request: {order:?}"
    );
    let preview = &events[previewed.unwrap()]["preview"];
    assert_eq!(preview["object"], "deployment shop/web");
    let changes: Vec<(String, String, String)> = preview["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["current"].as_str().unwrap().to_string(),
                c["new"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The live object has limits and no requests: that is what is shown.
    assert_eq!(
        changes,
        [
            ("app CPU request".into(), "unset".into(), "250m".into()),
            ("app memory request".into(), "unset".into(), "192Mi".into()),
        ]
    );
    // The projection carries it for the dialog and for attached consoles.
    let shown = state.remediations[&rem].preview.as_ref().unwrap();
    assert_eq!(shown.lines()[0], "app CPU request: unset → 250m");

    // Approved, it sets exactly those fields and keeps the limits.
    driven
        .command(
            "alice",
            Command::Approve {
                remediation: rem,
                comment: "requests as previewed".into(),
            },
        )
        .await
        .unwrap();
    driven
        .until("the action", |s| s.remediations[&rem].execution.is_some())
        .await;
    let c =
        server.get("Deployment", "shop", "web").unwrap()["spec"]["template"]["spec"]["containers"]
            [0]["resources"]
            .clone();
    assert_eq!(c["requests"]["cpu"], "250m");
    assert_eq!(c["requests"]["memory"], "192Mi");
    assert_eq!(c["limits"]["memory"], "256Mi", "limits are not touched");
    assert_eq!(c["limits"]["cpu"], "500m");
    let state = driven.state();
    let outcome = state.remediations[&rem].execution.as_ref().unwrap();
    assert!(outcome.success, "{outcome:?}");
    driven.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_the_connector_would_ignore_refuses_the_proposal_before_approval() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(deployment("shop", "web", 2, "web:1"));
    let conn = kube(&server, dir.path()).await;
    let mut registry = Registry::new();
    registry.add(conn.clone());
    let driven = Driven::start(
        ManualClock::new(start_time()),
        registry,
        Arc::new(OneApproval),
        None,
        RuntimeOptions::default(),
    )
    .settling(Duration::from_millis(100));
    let target = ResourceId::new("k8s/test/shop/deployment/web");
    let before = server.get("Deployment", "shop", "web").unwrap()["spec"].clone();
    // The old spelling of the CPU limit: the connector would have dropped it
    // and raised only the memory limit.
    let rem = propose(
        &driven,
        Action::new("set_resources", target.clone())
            .with("memory_limit_mib", "384")
            .with("cpu_limit_millis", "750"),
    )
    .await;
    let state = driven
        .until("the refusal", |s| {
            matches!(s.remediations[&rem].stage, Stage::Finished(_))
        })
        .await;
    let r = &state.remediations[&rem];
    assert_eq!(
        r.stage,
        Stage::Finished(shieldops::event::RemediationOutcome::Denied)
    );
    let detail = r.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("no preview") && detail.contains("`cpu_limit_millis`"),
        "{detail}"
    );
    let order = kinds(&events_of(&driven, rem));
    assert!(
        !order.iter().any(|k| k == "approval_requested"),
        "{order:?}"
    );
    assert!(
        !order.iter().any(|k| k == "remediation_previewed"),
        "{order:?}"
    );
    assert_eq!(
        server.get("Deployment", "shop", "web").unwrap()["spec"],
        before
    );
    // Nobody can approve it.
    let refused = driven
        .command(
            "alice",
            Command::Approve {
                remediation: rem,
                comment: "?".into(),
            },
        )
        .await;
    assert!(refused.is_err());
    driven.stop().await;
}

const CHECKOUT: &str = "k8s/demo-prod/checkout/deployment/checkout-api";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_oom_remediation_is_previewed_and_quotes_the_hypothesis_value() {
    let clock = ManualClock::new(start_time());
    let sim = Sim::open(7, None, Arc::new(clock.clone())).unwrap();
    let driven = Driven::start(
        clock,
        sim.registry(),
        shipped_policy(),
        None,
        RuntimeOptions::default(),
    );
    let dep = ResourceId::new(CHECKOUT);
    sim.set_attrs(&dep, &[("memory_need_mib", "340"), ("restarts", "3")]);
    let pod = sim.with_world(|w| w.pods_of(&dep)[0].clone());
    let live_limit =
        sim.with_world(|w| w.resources[&dep].resource.attributes["memory_limit_mib"].clone());
    runtime_support::send_alert(driven.runtime(), runtime_support::crash_loop_alert(pod)).await;
    let state = driven
        .until("a remediation awaiting approval", |s| {
            s.remediations
                .values()
                .any(|r| r.stage == Stage::AwaitingApproval)
        })
        .await;
    let rem = state.approval_queue()[0];
    let new_limit = rem.action.params["memory_limit_mib"].clone();
    let order = kinds(&events_of(&driven, rem.id));
    let previewed = order.iter().position(|k| k == "remediation_previewed");
    let requested = order.iter().position(|k| k == "approval_requested");
    assert!(previewed.is_some() && previewed < requested, "{order:?}");
    let preview = rem.preview.as_ref().unwrap();
    assert_eq!(
        preview.lines(),
        [format!("memory limit: {live_limit}Mi → {new_limit}Mi")]
    );
    // The investigation's hypothesis quotes the value the action sets.
    let inv = &state.investigations[&rem.investigation.unwrap()];
    let top = &inv.hypotheses[0];
    assert_eq!(top.title, "Memory limit too low for the workload");
    assert!(
        top.reasoning.contains(&format!("to {new_limit}Mi")),
        "hypothesis: {} / action: {new_limit}",
        top.reasoning
    );
    assert_eq!(
        top.recommended_action.as_ref().unwrap().params["memory_limit_mib"],
        new_limit
    );
    driven.stop().await;
}
