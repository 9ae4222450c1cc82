//! The console's model: it owns the projected [`State`] and all UI state,
//! turns keys and events into [`Effect`]s, and draws a frame. It does no I/O
//! of its own (theme files aside), so it is tested by pressing keys and
//! rendering into a `TestBackend`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui_textarea::TextArea;

use super::TuiOptions;
use super::keymap::{Action, Keymap};
use super::panes::cost::CostPane;
use super::panes::events::EventsPane;
use super::panes::fleet::{FleetChanges, FleetPane, fleet_change};
use super::panes::investigations::InvestigationsPane;
use super::panes::learning::LearningPane;
use super::panes::remediations::{RemediationsPane, preview_lines, remediation_lines};
use super::panes::security::SecurityPane;
use super::panes::{Ctx, Generations, Handled, Pane, PaneId};
use super::theme::Theme;
use super::widgets::{centered, clock, fit};
use crate::event::{Event, EventKind};
use crate::runtime::command::{Command, CommandReply, Identity};
use crate::state::{Stage, State};

/// The pane context over an app's fields. A macro rather than a method so
/// the `panes` field can still be borrowed mutably beside the context.
macro_rules! pane_ctx {
    ($app:expr, $theme:expr) => {
        Ctx {
            state: &$app.state,
            theme: $theme,
            keymap: &$app.keymap,
            now: $app.now,
            gens: $app.gens,
            fleet_changes: &$app.fleet_changes,
            read_only: $app.read_only,
        }
    };
}

/// Where a navigation key scrolls an overlay (help, `:agents`) from line
/// `at`; `None` for any other key, which closes the overlay. Drawing keeps
/// the line in range.
fn overlay_scroll(action: Action, at: usize) -> Option<usize> {
    match action {
        Action::Up => Some(at.saturating_sub(1)),
        Action::Down => Some(at.saturating_add(1)),
        Action::PageUp => Some(at.saturating_sub(10)),
        Action::PageDown => Some(at.saturating_add(10)),
        Action::Top => Some(0),
        Action::Bottom => Some(usize::MAX),
        _ => None,
    }
}

/// Smallest screen the full layout is drawn on; below it a one-line notice is shown.
pub const MIN_WIDTH: u16 = 40;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 10;
/// How long a toast stays up, in seconds.
const TOAST_SECS: i64 = 5;

/// Something the app asks the loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a command to the runtime (approve, deny, …).
    Send(Command),
    /// Ring the terminal bell.
    Bell,
    /// Show a desktop notification.
    Notify { summary: String, body: String },
}

/// How important a toast is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
struct Toast {
    text: String,
    level: Level,
    at: DateTime<Utc>,
}

/// Which two-step dialog is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogKind {
    Approve,
    Deny,
}

struct Dialog {
    kind: DialogKind,
    remediation: u64,
    text: TextArea<'static>,
    error: Option<String>,
}

enum Mode {
    Normal,
    Filter {
        before: String,
        text: String,
    },
    Command {
        text: String,
        candidates: Vec<String>,
    },
    Dialog(Box<Dialog>),
    ConfirmQuit,
}

/// A `:` command: name, aliases, description (the help lists these).
pub const COMMANDS: &[(&str, &[&str], &str)] = &[
    ("fleet", &["f"], "Fleet pane"),
    ("inv", &["investigations"], "Investigations pane"),
    ("rem", &["remediations"], "Remediations pane"),
    ("sec", &["security"], "Security pane"),
    ("cost", &[], "Cost pane"),
    (
        "learn",
        &["learning"],
        "Learning pane; runs a learning cycle now",
    ),
    ("events", &["ev", "log"], "Events pane"),
    (
        "agents",
        &["ag"],
        "each agent's last run, last error and next run",
    ),
    (
        "cluster",
        &["cl"],
        "nodes, roles, lag and the leadership lease",
    ),
    ("theme", &[], "switch theme: :theme NAME"),
    (
        "ctx",
        &["context"],
        "Kubernetes contexts; NAME narrows Fleet, all shows all",
    ),
    ("override", &[], "freeze override: ID REASON"),
    ("help", &[], "toggle help"),
    ("q", &["quit"], "quit"),
];

struct Panes {
    fleet: FleetPane,
    investigations: InvestigationsPane,
    remediations: RemediationsPane,
    security: SecurityPane,
    cost: CostPane,
    learning: LearningPane,
    events: EventsPane,
}

impl Panes {
    fn get(&mut self, id: PaneId) -> &mut dyn Pane {
        match id {
            PaneId::Fleet => &mut self.fleet,
            PaneId::Investigations => &mut self.investigations,
            PaneId::Remediations => &mut self.remediations,
            PaneId::Security => &mut self.security,
            PaneId::Cost => &mut self.cost,
            PaneId::Learning => &mut self.learning,
            PaneId::Events => &mut self.events,
        }
    }
    fn get_ref(&self, id: PaneId) -> &dyn Pane {
        match id {
            PaneId::Fleet => &self.fleet,
            PaneId::Investigations => &self.investigations,
            PaneId::Remediations => &self.remediations,
            PaneId::Security => &self.security,
            PaneId::Cost => &self.cost,
            PaneId::Learning => &self.learning,
            PaneId::Events => &self.events,
        }
    }
}

/// The console application.
pub struct App {
    /// The projected state, folded from every event received.
    pub state: State,
    panes: Panes,
    focus: PaneId,
    mode: Mode,
    help: bool,
    /// First line of the help overlay shown (it scrolls on a small screen).
    help_scroll: usize,
    /// The `:ctx` list is showing (any key closes it).
    contexts: bool,
    /// The `:agents` overlay is showing (navigation scrolls it, any other key closes it).
    agents: bool,
    /// First line of the `:agents` overlay shown.
    agents_scroll: usize,
    /// The `:cluster` overlay is showing (navigation scrolls it, any other key closes it).
    cluster_overlay: bool,
    /// First line of the `:cluster` overlay shown.
    cluster_scroll: usize,
    /// For an attached console: its server's node is told in the header
    /// (`cluster` `None`: not clustered). A local console shows no role.
    attached: bool,
    cluster: Option<crate::cluster::ClusterView>,
    toast: Option<Toast>,
    theme: Theme,
    no_color: bool,
    read_only: bool,
    identity: Identity,
    title: String,
    keymap: Keymap,
    config_dir: Option<PathBuf>,
    bell: bool,
    desktop_notify: bool,
    gens: Generations,
    fleet_changes: FleetChanges,
    /// `:ctx`'s per-context counts, kept while the fleet is unchanged.
    context_counts: super::contexts::CountsCache,
    now: DateTime<Utc>,
    quit: bool,
    runtime_gone: bool,
    /// A remote console's connection (always connected for a local one).
    link: super::Link,
    /// Remediations whose approval request was already announced.
    announced: BTreeSet<u64>,
    /// Warnings from start-up (bad theme, bad keys) still to show.
    pending_warnings: Vec<String>,
}

impl App {
    /// Builds the app from options and the state replayed so far; `now` is the clock to show.
    pub fn new(opts: &TuiOptions, state: State, now: DateTime<Utc>) -> App {
        let (keymap, key_warnings) = Keymap::from_config(&opts.keys);
        let no_color = opts.no_color;
        let mut warnings = Vec::new();
        let theme = if no_color {
            Theme::mono()
        } else {
            let (theme, warning) = Theme::load_or_default(&opts.theme, opts.config_dir.as_deref());
            warnings.extend(warning);
            theme
        };
        warnings.extend(key_warnings);
        let announced = state.approval_queue().iter().map(|r| r.id).collect();
        let mut app = App {
            state,
            panes: Panes {
                fleet: FleetPane::default(),
                investigations: InvestigationsPane::default(),
                remediations: RemediationsPane::default(),
                security: SecurityPane::default(),
                cost: CostPane::default(),
                learning: LearningPane::default(),
                events: EventsPane::default(),
            },
            focus: PaneId::Fleet,
            mode: Mode::Normal,
            help: false,
            help_scroll: 0,
            contexts: false,
            agents: false,
            agents_scroll: 0,
            cluster_overlay: false,
            cluster_scroll: 0,
            attached: opts.cluster.is_some(),
            cluster: opts.cluster.as_ref().and_then(|c| c.borrow().clone()),
            toast: None,
            theme,
            no_color,
            read_only: opts.read_only,
            identity: opts.identity.clone(),
            title: opts.title.clone(),
            keymap,
            config_dir: opts.config_dir.clone(),
            bell: opts.bell,
            desktop_notify: opts.desktop_notify,
            gens: Generations {
                fleet: 1,
                resources: 1,
                cost: 1,
                any: 1,
            },
            fleet_changes: FleetChanges::default(),
            context_counts: Default::default(),
            now,
            quit: false,
            runtime_gone: false,
            link: super::Link::Connected,
            announced,
            pending_warnings: Vec::new(),
        };
        for w in &warnings {
            tracing::warn!("{w}");
        }
        if let Some(first) = warnings.first() {
            let more = if warnings.len() > 1 {
                format!(" (+{} more in the log)", warnings.len() - 1)
            } else {
                String::new()
            };
            app.toast(Level::Warn, format!("{first}{more}"));
        }
        app.pending_warnings = warnings;
        app
    }

    /// Whether the operator asked to quit (and confirmed if needed).
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// The pane with focus.
    pub fn focus(&self) -> PaneId {
        self.focus
    }

    /// The theme in use.
    pub fn theme(&self) -> &Theme {
        &self.theme
    }

    /// Sets the clock used for drawing (ages, the header clock, toast expiry).
    pub fn set_now(&mut self, now: DateTime<Utc>) {
        self.now = now;
    }

    /// The text of the current toast, if one is showing.
    pub fn toast_text(&self) -> Option<&str> {
        self.toast
            .as_ref()
            .filter(|t| (self.now - t.at).num_seconds() < TOAST_SECS)
            .map(|t| t.text.as_str())
    }

    /// Whether a dialog of this kind is open.
    pub fn dialog_open(&self) -> Option<DialogKind> {
        match &self.mode {
            Mode::Dialog(d) => Some(d.kind),
            _ => None,
        }
    }

    /// Whether the quit confirmation is showing.
    pub fn confirming_quit(&self) -> bool {
        matches!(self.mode, Mode::ConfirmQuit)
    }

    /// Notes that the runtime's event stream ended.
    pub fn runtime_ended(&mut self) {
        self.runtime_gone = true;
    }

    /// Notes a remote console's connection state (shown in the header).
    pub fn set_link(&mut self, link: super::Link) {
        self.link = link;
    }

    /// Notes what a remote console's server is (`None`: not clustered),
    /// shown in the header and by `:cluster`.
    pub fn set_cluster(&mut self, view: Option<crate::cluster::ClusterView>) {
        self.attached = true;
        self.cluster = view;
    }

    fn toast(&mut self, level: Level, text: impl Into<String>) {
        self.toast = Some(Toast {
            text: text.into(),
            level,
            at: self.now,
        });
    }

    /// Shows the runtime's answer to a command.
    pub fn on_reply(&mut self, what: &str, reply: CommandReply) {
        match reply {
            Ok(text) => self.toast(Level::Info, format!("{what}: {text}")),
            Err(text) => self.toast(Level::Error, format!("{what} refused: {text}")),
        }
    }

    /// Folds one event into the state; returns attention effects for new approval requests.
    pub fn apply_event(&mut self, event: &Event) -> Vec<Effect> {
        self.state.apply(event);
        self.gens.any += 1;
        if let Some(id) = fleet_change(&event.kind) {
            self.gens.fleet += 1;
            self.gens.resources += 1;
            self.fleet_changes.record(self.gens.fleet, id.clone());
        } else if matches!(event.kind, EventKind::ResourceChanged { .. }) {
            self.gens.resources += 1;
        }
        if matches!(event.kind, EventKind::CostSample { .. }) {
            self.gens.cost += 1;
        }
        let mut effects = Vec::new();
        if let EventKind::ApprovalRequested { remediation, .. } = &event.kind
            && let Some(rem) = self.state.remediations.get(remediation)
            && rem.stage == Stage::AwaitingApproval
            && self.announced.insert(*remediation)
        {
            if self.bell {
                effects.push(Effect::Bell);
            }
            if self.desktop_notify {
                let target = super::panes::resource_name(&self.state, &rem.action.target);
                effects.push(Effect::Notify {
                    summary: format!("ShieldOps: approval needed for #{}", rem.id),
                    body: format!(
                        "{} on {} ({}), requested by {}",
                        rem.action.name,
                        target,
                        rem.environment.as_str(),
                        rem.requested_by
                    ),
                });
            }
        }
        // A dialog for a remediation that stopped waiting (approved elsewhere, expired) closes.
        if let Mode::Dialog(d) = &self.mode {
            let id = d.remediation;
            let stage = self.state.remediations.get(&id).map(|r| r.stage);
            if stage != Some(Stage::AwaitingApproval) {
                self.mode = Mode::Normal;
                let label = stage.map(|s| s.label()).unwrap_or("gone");
                self.toast(
                    Level::Warn,
                    format!(
                        "remediation #{id} is no longer awaiting approval ({label}); dialog closed"
                    ),
                );
            }
        }
        effects
    }

    fn focus_pane(&mut self, id: PaneId) {
        self.focus = id;
        let ctx = pane_ctx!(self, &self.theme);
        self.panes.get(id).on_focus(&ctx);
    }

    /// Handles one key press.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if let Some(rest) = self.keymap.esc_then(&key) {
            // The comment box has Alt bindings of its own for letters and
            // editing keys (word motion); there only digits and punctuation split.
            let dialog_key = matches!(self.mode, Mode::Dialog(_))
                && !matches!(rest.code, KeyCode::Char(c) if !c.is_alphanumeric() || c.is_ascii_digit());
            if !dialog_key {
                let mut effects = self.handle_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
                effects.extend(self.handle_key(rest));
                return effects;
            }
        }
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::ConfirmQuit => {
                match key.code {
                    KeyCode::Char('y' | 'Y') => self.quit = true,
                    KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                        self.toast(Level::Info, "quit cancelled");
                    }
                    _ if ctrl_c => self.quit = true,
                    _ => self.mode = Mode::ConfirmQuit,
                }
                Vec::new()
            }
            Mode::Dialog(dialog) => self.dialog_key(*dialog, key),
            Mode::Filter { before, text } => {
                self.filter_key(before, text, key);
                Vec::new()
            }
            Mode::Command { text, candidates } => self.command_key(text, candidates, key),
            Mode::Normal => {
                if ctrl_c {
                    self.request_quit();
                    return Vec::new();
                }
                let Some(action) = self.keymap.action(&key) else {
                    return Vec::new();
                };
                self.normal_action(action);
                match self.panes.get(self.focus).take_command() {
                    Some(command) => self.send_from_pane(command),
                    None => Vec::new(),
                }
            }
        }
    }

    fn normal_action(&mut self, action: Action) {
        if self.contexts {
            self.contexts = false;
            if action == Action::Back {
                return;
            }
        }
        if self.cluster_overlay {
            if let Some(to) = overlay_scroll(action, self.cluster_scroll) {
                self.cluster_scroll = to;
                return;
            }
            self.cluster_overlay = false;
            if action == Action::Back {
                return;
            }
        }
        if self.agents {
            if let Some(to) = overlay_scroll(action, self.agents_scroll) {
                self.agents_scroll = to;
                return;
            }
            self.agents = false;
            if matches!(action, Action::Back | Action::Agents) {
                return;
            }
        }
        if self.help {
            if let Some(to) = overlay_scroll(action, self.help_scroll) {
                self.help_scroll = to;
                return;
            }
            self.help = false;
            if matches!(action, Action::Help | Action::Back) {
                return;
            }
        }
        let ctx = pane_ctx!(self, &self.theme);
        // Approve and deny always go to the app so read-only mode can explain itself anywhere.
        if !matches!(action, Action::Approve | Action::Deny)
            && self.panes.get(self.focus).handle(action, &ctx) == Handled::Consumed
        {
            return;
        }
        if let Some(pane) = PaneId::from_action(action) {
            self.focus_pane(pane);
            return;
        }
        match action {
            Action::NextPane => {
                let i = (self.focus.index() + 1) % PaneId::ALL.len();
                self.focus_pane(PaneId::ALL[i]);
            }
            Action::PrevPane => {
                let i = (self.focus.index() + PaneId::ALL.len() - 1) % PaneId::ALL.len();
                self.focus_pane(PaneId::ALL[i]);
            }
            Action::Filter => {
                let before = self.panes.get_ref(self.focus).filter().to_string();
                if self.panes.get(self.focus).set_filter(&before) {
                    self.mode = Mode::Filter {
                        text: before.clone(),
                        before,
                    };
                } else {
                    self.toast(
                        Level::Info,
                        format!("the {} pane has no filter", self.focus.title()),
                    );
                }
            }
            Action::CommandMode => {
                self.mode = Mode::Command {
                    text: String::new(),
                    candidates: Vec::new(),
                }
            }
            Action::Help => {
                self.help = true;
                self.help_scroll = 0;
            }
            Action::Agents => {
                self.agents = true;
                self.agents_scroll = 0;
            }
            // From another pane, `!` goes to the Fleet pane's problems.
            Action::ProblemsOnly => {
                self.focus_pane(PaneId::Fleet);
                let ctx = pane_ctx!(self, &self.theme);
                self.panes.fleet.handle(action, &ctx);
            }
            Action::Quit => self.request_quit(),
            Action::Approve => self.open_dialog(DialogKind::Approve),
            Action::Deny => self.open_dialog(DialogKind::Deny),
            Action::Submit => self.toast(Level::Info, "no dialog is open"),
            _ => {}
        }
    }

    fn request_quit(&mut self) {
        if self.state.approval_queue().is_empty() {
            self.quit = true;
        } else {
            self.mode = Mode::ConfirmQuit;
        }
    }

    fn open_dialog(&mut self, kind: DialogKind) {
        let verb = match kind {
            DialogKind::Approve => "approving",
            DialogKind::Deny => "denying",
        };
        if self.read_only {
            self.toast(
                Level::Warn,
                format!(
                    "read-only mode: {verb} is disabled (the console was started with --read-only)"
                ),
            );
            return;
        }
        if self.focus != PaneId::Remediations {
            let key = self.keymap.short(Action::Remediations);
            self.toast(
                Level::Info,
                format!("select a pending remediation in the Remediations pane ({key}) first"),
            );
            return;
        }
        let Some(id) = self.panes.remediations.selected_pending(&self.state) else {
            self.toast(
                Level::Info,
                "the selected remediation is not awaiting approval",
            );
            return;
        };
        let mut text = TextArea::default();
        let (title, placeholder) = match kind {
            DialogKind::Approve => (" Comment (optional) ", "why this is safe to run…"),
            DialogKind::Deny => (" Reason (required) ", "why this must not run…"),
        };
        text.set_block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(self.theme.border_focus)
                .title(title),
        );
        text.set_style(self.theme.input);
        text.set_cursor_style(self.theme.cursor);
        text.set_cursor_line_style(Style::default());
        text.set_placeholder_text(placeholder);
        text.set_placeholder_style(self.theme.dim);
        text.set_selection_style(self.theme.selected);
        self.mode = Mode::Dialog(Box::new(Dialog {
            kind,
            remediation: id,
            text,
            error: None,
        }));
    }

    fn dialog_key(&mut self, mut dialog: Dialog, key: KeyEvent) -> Vec<Effect> {
        match self.keymap.action(&key) {
            Some(Action::Submit) => return self.submit(dialog),
            Some(Action::Back) => {
                self.toast(Level::Info, "cancelled: nothing was sent");
                return Vec::new();
            }
            _ => {}
        }
        dialog.text.input(key);
        dialog.error = None;
        self.mode = Mode::Dialog(Box::new(dialog));
        Vec::new()
    }

    fn submit(&mut self, mut dialog: Dialog) -> Vec<Effect> {
        let id = dialog.remediation;
        if self.read_only {
            self.toast(Level::Warn, "read-only mode: nothing was sent");
            return Vec::new();
        }
        let stage = self.state.remediations.get(&id).map(|r| r.stage);
        if stage != Some(Stage::AwaitingApproval) {
            let label = stage.map(|s| s.label()).unwrap_or("gone");
            self.toast(
                Level::Warn,
                format!("remediation #{id} is no longer awaiting approval ({label})"),
            );
            return Vec::new();
        }
        let text = dialog.text.lines().join("\n").trim().to_string();
        let command = match dialog.kind {
            DialogKind::Approve => Command::Approve {
                remediation: id,
                comment: text,
            },
            DialogKind::Deny => {
                if text.is_empty() {
                    let key = self.keymap.short(Action::Back);
                    dialog.error = Some(format!(
                        "a reason is required to deny: type one, or press {key} to cancel"
                    ));
                    self.toast(Level::Warn, "deny refused: a reason is required");
                    self.mode = Mode::Dialog(Box::new(dialog));
                    return Vec::new();
                }
                Command::Deny {
                    remediation: id,
                    reason: text,
                }
            }
        };
        self.send(command)
    }

    fn filter_key(&mut self, before: String, mut text: String, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => return,
            KeyCode::Esc => {
                self.panes.get(self.focus).set_filter(&before);
                return;
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                text.push(c)
            }
            _ => {}
        }
        self.panes.get(self.focus).set_filter(&text);
        self.mode = Mode::Filter { before, text };
    }

    fn command_key(
        &mut self,
        mut text: String,
        mut candidates: Vec<String>,
        key: KeyEvent,
    ) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => return Vec::new(),
            KeyCode::Enter => return self.run_command(text.trim()),
            KeyCode::Backspace => {
                if text.pop().is_none() {
                    return Vec::new();
                }
                candidates.clear();
            }
            KeyCode::Tab => {
                let (completed, found) = self.complete(&text);
                text = completed;
                candidates = found;
            }
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                text.push(c);
                candidates.clear();
            }
            _ => {}
        }
        self.mode = Mode::Command { text, candidates };
        Vec::new()
    }

    /// Completes a command line: command names, then theme names after
    /// `theme `, context names after `ctx `.
    pub fn complete(&self, text: &str) -> (String, Vec<String>) {
        let (prefix, word, options): (String, &str, Vec<String>) =
            if let Some(rest) = text.strip_prefix("theme ") {
                (
                    "theme ".into(),
                    rest.trim_start(),
                    Theme::available(self.config_dir.as_deref()),
                )
            } else if let Some((cmd, rest)) = text
                .split_once(' ')
                .filter(|(c, _)| matches!(*c, "ctx" | "context"))
            {
                let mut names: Vec<String> = super::contexts::kube_contexts(&self.state)
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
                names.push("all".into());
                (format!("{cmd} "), rest.trim_start(), names)
            } else {
                let mut names = Vec::new();
                for (name, aliases, _) in COMMANDS {
                    names.push(name.to_string());
                    names.extend(aliases.iter().map(|a| a.to_string()));
                }
                (String::new(), text, names)
            };
        let found: Vec<String> = options
            .into_iter()
            .filter(|o| o.starts_with(word))
            .collect();
        match found.len() {
            0 => (text.to_string(), Vec::new()),
            1 => {
                let suffix = if prefix.is_empty() && matches!(found[0].as_str(), "theme" | "ctx") {
                    " "
                } else {
                    ""
                };
                (format!("{prefix}{}{suffix}", found[0]), Vec::new())
            }
            _ => {
                let mut common = found[0].clone();
                for f in &found[1..] {
                    while !f.starts_with(&common) {
                        common.pop();
                    }
                }
                (format!("{prefix}{common}"), found)
            }
        }
    }

    /// Runs a `:` command line (without the colon); returns what it asks of the runtime.
    pub fn run_command(&mut self, line: &str) -> Vec<Effect> {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else {
            return Vec::new();
        };
        let arg = words.next();
        let name = COMMANDS
            .iter()
            .find(|(n, aliases, _)| *n == cmd || aliases.contains(&cmd))
            .map(|(n, _, _)| *n);
        let pane = match name {
            Some("fleet") => Some(PaneId::Fleet),
            Some("inv") => Some(PaneId::Investigations),
            Some("rem") => Some(PaneId::Remediations),
            Some("sec") => Some(PaneId::Security),
            Some("cost") => Some(PaneId::Cost),
            Some("events") => Some(PaneId::Events),
            _ => None,
        };
        if name == Some("learn") {
            self.focus_pane(PaneId::Learning);
            return self.send(Command::Learn);
        }
        if let Some(p) = pane {
            self.focus_pane(p);
            return Vec::new();
        }
        if name == Some("override") {
            return self.override_freeze(arg, words.collect::<Vec<_>>().join(" "));
        }
        if name == Some("ctx") {
            self.context_command(arg);
            return Vec::new();
        }
        match name {
            Some("q") => self.request_quit(),
            Some("help") => {
                self.help = !self.help;
                self.help_scroll = 0;
            }
            Some("agents") => {
                self.agents = !self.agents;
                self.agents_scroll = 0;
            }
            Some("cluster") => {
                self.cluster_overlay = !self.cluster_overlay;
                self.cluster_scroll = 0;
            }
            Some("theme") => match arg {
                None => {
                    let names = Theme::available(self.config_dir.as_deref()).join(", ");
                    self.toast(
                        Level::Info,
                        format!("theme {} (available: {names})", self.theme.name),
                    );
                }
                Some(_) if self.no_color => {
                    self.toast(
                        Level::Warn,
                        "colour is off (NO_COLOR or --no-color): staying on mono",
                    );
                }
                Some(theme) => match Theme::load(theme, self.config_dir.as_deref()) {
                    Ok(t) => {
                        self.theme = t;
                        self.toast(Level::Info, format!("theme {theme}"));
                    }
                    Err(e) => {
                        tracing::warn!("theme {theme}: {e}");
                        self.theme = Theme::default_theme();
                        self.toast(Level::Warn, format!("{e}; using the default theme"));
                    }
                },
            },
            _ => {
                let names: Vec<String> = COMMANDS.iter().map(|(n, _, _)| format!(":{n}")).collect();
                self.toast(
                    Level::Warn,
                    format!("unknown command :{cmd} (try {})", names.join(" ")),
                );
            }
        }
        Vec::new()
    }

    /// `:ctx` lists the contexts; `:ctx NAME` narrows the Fleet pane to one,
    /// `:ctx all` shows every resource again. Reads the state only.
    fn context_command(&mut self, arg: Option<&str>) {
        let Some(arg) = arg else {
            self.contexts = true;
            return;
        };
        if arg == "all" {
            self.panes.fleet.set_context(None);
            self.focus_pane(PaneId::Fleet);
            self.toast(Level::Info, "Fleet: all contexts");
            return;
        }
        let known: Vec<String> = super::contexts::kube_contexts(&self.state)
            .into_iter()
            .map(|c| c.name)
            .collect();
        if known.iter().any(|k| k == arg) {
            self.panes.fleet.set_context(Some(arg.to_string()));
            self.focus_pane(PaneId::Fleet);
            self.toast(Level::Info, format!("Fleet: context {arg}"));
        } else if known.is_empty() {
            let why = super::contexts::absent_line(&self.state)
                .unwrap_or("no Kubernetes context is known to the runtime");
            self.toast(Level::Warn, format!("no context {arg}: {why}"));
        } else {
            self.toast(
                Level::Warn,
                format!(
                    "no context {arg} (known: {}; :ctx all shows all)",
                    known.join(", ")
                ),
            );
        }
    }

    /// Sends what a pane asked for; a proposal is refused here in read-only mode
    /// (the runtime refuses it too), feedback is only a record and always goes.
    fn send_from_pane(&mut self, command: Command) -> Vec<Effect> {
        if self.read_only && matches!(command, Command::ApplyRecommendation { .. }) {
            self.toast(
                Level::Warn,
                "read-only mode: recommendations cannot be proposed",
            );
            return Vec::new();
        }
        self.send(command)
    }

    /// Sends a command to the runtime and says so; the outcome arrives as a reply.
    fn send(&mut self, command: Command) -> Vec<Effect> {
        self.toast(
            Level::Info,
            format!(
                "sent {} as {}; waiting for the runtime…",
                command.describe(),
                self.identity.name
            ),
        );
        vec![Effect::Send(command)]
    }

    /// `:override ID REASON`: asks the runtime to re-propose a remediation
    /// that a change freeze denied; the policy then requires an extra approval.
    fn override_freeze(&mut self, id: Option<&str>, reason: String) -> Vec<Effect> {
        if self.read_only {
            self.toast(Level::Warn, "read-only mode: overrides are disabled");
            return Vec::new();
        }
        let Some(id) = id.and_then(|s| s.trim_start_matches('#').parse::<u64>().ok()) else {
            self.toast(Level::Warn, "usage: :override ID REASON");
            return Vec::new();
        };
        if reason.trim().is_empty() {
            self.toast(
                Level::Warn,
                "a reason is required to override a change freeze",
            );
            return Vec::new();
        }
        let command = Command::OverrideFreeze {
            remediation: id,
            reason,
        };
        self.send(command)
    }

    /// Draws one frame.
    pub fn draw(&mut self, f: &mut Frame) {
        let area = f.area();
        let t = self.theme.clone();
        f.render_widget(Block::default().style(t.base), area);
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            let msg = format!(
                "terminal too small: {}×{} (need {MIN_WIDTH}×{MIN_HEIGHT}) · q quits",
                area.width, area.height
            );
            let y = area.y + area.height / 2;
            if area.height > 0 {
                let line = Rect::new(area.x, y, area.width, 1);
                f.render_widget(
                    Paragraph::new(fit(&msg, area.width as usize)).style(t.warn),
                    line,
                );
            }
            return;
        }
        let [header, tabs, body, status, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        self.draw_header(f, header, &t);
        self.draw_tabs(f, tabs, &t);
        let ctx = pane_ctx!(self, &t);
        self.panes.get(self.focus).draw(f, body, &ctx);
        self.draw_status(f, status, &t);
        self.draw_footer(f, footer, &t);
        if self.help {
            self.draw_help(f, area, &t);
        }
        if self.contexts {
            let rows = self.context_counts.rows(&self.state, self.gens.fleet);
            super::contexts::draw(f, area, &self.state, &rows, self.panes.fleet.context(), &t);
        }
        if self.agents {
            let keys = format!(
                "{}/{}",
                self.keymap.short(Action::Down),
                self.keymap.short(Action::Up)
            );
            super::agents::draw(
                f,
                area,
                &self.state,
                self.now,
                &mut self.agents_scroll,
                &keys,
                &t,
            );
        }
        if self.cluster_overlay {
            let keys = format!(
                "{}/{}",
                self.keymap.short(Action::Down),
                self.keymap.short(Action::Up)
            );
            super::cluster::draw(
                f,
                area,
                self.cluster.as_ref(),
                &mut self.cluster_scroll,
                &keys,
                &t,
            );
        }
        match &self.mode {
            Mode::Dialog(_) => self.draw_dialog(f, area, &t),
            Mode::ConfirmQuit => {
                let n = self.state.approval_queue().len();
                let text = format!(
                    "{n} approval{} pending. Quit anyway? (y/n)",
                    if n == 1 { " is" } else { "s are" }
                );
                let w = (text.chars().count() as u16 + 4).min(area.width);
                let r = centered(area, w, 3);
                f.render_widget(Clear, r);
                f.render_widget(
                    Paragraph::new(fit(&text, r.width.saturating_sub(2) as usize))
                        .style(t.dialog)
                        .block(
                            Block::default()
                                .borders(Borders::ALL)
                                .border_style(t.border_focus)
                                .title(Span::styled(" Quit ", t.dialog_title))
                                .style(t.dialog),
                        ),
                    r,
                );
            }
            _ => {}
        }
    }

    fn draw_header(&self, f: &mut Frame, area: Rect, t: &Theme) {
        let width = area.width as usize;
        let mut left = vec![Span::styled(" ShieldOps ", t.tab_active)];
        if !self.title.is_empty() {
            left.push(Span::styled(format!(" {} ", self.title), t.accent));
        }
        let (runtime, rstyle) = if let super::Link::HistoryChanged { .. } = &self.link {
            (
                "✕ SERVER HISTORY CHANGED: do not trust this view".to_string(),
                t.bad,
            )
        } else if let super::Link::Disconnected { since, .. } = &self.link {
            (format!("✕ disconnected since {}Z", clock(*since)), t.bad)
        } else if self.runtime_gone {
            ("✕ runtime stopped".to_string(), t.bad)
        } else if self.state.scenario_finished {
            (format!("■ finished · seq {}", self.state.last_seq), t.warn)
        } else {
            (format!("● live · seq {}", self.state.last_seq), t.ok)
        };
        left.push(Span::styled(format!(" {runtime} "), rstyle));
        if self.read_only {
            left.push(Span::styled(" READ-ONLY ", t.pending));
        }
        let pending = self.state.approval_queue().len();
        let right = vec![
            Span::styled(
                format!(" ⚑ {pending} pending "),
                if pending > 0 { t.pending } else { t.dim },
            ),
            Span::styled(format!(" {}Z ", clock(self.now)), t.accent),
        ];
        let used: usize = left.iter().chain(&right).map(|s| s.width()).sum();
        let mut room = width.saturating_sub(used);
        if self.attached {
            let role = super::cluster::header_spans(self.cluster.as_ref(), room, t);
            room -= role.iter().map(|s| s.width()).sum::<usize>();
            left.extend(role);
        }
        let agents = self.agent_spans(room, t);
        let agents_w: usize = agents.iter().map(|s| s.width()).sum();
        let mut spans = left;
        spans.extend(agents);
        spans.push(Span::raw(" ".repeat(room.saturating_sub(agents_w))));
        spans.extend(right);
        f.render_widget(Paragraph::new(Line::from(spans)).style(t.base), area);
    }

    /// Each agent's heartbeat age, in as much detail as `room` allows; judged
    /// by the same rule as the `:agents` overlay, so the two agree.
    fn agent_spans(&self, room: usize, t: &Theme) -> Vec<Span<'static>> {
        use super::agents::{Liveness, liveness};
        let agents: Vec<(String, Option<i64>, Liveness)> = self
            .state
            .agents
            .iter()
            .map(|(name, a)| {
                (
                    name.clone(),
                    a.last_heartbeat
                        .map(|h| (self.now - h).num_seconds().max(0)),
                    liveness(a, self.now),
                )
            })
            .collect();
        if agents.is_empty() || room < 8 {
            return Vec::new();
        }
        for abbrev in [None, Some(4), Some(3)] {
            let spans: Vec<Span<'static>> = agents
                .iter()
                .map(|(name, secs, live)| {
                    let name: String = match abbrev {
                        Some(n) => name.chars().take(n).collect(),
                        None => name.clone(),
                    };
                    let age = secs
                        .map(super::widgets::duration)
                        .unwrap_or_else(|| "?".into());
                    Span::styled(format!(" {name} {age}"), live.style(t))
                })
                .collect();
            if spans.iter().map(|s| s.width()).sum::<usize>() < room {
                return spans;
            }
        }
        let late = agents
            .iter()
            .filter(|(_, _, live)| *live != Liveness::Ok)
            .count();
        let style = if late > 0 { t.warn } else { t.ok };
        let text = format!(" agents {}/{} ok", agents.len() - late, agents.len());
        // Which and why is one key away.
        let with_key = format!("{text} ({})", self.keymap.short(Action::Agents));
        if late > 0 && with_key.chars().count() < room {
            vec![Span::styled(with_key, style)]
        } else if text.chars().count() < room {
            vec![Span::styled(text, style)]
        } else {
            Vec::new()
        }
    }

    fn draw_tabs(&self, f: &mut Frame, area: Rect, t: &Theme) {
        let pending = self.state.approval_queue().len();
        let build = |short: bool| -> Vec<Span<'static>> {
            let mut spans = Vec::new();
            for p in PaneId::ALL {
                let key = self.keymap.short(p.action());
                let name = if short { p.short() } else { p.title() };
                let style = if p == self.focus { t.tab_active } else { t.tab };
                spans.push(Span::styled(format!(" {key} {name} "), style));
                if p == PaneId::Remediations && pending > 0 {
                    spans.push(Span::styled(format!("({pending})"), t.pending));
                }
                spans.push(Span::raw(" "));
            }
            spans
        };
        let mut spans = build(false);
        if spans.iter().map(|s| s.width()).sum::<usize>() > area.width as usize {
            spans = build(true);
        }
        f.render_widget(Paragraph::new(Line::from(spans)).style(t.base), area);
    }

    fn draw_status(&self, f: &mut Frame, area: Rect, t: &Theme) {
        let w = area.width as usize;
        let line = match &self.mode {
            Mode::Filter { text, .. } => Line::from(vec![
                Span::styled("/", t.key),
                Span::styled(format!("{text}▏"), t.input),
                Span::styled(
                    if self.focus == PaneId::Events {
                        "   Enter keep · Esc undo · kind:NAME filters by kind"
                    } else {
                        "   Enter keep · Esc undo"
                    },
                    t.dim,
                ),
            ]),
            Mode::Command { text, candidates } => {
                let mut spans = vec![
                    Span::styled(":", t.key),
                    Span::styled(format!("{text}▏"), t.input),
                ];
                if candidates.is_empty() {
                    spans.push(Span::styled(
                        "   Tab completes · Enter runs · Esc cancels",
                        t.dim,
                    ));
                } else {
                    spans.push(Span::styled(format!("   {}", candidates.join(" ")), t.dim));
                }
                Line::from(spans)
            }
            _ => match (self.toast_text(), &self.toast) {
                (Some(text), Some(toast)) => {
                    let style = match toast.level {
                        Level::Info => t.toast_info,
                        Level::Warn => t.toast_warn,
                        Level::Error => t.toast_error,
                    };
                    Line::styled(fit(&format!(" {text}"), w), style)
                }
                _ => {
                    let filter = self.panes.get_ref(self.focus).filter();
                    if filter.is_empty() {
                        Line::raw("")
                    } else {
                        Line::styled(
                            format!(
                                " filter /{filter}  ({} clears)",
                                self.keymap.short(Action::Back)
                            ),
                            t.dim,
                        )
                    }
                }
            },
        };
        f.render_widget(Paragraph::new(line).style(t.base), area);
    }

    fn draw_footer(&self, f: &mut Frame, area: Rect, t: &Theme) {
        let ctx = pane_ctx!(self, t);
        // While a dialog is open only its own keys do anything, so only they are offered.
        let actions = if matches!(self.mode, Mode::Dialog(_)) {
            vec![Action::Submit, Action::Back]
        } else {
            let mut actions = self.panes.get_ref(self.focus).hints(&ctx);
            actions.extend([Action::CommandMode, Action::Help, Action::Quit]);
            actions
        };
        let mut spans = Vec::new();
        let mut used = 0usize;
        for a in actions {
            let key = if a == Action::Down {
                format!(
                    "{}/{}",
                    self.keymap.short(Action::Down),
                    self.keymap.short(Action::Up)
                )
            } else {
                self.keymap.short(a)
            };
            let mut label = a.hint().to_string();
            if self.read_only && matches!(a, Action::Approve | Action::Deny) {
                label.push_str("(off)");
            }
            let w = key.chars().count() + label.chars().count() + 3;
            if used + w > area.width as usize {
                break;
            }
            used += w;
            spans.push(Span::styled(format!(" {key}"), t.key));
            spans.push(Span::styled(format!(" {label} "), t.dim));
        }
        f.render_widget(Paragraph::new(Line::from(spans)).style(t.base), area);
    }

    fn draw_help(&mut self, f: &mut Frame, area: Rect, t: &Theme) {
        let inner_w = area.width.min(120).saturating_sub(2);
        // Two columns only where each still has room for the descriptions;
        // at 80 columns one column, wrapped, scrolling.
        let two_columns = inner_w >= 110;
        let col_w = if two_columns {
            (inner_w / 2) as usize
        } else {
            inner_w as usize
        };
        const KEYS_W: usize = 13;
        let desc_w = col_w.saturating_sub(KEYS_W + 1).max(10);
        // A key and its description, wrapped under the description column
        // (never cut: the description is what help is for).
        let entry = |out: &mut Vec<Line<'static>>, keys: String, desc: &str| {
            let wrapped = super::panes::wrap_line(Line::raw(desc.to_string()), desc_w);
            for (i, l) in wrapped.into_iter().enumerate() {
                let key = if i == 0 {
                    format!(" {:<w$} ", fit(&keys, KEYS_W - 2), w = KEYS_W - 2)
                } else {
                    " ".repeat(KEYS_W)
                };
                let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
                out.push(Line::from(vec![
                    Span::styled(key, t.key),
                    Span::styled(text.trim_start().to_string(), t.dialog),
                ]));
            }
        };
        let pane_keys: Vec<String> = PaneId::ALL
            .iter()
            .map(|p| self.keymap.short(p.action()))
            .collect();
        let pane_keys = if pane_keys
            .iter()
            .enumerate()
            .all(|(i, k)| *k == (i + 1).to_string())
        {
            format!("1–{}", pane_keys.len())
        } else {
            pane_keys.join(",")
        };
        let mut left = vec![Line::styled(" Navigation", t.header)];
        entry(&mut left, pane_keys, "switch pane (Fleet … Events)");
        for a in [
            Action::NextPane,
            Action::PrevPane,
            Action::Up,
            Action::Down,
            Action::PageUp,
            Action::PageDown,
            Action::Top,
            Action::Bottom,
            Action::Open,
            Action::Back,
        ] {
            entry(&mut left, self.keymap.label(a), a.describe());
        }
        entry(
            &mut left,
            "Alt-key".into(),
            "Esc then the key, when Alt-key has no binding (Esc 4 typed fast over SSH arrives as Alt-4)",
        );
        left.push(Line::styled(" Investigations and Cost", t.header));
        for a in [
            Action::NextHypothesis,
            Action::Confirm,
            Action::Refute,
            Action::ApplyRecommendation,
        ] {
            entry(&mut left, self.keymap.label(a), a.describe());
        }
        let mut right = vec![Line::styled(" Actions", t.header)];
        for a in [
            Action::Filter,
            Action::CommandMode,
            Action::Sort,
            Action::ProblemsOnly,
            Action::Agents,
            Action::Help,
            Action::Quit,
            Action::Approve,
            Action::Deny,
            Action::Submit,
        ] {
            let mut desc = a.describe().to_string();
            if self.read_only && matches!(a, Action::Approve | Action::Deny) {
                desc = "disabled: read-only mode".into();
            }
            entry(&mut right, self.keymap.label(a), &desc);
        }
        right.push(Line::styled(" Commands (Tab completes)", t.header));
        for (name, aliases, desc) in COMMANDS {
            let desc = if aliases.is_empty() {
                desc.to_string()
            } else {
                let aliases: Vec<String> = aliases.iter().map(|a| format!(":{a}")).collect();
                format!("{desc} ({})", aliases.join(" "))
            };
            entry(&mut right, format!(":{name}"), &desc);
        }
        let (left, right) = if two_columns {
            (left, right)
        } else {
            left.extend(right);
            (left, Vec::new())
        };
        let total = left.len().max(right.len());
        let r = centered(
            area,
            inner_w + 2,
            (total as u16 + 2).min(area.height.saturating_sub(2).max(3)),
        );
        let page = r.height.saturating_sub(2) as usize;
        self.help_scroll = self.help_scroll.min(total.saturating_sub(page));
        let scroll = if total > page {
            format!(
                " lines {}–{} of {total} · {}/{} scroll ",
                self.help_scroll + 1,
                self.help_scroll + page,
                self.keymap.short(Action::Down),
                self.keymap.short(Action::Up)
            )
        } else {
            String::new()
        };
        f.render_widget(Clear, r);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(t.border_focus)
            .title(Span::styled(
                " Help: keys come from the key map ([keys] in the config) ",
                t.dialog_title,
            ))
            .title_bottom(Line::styled(scroll, t.dim).right_aligned())
            .style(t.dialog);
        let inner = block.inner(r);
        f.render_widget(block, r);
        let shown = |lines: Vec<Line<'static>>| -> Vec<Line<'static>> {
            lines
                .into_iter()
                .skip(self.help_scroll)
                .take(page)
                .collect()
        };
        if two_columns {
            let [l, rr] =
                Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
            f.render_widget(Paragraph::new(shown(left)), l);
            f.render_widget(Paragraph::new(shown(right)), rr);
        } else {
            f.render_widget(Paragraph::new(shown(left)), inner);
        }
    }

    fn draw_dialog(&self, f: &mut Frame, area: Rect, t: &Theme) {
        let Mode::Dialog(dialog) = &self.mode else {
            return;
        };
        let Some(rem) = self.state.remediations.get(&dialog.remediation) else {
            return;
        };
        let (title, verb, key_label) = match dialog.kind {
            DialogKind::Approve => (
                format!(" Approve remediation #{} ", rem.id),
                "approving",
                "approve",
            ),
            DialogKind::Deny => (format!(" Deny remediation #{} ", rem.id), "denying", "deny"),
        };
        let ctx = pane_ctx!(self, t);
        // Summary: action, target, environment, the change (current → new),
        // risk, approvals, policy reasons and controls, why; the preview's
        // notes come last, so a small screen loses those first.
        let all = remediation_lines(rem, &self.state, &ctx);
        let mut summary: Vec<Line<'static>> = all.into_iter().take(3).collect();
        let (changes, notes) = preview_lines(rem, &ctx);
        summary.extend(changes);
        if let Some(d) = &rem.decision {
            summary.push(Line::from(vec![
                Span::styled(format!("{:<12}", "risk"), t.dim),
                Span::styled(d.risk.as_str(), t.risk(d.risk)),
                Span::styled(
                    format!(
                        "   approvals: {} of {} given, {} still needed",
                        rem.counted_approvers().len(),
                        rem.required_approvals,
                        rem.approvals_missing()
                    ),
                    t.warn,
                ),
            ]));
            let mut policy = if d.allow { "allow" } else { "deny" }.to_string();
            if !d.controls.is_empty() {
                policy.push_str(&format!(" · controls {}", d.controls.join(", ")));
            }
            summary.push(Line::from(vec![
                Span::styled(format!("{:<12}", "policy"), t.dim),
                Span::raw(policy),
            ]));
            for reason in &d.deny {
                summary.push(Line::styled(format!("  ✗ {reason}"), t.bad));
            }
        }
        if !rem.reason.is_empty() {
            summary.push(Line::from(vec![
                Span::styled(format!("{:<12}", "why"), t.dim),
                Span::raw(rem.reason.clone()),
            ]));
        }
        summary.extend(notes);
        // Taller on a taller screen, so the whole preview shows.
        let r = centered(area, 78, (summary.len() as u16 + 12).max(22));
        f.render_widget(Clear, r);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(t.border_focus)
            .title(Span::styled(title, t.dialog_title))
            .style(t.dialog);
        let inner = block.inner(r);
        f.render_widget(block, r);
        // The name that counts is the principal; a declared name is shown
        // beside it and never counted.
        let declared = match &self.identity.declared_name {
            Some(d) if *d != self.identity.name => format!(", declared {d}"),
            _ => String::new(),
        };
        let who = match &self.identity.source {
            Some(src) => format!("{verb} as {}{declared} (from {src})", self.identity.name),
            None => format!("{verb} as {}{declared}", self.identity.name),
        };
        let summary_h = summary.len() as u16;
        let [s_area, who_area, box_area, err_area, keys_area] = Layout::vertical([
            Constraint::Max(summary_h),
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(inner);
        let w = inner.width as usize;
        let summary: Vec<Line<'static>> = summary
            .into_iter()
            .map(|l| {
                let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
                if text.chars().count() > w {
                    Line::styled(
                        fit(&text, w),
                        l.spans.last().map(|s| s.style).unwrap_or_default(),
                    )
                } else {
                    l
                }
            })
            .collect();
        f.render_widget(Paragraph::new(summary).style(t.dialog), s_area);
        f.render_widget(
            Paragraph::new(Line::styled(fit(&who, w), t.accent)),
            who_area,
        );
        f.render_widget(&dialog.text, box_area);
        if let Some(err) = &dialog.error {
            f.render_widget(
                Paragraph::new(Line::styled(fit(err, w), t.toast_error)),
                err_area,
            );
        }
        let keys = format!(
            "{} {key_label} · {} cancel",
            self.keymap.short(Action::Submit),
            self.keymap.short(Action::Back)
        );
        f.render_widget(
            Paragraph::new(Line::styled(fit(&keys, w), t.key)),
            keys_area,
        );
    }
}
