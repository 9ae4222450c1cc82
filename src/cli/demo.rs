//! `shieldops demo` / `run`: the runtime (see [`super::startup`]) with the
//! console or headless, shut down cleanly.

use std::io::Write;
use std::path::Path;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{DemoArgs, Options};
use crate::config::Config;
use crate::runtime::Runtime;
use crate::runtime::command::{Command, CommandEnvelope, Identity};

/// Runs the demo until the operator quits (or, headless, until quiet or a signal).
pub async fn run(
    opts: &Options,
    config: &Config,
    data_dir: &Path,
    args: DemoArgs,
) -> anyhow::Result<i32> {
    let mut started = super::startup::start(opts, config, data_dir, &args, true).await?;
    // The console folds from here on its own; the runtime holds its own copy.
    // Keeping a third for the whole session would cost as much as the fleet.
    let state = std::mem::take(&mut started.state);
    let runtime = &started.runtime;
    let cancel = &started.cancel;

    if let Some(name) = args.approve_as.clone() {
        spawn_auto_approver(runtime, name, cancel.clone());
    }

    let outcome = if args.headless {
        headless(runtime, args.until_quiet, cancel).await
    } else {
        let (events_tx, events_rx) = mpsc::channel(1024);
        let mut sub = started.log.subscribe(state.last_seq + 1);
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
        let title = match (started.live, started.read_only) {
            (true, true) => "live (read-only)",
            (true, false) => "live",
            (false, true) => "demo (read-only)",
            (false, false) => "demo",
        };
        let opts = super::console_options(
            opts,
            config,
            started.clock.clone(),
            title,
            started.read_only,
            Identity::local(),
        );
        crate::tui::run(opts, state, events_rx, runtime.commands.clone())
            .await
            .map(|_| 0)
    };

    started.finish().await?;
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
                // A closed stdout is an error here, which `main` turns into a quiet exit.
                writeln!(
                    std::io::stdout(),
                    "scenario played out: {} events recorded, nothing in flight",
                    s.last_seq
                )?;
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
                        // Declared, not authenticated: counted on the demo fleet only.
                        by: Identity::declared(name.clone()),
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
