//! Pane 2, Investigations: the list (newest first) and the detail view with
//! evidence, hypotheses ranked with confidence bars and the evidence each
//! cites, and the reasoning timeline.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{
    Ctx, DetailScroll, Handled, Pane, block, clear_filter_on_back, col, draw_detail, draw_missing,
    draw_table, handle_detail, heading, list_hints, open_detail, resource_name, set_list_filter,
    view_hints,
};
use crate::runtime::command::Command;
use crate::state::{Investigation, InvestigationStatus, State};
use crate::tui::keymap::Action;
use crate::tui::widgets::{Scroll, age, bar, clock, duration, labeled, narrow};

/// Investigations pane state.
#[derive(Debug, Default)]
pub struct InvestigationsPane {
    scroll: Scroll,
    filter: String,
    open: Option<u64>,
    detail: DetailScroll,
    /// The hypothesis feedback keys act on, in the open investigation.
    hypothesis: usize,
    /// Feedback the last key asked to record.
    pending: Option<Command>,
}

fn status_label(inv: &Investigation) -> &'static str {
    match inv.status {
        InvestigationStatus::Running => "running",
        InvestigationStatus::Concluded => "concluded",
    }
}

impl InvestigationsPane {
    /// Ids shown in the list, newest first, filtered.
    fn ids(&self, state: &State) -> Vec<u64> {
        let needle = self.filter.to_lowercase();
        state
            .investigations
            .values()
            .rev()
            .filter(|inv| {
                needle.is_empty()
                    || inv.alert.to_lowercase().contains(&needle)
                    || inv.resource.as_str().to_lowercase().contains(&needle)
                    || inv.severity.as_str().contains(&needle)
                    || inv
                        .top()
                        .is_some_and(|h| h.title.to_lowercase().contains(&needle))
            })
            .map(|inv| inv.id)
            .collect()
    }

    fn draw_list(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let t = ctx.theme;
        let state = ctx.state;
        let ids = self.ids(state);
        let wide = area.width >= 110;
        let columns = if wide {
            vec![
                col("ALERT", Constraint::Fill(2)),
                col("SEV", Constraint::Length(8)),
                col("RESOURCE", Constraint::Fill(2)),
                col("STATUS", Constraint::Length(9)),
                col("TOP HYPOTHESIS", Constraint::Fill(3)),
                col("CONF", Constraint::Length(4)),
                col("STARTED", Constraint::Length(8)),
                col("DUR", Constraint::Length(5)),
            ]
        } else {
            vec![
                // START goes first, then DUR: the alert, the resource and
                // the hypothesis are what is read at 80 columns.
                col("ALERT", Constraint::Fill(2)).min(18),
                col("SEV", Constraint::Length(4)),
                col("RESOURCE", Constraint::Fill(2)).min(14),
                col("STAT", Constraint::Length(4)),
                col("TOP HYPOTHESIS", Constraint::Fill(3)).min(22),
                col("CONF", Constraint::Length(4)),
                col("START", Constraint::Length(5)).drop(2),
                col("DUR", Constraint::Length(4)).drop(1),
            ]
        };
        let mut title = format!(" 2 Investigations ({}) ", ids.len());
        if !self.filter.is_empty() {
            title = format!(
                " 2 Investigations ({} matching /{}) ",
                ids.len(),
                self.filter
            );
        }
        draw_table(
            f,
            area,
            block(title, ctx),
            &columns,
            ids.len(),
            &mut self.scroll,
            true,
            "no investigations yet",
            ctx,
            |i| {
                let Some(inv) = state.investigations.get(&ids[i]) else {
                    return Vec::new();
                };
                let end = inv.concluded_at.unwrap_or(ctx.now);
                let (top, conf) = match inv.top() {
                    Some(h) => (h.title.clone(), format!("{:.0}%", h.confidence * 100.0)),
                    None => ("—".into(), "—".into()),
                };
                let sev = narrow(inv.severity.as_str(), wide);
                let status = narrow(status_label(inv), wide);
                vec![
                    (inv.alert.clone(), t.accent),
                    (sev, t.severity(inv.severity)),
                    (resource_name(state, &inv.resource), Style::default()),
                    (
                        status,
                        if inv.status == InvestigationStatus::Running {
                            t.warn
                        } else {
                            t.ok
                        },
                    ),
                    (top, Style::default()),
                    (conf, t.accent),
                    (
                        if wide {
                            clock(inv.started_at)
                        } else {
                            age(inv.started_at, ctx.now)
                        },
                        t.dim,
                    ),
                    (duration((end - inv.started_at).num_seconds()), t.dim),
                ]
            },
        );
    }

    fn draw_detail(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx, id: u64) {
        let t = ctx.theme;
        let state = ctx.state;
        let mut lines: Vec<Line<'static>> = Vec::new();
        let Some(inv) = state.investigations.get(&id) else {
            return draw_missing(
                f,
                area,
                format!(" 2 Investigations › #{id} "),
                format!("investigation #{id} is not known"),
                &mut self.detail,
                ctx,
            );
        };
        let label = t.dim;
        let field = |k: &str, v: Vec<Span<'static>>| labeled(k, 11, label, v);
        lines.push(field(
            "alert",
            vec![
                Span::styled(inv.alert.clone(), t.accent),
                Span::raw(" "),
                Span::styled(
                    format!("[{}]", inv.severity.as_str()),
                    t.severity(inv.severity),
                ),
            ],
        ));
        lines.push(field(
            "resource",
            vec![Span::raw(format!(
                "{} ({})",
                resource_name(state, &inv.resource),
                inv.resource
            ))],
        ));
        let end = inv.concluded_at.unwrap_or(ctx.now);
        lines.push(field(
            "status",
            vec![
                Span::styled(
                    status_label(inv),
                    if inv.status == InvestigationStatus::Running {
                        t.warn
                    } else {
                        t.ok
                    },
                ),
                Span::styled(
                    format!(
                        "  incident #{} · started {} · took {}",
                        inv.incident,
                        clock(inv.started_at),
                        duration((end - inv.started_at).num_seconds())
                    ),
                    t.dim,
                ),
            ],
        ));
        if let Some(c) = &inv.conclusion {
            lines.push(field("conclusion", vec![Span::styled(c.clone(), t.accent)]));
        }
        lines.push(Line::raw(""));
        lines.push(heading(
            &format!("Hypotheses ({})", inv.hypotheses.len()),
            ctx,
        ));
        if inv.hypotheses.is_empty() {
            lines.push(Line::styled("  none ranked yet", t.dim));
        }
        let bar_w = if area.width >= 100 { 20 } else { 10 };
        let selected = self.hypothesis.min(inv.hypotheses.len().saturating_sub(1));
        for (rank, h) in inv.hypotheses.iter().enumerate() {
            let marker = if rank == selected { "▸" } else { " " };
            let mut spans = vec![Span::styled(format!("{marker} {}. ", rank + 1), t.dim)];
            spans.extend(bar(h.confidence, bar_w, t.bar, t.bar_empty));
            spans.push(Span::styled(
                format!(" {:>3.0}% ", h.confidence * 100.0),
                t.accent,
            ));
            spans.push(Span::styled(
                h.title.clone(),
                if rank == 0 {
                    t.accent
                } else {
                    Style::default()
                },
            ));
            match inv.feedback.get(&h.title) {
                Some((true, by)) => {
                    spans.push(Span::styled(format!("  ✓ confirmed by {by}"), t.ok))
                }
                Some((false, by)) => {
                    spans.push(Span::styled(format!("  ✗ refuted by {by}"), t.bad))
                }
                None => {}
            }
            lines.push(Line::from(spans));
            let cites = if h.cites.is_empty() {
                "nothing".to_string()
            } else {
                h.cites.join(", ")
            };
            lines.push(Line::from(vec![
                Span::raw("     cites "),
                Span::styled(cites, t.key),
                Span::styled(format!(" — {}", h.reasoning), t.dim),
            ]));
            if let Some(a) = &h.recommended_action {
                let params: Vec<String> =
                    a.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                lines.push(Line::styled(
                    format!("     suggests {} {}", a.name, params.join(" ")),
                    t.dim,
                ));
            }
        }
        lines.push(Line::raw(""));
        lines.push(heading(&format!("Evidence ({})", inv.evidence.len()), ctx));
        for e in &inv.evidence {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<4}", e.id), t.key),
                Span::styled(format!("[{}] ", e.source), t.dim),
                Span::raw(e.summary.clone()),
            ]));
            for d in &e.detail {
                lines.push(Line::styled(format!("        {d}"), t.dim));
            }
        }
        lines.push(Line::raw(""));
        lines.push(heading("Timeline", ctx));
        for entry in &inv.timeline {
            lines.push(Line::from(vec![
                Span::styled(format!("  {} ", clock(entry.at)), t.dim),
                Span::raw(entry.text.clone()),
            ]));
        }
        let title = format!(" 2 Investigations › #{} {} ", inv.id, inv.alert);
        draw_detail(f, area, block(title, ctx), lines, &mut self.detail, ctx);
    }
}

impl Pane for InvestigationsPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        if let Some(id) = self.open
            && matches!(
                action,
                Action::NextHypothesis | Action::Confirm | Action::Refute
            )
        {
            let titles: Vec<&str> = ctx
                .state
                .investigations
                .get(&id)
                .map(|inv| inv.hypotheses.iter().map(|h| h.title.as_str()).collect())
                .unwrap_or_default();
            if titles.is_empty() {
                return Handled::Consumed;
            }
            self.hypothesis = self.hypothesis.min(titles.len() - 1);
            match action {
                Action::NextHypothesis => self.hypothesis = (self.hypothesis + 1) % titles.len(),
                _ => {
                    self.pending = Some(Command::HypothesisFeedback {
                        investigation: id,
                        hypothesis: titles[self.hypothesis].to_string(),
                        confirmed: action == Action::Confirm,
                    });
                }
            }
            return Handled::Consumed;
        }
        if action == Action::Open {
            self.hypothesis = 0;
        }
        if let Some(handled) = handle_detail(&mut self.open, &mut self.detail, action) {
            return handled;
        }
        let ids = self.ids(ctx.state);
        if self.scroll.navigate(action, ids.len()) {
            return Handled::Consumed;
        }
        match action {
            Action::Open => {
                self.scroll.clamp(ids.len());
                let id = ids.get(self.scroll.selected).copied();
                open_detail(&mut self.open, &mut self.detail, id)
            }
            _ => clear_filter_on_back(action, &mut self.filter),
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        match self.open {
            Some(id) => self.draw_detail(f, area, ctx, id),
            None => self.draw_list(f, area, ctx),
        }
    }

    fn hints(&self, _ctx: &Ctx) -> Vec<Action> {
        let mut hints = view_hints(self.open.is_some(), list_hints());
        if self.open.is_some() {
            hints.extend([Action::NextHypothesis, Action::Confirm, Action::Refute]);
        }
        hints
    }

    fn take_command(&mut self) -> Option<Command> {
        self.pending.take()
    }

    fn set_filter(&mut self, text: &str) -> bool {
        set_list_filter(&mut self.filter, &mut self.scroll, text)
    }

    fn filter(&self) -> &str {
        &self.filter
    }
}
