//! Pane 3, Remediations: the approval queue on top (oldest first), then every
//! remediation (newest first); the detail view walks the whole safety path.
//!
//! Approve and deny are not handled here: the pane only says which pending
//! remediation is selected, and the app opens the two-step dialog.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{
    Cell, Ctx, DetailScroll, Handled, Pane, block, col, draw_detail, draw_missing, draw_table,
    handle_detail, heading, open_detail, resource_name, section, view_hints,
};
use crate::event::RemediationOutcome;
use crate::state::{Remediation, Stage, State};
use crate::tui::keymap::Action;
use crate::tui::theme::Theme;
use crate::tui::widgets::{Scroll, age, clock, labeled, narrow};

/// Remediations pane state.
#[derive(Debug, Default)]
pub struct RemediationsPane {
    /// Index into queue ++ all.
    selected: usize,
    queue_scroll: Scroll,
    all_scroll: Scroll,
    open: Option<u64>,
    detail: DetailScroll,
}

/// Rows of the pane: the queue then all remediations.
struct Rows {
    queue: Vec<u64>,
    all: Vec<u64>,
}

impl Rows {
    fn of(state: &State) -> Rows {
        Rows {
            queue: state.approval_queue().iter().map(|r| r.id).collect(),
            all: state.remediations.keys().rev().copied().collect(),
        }
    }
    fn len(&self) -> usize {
        self.queue.len() + self.all.len()
    }
    fn get(&self, i: usize) -> Option<u64> {
        if i < self.queue.len() {
            self.queue.get(i).copied()
        } else {
            self.all.get(i - self.queue.len()).copied()
        }
    }
}

/// Style for a stage.
pub fn stage_style(stage: Stage, t: &Theme) -> Style {
    match stage {
        Stage::AwaitingApproval => t.pending,
        Stage::Finished(RemediationOutcome::Succeeded) => t.ok,
        Stage::Finished(
            RemediationOutcome::RolledBack
            | RemediationOutcome::Expired
            | RemediationOutcome::Aborted,
        ) => t.warn,
        Stage::Finished(RemediationOutcome::Failed | RemediationOutcome::Denied) => t.bad,
        _ => t.accent,
    }
}

fn action_text(rem: &Remediation) -> String {
    let params: Vec<String> = rem
        .action
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if params.is_empty() {
        rem.action.name.clone()
    } else {
        format!("{} {}", rem.action.name, params.join(" "))
    }
}

impl RemediationsPane {
    /// The remediation under the cursor (list) or open (detail).
    pub fn selected(&self, state: &State) -> Option<u64> {
        match self.open {
            Some(id) => Some(id),
            None => Rows::of(state).get(self.selected),
        }
    }

    /// The selected remediation if it is awaiting approval.
    pub fn selected_pending(&self, state: &State) -> Option<u64> {
        self.selected(state).filter(|id| {
            state
                .remediations
                .get(id)
                .is_some_and(|r| r.stage == Stage::AwaitingApproval)
        })
    }

    fn draw_list(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let t = ctx.theme;
        let state = ctx.state;
        let rows = Rows::of(state);
        self.selected = self.selected.min(rows.len().saturating_sub(1));
        // The queue gets the rows it needs (up to half the pane), the rest lists everything.
        let queue_h = ((rows.queue.len().max(1) + 3) as u16)
            .min(area.height / 2)
            .max(4.min(area.height));
        let [qa, aa] =
            Layout::vertical([Constraint::Length(queue_h), Constraint::Min(0)]).areas(area);
        let wide = area.width >= 110;
        let qcols = vec![
            col("#", Constraint::Length(5)),
            col("ACTION", Constraint::Fill(3)).min(20),
            col("TARGET", Constraint::Fill(2)).min(12),
            col("ENV", Constraint::Length(4)),
            col("RISK", Constraint::Length(if wide { 8 } else { 4 })),
            col("APPR", Constraint::Length(5)),
            col("WAIT", Constraint::Length(5)).drop(1),
            col(
                if wide { "EXPIRES" } else { "EXP" },
                Constraint::Length(if wide { 8 } else { 5 }),
            ),
        ];
        let in_queue = self.selected < rows.queue.len();
        if in_queue {
            self.queue_scroll.selected = self.selected;
        }
        let pending = rows.queue.len();
        let qtitle = if pending == 0 {
            " 3 Approval queue (empty) ".to_string()
        } else {
            format!(" 3 Approval queue ({pending} pending) ")
        };
        let qblock = if pending > 0 {
            block(qtitle, ctx)
        } else {
            section(qtitle, ctx)
        };
        draw_table(
            f,
            qa,
            qblock,
            &qcols,
            rows.queue.len(),
            &mut self.queue_scroll,
            in_queue,
            "nothing waiting for approval",
            ctx,
            |i| {
                let Some(rem) = state.remediations.get(&rows.queue[i]) else {
                    return Vec::new();
                };
                let given = rem.counted_approvers().len();
                vec![
                    (format!("#{}", rem.id), t.dim),
                    (action_text(rem), t.accent),
                    (resource_name(state, &rem.action.target), Style::default()),
                    (rem.environment.short().to_string(), Style::default()),
                    risk_cell(rem, wide, t),
                    (format!("{given}/{}", rem.required_approvals), t.warn),
                    (age(rem.proposed_at, ctx.now), t.dim),
                    (
                        rem.expires_at
                            .map(|e| {
                                if e > ctx.now {
                                    age(ctx.now, e)
                                } else {
                                    "now".into()
                                }
                            })
                            .unwrap_or_else(|| "—".into()),
                        t.dim,
                    ),
                ]
            },
        );
        let acols = vec![
            col("#", Constraint::Length(5)),
            col("ACTION", Constraint::Fill(3)).min(18),
            col("TARGET", Constraint::Fill(2)).min(12),
            col("ENV", Constraint::Length(4)),
            // The stage is what an operator scans for: whole, never cut.
            col("STAGE", Constraint::Length(17)),
            col("RISK", Constraint::Length(if wide { 8 } else { 4 })),
            col("AGE", Constraint::Length(5)).drop(1),
        ];
        if !in_queue {
            self.all_scroll.selected = self.selected - rows.queue.len();
        }
        draw_table(
            f,
            aa,
            section(format!(" All remediations ({}) ", rows.all.len()), ctx),
            &acols,
            rows.all.len(),
            &mut self.all_scroll,
            !in_queue,
            "no remediations yet",
            ctx,
            |i| {
                let Some(rem) = state.remediations.get(&rows.all[i]) else {
                    return Vec::new();
                };
                vec![
                    (format!("#{}", rem.id), t.dim),
                    (action_text(rem), t.accent),
                    (resource_name(state, &rem.action.target), Style::default()),
                    (rem.environment.short().to_string(), Style::default()),
                    (rem.stage.label().to_string(), stage_style(rem.stage, t)),
                    risk_cell(rem, wide, t),
                    (age(rem.proposed_at, ctx.now), t.dim),
                ]
            },
        );
    }

    fn draw_detail(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx, id: u64) {
        let state = ctx.state;
        let Some(rem) = state.remediations.get(&id) else {
            return draw_missing(
                f,
                area,
                format!(" 3 Remediations › #{id} "),
                format!("remediation #{id} is not known"),
                &mut self.detail,
                ctx,
            );
        };
        let lines = remediation_lines(rem, state, ctx);
        let title = format!(" 3 Remediations › #{} {} ", rem.id, rem.action.name);
        draw_detail(f, area, block(title, ctx), lines, &mut self.detail, ctx);
    }
}

/// The risk cell of a list row: the policy's risk, or `?` before a decision.
fn risk_cell(rem: &Remediation, wide: bool, t: &Theme) -> Cell {
    let risk = rem.decision.as_ref().map(|d| d.risk);
    (
        risk.map(|r| narrow(r.as_str(), wide))
            .unwrap_or_else(|| "?".into()),
        risk.map(|r| t.risk(r)).unwrap_or_default(),
    )
}

/// Text from outside (a file name, an object's field) as it may be drawn:
/// control characters, a terminal escape among them, become `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What the action would change, as its connector read it before approval:
/// `change` lines (`field  current → new`) and the notes that go with them.
/// Without a recorded preview, one line says so: nobody should approve blind.
pub fn preview_lines(rem: &Remediation, ctx: &Ctx) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let t = ctx.theme;
    let Some(p) = &rem.preview else {
        let line = Line::from(vec![
            Span::styled(format!("{:<12}", "change"), t.dim),
            Span::styled("no preview recorded: the live values were not read", t.bad),
        ]);
        return (vec![line], Vec::new());
    };
    let mut changes = vec![Line::from(vec![
        Span::styled(format!("{:<12}", "change"), t.dim),
        Span::raw(printable(&p.object)),
    ])];
    for c in &p.changes {
        changes.push(Line::from(vec![
            Span::raw(format!("{:<12}", "")),
            Span::raw(format!("{}  ", printable(&c.field))),
            Span::styled(printable(&c.current), t.warn),
            Span::styled(" → ", t.dim),
            Span::styled(printable(&c.new), t.accent),
        ]));
    }
    let notes = p
        .notes
        .iter()
        .map(|n| Line::styled(format!("{:<12}· {}", "", printable(n)), t.dim))
        .collect();
    (changes, notes)
}

/// The full safety-path description of a remediation (also used by the dialogs' summary).
pub fn remediation_lines(rem: &Remediation, state: &State, ctx: &Ctx) -> Vec<Line<'static>> {
    let t = ctx.theme;
    let label = t.dim;
    let field = |k: &str, v: Vec<Span<'static>>| labeled(k, 12, label, v);
    let mut lines = Vec::new();
    lines.push(field(
        "action",
        vec![Span::styled(action_text(rem), t.accent)],
    ));
    lines.push(field(
        "target",
        vec![Span::raw(format!(
            "{} ({})",
            resource_name(state, &rem.action.target),
            rem.action.target
        ))],
    ));
    lines.push(field(
        "environment",
        vec![Span::raw(format!(
            "{} · team {}",
            rem.environment.as_str(),
            rem.team
        ))],
    ));
    lines.push(field(
        "stage",
        vec![Span::styled(
            rem.stage.label().to_string(),
            stage_style(rem.stage, t),
        )],
    ));
    lines.push(field(
        "requested",
        vec![Span::raw(format!(
            "by {} at {} ({} ago)",
            rem.requested_by,
            clock(rem.proposed_at),
            age(rem.proposed_at, ctx.now)
        ))],
    ));
    if !rem.reason.is_empty() {
        lines.push(field("reason", vec![Span::raw(rem.reason.clone())]));
    }
    let mut links = Vec::new();
    if let Some(i) = rem.incident {
        links.push(format!("incident #{i}"));
    }
    if let Some(i) = rem.investigation {
        links.push(format!("investigation #{i}"));
    }
    if !links.is_empty() {
        lines.push(field("from", vec![Span::styled(links.join(" · "), t.dim)]));
    }
    lines.push(Line::raw(""));
    lines.push(heading("Policy decision", ctx));
    match &rem.decision {
        None => lines.push(Line::styled("  not decided yet", t.dim)),
        Some(d) => {
            lines.push(field(
                "  verdict",
                vec![if d.allow {
                    Span::styled("allow", t.ok)
                } else {
                    Span::styled("deny", t.bad)
                }],
            ));
            for reason in &d.deny {
                lines.push(Line::from(vec![
                    Span::raw("    ✗ "),
                    Span::styled(reason.clone(), t.bad),
                ]));
            }
            lines.push(field(
                "  risk",
                vec![Span::styled(d.risk.as_str(), t.risk(d.risk))],
            ));
            if !d.controls.is_empty() {
                lines.push(field("  controls", vec![Span::raw(d.controls.join(", "))]));
            }
            if !d.bundle_hash.is_empty() {
                let short: String = d.bundle_hash.chars().take(12).collect();
                lines.push(field("  bundle", vec![Span::styled(short, t.dim)]));
            }
        }
    }
    lines.push(Line::raw(""));
    lines.push(heading(
        "Change (read from the live object before approval)",
        ctx,
    ));
    let (changes, notes) = preview_lines(rem, ctx);
    lines.extend(changes);
    lines.extend(notes);
    lines.push(Line::raw(""));
    lines.push(heading("Approvals", ctx));
    let missing = rem.approvals_missing();
    lines.push(field(
        "  needed",
        vec![Span::styled(
            format!(
                "{} required · {} given · {} still needed",
                rem.required_approvals,
                rem.counted_approvers().len(),
                missing
            ),
            if missing > 0 { t.warn } else { t.ok },
        )],
    ));
    if let Some(e) = rem.expires_at {
        lines.push(field(
            "  expires",
            vec![Span::styled(crate::event::rfc3339(&e), t.dim)],
        ));
    }
    for a in &rem.approvals {
        let from = a
            .source
            .as_deref()
            .map(|s| format!(" from {s}"))
            .unwrap_or_default();
        let counted = if a.by == rem.requested_by {
            " (requester: not counted)"
        } else {
            ""
        };
        let comment = if a.comment.is_empty() {
            String::new()
        } else {
            format!(": \"{}\"", a.comment)
        };
        lines.push(Line::from(vec![
            Span::styled("    ✓ ", t.ok),
            Span::styled(a.by.clone(), t.accent),
            Span::raw(format!("{from} at {}{counted}{comment}", clock(a.at))),
        ]));
    }
    if let Some(d) = &rem.denial {
        let from = d
            .source
            .as_deref()
            .map(|s| format!(" from {s}"))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled("    ✗ denied by ", t.bad),
            Span::styled(d.by.clone(), t.accent),
            Span::raw(format!("{from} at {}: \"{}\"", clock(d.at), d.comment)),
        ]));
    }
    for (to, level, at) in &rem.escalations {
        lines.push(Line::styled(
            format!("    ↑ escalated to {to} (level {level}) at {}", clock(*at)),
            t.warn,
        ));
    }
    lines.push(Line::raw(""));
    lines.push(heading("Snapshot", ctx));
    match &rem.snapshot {
        Some(s) => lines.push(Line::raw(format!(
            "  {} (taken {})",
            s.summary,
            clock(s.taken_at)
        ))),
        None => lines.push(Line::styled("  not taken", t.dim)),
    }
    lines.push(heading("Execution", ctx));
    match &rem.execution {
        Some(o) => {
            lines.push(Line::styled(
                format!(
                    "  {} {}",
                    if o.success { "ok:" } else { "FAILED:" },
                    o.message
                ),
                if o.success { t.ok } else { t.bad },
            ));
            for (i, step) in o.steps.iter().enumerate() {
                lines.push(Line::raw(format!("    {}. {step}", i + 1)));
            }
        }
        None => lines.push(Line::styled("  not executed", t.dim)),
    }
    lines.push(heading("Validation", ctx));
    match &rem.validation {
        Some((passed, detail)) => lines.push(Line::styled(
            format!("  {}: {detail}", if *passed { "passed" } else { "failed" }),
            if *passed { t.ok } else { t.bad },
        )),
        None => lines.push(Line::styled("  not run", t.dim)),
    }
    lines.push(heading("Restore", ctx));
    match &rem.restore {
        Some(o) => {
            lines.push(Line::styled(
                format!(
                    "  {} {}",
                    if o.success {
                        "restored:"
                    } else {
                        "RESTORE FAILED:"
                    },
                    o.message
                ),
                if o.success { t.warn } else { t.bad },
            ));
            for (i, step) in o.steps.iter().enumerate() {
                lines.push(Line::raw(format!("    {}. {step}", i + 1)));
            }
        }
        None => lines.push(Line::styled("  not needed", t.dim)),
    }
    if let Some(detail) = &rem.detail {
        lines.push(Line::raw(""));
        lines.push(field(
            "outcome",
            vec![Span::styled(detail.clone(), stage_style(rem.stage, t))],
        ));
    }
    lines
}

impl Pane for RemediationsPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        if let Some(handled) = handle_detail(&mut self.open, &mut self.detail, action) {
            return handled;
        }
        let rows = Rows::of(ctx.state);
        let mut nav = Scroll {
            selected: self.selected,
            offset: 0,
            page: self.all_scroll.page.max(1),
        };
        if nav.navigate(action, rows.len()) {
            self.selected = nav.selected;
            return Handled::Consumed;
        }
        match action {
            Action::Open => open_detail(&mut self.open, &mut self.detail, rows.get(self.selected)),
            _ => Handled::NotConsumed,
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        match self.open {
            Some(id) => self.draw_detail(f, area, ctx, id),
            None => self.draw_list(f, area, ctx),
        }
    }

    fn hints(&self, ctx: &Ctx) -> Vec<Action> {
        let mut hints = view_hints(self.open.is_some(), vec![Action::Down, Action::Open]);
        if self.selected_pending(ctx.state).is_some() {
            hints.push(Action::Approve);
            hints.push(Action::Deny);
        }
        hints
    }

    fn on_focus(&mut self, ctx: &Ctx) {
        // The first pending row is selected on entry, so `a` acts on what the operator was called for.
        if self.open.is_none() && !ctx.state.approval_queue().is_empty() {
            self.selected = 0;
        }
    }
}
