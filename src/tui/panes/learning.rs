//! Pane 6, Learning: success rate per action (playbook), the MTTR trend as a
//! sparkline, and the insights from learning cycles.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::{Ctx, Handled, Pane, block, col, draw_table, section};
use crate::tui::keymap::Action;
use crate::tui::widgets::{Scroll, clock, fit};

/// Learning pane state: the cursor moves over the insights.
#[derive(Debug, Default)]
pub struct LearningPane {
    rates: Scroll,
    insights: Scroll,
}

impl Pane for LearningPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        Handled::consumed_if(
            self.insights
                .navigate(action, ctx.state.learning.insights.len()),
        )
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let t = ctx.theme;
        let learning = &ctx.state.learning;
        let rates_h = ((learning.by_action.len() as u16) + 3).clamp(4, (area.height / 3).max(4));
        let [rates, trend, insights] = Layout::vertical([
            Constraint::Length(rates_h),
            Constraint::Length(6.min(area.height / 4).max(3)),
            Constraint::Min(0),
        ])
        .areas(area);
        let actions: Vec<_> = learning.by_action.iter().collect();
        let bar_w = if area.width >= 110 { 20 } else { 10 };
        draw_table(
            f,
            rates,
            section(" Success rate by action ".into(), ctx),
            &[
                col("ACTION", Constraint::Fill(2)),
                col("RUNS", Constraint::Length(4)),
                col("OK", Constraint::Length(4)),
                col("RBACK", Constraint::Length(5)),
                col("FAIL", Constraint::Length(4)),
                col("SKIP", Constraint::Length(4)),
                col("RATE", Constraint::Length(bar_w as u16 + 5)),
            ],
            actions.len(),
            &mut self.rates,
            false,
            "no remediation has finished yet",
            ctx,
            |i| {
                let (name, c) = actions[i];
                let ran = c.succeeded + c.rolled_back + c.failed;
                let rate = match c.success_rate() {
                    Some(r) => {
                        let filled = (r * bar_w as f64).round() as usize;
                        format!(
                            "{}{} {:>3.0}%",
                            "█".repeat(filled),
                            "░".repeat(bar_w - filled),
                            r * 100.0
                        )
                    }
                    None => "not run".into(),
                };
                let rate_style = match c.success_rate() {
                    Some(r) if r >= 0.9 => t.ok,
                    Some(r) if r >= 0.6 => t.warn,
                    Some(_) => t.bad,
                    None => t.dim,
                };
                vec![
                    (name.clone(), t.accent),
                    (ran.to_string(), Style::default()),
                    (c.succeeded.to_string(), t.ok),
                    (c.rolled_back.to_string(), t.warn),
                    (c.failed.to_string(), t.bad),
                    (c.not_run.to_string(), t.dim),
                    (rate, rate_style),
                ]
            },
        );

        let samples: Vec<f64> = learning.mttr.iter().map(|m| m.minutes).collect();
        let trend_block = if samples.is_empty() {
            section(" MTTR trend: no incidents resolved yet ".into(), ctx)
        } else {
            let avg = samples.iter().sum::<f64>() / samples.len() as f64;
            let last = samples.last().copied().unwrap_or(0.0);
            section(
                format!(
                    " MTTR trend ({} incidents) · last {last:.1} min · avg {avg:.1} min ",
                    samples.len()
                ),
                ctx,
            )
        };
        let inner = trend_block.inner(trend);
        f.render_widget(trend_block, trend);
        // The newest samples that fit, scaled to tenths of a minute.
        let width = inner.width as usize;
        let data: Vec<u64> = samples
            .iter()
            .skip(samples.len().saturating_sub(width))
            .map(|m| (m * 10.0).round().max(0.0) as u64)
            .collect();
        f.render_widget(Sparkline::default().data(&data).style(t.bar), inner);

        let list: Vec<_> = learning.insights.iter().rev().collect();
        let w = insights.width.saturating_sub(2) as usize;
        let block = block(format!(" 6 Insights ({}) ", list.len()), ctx);
        let inner = block.inner(insights);
        f.render_widget(block, insights);
        let range = self
            .insights
            .visible(list.len(), (inner.height as usize) / 2);
        let mut lines = Vec::new();
        for i in range {
            let ins = list[i];
            let selected = i == self.insights.selected;
            let mut metrics: Vec<String> = ins
                .metrics
                .iter()
                .map(|(k, v)| format!("{k}={v:.2}"))
                .collect();
            metrics.truncate(4);
            let head = Line::from(vec![
                Span::styled(format!("{} ", clock(ins.at)), t.dim),
                Span::styled(fit(&ins.topic, 24), t.accent),
                Span::styled(format!("  {}", metrics.join(" ")), t.dim),
            ]);
            lines.push(if selected {
                head.style(t.selected)
            } else {
                head
            });
            lines.push(Line::raw(fit(&format!("  {}", ins.insight), w)));
        }
        if list.is_empty() {
            lines.push(Line::styled("no insights yet", t.dim));
        }
        f.render_widget(Paragraph::new(lines).style(t.base), inner);
    }

    fn hints(&self, _ctx: &Ctx) -> Vec<Action> {
        vec![Action::Down]
    }
}
