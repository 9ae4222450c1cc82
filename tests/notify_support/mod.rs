//! Shared helpers for the notification tests: a temporary event log with a
//! resource and an incident in it, a notifier over it, and waiting (bounded)
//! for the notifier's own events.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shieldops::clock::ManualClock;
use shieldops::config::Config;
use shieldops::event::{
    ConnectorId, Environment, Event, EventKind, Health, NewEvent, Provider, Resource, ResourceId,
    Severity,
};
use shieldops::notify::NotifyPlan;
use shieldops::state::State;
use shieldops::store::EventLog;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const CHECKOUT: &str = "k8s/prod/payments/deployment/checkout";

pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-03T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A log in a temporary directory, driven by a manual clock.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub log: EventLog,
    pub clock: ManualClock,
    notifier: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Bench {
    pub fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("log")).unwrap();
        Bench {
            dir,
            log,
            clock: ManualClock::new(start_time()),
            notifier: None,
        }
    }

    pub async fn append(&self, kind: EventKind) -> Event {
        self.log
            .append(NewEvent::new(
                shieldops::clock::Clock::now(&self.clock),
                "test",
                kind,
            ))
            .await
            .unwrap()
    }

    /// The checkout deployment (production, team payments).
    pub async fn discover_checkout(&self) -> Event {
        self.append(EventKind::ResourceDiscovered {
            resource: Resource {
                id: ResourceId::new(CHECKOUT),
                name: "checkout".into(),
                kind: "deployment".into(),
                provider: Provider::Kubernetes,
                connector: ConnectorId::new("k8s:prod"),
                environment: Environment::Production,
                team: "payments".into(),
                labels: Default::default(),
                attributes: Default::default(),
                health: Health::healthy(),
                created_at: start_time(),
            },
        })
        .await
    }

    /// Opens an incident on checkout; returns its id.
    pub async fn open_incident(&self, title: &str, severity: Severity) -> u64 {
        self.append(EventKind::IncidentOpened {
            title: title.into(),
            alert: "KubePodCrashLooping".into(),
            labels: Default::default(),
            severity,
            resource: ResourceId::new(CHECKOUT),
            fingerprint: format!("fp-{title}"),
            alert_seq: 0,
        })
        .await
        .seq
    }

    /// Proposes a rollout restart of checkout, as the remediation agent; returns its id.
    pub async fn propose_checkout_restart(&self) -> u64 {
        self.append(EventKind::RemediationProposed {
            incident: None,
            investigation: None,
            action: shieldops::event::Action::new("rollout_restart", ResourceId::new(CHECKOUT)),
            environment: Environment::Production,
            team: "payments".into(),
            reason: "crash loop".into(),
            requested_by: "agent:remediation".into(),
            playbook: None,
        })
        .await
        .seq
    }

    /// Starts the notifier for `config_toml` (a whole config file), folding
    /// the log so far as the runtime would at start.
    pub fn start(&mut self, config_toml: &str) {
        let config = Config::parse(config_toml, "test.toml").unwrap();
        let plan = NotifyPlan::from_config(&config.notify)
            .unwrap()
            .expect("rules and channels configured")
            .with_seed(7);
        let mut state = State::new();
        for e in self.log.scan(1) {
            state.apply(&e.unwrap());
        }
        self.start_plan(plan, state);
    }

    /// Starts the notifier with an empty state (every event is new to it).
    pub fn start_fresh(&mut self, config_toml: &str) {
        let config = Config::parse(config_toml, "test.toml").unwrap();
        let plan = NotifyPlan::from_config(&config.notify)
            .unwrap()
            .expect("rules and channels configured")
            .with_seed(7);
        self.start_plan(plan, State::new());
    }

    fn start_plan(&mut self, plan: NotifyPlan, state: State) {
        let cancel = CancellationToken::new();
        let handle = shieldops::notify::spawn(
            self.log.clone(),
            Arc::new(self.clock.clone()),
            Arc::new(plan),
            state,
            cancel.clone(),
        );
        self.notifier = Some((cancel, handle));
    }

    pub async fn stop(&mut self) {
        if let Some((cancel, handle)) = self.notifier.take() {
            cancel.cancel();
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("notifier stops promptly")
                .unwrap();
        }
    }

    /// Every event the notifier recorded so far.
    pub fn notifications(&self) -> Vec<Event> {
        self.log
            .scan(1)
            .map(|e| e.unwrap())
            .filter(|e| e.actor == "notify")
            .collect()
    }

    /// Waits (real time, bounded) until `pred` holds for the notifier's events.
    pub async fn until(&self, what: &str, pred: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        for _ in 0..1_000 {
            let n = self.notifications();
            if pred(&n) {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}: {:#?}", self.notifications());
    }

    /// Like [`Bench::until`], but moves the manual clock past every back-off
    /// the notifier starts waiting on.
    pub async fn until_advancing(
        &self,
        what: &str,
        step: Duration,
        pred: impl Fn(&[Event]) -> bool,
    ) -> Vec<Event> {
        for _ in 0..1_000 {
            let n = self.notifications();
            if pred(&n) {
                return n;
            }
            self.clock.advance(step);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}: {:#?}", self.notifications());
    }
}

pub fn sent(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::NotificationSent { .. }))
        .collect()
}

pub fn failed(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::NotificationFailed { .. }))
        .collect()
}
