//! Start-up shared by every mode that runs the runtime (the console, headless
//! and `serve`): the event log, the demo fleet, the policy gate, the
//! playbooks, the runtime, the log's control socket and the scenario player,
//! and their orderly shutdown.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{DemoArgs, Options};
use crate::agents::security::{DEFAULT_ADVISORIES, parse_advisories};
use crate::clock::{ScaledClock, SharedClock};
use crate::config::Config;
use crate::connectors::linux::LinuxConnector;
use crate::connectors::sim::Sim;
use crate::connectors::sim::scenario::{DEFAULT_SCENARIO, Scenario};
use crate::runtime::snapshots::load_state;
use crate::runtime::{Intake, Runtime, RuntimeParts};
use crate::state::State;
use crate::store::EventLog;

/// Monthly budgets (USD) for the demo's teams when the config sets none, so
/// the Cost pane has budgets to burn: the data team's is exceeded once the
/// scenario's hand-resized instance runs.
const DEMO_BUDGETS: &[(&str, f64)] = &[
    ("checkout", 250.0),
    ("data", 2600.0),
    ("payments", 550.0),
    ("platform", 1800.0),
    ("search", 1100.0),
];

/// A running runtime with everything it was built from.
pub struct Started {
    pub log: EventLog,
    /// The state folded from the log at start-up (`state.last_seq` is where
    /// live events begin). Whoever shows it takes it (`std::mem::take`).
    pub state: State,
    pub clock: SharedClock,
    pub runtime: Runtime,
    pub cancel: CancellationToken,
    pub read_only: bool,
    /// Real connectors are configured: no demo fleet, no scenario, real time.
    pub live: bool,
    control: Option<JoinHandle<()>>,
    /// Sends signed checkpoints of the log's head off the machine, if configured.
    witness: Option<(CancellationToken, JoinHandle<()>)>,
}

/// Opens the log in `data_dir`, starts the runtime on the configured real
/// connectors (or the demo fleet when none are) plus the Linux hosts, and, on
/// the demo fleet, if `play_scenario` and the scenario has not finished yet,
/// plays it.
pub async fn start(
    opts: &Options,
    config: &Config,
    data_dir: &Path,
    args: &DemoArgs,
    play_scenario: bool,
) -> anyhow::Result<Started> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let log = EventLog::open_with(&super::log_dir(data_dir), &config.store.open_options())?;
    start_with_log(opts, config, data_dir, log, args, play_scenario, true).await
}

/// [`start`] on a log that is already open (cluster mode: the node followed
/// the stream into it and serves its control socket itself unless
/// `serve_control`). Resumes from it exactly as after a crash.
pub async fn start_with_log(
    opts: &Options,
    config: &Config,
    data_dir: &Path,
    log: EventLog,
    args: &DemoArgs,
    play_scenario: bool,
    serve_control: bool,
) -> anyhow::Result<Started> {
    let state = load_state(&log)?;
    tracing::info!(last_seq = state.last_seq, "event log opened");

    let speed = args.speed.unwrap_or(config.demo.speed);
    anyhow::ensure!(
        speed.is_finite() && speed > 0.0 && speed <= 1000.0,
        "--speed must be greater than 0 and at most 1000"
    );
    // A resumed demo continues its simulated time where the log left off.
    let origin = state.last_at.or(args.start).unwrap_or_else(Utc::now);
    // `run` and `serve` watch real connectors when any are configured, on the
    // real clock; `demo` always plays the demo fleet.
    let wants_live = !opts.demo_only;
    let clock: SharedClock = if wants_live && (config.aws.is_some() || config.credentials.is_some())
    {
        Arc::new(ScaledClock::real())
    } else {
        Arc::new(ScaledClock::new(origin, speed))
    };

    let scenario_path = args.scenario.clone().or(config.demo.scenario.clone());
    let (scenario, origin_name) = match &scenario_path {
        Some(p) => (Scenario::load(p)?, p.display().to_string()),
        None => (
            Scenario::parse(DEFAULT_SCENARIO, "embedded scenario")?,
            "embedded scenario".to_string(),
        ),
    };
    let sim = Sim::open(
        args.seed.unwrap_or(config.demo.seed),
        Some(data_dir.join("demo-world.json")),
        clock.clone(),
    )?;
    sim.with_world(|w| scenario.check(w, &origin_name))?;
    let live = if wants_live {
        super::connectors::configured(config, clock.clone(), &log, &state).await?
    } else {
        None
    };
    let is_live = live.is_some();

    let cancel = CancellationToken::new();
    let mut options = config.runtime.options();
    options.read_only |= opts.read_only;
    options.teams = config.teams.clone();
    options.notify = crate::notify::NotifyPlan::from_config(&config.notify)
        .context("cannot set up notifications")?
        .map(Arc::new);
    let mut cost = config.cost.clone();
    if cost.budgets.is_empty() {
        cost.budgets = DEMO_BUDGETS
            .iter()
            .map(|(team, usd)| (team.to_string(), *usd))
            .collect();
    }
    options.cost = cost
        .settings()
        .map_err(anyhow::Error::msg)
        .context("[cost] in the config")?;
    if is_live && let Some(aws) = &config.aws {
        // The bill comes from Cost Explorer under the first configured profile
        // (Cost Explorer is per account); without permission it is absent.
        let profile = aws.profiles.first().map(String::as_str);
        let explorer = crate::connectors::aws::CostExplorer::connect(profile, aws, None).await;
        options.cost.billing = Some(Arc::new(explorer));
    }
    options.vulndb = Some(crate::agents::security::VulnDbSettings {
        dir: crate::agents::security::vulndb::db_dir(data_dir),
        max_age_days: config.security.cve_max_age_days,
    });
    let read_only = options.read_only;
    let policy: Arc<dyn crate::runtime::policy::PolicyGate> = Arc::new(
        crate::policy::Gate::load(config.policy.dir.as_deref())
            .context("cannot load the policy bundle")?,
    );
    let mut registry = live.unwrap_or_else(|| sim.registry());
    let mut linux = config.linux.clone();
    linux.local &= !opts.no_local_host;
    // Real hosts live in real time, whatever speed the demo plays at.
    let real_clock: SharedClock = Arc::new(ScaledClock::real());
    for connector in LinuxConnector::from_config(&linux, real_clock)? {
        registry.add(Arc::new(connector));
    }
    if wants_live {
        let clusters = super::connectors::kubernetes(
            &config.kubernetes,
            &opts.contexts,
            options.fleet_changed.clone(),
            &clock,
            &log,
            &state,
        )
        .await?;
        for connector in clusters {
            registry.add(connector);
        }
    }
    if let Some(p) = &config.prometheus {
        registry.set_prometheus(Arc::new(
            crate::connectors::prometheus::Prometheus::new(p)
                .context("[prometheus] in the config")?,
        ));
    }
    let runtime = Runtime::start(
        RuntimeParts {
            log: log.clone(),
            registry,
            clock: clock.clone(),
            policy,
            // The embedded sample suits only the demo fleet's made-up hosts.
            advisories: if is_live {
                Vec::new()
            } else {
                parse_advisories(DEFAULT_ADVISORIES)?
            },
            playbooks: Arc::new(
                crate::playbook::Library::load(config.policy.playbooks.as_deref())
                    .context("cannot load the playbooks")?,
            ),
            options,
        },
        state.clone(),
        cancel.clone(),
    );

    // Decoding the snapshot and starting the agents left much of the heap
    // free but resident; hand it back now and keep doing so.
    crate::runtime::memory::give_back();
    crate::runtime::memory::spawn_periodic(cancel.clone());

    let control = serve_control.then(|| {
        let log = log.clone();
        let dir = super::log_dir(data_dir);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::store::serve_control(log, &dir, cancel).await {
                tracing::warn!("log control socket unavailable: {e}");
            }
        })
    });

    let witness = match &config.store.checkpoints {
        Some(c) => {
            let Some(crate::notify::ChannelConfig::Webhook(channel)) =
                config.notify.channels.get(&c.channel)
            else {
                anyhow::bail!(
                    "[store.checkpoints] channel {:?} is not a webhook channel",
                    c.channel
                );
            };
            let timeout = std::time::Duration::from_secs(config.notify.timeout_secs);
            let witness = crate::notify::witness::Witness::new(channel, c.every, timeout)
                .map_err(anyhow::Error::msg)
                .context("[store.checkpoints]")?;
            let stop = CancellationToken::new();
            let task = tokio::spawn(witness.run(log.clone(), stop.clone()));
            Some((stop, task))
        }
        None => None,
    };

    if play_scenario && !is_live && !state.scenario_finished {
        let intake = runtime.intake.clone();
        let (alerts_tx, mut alerts_rx) = mpsc::channel(64);
        let player = sim
            .clone()
            .play(scenario.clone(), alerts_tx, cancel.clone());
        let name = scenario.name.clone();
        let cancel_player = cancel.clone();
        tokio::spawn(async move {
            let forward = async {
                while let Some((alert, recorded)) = alerts_rx.recv().await {
                    let item = Intake::Alert {
                        alert,
                        recorded: Some(recorded),
                        posted_by: None,
                    };
                    if intake.send(item).await.is_err() {
                        break;
                    }
                }
            };
            tokio::join!(player, forward);
            if !cancel_player.is_cancelled() {
                let _ = intake.send(Intake::ScenarioFinished(name)).await;
            }
        });
    }

    Ok(Started {
        log,
        state,
        clock,
        runtime,
        cancel,
        read_only,
        live: is_live,
        control,
        witness,
    })
}

impl Started {
    /// Stops every task, lets the supervisor finish its step and save its
    /// snapshot, and closes the log (everything acknowledged is durable).
    pub async fn finish(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        let shutdown = self.runtime.shutdown().await;
        if let Some(control) = self.control {
            let _ = control.await;
        }
        // After the runtime's last append, so the final checkpoint is the head.
        if let Some((stop, task)) = self.witness {
            stop.cancel();
            let _ = task.await;
        }
        self.log.close().await?;
        shutdown
    }
}
