//! Pane 4, Security: posture score, open findings by severity, compliance
//! controls grouped by framework, and credentials nearing expiry.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{
    Ctx, DetailScroll, Handled, Pane, block, clear_filter_on_back, col, draw_detail, draw_missing,
    draw_table, handle_detail, list_hints, open_detail, resource_name, section, set_list_filter,
    view_hints,
};
use crate::event::Severity;
use crate::state::TrackedFinding;
use crate::tui::keymap::Action;
use crate::tui::widgets::{Scroll, age, bar, fit, labeled, narrow};

/// Credentials expiring within this many days are listed.
const EXPIRY_WINDOW_DAYS: i64 = 30;

/// Security pane state.
#[derive(Debug, Default)]
pub struct SecurityPane {
    scroll: Scroll,
    filter: String,
    open: Option<String>,
    detail: DetailScroll,
}

impl SecurityPane {
    fn findings<'a>(&self, ctx: &Ctx<'a>) -> Vec<&'a TrackedFinding> {
        let needle = self.filter.to_lowercase();
        ctx.state
            .security
            .open()
            .into_iter()
            .filter(|t| {
                needle.is_empty()
                    || t.finding.title.to_lowercase().contains(&needle)
                    || t.finding.id.to_lowercase().contains(&needle)
                    || t.finding.category.contains(&needle)
                    || t.finding.resource.as_str().to_lowercase().contains(&needle)
            })
            .collect()
    }

    fn draw_list(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let t = ctx.theme;
        let state = ctx.state;
        let open = state.security.open();
        let score = state.security.posture_score();
        let mut by_sev: BTreeMap<Severity, usize> = BTreeMap::new();
        for f in &open {
            *by_sev.entry(f.finding.severity).or_default() += 1;
        }
        let [top, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        let score_style = if score >= 80 {
            t.ok
        } else if score >= 50 {
            t.warn
        } else {
            t.bad
        };
        let mut spans = vec![
            Span::styled(" posture ", t.dim),
            Span::styled(format!("{score}/100 "), score_style),
        ];
        spans.extend(bar(score as f64 / 100.0, 10, score_style, t.bar_empty));
        for sev in [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
        ] {
            let n = by_sev.get(&sev).copied().unwrap_or(0);
            spans.push(Span::raw("  "));
            spans.push(Span::styled(
                format!("{n} {}", sev.as_str()),
                if n > 0 { t.severity(sev) } else { t.dim },
            ));
        }
        f.render_widget(Paragraph::new(Line::from(spans)).style(t.base), top);

        let side_by_side = rest.width >= 110;
        let (findings_area, lower) = if side_by_side {
            let [a, b] = Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(rest);
            (a, b)
        } else {
            let [a, b] = Layout::vertical([Constraint::Fill(3), Constraint::Fill(2)]).areas(rest);
            (a, b)
        };
        let list = self.findings(ctx);
        let columns = vec![
            col("SEV", Constraint::Length(if side_by_side { 8 } else { 4 })),
            col("CAT", Constraint::Length(10)),
            col("FINDING", Constraint::Fill(3)),
            col("RESOURCE", Constraint::Fill(1)),
            col("SEEN", Constraint::Length(4)),
        ];
        let title = if self.filter.is_empty() {
            format!(" 4 Security findings ({}) ", list.len())
        } else {
            format!(
                " 4 Security findings ({} matching /{}) ",
                list.len(),
                self.filter
            )
        };
        draw_table(
            f,
            findings_area,
            block(title, ctx),
            &columns,
            list.len(),
            &mut self.scroll,
            true,
            "no open findings",
            ctx,
            |i| {
                let fd = &list[i].finding;
                let sev = narrow(fd.severity.as_str(), side_by_side);
                vec![
                    (sev, t.severity(fd.severity)),
                    (fd.category.clone(), t.dim),
                    (fd.title.clone(), Style::default()),
                    (resource_name(state, &fd.resource), t.dim),
                    (age(list[i].first_seen, ctx.now), t.dim),
                ]
            },
        );

        let [comp_area, cred_area] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(lower);
        // Compliance controls grouped by framework (`SOC2:CC6.1` → SOC2).
        let mut frameworks: BTreeMap<String, Vec<&TrackedFinding>> = BTreeMap::new();
        for tf in state.security.findings.values() {
            if let Some(control) = &tf.finding.control {
                let fw = control.split(':').next().unwrap_or(control).to_string();
                frameworks.entry(fw).or_default().push(tf);
            }
        }
        let width = comp_area.width.saturating_sub(2) as usize;
        let mut lines = Vec::new();
        for (fw, items) in &frameworks {
            let failing = items.iter().filter(|x| x.finding.open).count();
            lines.push(Line::from(vec![
                Span::styled(format!("{fw} "), t.header),
                Span::styled(
                    format!("{} of {} failing", failing, items.len()),
                    if failing > 0 { t.warn } else { t.ok },
                ),
            ]));
            for x in items {
                let control = x.finding.control.clone().unwrap_or_default();
                let mark = if x.finding.open { "✗" } else { "✓" };
                let style = if x.finding.open {
                    t.severity(x.finding.severity)
                } else {
                    t.ok
                };
                let text = fit(&format!(" {mark} {control} {}", x.finding.title), width);
                lines.push(Line::styled(text, style));
            }
        }
        if lines.is_empty() {
            lines.push(Line::styled("no compliance results yet", t.dim));
        }
        f.render_widget(
            Paragraph::new(lines).block(section(" Compliance ".into(), ctx)),
            comp_area,
        );

        let mut creds: Vec<&TrackedFinding> = state
            .security
            .findings
            .values()
            .filter(|x| x.finding.open && x.finding.expires_at.is_some())
            .filter(|x| {
                x.finding
                    .expires_at
                    .is_some_and(|e| (e - ctx.now).num_days() <= EXPIRY_WINDOW_DAYS)
            })
            .collect();
        creds.sort_by_key(|x| x.finding.expires_at);
        let width = cred_area.width.saturating_sub(2) as usize;
        let mut lines = Vec::new();
        for c in &creds {
            let e = c.finding.expires_at.unwrap_or(ctx.now);
            let when = if e <= ctx.now {
                "EXPIRED".to_string()
            } else {
                format!("in {}", age(ctx.now, e))
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{when:<8}"), t.severity(c.finding.severity)),
                Span::raw(fit(
                    &format!(" {}", c.finding.title),
                    width.saturating_sub(8),
                )),
            ]));
        }
        if lines.is_empty() {
            lines.push(Line::styled(
                format!("none within {EXPIRY_WINDOW_DAYS} days"),
                t.dim,
            ));
        }
        f.render_widget(
            Paragraph::new(lines).block(section(" Credentials expiring ".into(), ctx)),
            cred_area,
        );
    }
}

impl Pane for SecurityPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        if let Some(handled) = handle_detail(&mut self.open, &mut self.detail, action) {
            return handled;
        }
        let list = self.findings(ctx);
        if self.scroll.navigate(action, list.len()) {
            return Handled::Consumed;
        }
        match action {
            Action::Open => {
                self.scroll.clamp(list.len());
                let id = list.get(self.scroll.selected).map(|x| x.finding.id.clone());
                open_detail(&mut self.open, &mut self.detail, id)
            }
            _ => clear_filter_on_back(action, &mut self.filter),
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let Some(id) = self.open.clone() else {
            return self.draw_list(f, area, ctx);
        };
        let t = ctx.theme;
        let title = format!(" 4 Security › {id} ");
        let Some(x) = ctx.state.security.findings.get(&id) else {
            return draw_missing(
                f,
                area,
                title,
                format!("finding {id} is not known"),
                &mut self.detail,
                ctx,
            );
        };
        let mut lines = Vec::new();
        let fd = &x.finding;
        let row = |k: &str, v: String, s: Style| labeled(k, 11, t.dim, vec![Span::styled(v, s)]);
        lines.push(row("finding", fd.title.clone(), t.accent));
        lines.push(row("id", fd.id.clone(), Style::default()));
        lines.push(row(
            "severity",
            fd.severity.as_str().into(),
            t.severity(fd.severity),
        ));
        lines.push(row("category", fd.category.clone(), Style::default()));
        lines.push(row("resource", fd.resource.to_string(), Style::default()));
        if let Some(c) = &fd.control {
            lines.push(row("control", c.clone(), Style::default()));
        }
        if let Some(e) = fd.expires_at {
            lines.push(row("expires", crate::event::rfc3339(&e), t.warn));
        }
        lines.push(row(
            "status",
            if fd.open {
                "open".into()
            } else {
                "closed".into()
            },
            Style::default(),
        ));
        lines.push(row(
            "seen",
            format!(
                "first {} · last {}",
                crate::event::rfc3339(&x.first_seen),
                crate::event::rfc3339(&x.last_seen)
            ),
            t.dim,
        ));
        if !fd.detail.is_empty() {
            lines.push(Line::raw(""));
            lines.push(Line::raw(fd.detail.clone()));
        }
        draw_detail(f, area, block(title, ctx), lines, &mut self.detail, ctx);
    }

    fn hints(&self, _ctx: &Ctx) -> Vec<Action> {
        view_hints(self.open.is_some(), list_hints())
    }

    fn set_filter(&mut self, text: &str) -> bool {
        set_list_filter(&mut self.filter, &mut self.scroll, text)
    }

    fn filter(&self) -> &str {
        &self.filter
    }
}
