//! `shieldops demo` / `run`: the event log, the demo fleet, the runtime and
//! the console (or headless), wired together and shut down cleanly.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Cli, DemoArgs};
use crate::agents::security::{DEFAULT_ADVISORIES, parse_advisories};
use crate::clock::{ScaledClock, SharedClock};
use crate::config::Config;
use crate::connectors::sim::Sim;
use crate::connectors::sim::scenario::{DEFAULT_SCENARIO, Scenario};
use crate::runtime::command::{Command, CommandEnvelope, Identity};
use crate::runtime::snapshots::load_state;
use crate::runtime::{Intake, Runtime, RuntimeParts};
use crate::store::EventLog;

/// Runs the demo until the operator quits (or, headless, until quiet or a signal).
pub async fn run(
    cli: &Cli,
    config: &Config,
    data_dir: &Path,
    args: DemoArgs,
) -> anyhow::Result<i32> {
    run_with(
        cli,
        config,
        data_dir,
        args,
        Vec::new(),
        Arc::new(tokio::sync::Notify::new()),
    )
    .await
}

/// As [`run`], with live connectors (Kubernetes contexts) beside the demo
/// fleet; `fleet_changed` is what those connectors wake on every change.
pub async fn run_with(
    cli: &Cli,
    config: &Config,
    data_dir: &Path,
    args: DemoArgs,
    live: Vec<Arc<dyn crate::connectors::InfraConnector>>,
    fleet_changed: Arc<tokio::sync::Notify>,
) -> anyhow::Result<i32> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let log = EventLog::open(&super::log_dir(data_dir))?;
    let state = load_state(&log)?;
    tracing::info!(last_seq = state.last_seq, "event log opened");

    let speed = args.speed.unwrap_or(config.demo.speed);
    anyhow::ensure!(
        speed.is_finite() && speed > 0.0 && speed <= 1000.0,
        "--speed must be greater than 0 and at most 1000"
    );
    // A resumed demo continues its simulated time where the log left off.
    let origin = state.last_at.or(args.start).unwrap_or_else(Utc::now);
    let clock: SharedClock = Arc::new(ScaledClock::new(origin, speed));

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

    let cancel = CancellationToken::new();
    let mut options = config.runtime.options();
    options.read_only |= cli.read_only;
    options.fleet_changed = fleet_changed;
    let mut registry = sim.registry();
    for connector in live {
        registry.add(connector);
    }
    let read_only = options.read_only;
    let policy: Arc<dyn crate::runtime::policy::PolicyGate> = Arc::new(
        crate::policy::Gate::load(config.policy.dir.as_deref())
            .context("cannot load the policy bundle")?,
    );
    let runtime = Runtime::start(
        RuntimeParts {
            log: log.clone(),
            registry,
            clock: clock.clone(),
            policy,
            advisories: parse_advisories(DEFAULT_ADVISORIES)?,
            playbooks: Arc::new(
                crate::playbook::Library::load(config.policy.playbooks.as_deref())
                    .context("cannot load the playbooks")?,
            ),
            options,
        },
        state.clone(),
        cancel.clone(),
    );

    let control = {
        let log = log.clone();
        let dir = super::log_dir(data_dir);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::store::serve_control(log, &dir, cancel).await {
                tracing::warn!("log control socket unavailable: {e}");
            }
        })
    };

    if !state.scenario_finished {
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

    if let Some(name) = args.approve_as.clone() {
        spawn_auto_approver(&runtime, name, cancel.clone());
    }

    let outcome = if args.headless {
        headless(&runtime, args.until_quiet, &cancel).await
    } else {
        let (events_tx, events_rx) = mpsc::channel(1024);
        let mut sub = log.subscribe(state.last_seq + 1);
        let forward_cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = forward_cancel.cancelled() => break,
                    next = sub.next() => match next {
                        Some(Ok(event)) => if events_tx.send(event).await.is_err() { break },
                        _ => break,
                    }
                }
            }
        });
        let opts = crate::tui::TuiOptions {
            theme: cli.theme.clone().unwrap_or(config.console.theme.clone()),
            no_color: cli.no_color,
            read_only,
            max_fps: config.console.max_fps,
            identity: Identity::local(),
            bell: config.console.bell,
            desktop_notify: config.console.desktop_notifications,
            keys: config.keys.clone(),
            config_dir: Config::default_path().and_then(|p| p.parent().map(Path::to_path_buf)),
            clock: clock.clone(),
            title: if read_only {
                "demo (read-only)".into()
            } else {
                "demo".into()
            },
        };
        crate::tui::run(opts, state, events_rx, runtime.commands.clone())
            .await
            .map(|_| 0)
    };

    cancel.cancel();
    let shutdown = runtime.shutdown().await;
    let _ = control.await;
    log.close().await?;
    shutdown?;
    outcome
}

/// Headless: wait for quiet (if asked) or a signal; print a summary.
async fn headless(
    runtime: &Runtime,
    until_quiet: bool,
    cancel: &CancellationToken,
) -> anyhow::Result<i32> {
    let mut status = runtime.status.clone();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        {
            let s = status.borrow_and_update();
            if until_quiet && s.scenario_finished && s.in_flight == 0 {
                println!(
                    "scenario played out: {} events recorded, nothing in flight",
                    s.last_seq
                );
                return Ok(0);
            }
        }
        tokio::select! {
            changed = status.changed() => if changed.is_err() {
                anyhow::bail!("the runtime stopped unexpectedly");
            },
            _ = tokio::signal::ctrl_c() => return Ok(130),
            _ = sigterm.recv() => return Ok(143),
            _ = cancel.cancelled() => return Ok(0),
        }
    }
}

/// Demo only: approves every remediation that waits for approval, as `name`.
fn spawn_auto_approver(runtime: &Runtime, name: String, cancel: CancellationToken) {
    let mut status = runtime.status.clone();
    let commands = runtime.commands.clone();
    tokio::spawn(async move {
        let mut asked = std::collections::BTreeSet::new();
        loop {
            let waiting: Vec<u64> = status.borrow_and_update().awaiting_approval.clone();
            for id in waiting {
                if asked.insert(id) {
                    let envelope = CommandEnvelope {
                        command: Command::Approve {
                            remediation: id,
                            comment: "approved by the demo's --approve-as".into(),
                        },
                        by: Identity {
                            name: name.clone(),
                            source: None,
                        },
                        reply: None,
                    };
                    if commands.send(envelope).await.is_err() {
                        return;
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = status.changed() => if changed.is_err() { return },
            }
        }
    });
}
