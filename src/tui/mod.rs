//! The full-screen console: app loop, render scheduler, panes, themes, keys.
//!
//! The app owns its [`State`] and folds each [`Event`] it receives over a
//! bounded channel; operator commands go back over another. No lock is shared
//! with the runtime. Frames are drawn only when something changed, at most
//! `max_fps` a second, each inside a synchronized update; the header clock is
//! the only thing that redraws while idle (once a second).

pub mod agents;
pub mod app;
pub mod cluster;
pub mod contexts;
pub mod keymap;
pub mod panes;
pub mod scheduler;
pub mod terminal;
pub mod testing;
pub mod theme;
pub mod widgets;

use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{Timelike, Utc};
use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
use ratatui::Terminal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

pub use app::{App, Effect};
pub use keymap::KeymapConfig;

use crate::clock::{ScaledClock, SharedClock};
use crate::event::Event;
use crate::runtime::command::{CommandEnvelope, Identity};
use crate::state::State;
use scheduler::Scheduler;
use terminal::{ConsoleBackend, TerminalGuard, draw_synced};

/// How the console is started.
#[derive(Clone)]
pub struct TuiOptions {
    /// Theme name (`default`, `light`, `solarized-16`, `mono`, or a user theme).
    pub theme: String,
    /// No colour at all (`--no-color` or a non-empty `NO_COLOR`): mono theme, no colour escapes.
    pub no_color: bool,
    /// Approve and deny are disabled and no mutating command is sent.
    pub read_only: bool,
    /// Most frames drawn per second.
    pub max_fps: u32,
    /// Who approves and denies from this console.
    pub identity: Identity,
    /// Ring the terminal bell when a new approval is requested.
    pub bell: bool,
    /// Send a desktop notification when a new approval is requested.
    pub desktop_notify: bool,
    /// Key overrides from the config file's `[keys]` section.
    pub keys: KeymapConfig,
    /// The user's config directory; themes are looked up in its `themes/`.
    pub config_dir: Option<PathBuf>,
    /// Shown in the header (e.g. `demo`).
    pub title: String,
    /// The runtime's clock, so ages and the header clock agree with event
    /// times (a sped-up demo runs ahead of the wall clock).
    pub clock: SharedClock,
    /// For a remote console: whether it is connected to its server. `None`
    /// for a local console, whose runtime runs in the same process.
    pub link: Option<watch::Receiver<Link>>,
    /// For a remote console: the cluster as its server's node sees it
    /// (`None` inside: the server is not clustered). `None` for a local console.
    pub cluster: Option<watch::Receiver<Option<crate::cluster::ClusterView>>>,
}

/// A remote console's connection to its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connected,
    /// Reconnecting with back-off; what is shown is as of the last event received.
    Disconnected {
        since: chrono::DateTime<Utc>,
        reason: String,
    },
    /// The server no longer holds the history this console verified; the
    /// link has stopped and what is shown cannot be trusted.
    HistoryChanged {
        detail: String,
    },
}

impl std::fmt::Debug for TuiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TuiOptions")
            .field("theme", &self.theme)
            .field("no_color", &self.no_color)
            .field("read_only", &self.read_only)
            .field("max_fps", &self.max_fps)
            .field("identity", &self.identity)
            .field("title", &self.title)
            .finish_non_exhaustive()
    }
}

impl Default for TuiOptions {
    fn default() -> Self {
        TuiOptions {
            theme: "default".into(),
            no_color: no_color_from_env(),
            read_only: false,
            max_fps: 10,
            identity: Identity::local(),
            bell: true,
            desktop_notify: true,
            keys: KeymapConfig::default(),
            config_dir: None,
            title: String::new(),
            clock: Arc::new(ScaledClock::real()),
            link: None,
            cluster: None,
        }
    }
}

/// Whether `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
pub fn no_color_from_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Events drained per wake-up before drawing, so a backlog cannot starve keys.
const DRAIN_PER_WAKE: usize = 512;

/// Runs the console until the operator quits, the terminal hangs up (SIGHUP)
/// or the process is asked to stop (SIGTERM). The terminal is restored on
/// every exit path, including a panic. The caller shuts the runtime down.
pub async fn run(
    mut opts: TuiOptions,
    initial: State,
    mut events: mpsc::Receiver<Event>,
    commands: mpsc::Sender<CommandEnvelope>,
) -> anyhow::Result<()> {
    opts.no_color |= no_color_from_env();
    let clock = opts.clock.clone();
    let mut app = App::new(&opts, initial, clock.now());
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let _guard = TerminalGuard::enter()?;
    let backend = ConsoleBackend::new(
        BufWriter::with_capacity(1 << 16, io::stdout()),
        opts.no_color,
    );
    // No `terminal.clear()`: it asks the terminal for the cursor position, a round
    // trip that fails on slow links; the guard already cleared the alternate screen.
    let mut terminal = Terminal::new(backend)?;
    let mut input = EventStream::new();
    let (reply_tx, mut reply_rx) =
        mpsc::channel::<(String, crate::runtime::command::CommandReply)>(16);
    let notifier = Notifier::default();
    let mut scheduler = Scheduler::new(opts.max_fps);
    let mut events_open = true;
    let mut link = opts.link.clone();
    let mut cluster = opts.cluster.clone();
    if let Some(l) = &link {
        app.set_link(l.borrow().clone());
    }

    // The first frame, before anything has arrived.
    app.set_now(clock.now());
    draw_synced(&mut terminal, |f| app.draw(f))?;
    scheduler.drawn(Instant::now().into_std());

    loop {
        let now = Instant::now();
        let clock_tick = now + until_next_second();
        let wake = Instant::from_std(scheduler.next_wake(now.into_std(), clock_tick.into_std()));
        let mut effects = Vec::new();
        tokio::select! {
            biased;
            _ = sigterm.recv() => break,
            _ = sighup.recv() => break,
            key = input.next() => match key {
                Some(Ok(TermEvent::Key(k))) => {
                    app.set_now(clock.now());
                    effects = app.handle_key(k);
                    scheduler.mark();
                }
                Some(Ok(TermEvent::Resize(..))) => scheduler.mark(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            event = events.recv(), if events_open => match event {
                Some(event) => {
                    effects.extend(app.apply_event(&event));
                    for _ in 0..DRAIN_PER_WAKE {
                        match events.try_recv() {
                            Ok(event) => effects.extend(app.apply_event(&event)),
                            Err(_) => break,
                        }
                    }
                    scheduler.mark();
                }
                None => {
                    events_open = false;
                    app.runtime_ended();
                    scheduler.mark();
                }
            },
            changed = crate::cluster::next_view(&mut cluster) => match changed {
                Ok(view) => {
                    app.set_cluster(view);
                    scheduler.mark();
                }
                Err(_) => cluster = None,
            },
            changed = async {
                match link.as_mut() {
                    Some(l) => l.changed().await.map(|_| l.borrow_and_update().clone()),
                    None => std::future::pending().await,
                }
            } => match changed {
                Ok(state) => {
                    app.set_link(state);
                    scheduler.mark();
                }
                Err(_) => link = None,
            },
            reply = reply_rx.recv() => {
                if let Some((what, reply)) = reply {
                    app.set_now(clock.now());
                    app.on_reply(&what, reply);
                    scheduler.mark();
                }
            },
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= clock_tick {
                    scheduler.mark();
                }
            },
        }
        for effect in effects {
            match effect {
                Effect::Send(command) => {
                    if opts.read_only {
                        // Belt and braces: the app never emits a command in read-only mode.
                        continue;
                    }
                    let what = command.describe();
                    let (tx, rx) = oneshot::channel();
                    let envelope = CommandEnvelope {
                        command,
                        by: opts.identity.clone(),
                        reply: Some(tx),
                    };
                    if commands.send(envelope).await.is_err() {
                        app.on_reply(&what, Err("the runtime is not running".into()));
                        continue;
                    }
                    let reply_tx = reply_tx.clone();
                    tokio::spawn(async move {
                        let reply = rx
                            .await
                            .unwrap_or_else(|_| Err("the runtime dropped the command".into()));
                        let _ = reply_tx.send((what, reply)).await;
                    });
                }
                Effect::Bell => {
                    use std::io::Write;
                    let backend = terminal.backend_mut();
                    let _ = backend.write_all(b"\x07").and_then(|_| backend.flush());
                }
                Effect::Notify { summary, body } => notifier.send(summary, body),
            }
        }
        if app.should_quit() {
            break;
        }
        let now = Instant::now().into_std();
        if scheduler.due(now) {
            app.set_now(clock.now());
            draw_synced(&mut terminal, |f| app.draw(f))?;
            scheduler.drawn(now);
        }
    }
    drop(terminal);
    Ok(())
}

/// Time until the wall clock reaches the next whole second.
fn until_next_second() -> Duration {
    let nanos = Utc::now().nanosecond() % 1_000_000_000;
    Duration::from_nanos(1_000_000_000 - nanos as u64)
}

/// Desktop notifications; a failing notification service is logged once.
#[derive(Default, Clone)]
struct Notifier {
    failed: Arc<AtomicBool>,
}

impl Notifier {
    fn send(&self, summary: String, body: String) {
        let failed = self.failed.clone();
        // D-Bus calls block; keep them off the UI task.
        tokio::task::spawn_blocking(move || {
            let result = crate::notify::desktop::show(&summary, &body, true);
            if let Err(e) = result
                && !failed.swap(true, Ordering::SeqCst)
            {
                tracing::warn!("desktop notification failed (further failures not logged): {e}");
            }
        });
    }
}
