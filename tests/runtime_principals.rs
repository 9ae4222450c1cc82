//! Who counts as an approver, through the real runtime and the shipped Rego
//! bundle: the OS account of the console's real uid (one however many
//! consoles it opens), a token's principal, a declared name only on the demo
//! fleet; never the requester, never whoever posted the alert. And the
//! policy's input told the truth: a drain's blast radius read from the fleet,
//! the requester's team from `[teams]`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shieldops::clock::ManualClock;
use shieldops::connectors::sim::Sim;
use shieldops::connectors::{
    Diagnosis, DiagnosisEvidence, InfraConnector, Listing, Registry, Result, Scope, TimeWindow,
};
use shieldops::event::{
    Action, ActionOutcome, Alert, AlertStatus, Authentication, ConnectorId, EventKind, Health,
    InfraEvent, Provider, Resource, ResourceId, Severity, Snapshot,
};
use shieldops::policy::{Bundle, Gate, GateOptions};
use shieldops::runtime::command::{Command, CommandEnvelope, CommandReply, Identity, os_account};
use shieldops::runtime::policy::PolicyGate;
use shieldops::runtime::{Intake, RuntimeOptions};
use shieldops::state::{Stage, State};
use tokio::sync::oneshot;

mod runtime_support;
use runtime_support::{Driven, shipped_policy, start_time};

const CHECKOUT: &str = "k8s/demo-prod/checkout/deployment/checkout-api";

/// A demo-world connector that does not say it is simulated, as no real
/// connector does: what the runtime sees of a real cluster's connector.
struct Real(Arc<dyn InfraConnector>);

#[async_trait]
impl InfraConnector for Real {
    fn id(&self) -> &ConnectorId {
        self.0.id()
    }
    fn provider(&self) -> Provider {
        self.0.provider()
    }
    async fn list_resources(&self, scope: &Scope) -> Result<Vec<Resource>> {
        self.0.list_resources(scope).await
    }
    async fn health(&self, id: &ResourceId) -> Result<Health> {
        self.0.health(id).await
    }
    async fn events(&self, id: &ResourceId, window: TimeWindow) -> Result<Vec<InfraEvent>> {
        self.0.events(id, window).await
    }
    async fn metrics(&self, id: &ResourceId) -> Result<BTreeMap<String, f64>> {
        self.0.metrics(id).await
    }
    async fn diagnose(&self, id: &ResourceId) -> Result<Diagnosis> {
        self.0.diagnose(id).await
    }
    async fn inspect(&self, id: &ResourceId) -> Result<Vec<DiagnosisEvidence>> {
        self.0.inspect(id).await
    }
    async fn validation_health(
        &self,
        id: &ResourceId,
        before: Option<&Snapshot>,
    ) -> Result<Health> {
        self.0.validation_health(id, before).await
    }
    async fn resolve_target(&self, action: &Action) -> Result<Action> {
        self.0.resolve_target(action).await
    }
    async fn preview(&self, action: &Action) -> Result<shieldops::event::Preview> {
        self.0.preview(action).await
    }
    async fn snapshot(&self, id: &ResourceId) -> Result<Snapshot> {
        self.0.snapshot(id).await
    }
    async fn execute(&self, action: &Action) -> Result<ActionOutcome> {
        self.0.execute(action).await
    }
    async fn restore(&self, snapshot: &Snapshot) -> Result<ActionOutcome> {
        self.0.restore(snapshot).await
    }
    async fn refresh(&self, scope: &Scope) -> Result<Listing> {
        self.0.refresh(scope).await
    }
}

struct Harness {
    driven: Driven,
    sim: Arc<Sim>,
}

impl std::ops::Deref for Harness {
    type Target = Driven;
    fn deref(&self) -> &Driven {
        &self.driven
    }
}

impl Harness {
    fn new(real: bool, policy: Arc<dyn PolicyGate>, start: DateTime<Utc>) -> Harness {
        Self::with(real, policy, start, RuntimeOptions::default(), None)
    }

    fn with(
        real: bool,
        policy: Arc<dyn PolicyGate>,
        start: DateTime<Utc>,
        options: RuntimeOptions,
        playbooks: Option<&std::path::Path>,
    ) -> Harness {
        let clock = ManualClock::new(start);
        let sim = Sim::open(7, None, Arc::new(clock.clone())).unwrap();
        let registry = if real {
            let mut r = Registry::new();
            for c in sim.registry().all() {
                r.add(Arc::new(Real(c.clone())));
            }
            r
        } else {
            sim.registry()
        };
        let driven = Driven::start(clock, registry, policy, playbooks, options);
        Harness { driven, sim }
    }

    async fn send(&self, by: Identity, command: Command) -> CommandReply {
        let (tx, rx) = oneshot::channel();
        self.runtime()
            .commands
            .send(CommandEnvelope {
                command,
                by,
                reply: Some(tx),
            })
            .await
            .unwrap();
        rx.await.unwrap()
    }

    async fn approve(&self, by: Identity, remediation: u64) -> CommandReply {
        let comment = "ok".to_string();
        self.send(
            by,
            Command::Approve {
                remediation,
                comment,
            },
        )
        .await
    }

    async fn alert(&self, name: &str, resource: ResourceId, posted_by: Option<&str>) {
        self.runtime()
            .intake
            .send(Intake::Alert {
                alert: Alert {
                    name: name.into(),
                    severity: Severity::Critical,
                    fingerprint: format!("{name}@{resource}"),
                    resource,
                    summary: "OOMKilled".into(),
                    labels: Default::default(),
                    status: AlertStatus::Firing,
                    source: "alertmanager".into(),
                },
                recorded: None,
                posted_by: posted_by.map(str::to_string),
            })
            .await
            .unwrap();
    }

    /// A checkout pod crash-looping out of memory, alerted by `posted_by`.
    async fn oom(&self, posted_by: Option<&str>) -> u64 {
        self.sim.set_attrs(
            &ResourceId::new(CHECKOUT),
            &[("memory_need_mib", "340"), ("restarts", "3")],
        );
        let pod = self
            .sim
            .with_world(|w| w.pods_of(&ResourceId::new(CHECKOUT))[0].clone());
        self.alert("KubePodCrashLooping", pod, posted_by).await;
        let state = self
            .until("a remediation awaiting approval", |s| {
                s.remediations
                    .values()
                    .any(|r| r.stage == Stage::AwaitingApproval)
            })
            .await;
        state.approval_queue()[0].id
    }

    /// A checkout pod crash-looping on a Saturday: the proposal for it is
    /// denied by the production change freeze. The state and its id.
    async fn frozen(&self) -> (State, u64) {
        self.sim.set_attrs(
            &ResourceId::new(CHECKOUT),
            &[("memory_need_mib", "340"), ("restarts", "3")],
        );
        let pod = self
            .sim
            .with_world(|w| w.pods_of(&ResourceId::new(CHECKOUT))[0].clone());
        self.alert("KubePodCrashLooping", pod, None).await;
        let state = self
            .until("the freeze to deny the proposal", |s| {
                s.remediations
                    .values()
                    .any(|r| matches!(r.stage, Stage::Finished(_)))
            })
            .await;
        let frozen = *state.remediations.keys().next().unwrap();
        (state, frozen)
    }

    async fn finished(&self, rem: u64) -> State {
        self.until("the remediation to finish", |s| {
            matches!(s.remediations[&rem].stage, Stage::Finished(_))
        })
        .await
    }

    fn granted(&self, rem: u64) -> Vec<EventKind> {
        self.log
            .scan(1)
            .map(|e| e.unwrap().kind)
            .filter(|k| matches!(k, EventKind::ApprovalGranted { remediation, .. } if *remediation == rem))
            .collect()
    }
}

/// A Saturday morning: production is in the default change freeze.
fn saturday() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-06T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// The shipped bundle with two approvals required for everything.
fn two_approvals() -> Arc<dyn PolicyGate> {
    let mut bundle = Bundle::embedded();
    bundle.merge_data(
        serde_json::json!({"shieldops_config": {"approvals": {"by_risk":
        {"low": 2, "medium": 2, "high": 2, "critical": 2}}}}),
    );
    Arc::new(Gate::new(&bundle, GateOptions::default()).unwrap())
}

fn console(declared: &str) -> Identity {
    Identity {
        declared_name: Some(declared.into()),
        ..Identity::local()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consoles_of_one_os_account_give_one_approval_between_them() {
    let h = Harness::new(true, two_approvals(), start_time());
    let rem = h.oom(None).await;
    // Two consoles of the same OS user, declaring different names.
    h.approve(console("alice"), rem).await.unwrap();
    let second = h.approve(console("bob"), rem).await.unwrap_err();
    assert!(second.contains("already approved"), "{second}");
    assert_eq!(
        h.state().remediations[&rem].stage,
        Stage::AwaitingApproval,
        "one approval of two"
    );
    let granted = h.granted(rem);
    assert_eq!(granted.len(), 1);
    let EventKind::ApprovalGranted {
        by,
        auth,
        declared_name,
        ..
    } = &granted[0]
    else {
        unreachable!()
    };
    assert_eq!(by, &os_account());
    assert_eq!(*auth, Some(Authentication::OsAccount));
    assert_eq!(declared_name.as_deref(), Some("alice"));

    // A second, distinct principal completes it.
    h.approve(Identity::token("ana", None), rem).await.unwrap();
    let state = h.finished(rem).await;
    assert_eq!(state.remediations[&rem].stage.label(), "succeeded");
    h.driven.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoever_posted_the_alert_cannot_approve_what_it_caused() {
    let h = Harness::new(true, shipped_policy(), start_time());
    let rem = h.oom(Some("mallory")).await;
    for by in [
        Identity::token("mallory", None),
        Identity::token(" Mallory", Some("10.0.0.9".into())),
    ] {
        let refused = h.approve(by, rem).await.unwrap_err();
        assert!(refused.contains("posted an alert"), "{refused}");
    }
    assert!(h.granted(rem).is_empty());
    h.approve(Identity::token("ana", None), rem).await.unwrap();
    let state = h.finished(rem).await;
    assert_eq!(state.remediations[&rem].stage.label(), "succeeded");
    h.driven.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_cannot_approve_their_own_request() {
    // A Saturday: production is frozen, so an operator asks for an override.
    let saturday = saturday();
    let options = RuntimeOptions {
        teams: BTreeMap::from([("olga".to_string(), "checkout".to_string())]),
        ..Default::default()
    };
    let h = Harness::with(true, shipped_policy(), saturday, options, None);
    let (_, frozen) = h.frozen().await;
    let reason = "checkout is down".to_string();
    let reply = h
        .send(
            Identity::token("olga", None),
            Command::OverrideFreeze {
                remediation: frozen,
                reason,
            },
        )
        .await
        .unwrap();
    let state = h
        .until("the override awaiting approval", |s| {
            s.remediations
                .values()
                .any(|r| r.stage == Stage::AwaitingApproval)
        })
        .await;
    let rem = state.approval_queue()[0].id;
    assert!(reply.contains(&format!("#{rem}")), "{reply}");
    assert_eq!(
        state.remediations[&rem].action.param_sources["freeze_override"],
        shieldops::event::ParamSource::Operator
    );
    let own = h
        .approve(Identity::token("olga", None), rem)
        .await
        .unwrap_err();
    assert!(own.contains("requester"), "{own}");
    assert!(h.granted(rem).is_empty());
    h.driven.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_name_counts_only_on_the_demo_fleet() {
    // A real connector: a declared name is refused, a token's principal counts.
    let h = Harness::new(true, shipped_policy(), start_time());
    let rem = h.oom(None).await;
    let refused = h.approve(Identity::declared("ana"), rem).await.unwrap_err();
    assert!(refused.contains("declared name"), "{refused}");
    assert!(h.granted(rem).is_empty());
    h.driven.stop().await;

    // The demo fleet: the headless `--approve-as` name counts, and the event says it was declared.
    let h = Harness::new(false, shipped_policy(), start_time());
    let rem = h.oom(None).await;
    h.approve(Identity::declared("ana"), rem).await.unwrap();
    let granted = h.granted(rem);
    let EventKind::ApprovalGranted { auth, .. } = &granted[0] else {
        unreachable!()
    };
    assert_eq!(*auth, Some(Authentication::Declared));
    assert!(shieldops::event::summary(&granted[0]).contains("declared, not authenticated"));
    let state = h.finished(rem).await;
    assert_eq!(state.remediations[&rem].stage.label(), "succeeded");
    h.driven.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_busy_node_is_denied_by_its_blast_radius() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("node-drain.yaml"),
        r#"
name: node-drain
description: A node reported broken is drained.
trigger:
  alerts: [NodeBroken]
investigate:
  - evidence: health
decide:
  - id: drain
    when: 'resource.kind == "node"'
    description: Drain the node.
    action:
      name: drain_node
validate:
  expect:
    health: healthy
  timeout_secs: 60
  interval_secs: 5
on_failure:
  restore: true
  escalate: [platform-oncall]
  message: The node is still broken.
"#,
    )
    .unwrap();
    let h = Harness::with(
        true,
        shipped_policy(),
        start_time(),
        RuntimeOptions::default(),
        Some(dir.path()),
    );
    let node = ResourceId::new("k8s/demo-prod/node/node-prod-0");
    let pods = h
        .until("the fleet discovered", |s| s.fleet.get(&node).is_some())
        .await
        .fleet
        .resources
        .values()
        .filter(|v| v.resource.kind == "pod")
        .filter(|v| v.resource.attributes.get("node").map(String::as_str) == Some("node-prod-0"))
        .count();
    assert!(pods >= 3, "the demo node runs {pods} pods");
    h.alert("NodeBroken", node.clone(), None).await;
    let state = h
        .until("the drain decided", |s| {
            s.remediations
                .values()
                .any(|r| r.action.name == "drain_node" && r.decision.is_some())
        })
        .await;
    let r = state
        .remediations
        .values()
        .find(|r| r.action.name == "drain_node")
        .unwrap();
    let decision = r.decision.as_ref().unwrap();
    let expected = format!("blast radius: {} resources affected", pods + 1);
    assert!(
        decision.deny.iter().any(|d| d.starts_with(&expected)),
        "{expected}: {:?}",
        decision.deny
    );
    let state = h.finished(r.id).await;
    assert_eq!(state.remediations[&r.id].stage.label(), "denied");
    h.driven.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_scoping_denies_a_principal_acting_on_another_teams_resource() {
    let saturday = saturday();
    let options = RuntimeOptions {
        teams: BTreeMap::from([("Olga".to_string(), "search".to_string())]),
        ..Default::default()
    };
    let h = Harness::with(true, shipped_policy(), saturday, options, None);
    let (state, frozen) = h.frozen().await;
    let team = state.remediations[&frozen].team.clone();
    assert_ne!(team, "search");
    for (who, why) in [
        (
            "olga",
            "scope: team \"search\" may not act on resources of team",
        ),
        ("nobody-mapped", "scope: the requester has no team"),
    ] {
        let reason = "checkout is down".to_string();
        h.send(
            Identity::token(who, None),
            Command::OverrideFreeze {
                remediation: frozen,
                reason,
            },
        )
        .await
        .unwrap();
        let state = h
            .until("the override decided", |s| {
                s.remediations
                    .values()
                    .any(|r| r.requested_by == who && matches!(r.stage, Stage::Finished(_)))
            })
            .await;
        let r = state
            .remediations
            .values()
            .find(|r| r.requested_by == who)
            .unwrap();
        assert_eq!(r.stage.label(), "denied");
        let deny = &r.decision.as_ref().unwrap().deny;
        assert!(deny.iter().any(|d| d.starts_with(why)), "{why}: {deny:?}");
    }
    h.driven.stop().await;
}
