//! A real runtime driven by hand for integration tests: a temporary event
//! log, a [`ManualClock`] advanced a second at a time, and operator commands
//! sent as named people. Each test builds the registry it needs.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shieldops::agents::security::{DEFAULT_ADVISORIES, parse_advisories};
use shieldops::clock::ManualClock;
use shieldops::connectors::Registry;
use shieldops::runtime::command::{Command, CommandEnvelope, CommandReply, Identity};
use shieldops::runtime::policy::PolicyGate;
use shieldops::runtime::snapshots::load_state;
use shieldops::runtime::{Runtime, RuntimeOptions, RuntimeParts};
use shieldops::state::State;
use shieldops::store::EventLog;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// A Wednesday morning: production is outside the default change freeze.
pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-03T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// The shipped Rego bundle, which decides as it does in the console.
pub fn shipped_policy() -> Arc<dyn PolicyGate> {
    Arc::new(shieldops::policy::Gate::load(None).unwrap())
}

/// The runtime under test, its log and its clock.
pub struct Driven {
    _dir: tempfile::TempDir,
    pub log: EventLog,
    pub clock: ManualClock,
    runtime: Option<Runtime>,
    /// How long one simulated second may take to settle: real I/O (SSH round
    /// trips) needs longer, or simulated time outruns a validation window.
    settle: Duration,
}

impl Driven {
    /// Starts the runtime on `registry` with playbooks from `playbooks`
    /// (`None`: the embedded library).
    pub fn start(
        clock: ManualClock,
        registry: Registry,
        policy: Arc<dyn PolicyGate>,
        playbooks: Option<&Path>,
        options: RuntimeOptions,
    ) -> Driven {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("log")).unwrap();
        let runtime = Runtime::start(
            RuntimeParts {
                log: log.clone(),
                registry,
                clock: Arc::new(clock.clone()),
                policy,
                advisories: parse_advisories(DEFAULT_ADVISORIES).unwrap(),
                playbooks: Arc::new(shieldops::playbook::Library::load(playbooks).unwrap()),
                options,
            },
            load_state(&log).unwrap(),
            CancellationToken::new(),
        );
        Driven {
            _dir: dir,
            log,
            clock,
            runtime: Some(runtime),
            settle: Duration::from_millis(20),
        }
    }

    /// Lets each simulated second settle for up to `settle` of real time.
    pub fn settling(mut self, settle: Duration) -> Driven {
        self.settle = settle;
        self
    }

    pub fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().unwrap()
    }

    pub fn state(&self) -> State {
        load_state(&self.log).unwrap()
    }

    /// Advances simulated time a second at a time until `pred` holds.
    pub async fn until(&self, what: &str, pred: impl Fn(&State) -> bool) -> State {
        let mut status = self.runtime().status.clone();
        for _ in 0..2_000 {
            let state = self.state();
            if pred(&state) {
                return state;
            }
            self.clock.advance(Duration::from_secs(1));
            // Let the tasks woken by the new time run: the runtime reports every step.
            let _ = tokio::time::timeout(self.settle, status.changed()).await;
        }
        panic!(
            "timed out waiting for {what}: {:#?}",
            self.state().remediations
        );
    }

    /// The state once agent `name`'s status line contains `text`.
    pub async fn agent_says(&self, name: &str, text: &str) -> State {
        self.until(&format!("agent {name} to say {text:?}"), |s: &State| {
            s.agents.get(name).is_some_and(|a| a.status.contains(text))
        })
        .await
    }

    /// Lets `secs` of simulated time pass, a second at a time; the state after.
    pub async fn run_for(&self, secs: i64) -> State {
        let until = self.clock_now() + chrono::Duration::seconds(secs);
        self.until("simulated time to pass", |_| self.clock_now() >= until)
            .await
    }

    fn clock_now(&self) -> DateTime<Utc> {
        shieldops::clock::Clock::now(&self.clock)
    }

    /// Sends `command` as `name` from 10.0.0.7 and waits for the runtime's answer.
    pub async fn command(&self, name: &str, command: Command) -> CommandReply {
        let (tx, rx) = oneshot::channel();
        self.runtime()
            .commands
            .send(CommandEnvelope {
                command,
                by: Identity::token(name, Some("10.0.0.7".into())),
                reply: Some(tx),
            })
            .await
            .unwrap();
        rx.await.unwrap()
    }

    /// Shuts the runtime down and closes the log.
    pub async fn stop(mut self) {
        self.runtime.take().unwrap().shutdown().await.unwrap();
        self.log.close().await.unwrap();
    }
}

/// The alert Alertmanager sends for a crash-looping pod (the demo's OOM kill).
pub fn crash_loop_alert(pod: shieldops::event::ResourceId) -> shieldops::event::Alert {
    shieldops::event::Alert {
        name: "KubePodCrashLooping".into(),
        severity: shieldops::event::Severity::Critical,
        fingerprint: format!("KubePodCrashLooping@{pod}"),
        resource: pod,
        summary: "OOMKilled".into(),
        labels: Default::default(),
        status: shieldops::event::AlertStatus::Firing,
        source: "test".into(),
    }
}

/// Hands `alert` to the runtime as if it had just arrived (posted by nobody in particular).
pub async fn send_alert(runtime: &Runtime, alert: shieldops::event::Alert) {
    runtime
        .intake
        .send(shieldops::runtime::Intake::Alert {
            alert,
            recorded: None,
            posted_by: None,
        })
        .await
        .unwrap();
}
