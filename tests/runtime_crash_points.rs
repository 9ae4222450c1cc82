//! Crash points of the remediation path, deterministically: a real run's
//! event log is cut just after `snapshot_taken`, just after
//! `action_executed` (no validation, no outcome), and in the middle of a
//! restore (validation failed, restore not recorded; restore recorded,
//! outcome not), then the real runtime starts on each cut log with the demo
//! fleet and an injected clock. The connector counts what it is asked to do:
//! the action never runs again, the target is validated, and it is restored
//! when it is not healthy.

mod runtime_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shieldops::agents::security::{DEFAULT_ADVISORIES, parse_advisories};
use shieldops::clock::ManualClock;
use shieldops::connectors::sim::Sim;
use shieldops::connectors::{
    Diagnosis, DiagnosisEvidence, InfraConnector, Listing, Registry, Result, Scope, TimeWindow,
};
use shieldops::event::{
    Action, ActionOutcome, ConnectorId, ConnectorState, Event, EventKind, Health, InfraEvent,
    NewEvent, Provider, RemediationOutcome, Resource, ResourceId, Snapshot,
};
use shieldops::runtime::command::{Command, CommandEnvelope, Identity};
use shieldops::runtime::snapshots::load_state;
use shieldops::runtime::{Runtime, RuntimeOptions, RuntimeParts};
use shieldops::state::{Stage, State};
use shieldops::store::EventLog;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

const CHECKOUT: &str = "k8s/demo-prod/checkout/deployment/checkout-api";

/// A connector that does what the demo connector does and counts the
/// changes it is asked to make.
struct Counting {
    inner: Arc<dyn InfraConnector>,
    executed: AtomicUsize,
    restored: AtomicUsize,
    validated: AtomicUsize,
}

#[async_trait]
impl InfraConnector for Counting {
    fn id(&self) -> &ConnectorId {
        self.inner.id()
    }
    fn provider(&self) -> Provider {
        self.inner.provider()
    }
    async fn list_resources(&self, scope: &Scope) -> Result<Vec<Resource>> {
        self.inner.list_resources(scope).await
    }
    async fn health(&self, id: &ResourceId) -> Result<Health> {
        self.inner.health(id).await
    }
    async fn events(&self, id: &ResourceId, window: TimeWindow) -> Result<Vec<InfraEvent>> {
        self.inner.events(id, window).await
    }
    async fn metrics(&self, id: &ResourceId) -> Result<BTreeMap<String, f64>> {
        self.inner.metrics(id).await
    }
    async fn diagnose(&self, id: &ResourceId) -> Result<Diagnosis> {
        self.inner.diagnose(id).await
    }
    async fn inspect(&self, id: &ResourceId) -> Result<Vec<DiagnosisEvidence>> {
        self.inner.inspect(id).await
    }
    async fn validation_health(
        &self,
        id: &ResourceId,
        before: Option<&Snapshot>,
    ) -> Result<Health> {
        self.validated.fetch_add(1, Ordering::SeqCst);
        self.inner.validation_health(id, before).await
    }
    async fn resolve_target(&self, action: &Action) -> Result<Action> {
        self.inner.resolve_target(action).await
    }
    async fn preview(&self, action: &Action) -> Result<shieldops::event::Preview> {
        self.inner.preview(action).await
    }
    fn simulated(&self) -> bool {
        // The demo world behind a counter: still the demo fleet.
        self.inner.simulated()
    }
    async fn snapshot(&self, id: &ResourceId) -> Result<Snapshot> {
        self.inner.snapshot(id).await
    }
    async fn execute(&self, action: &Action) -> Result<ActionOutcome> {
        self.executed.fetch_add(1, Ordering::SeqCst);
        self.inner.execute(action).await
    }
    async fn restore(&self, snapshot: &Snapshot) -> Result<ActionOutcome> {
        self.restored.fetch_add(1, Ordering::SeqCst);
        self.inner.restore(snapshot).await
    }
    async fn refresh(&self, scope: &Scope) -> Result<Listing> {
        self.inner.refresh(scope).await
    }
    fn status(&self) -> Option<(ConnectorState, String)> {
        self.inner.status()
    }
}

/// The demo fleet at `start`, its production cluster behind a counter.
struct Fleet {
    clock: ManualClock,
    sim: Arc<Sim>,
    prod: Arc<Counting>,
    registry: Registry,
}

impl Fleet {
    fn new(start: DateTime<Utc>) -> Fleet {
        let clock = ManualClock::new(start);
        let sim = Sim::open(7, None, Arc::new(clock.clone())).unwrap();
        let prod_id = ConnectorId::new("sim:k8s/demo-prod");
        let mut registry = Registry::new();
        let mut prod = None;
        for c in sim.registry().all() {
            if c.id() == &prod_id {
                let counting = Arc::new(Counting {
                    inner: c.clone(),
                    executed: AtomicUsize::new(0),
                    restored: AtomicUsize::new(0),
                    validated: AtomicUsize::new(0),
                });
                registry.add(counting.clone());
                prod = Some(counting);
            } else {
                registry.add(c.clone());
            }
        }
        Fleet {
            clock,
            sim,
            prod: prod.expect("the demo has a production cluster"),
            registry,
        }
    }

    /// The checkout pods now need more memory than their limit: OOM kills.
    fn break_checkout(&self, need_mib: &str) {
        for pod in self
            .sim
            .with_world(|w| w.pods_of(&ResourceId::new(CHECKOUT)))
        {
            self.sim.set_attrs(&pod, &[("memory_need_mib", need_mib)]);
        }
    }

    fn checkout(&self) -> serde_json::Value {
        self.sim
            .with_world(|w| w.capture(&ResourceId::new(CHECKOUT)).unwrap())
    }
}

/// The real runtime on `log`, driven by `fleet`'s clock.
struct Driven {
    log: EventLog,
    clock: ManualClock,
    runtime: Option<Runtime>,
}

impl Driven {
    fn start(fleet: &Fleet, log: EventLog) -> Driven {
        let runtime = Runtime::start(
            RuntimeParts {
                log: log.clone(),
                registry: fleet.registry.clone(),
                clock: Arc::new(fleet.clock.clone()),
                policy: runtime_support::shipped_policy(),
                advisories: parse_advisories(DEFAULT_ADVISORIES).unwrap(),
                playbooks: Arc::new(shieldops::playbook::Library::load(None).unwrap()),
                options: RuntimeOptions::default(),
            },
            load_state(&log).unwrap(),
            CancellationToken::new(),
        );
        Driven {
            log,
            clock: fleet.clock.clone(),
            runtime: Some(runtime),
        }
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().unwrap()
    }

    /// Advances simulated time a second at a time until `pred` holds.
    async fn until(&self, what: &str, pred: impl Fn(&State) -> bool) -> State {
        let mut status = self.runtime().status.clone();
        for _ in 0..2_000 {
            let state = load_state(&self.log).unwrap();
            if pred(&state) {
                return state;
            }
            self.clock.advance(Duration::from_secs(1));
            let _ = tokio::time::timeout(Duration::from_millis(20), status.changed()).await;
        }
        panic!(
            "timed out waiting for {what}: {:#?}",
            load_state(&self.log).unwrap().remediations
        );
    }

    async fn stop(mut self) {
        self.runtime.take().unwrap().shutdown().await.unwrap();
        self.log.close().await.unwrap();
    }
}

/// A whole run: OOM on checkout, the playbook's proposal approved by alice,
/// to its end. Returns the log's events and the remediation's id.
async fn recorded_run(need_mib: &str) -> (Vec<Event>, u64) {
    recorded_run_then(need_mib, None).await
}

/// [`recorded_run`], with the workload's memory need changed to
/// `need_after` once the change is approved (before it can validate).
async fn recorded_run_then(need_mib: &str, need_after: Option<&str>) -> (Vec<Event>, u64) {
    let fleet = Fleet::new(runtime_support::start_time());
    let dir = tempfile::tempdir().unwrap();
    let d = Driven::start(&fleet, EventLog::open(&dir.path().join("log")).unwrap());
    fleet.break_checkout(need_mib);
    let pod = fleet
        .sim
        .with_world(|w| w.pods_of(&ResourceId::new(CHECKOUT))[0].clone());
    runtime_support::send_alert(d.runtime(), runtime_support::crash_loop_alert(pod)).await;
    let state = d
        .until("a proposal awaiting approval", |s| {
            s.remediations
                .values()
                .any(|r| r.stage == Stage::AwaitingApproval)
        })
        .await;
    let rem = state.approval_queue()[0].id;
    let (tx, rx) = oneshot::channel();
    d.runtime()
        .commands
        .send(CommandEnvelope {
            command: Command::Approve {
                remediation: rem,
                comment: "raise it".into(),
            },
            // The demo fleet: a declared approver counts there.
            by: Identity::declared("alice"),
            reply: Some(tx),
        })
        .await
        .unwrap();
    rx.await.unwrap().unwrap();
    if let Some(need) = need_after {
        fleet.break_checkout(need);
    }
    d.until("the remediation to finish", |s| {
        matches!(s.remediations[&rem].stage, Stage::Finished(_))
    })
    .await;
    assert_eq!(fleet.prod.executed.load(Ordering::SeqCst), 1);
    let events = d.log.scan(1).map(|e| e.unwrap()).collect();
    d.stop().await;
    (events, rem)
}

fn is(e: &Event, kind: &str, rem: u64) -> bool {
    e.kind.name() == kind && e.to_json()["remediation"] == rem
}

/// A log holding `events` up to and including the first `kind` of `rem`.
async fn cut(events: &[Event], rem: u64, kind: &str, dir: &std::path::Path) -> (EventLog, Event) {
    let end = events
        .iter()
        .position(|e| is(e, kind, rem))
        .unwrap_or_else(|| panic!("the run recorded no {kind}"));
    let log = EventLog::open(&dir.join("log")).unwrap();
    let drafts: Vec<NewEvent> = events[..=end]
        .iter()
        .map(|e| NewEvent::new(e.at, e.actor.clone(), e.kind.clone()))
        .collect();
    log.append_many(drafts).await.unwrap();
    (log, events[end].clone())
}

fn count(events: &[Event], kind: &str, rem: u64) -> usize {
    events.iter().filter(|e| is(e, kind, rem)).count()
}

/// The recorded action, applied to `fleet` as the crashed process had.
async fn apply_recorded_action(fleet: &Fleet, events: &[Event], rem: u64) {
    let action = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RemediationProposed { action, .. } if e.seq == rem => Some(action.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(action.name, "set_resources");
    // Straight to the demo connector: the counter sees only the runtime.
    let outcome = fleet.prod.inner.execute(&action).await.unwrap();
    assert!(outcome.success);
}

/// Restarts on `log` with `fleet` and waits for the remediation's end;
/// returns the state and every event of the log then.
async fn resume(fleet: &Fleet, log: EventLog, rem: u64) -> (State, Vec<Event>) {
    let d = Driven::start(fleet, log);
    let state = d
        .until("the resumed remediation to finish", |s| {
            matches!(s.remediations[&rem].stage, Stage::Finished(_))
        })
        .await;
    let events = d.log.scan(1).map(|e| e.unwrap()).collect();
    d.stop().await;
    (state, events)
}

fn recorded_snapshot(events: &[Event], rem: u64) -> serde_json::Value {
    events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::SnapshotTaken {
                remediation,
                snapshot,
            } if *remediation == rem => Some(snapshot.data.clone()),
            _ => None,
        })
        .unwrap()
}

/// How the crashed process left the checkout deployment: its pods' memory
/// need, whether the recorded action had been applied, and the need after.
struct Left {
    need_mib: &'static str,
    applied: bool,
    need_after: Option<&'static str>,
}

/// A restart on a log cut after `kind`, and what it did.
struct Resumed {
    fleet: Fleet,
    /// The stage the cut log left the remediation in.
    cut_at: Stage,
    outcome: Stage,
    events: Vec<Event>,
}

impl Resumed {
    /// (executions, validation polls, restores) the connector was asked for.
    fn calls(&self) -> (usize, usize, usize) {
        let p = &self.fleet.prod;
        (
            p.executed.load(Ordering::SeqCst),
            p.validated.load(Ordering::SeqCst),
            p.restored.load(Ordering::SeqCst),
        )
    }

    fn count(&self, kind: &str, rem: u64) -> usize {
        count(&self.events, kind, rem)
    }

    fn memory_limit(&self) -> serde_json::Value {
        self.fleet.checkout()[CHECKOUT]["memory_limit_mib"].clone()
    }
}

/// Cuts `events` after the first `kind` of `rem`, sets the demo fleet up as
/// `left` says, restarts the runtime on the cut log and waits for the end.
async fn crash_and_resume(events: &[Event], rem: u64, kind: &str, left: Option<Left>) -> Resumed {
    let dir = tempfile::tempdir().unwrap();
    let (log, last) = cut(events, rem, kind, dir.path()).await;
    let cut_at = load_state(&log).unwrap().remediations[&rem].stage;
    let fleet = Fleet::new(last.at + chrono::Duration::seconds(1));
    if let Some(left) = left {
        fleet.break_checkout(left.need_mib);
        if left.applied {
            apply_recorded_action(&fleet, events, rem).await;
        }
        if let Some(need) = left.need_after {
            fleet.break_checkout(need);
        }
    }
    let (state, events) = resume(&fleet, log, rem).await;
    Resumed {
        fleet,
        cut_at,
        outcome: state.remediations[&rem].stage,
        events,
    }
}

const ROLLED_BACK: Stage = Stage::Finished(RemediationOutcome::RolledBack);
const SUCCEEDED: Stage = Stage::Finished(RemediationOutcome::Succeeded);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_just_after_the_snapshot_never_runs_the_action_again() {
    let (events, rem) = recorded_run("340").await;
    let snapshot = recorded_snapshot(&events, rem);

    // (a) The action had not run: the target is still OOM-killed, so
    // validation fails and the snapshot is restored; nothing is executed.
    let left = Left {
        need_mib: "340",
        applied: false,
        need_after: None,
    };
    let r = crash_and_resume(&events, rem, "snapshot_taken", Some(left)).await;
    assert_eq!(r.cut_at, Stage::Executing);
    assert_eq!(r.outcome, ROLLED_BACK);
    let (executed, validated, restored) = r.calls();
    assert_eq!((executed, restored), (0, 1));
    assert!(validated > 0);
    assert_eq!(r.count("action_executed", rem), 0);
    assert_eq!(r.count("validation_finished", rem), 1);
    assert_eq!(r.fleet.checkout(), snapshot);

    // (a') The action had run before the crash: validation passes and the
    // remediation succeeds, still without running it again.
    let left = Left {
        need_mib: "340",
        applied: true,
        need_after: None,
    };
    let r = crash_and_resume(&events, rem, "snapshot_taken", Some(left)).await;
    assert_eq!(r.outcome, SUCCEEDED);
    let (executed, validated, restored) = r.calls();
    assert_eq!((executed, restored), (0, 0));
    assert!(validated > 0);
    assert_ne!(
        r.memory_limit(),
        snapshot[CHECKOUT]["memory_limit_mib"],
        "left as fixed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_action_validates_and_restores_only_when_unhealthy() {
    let (events, rem) = recorded_run("340").await;
    let snapshot = recorded_snapshot(&events, rem);

    // (b) action_executed recorded, no validation and no outcome.
    let left = Left {
        need_mib: "340",
        applied: true,
        need_after: None,
    };
    let r = crash_and_resume(&events, rem, "action_executed", Some(left)).await;
    assert_eq!(r.cut_at, Stage::Validating);
    assert_eq!(r.outcome, SUCCEEDED);
    let (executed, validated, restored) = r.calls();
    assert_eq!((executed, restored), (0, 0));
    assert!(validated > 0);
    assert_eq!(r.count("action_executed", rem), 1, "only the recorded one");
    assert_eq!(r.count("validation_finished", rem), 1);

    // (b') Same cut, but the change did not cure the target (it needs even
    // more memory now): validation fails and the snapshot is restored.
    let left = Left {
        need_mib: "340",
        applied: true,
        need_after: Some("4000"),
    };
    let r = crash_and_resume(&events, rem, "action_executed", Some(left)).await;
    assert_eq!(r.outcome, ROLLED_BACK);
    let (executed, _, restored) = r.calls();
    assert_eq!((executed, restored), (0, 1));
    assert_eq!(
        r.memory_limit(),
        snapshot[CHECKOUT]["memory_limit_mib"],
        "the deployment's limit is back to what the snapshot recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_restore_restores_once_and_finishes() {
    // A run whose change does not cure the target (the workload outgrows
    // the raised limit before it validates): validation fails, restore.
    let (events, rem) = recorded_run_then("340", Some("4000")).await;
    assert!(
        events.iter().any(|e| is(e, "remediation_restored", rem)),
        "the recorded run restored"
    );
    let snapshot = recorded_snapshot(&events, rem);

    // (c) Validation failed, the restore was not recorded: it runs once now,
    // without validating or executing again.
    let left = Left {
        need_mib: "4000",
        applied: true,
        need_after: None,
    };
    let r = crash_and_resume(&events, rem, "validation_finished", Some(left)).await;
    assert_eq!(r.cut_at, Stage::Restoring);
    assert_eq!(r.outcome, ROLLED_BACK);
    assert_eq!(r.calls(), (0, 0, 1));
    assert_eq!(r.count("remediation_restored", rem), 1);
    assert_eq!(r.count("validation_finished", rem), 1);
    assert_eq!(r.memory_limit(), snapshot[CHECKOUT]["memory_limit_mib"]);

    // (c') The restore was recorded, the outcome not: it is not run again.
    let r = crash_and_resume(&events, rem, "remediation_restored", None).await;
    assert_eq!(r.cut_at, Stage::Restoring);
    assert_eq!(r.outcome, ROLLED_BACK);
    assert_eq!(r.calls(), (0, 0, 0));
    assert_eq!(r.count("remediation_restored", rem), 1);
    assert_eq!(r.count("remediation_finished", rem), 1);
}
