//! The safety path through the real runtime on the demo fleet, with time
//! driven by hand: approvals by distinct non-requesters, two-step denials,
//! read-only mode, escalation then expiry, and a restore that really restores.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shieldops::clock::ManualClock;
use shieldops::connectors::sim::Sim;
use shieldops::event::ResourceId;
use shieldops::runtime::RuntimeOptions;
use shieldops::runtime::command::{Command, CommandReply};
use shieldops::runtime::policy::PolicyGate;
use shieldops::state::Stage;

const CHECKOUT: &str = "k8s/demo-prod/checkout/deployment/checkout-api";

mod runtime_support;

use runtime_support::{Driven, shipped_policy, start_time};

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
    async fn new(options: RuntimeOptions) -> Harness {
        Self::with(options, shipped_policy(), start_time()).await
    }

    async fn with(
        options: RuntimeOptions,
        policy: Arc<dyn PolicyGate>,
        start: DateTime<Utc>,
    ) -> Harness {
        let clock = ManualClock::new(start);
        let sim = Sim::open(7, None, Arc::new(clock.clone())).unwrap();
        let driven = Driven::start(clock, sim.registry(), policy, None, options);
        Harness { driven, sim }
    }

    async fn approve(&self, name: &str, remediation: u64, comment: &str) -> CommandReply {
        let comment = comment.to_string();
        self.command(
            name,
            Command::Approve {
                remediation,
                comment,
            },
        )
        .await
    }

    async fn deny(&self, name: &str, remediation: u64, reason: &str) -> CommandReply {
        let reason = reason.to_string();
        self.command(
            name,
            Command::Deny {
                remediation,
                reason,
            },
        )
        .await
    }

    async fn fire_oom(&self) {
        self.sim.set_attrs(
            &ResourceId::new(CHECKOUT),
            &[("memory_need_mib", "340"), ("restarts", "3")],
        );
        let pod = self
            .sim
            .with_world(|w| w.pods_of(&ResourceId::new(CHECKOUT))[0].clone());
        runtime_support::send_alert(self.runtime(), runtime_support::crash_loop_alert(pod)).await;
    }

    async fn oom(&self) -> u64 {
        self.fire_oom().await;
        let state = self
            .until("a remediation awaiting approval", |s| {
                s.remediations
                    .values()
                    .any(|r| r.stage == Stage::AwaitingApproval)
            })
            .await;
        state.approval_queue()[0].id
    }

    fn count(&self, kind: &str, rem: u64) -> usize {
        self.log
            .scan(1)
            .map(|e| e.unwrap())
            .filter(|e| e.kind.name() == kind)
            .filter(|e| e.to_json()["remediation"] == rem)
            .count()
    }

    async fn stop(self) {
        self.driven.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_distinct_non_requester_approval_executes_and_only_once() {
    let h = Harness::new(RuntimeOptions::default()).await;
    let rem = h.oom().await;
    let before = h
        .sim
        .with_world(|w| w.capture(&ResourceId::new(CHECKOUT)).unwrap());

    let refused = h.approve("agent:remediation", rem, "self").await;
    assert!(refused.unwrap_err().contains("requester"));
    assert_eq!(h.count("approval_granted", rem), 0);

    h.approve("alice", rem, "raise it").await.unwrap();
    let again = h.approve("alice", rem, "again").await;
    assert!(
        again.is_err(),
        "a second approval by the same person is refused"
    );

    let state = h
        .until("the remediation to finish", |s| {
            matches!(s.remediations[&rem].stage, Stage::Finished(_))
        })
        .await;
    let r = &state.remediations[&rem];
    assert_eq!(r.stage.label(), "succeeded");
    assert_eq!(r.approvals.len(), 1);
    assert_eq!(r.approvals[0].source.as_deref(), Some("10.0.0.7"));
    assert_eq!(h.count("action_executed", rem), 1);
    let after = h
        .sim
        .with_world(|w| w.capture(&ResourceId::new(CHECKOUT)).unwrap());
    assert_ne!(before, after, "the action changed the deployment");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_needs_a_reason_and_prevents_execution() {
    let h = Harness::new(RuntimeOptions::default()).await;
    let rem = h.oom().await;
    let empty = h.deny("bob", rem, "  ").await;
    assert!(empty.unwrap_err().contains("reason"));
    h.deny("bob", rem, "change freeze").await.unwrap();
    let state = h
        .until("the denial to finish it", |s| {
            matches!(s.remediations[&rem].stage, Stage::Finished(_))
        })
        .await;
    assert_eq!(state.remediations[&rem].stage.label(), "denied");
    let late = h.approve("alice", rem, "").await;
    assert!(late.is_err());
    assert_eq!(h.count("snapshot_taken", rem), 0);
    assert_eq!(h.count("action_executed", rem), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_never_executes() {
    let options = RuntimeOptions {
        read_only: true,
        approval_ttl: Duration::from_secs(30),
        escalation_chain: vec![],
        ..Default::default()
    };
    let h = Harness::new(options).await;
    let rem = h.oom().await;
    let refused = h.approve("alice", rem, "").await;
    assert!(refused.unwrap_err().contains("read-only"));
    let state = h
        .until("the request to expire", |s| {
            matches!(s.remediations[&rem].stage, Stage::Finished(_))
        })
        .await;
    assert_eq!(state.remediations[&rem].stage.label(), "expired");
    assert_eq!(h.count("action_executed", rem), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_request_escalates_along_the_chain_then_expires() {
    let options = RuntimeOptions {
        approval_ttl: Duration::from_secs(60),
        escalation_chain: vec!["secondary".into(), "commander".into()],
        ..Default::default()
    };
    let h = Harness::new(options).await;
    let rem = h.oom().await;
    let state = h
        .until("expiry", |s| {
            matches!(s.remediations[&rem].stage, Stage::Finished(_))
        })
        .await;
    let r = &state.remediations[&rem];
    assert_eq!(r.stage.label(), "expired");
    let contacts: Vec<&str> = r.escalations.iter().map(|(to, _, _)| to.as_str()).collect();
    assert_eq!(contacts, ["secondary", "commander"]);
    assert_eq!(h.count("approval_expired", rem), 1);
    assert_eq!(h.count("action_executed", rem), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_from_the_rego_bundle_makes_execution_unreachable() {
    // A Saturday: production is in the bundle's default change freeze.
    let saturday = DateTime::parse_from_rfc3339("2026-06-06T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let gate = Arc::new(shieldops::policy::Gate::load(None).unwrap());
    // Alice asks for the override as a member of the team that owns checkout.
    let options = RuntimeOptions {
        teams: [("alice".to_string(), "checkout".to_string())].into(),
        ..Default::default()
    };
    let h = Harness::with(options, gate, saturday).await;
    h.fire_oom().await;
    let state = h
        .until("the proposal to be decided and finished", |s| {
            s.remediations
                .values()
                .any(|r| matches!(r.stage, Stage::Finished(_)))
        })
        .await;
    let rem = state.remediations.values().next().unwrap();
    assert_eq!(rem.stage.label(), "denied");
    let decision = rem.decision.as_ref().unwrap();
    assert!(!decision.allow);
    assert!(
        decision.deny.iter().any(|d| d.contains("freeze")),
        "{:?}",
        decision.deny
    );
    assert!(!decision.bundle_hash.is_empty() && !decision.input_digest.is_empty());
    let refused = h.approve("alice", rem.id, "").await;
    assert!(refused.is_err());
    assert_eq!(h.count("snapshot_taken", rem.id), 0);
    assert_eq!(h.count("action_executed", rem.id), 0);

    // An override is a new, recorded proposal that costs one extra approval.
    let no_reason = h
        .command(
            "alice",
            Command::OverrideFreeze {
                remediation: rem.id,
                reason: " ".into(),
            },
        )
        .await;
    assert!(no_reason.is_err());
    h.command(
        "alice",
        Command::OverrideFreeze {
            remediation: rem.id,
            reason: "checkout is down".into(),
        },
    )
    .await
    .unwrap();
    let state = h
        .until("the override to await approval", |s| {
            s.remediations
                .values()
                .any(|r| r.stage == Stage::AwaitingApproval)
        })
        .await;
    let over = state.approval_queue()[0].clone();
    assert_ne!(over.id, rem.id);
    assert_eq!(over.requested_by, "alice");
    let baseline = rem.decision.as_ref().unwrap().required_approvals.max(1);
    assert_eq!(over.required_approvals, baseline + 1, "one extra approval");
    assert!(
        h.approve("alice", over.id, "").await.is_err(),
        "the operator who asked for the override cannot approve it"
    );
    for approver in ["bob", "carol", "dave"]
        .iter()
        .take(over.required_approvals as usize)
    {
        assert_eq!(h.count("action_executed", over.id), 0);
        h.approve(approver, over.id, "freeze override")
            .await
            .unwrap();
    }
    let state = h
        .until("the override to finish", |s| {
            matches!(s.remediations[&over.id].stage, Stage::Finished(_))
        })
        .await;
    assert_eq!(state.remediations[&over.id].stage.label(), "succeeded");
    assert_eq!(h.count("action_executed", over.id), 1);
    h.stop().await;
}
