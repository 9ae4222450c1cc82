//! The runtime: the supervisor and the agents as tokio tasks, the operator
//! command channel, scheduled jobs on an injected clock, and shutdown.

pub mod approvals;
pub mod command;
pub mod loop_stats;
pub mod memory;
pub mod policy;
mod preview;
pub mod provenance;
pub mod snapshots;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::agents::AgentContext;
use crate::agents::cost::CostAgent;
use crate::agents::discovery::Discovery;
use crate::agents::learning::LearningAgent;
use crate::agents::security::{Advisory, SecurityAgent};
use crate::clock::SharedClock;
use crate::connectors::Registry;
use crate::event::HealthStatus;
use crate::event::{Alert, EventKind};
use crate::playbook::{Library, ValidationSpec};
use crate::state::State;
use crate::store::EventLog;
use command::CommandEnvelope;
use policy::PolicyGate;

/// Tunables of the runtime (from the config file; defaults are sensible).
#[derive(Clone)]
pub struct RuntimeOptions {
    /// Refuse approvals and never execute anything.
    pub read_only: bool,
    pub approval_ttl: Duration,
    /// Contacts escalated to, in order, when an approval waits past its TTL;
    /// the notifier delivers each through the channels `[notify.escalation]` maps it to.
    pub escalation_chain: Vec<String>,
    /// Top-hypothesis confidence at which a remediation is proposed.
    pub auto_propose_confidence: f64,
    pub correlation_window: Duration,
    pub discovery_interval: Duration,
    pub security_interval: Duration,
    pub cost_interval: Duration,
    pub learning_interval: Duration,
    pub heartbeat_interval: Duration,
    /// Save a state snapshot every this many events.
    pub snapshot_every: u64,
    /// How validation polls when no playbook says otherwise.
    pub validation: ValidationSpec,
    /// Poked by the `rescan` command.
    pub rescan: Arc<Notify>,
    /// Notification channels and rules; `None` runs no notifier.
    pub notify: Option<Arc<crate::notify::NotifyPlan>>,
    /// Prices, budgets and the bill the cost agent uses.
    pub cost: crate::agents::cost::CostSettings,
    /// Poked by connectors that watch their infrastructure (Kubernetes), so a
    /// change reaches the log without waiting for the next discovery cycle.
    pub fleet_changed: Arc<Notify>,
    /// The offline vulnerability database the security agent matches
    /// against; `None` uses only the embedded advisories.
    pub vulndb: Option<crate::agents::security::VulnDbSettings>,
    /// `[teams]`: principal → the team it acts for (policy team scoping).
    pub teams: std::collections::BTreeMap<String, String>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            approval_ttl: Duration::from_secs(15 * 60),
            // Escalation reaches people only through configured channels
            // (`[notify.escalation]`), so by default there is none.
            escalation_chain: Vec::new(),
            auto_propose_confidence: 0.6,
            correlation_window: Duration::from_secs(10 * 60),
            discovery_interval: Duration::from_secs(5),
            security_interval: Duration::from_secs(60),
            cost_interval: Duration::from_secs(10),
            learning_interval: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(15),
            snapshot_every: 5_000,
            validation: default_validation(),
            rescan: Arc::new(Notify::new()),
            notify: None,
            cost: Default::default(),
            fleet_changed: Arc::new(Notify::new()),
            vulndb: None,
            teams: Default::default(),
        }
    }
}

/// Healthy within 90 s, polled every 3 s, one passing poll.
fn default_validation() -> ValidationSpec {
    ValidationSpec {
        expect: HealthStatus::Healthy,
        not_reasons: vec![],
        timeout: Duration::from_secs(90),
        interval: Duration::from_secs(3),
        stable_polls: 1,
        promql: None,
    }
}

/// What the runtime is doing, published after every step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeStatus {
    pub last_seq: u64,
    /// Open incidents + running investigations + unfinished remediations.
    pub in_flight: usize,
    pub awaiting_approval: Vec<u64>,
    pub scenario_finished: bool,
    pub read_only: bool,
}

/// Things that arrive from outside: alerts, the scenario's end.
#[derive(Debug)]
pub enum Intake {
    /// An alert; `recorded` is told once its `alert_received` event is durable,
    /// so a sender can keep its own place (at-least-once delivery).
    Alert {
        alert: Alert,
        recorded: Option<oneshot::Sender<()>>,
        /// The authenticated principal that posted it (a token's principal);
        /// `None` for alerts the console produced itself (the demo scenario).
        posted_by: Option<String>,
    },
    ScenarioFinished(String),
}

/// A running runtime.
pub struct Runtime {
    /// Operator commands (approve, deny, …).
    pub commands: mpsc::Sender<CommandEnvelope>,
    /// Alerts and other external input.
    pub intake: mpsc::Sender<Intake>,
    /// Status after every step.
    pub status: watch::Receiver<RuntimeStatus>,
    /// How long each agent's cycles take.
    pub loop_stats: Arc<loop_stats::LoopStats>,
    cancel: CancellationToken,
    supervisor: JoinHandle<anyhow::Result<()>>,
    agents: Vec<JoinHandle<()>>,
}

/// Everything the runtime is built from.
pub struct RuntimeParts {
    pub log: EventLog,
    pub registry: Registry,
    pub clock: SharedClock,
    pub policy: Arc<dyn PolicyGate>,
    pub advisories: Vec<Advisory>,
    pub playbooks: Arc<Library>,
    pub options: RuntimeOptions,
}

impl Runtime {
    /// Starts the supervisor and the scheduled agents from `state` (already
    /// folded from the log up to `state.last_seq`).
    pub fn start(parts: RuntimeParts, state: State, cancel: CancellationToken) -> Runtime {
        let RuntimeParts {
            log,
            registry,
            clock,
            policy,
            advisories,
            playbooks,
            options,
        } = parts;
        let ctx = AgentContext {
            log: log.clone(),
            registry,
            clock,
            playbooks,
        };
        let (commands_tx, commands_rx) = mpsc::channel(64);
        let (intake_tx, intake_rx) = mpsc::channel(256);
        let (status_tx, status_rx) = watch::channel(RuntimeStatus::default());
        let learning_poke = Arc::new(Notify::new());
        let loop_stats = Arc::new(loop_stats::LoopStats::default());

        let mut agents = Vec::new();
        agents.push(periodic(
            ctx.clone(),
            cancel.clone(),
            loop_stats.clone(),
            "discovery",
            options.discovery_interval,
            options.heartbeat_interval,
            Some(options.fleet_changed.clone()),
            {
                let agent = owned(Discovery::from_state(&state));
                move |ctx| {
                    let agent = agent.clone();
                    Box::pin(async move {
                        let n = agent.lock().await.poll(&ctx).await;
                        format!("ok: {n} change(s) last poll")
                    })
                }
            },
        ));
        agents.push(periodic(
            ctx.clone(),
            cancel.clone(),
            loop_stats.clone(),
            "security",
            options.security_interval,
            options.heartbeat_interval,
            Some(options.rescan.clone()),
            {
                let agent = owned(
                    SecurityAgent::with_vulndb(advisories, options.vulndb.clone(), &state)
                        .with_compliance(policy.clone(), &state),
                );
                move |ctx| {
                    let agent = agent.clone();
                    Box::pin(async move {
                        let n = agent.lock().await.scan(&ctx).await;
                        format!("ok: {n} finding(s) changed last scan")
                    })
                }
            },
        ));
        agents.push(periodic(
            ctx.clone(),
            cancel.clone(),
            loop_stats.clone(),
            "cost",
            options.cost_interval,
            options.heartbeat_interval,
            None,
            {
                let agent = owned(CostAgent::new(&state, options.cost.clone()));
                move |ctx| {
                    let agent = agent.clone();
                    Box::pin(async move {
                        let n = agent.lock().await.sample(&ctx).await;
                        format!("ok: {n} cost event(s) last sample")
                    })
                }
            },
        ));
        agents.push(periodic(
            ctx.clone(),
            cancel.clone(),
            loop_stats.clone(),
            "learning",
            options.learning_interval,
            options.heartbeat_interval,
            Some(learning_poke.clone()),
            {
                let agent = owned(LearningAgent::new(&state));
                move |ctx| {
                    let agent = agent.clone();
                    Box::pin(async move {
                        let n = agent.lock().await.cycle(&ctx).await;
                        format!("ok: {n} insight(s) last cycle")
                    })
                }
            },
        ));

        // The notifier follows the log on its own task, so a slow receiver
        // never holds up the supervisor.
        if let Some(plan) = options.notify.clone() {
            agents.push(crate::notify::spawn(
                log.clone(),
                ctx.clock.clone(),
                plan,
                state.clone(),
                cancel.clone(),
            ));
        }

        let sub = log.subscribe(state.last_seq + 1);
        let supervisor = supervisor::Supervisor::new(
            ctx,
            state,
            sub,
            policy,
            options,
            cancel.clone(),
            status_tx,
            learning_poke,
        );
        let supervisor = tokio::spawn(supervisor.run(commands_rx, intake_rx));
        Runtime {
            commands: commands_tx,
            intake: intake_tx,
            status: status_rx,
            loop_stats,
            cancel,
            supervisor,
            agents,
        }
    }

    /// Stops every task and waits for the supervisor to save its snapshot.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        for agent in self.agents {
            let _ = agent.await;
        }
        match self.supervisor.await {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("supervisor task failed: {e}")),
        }
    }
}

type Cycle = std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>;

/// An agent owned by its one periodic task (the mutex is never contended; it
/// only lets each cycle's future borrow the agent's memory).
fn owned<A>(agent: A) -> Arc<tokio::sync::Mutex<A>> {
    Arc::new(tokio::sync::Mutex::new(agent))
}

/// Runs an agent's cycle on the injected clock, records its heartbeat, and
/// also wakes when `poke` is notified (e.g. the rescan command).
#[allow(clippy::too_many_arguments)]
fn periodic<F>(
    ctx: AgentContext,
    cancel: CancellationToken,
    stats: Arc<loop_stats::LoopStats>,
    name: &'static str,
    interval: Duration,
    heartbeat: Duration,
    poke: Option<Arc<Notify>>,
    cycle: F,
) -> JoinHandle<()>
where
    F: FnMut(AgentContext) -> Cycle + Send + 'static,
{
    let mut cycle = cycle;
    tokio::spawn(async move {
        let mut last_beat: Option<chrono::DateTime<chrono::Utc>> = None;
        let beat = chrono::Duration::from_std(heartbeat).unwrap_or_default();
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let started = std::time::Instant::now();
            let status = cycle(ctx.clone()).await;
            stats.observe(name, started.elapsed());
            let now = ctx.clock.now();
            if last_beat.is_none_or(|t| now - t >= beat) {
                last_beat = Some(now);
                let _ = ctx
                    .record(
                        &format!("agent:{name}"),
                        EventKind::AgentHeartbeat {
                            agent: name.to_string(),
                            status,
                        },
                    )
                    .await;
            }
            let poked = async {
                match &poke {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ctx.clock.sleep(interval) => {}
                _ = poked => {}
            }
        }
    })
}
