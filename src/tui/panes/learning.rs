//! Pane 6, Learning: what the learning cycles found, from their
//! `learning_insight` events — mean time to resolve per incident type as bars,
//! each playbook's success, restores and time to validation, hypothesis
//! accuracy and recommended thresholds, the MTTR trend as a sparkline, and
//! every insight with its evidence. `:learn` runs a cycle now.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, Paragraph, Sparkline};

use super::{Ctx, Handled, Pane, block, col, draw_table, section};
use crate::state::InsightView;
use crate::tui::keymap::Action;
use crate::tui::widgets::{Scroll, bar, clock, fit};

/// Learning pane state: the cursor moves over the insights.
#[derive(Debug, Default)]
pub struct LearningPane {
    rates: Scroll,
    insights: Scroll,
}

fn metric(i: &InsightView, key: &str) -> f64 {
    i.metrics.get(key).copied().unwrap_or(0.0)
}

/// Mean time to resolve per incident type, as horizontal bars.
fn mttr_chart(f: &mut Frame, area: Rect, rows: &[&InsightView], ctx: &Ctx) {
    let t = ctx.theme;
    let section = section(" MTTR by incident type (min) ".into(), ctx);
    if rows.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("no incident resolved yet", t.dim)).block(section),
            area,
        );
        return;
    }
    let label_w = (area.width as usize / 3).clamp(6, 24);
    let bars: Vec<Bar> = rows
        .iter()
        .map(|i| {
            let name = i.topic.trim_start_matches("mttr:");
            let minutes = metric(i, "mttr_minutes");
            // The trend arrow goes in the label: the bar's value text must stay
            // ASCII (ratatui splits it by bytes where the bar ends).
            let arrow = match i.metrics.get("trend_minutes") {
                Some(d) if *d <= 0.0 => " ↓",
                Some(_) => " ↑",
                None => "",
            };
            Bar::default()
                // Tenths of a minute, so sub-minute incidents still show a bar.
                .value((minutes * 10.0).round().max(0.0) as u64)
                .label(Line::from(format!(
                    "{}{arrow}",
                    fit(name, label_w.saturating_sub(arrow.chars().count()))
                )))
                .text_value(format!("{minutes:.1}"))
                .style(t.bar)
                .value_style(t.selected)
        })
        .collect();
    f.render_widget(
        BarChart::horizontal(bars)
            .block(section)
            .bar_width(1)
            .bar_gap(0)
            .direction(Direction::Horizontal),
        area,
    );
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
        let latest = &learning.latest;
        let with = |prefix: &str| -> Vec<&InsightView> {
            latest
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v)
                .collect()
        };
        let mttr = with("mttr:");
        let mut playbooks = with("playbook:");
        playbooks.extend(with("action:"));
        let mut findings: Vec<&InsightView> = with("hypotheses:");
        findings.extend(with("threshold:"));

        let top_h =
            ((mttr.len().max(playbooks.len()) as u16) + 3).clamp(4, (area.height / 3).max(4));
        let [top, trend, insights] = Layout::vertical([
            Constraint::Length(top_h),
            Constraint::Length(
                (findings.len() as u16 + 2)
                    .clamp(4, 7)
                    .min(area.height / 4)
                    .max(3),
            ),
            Constraint::Min(0),
        ])
        .areas(area);
        let [chart, rates] =
            Layout::horizontal([Constraint::Fill(2), Constraint::Fill(3)]).areas(top);
        mttr_chart(f, chart, &mttr, ctx);

        let bar_w = if area.width >= 110 { 10 } else { 5 };
        draw_table(
            f,
            rates,
            section(" Playbooks ".into(), ctx),
            &[
                // Narrow: RESTORED goes first, then VALIDATED, so the
                // playbook's name and its success rate stay whole.
                col("PLAYBOOK", Constraint::Fill(2)).min(18),
                col("RUNS", Constraint::Length(4)),
                col("OK", Constraint::Length(3)),
                col("RESTORED", Constraint::Length(8)).drop(2),
                col("SUCCESS", Constraint::Length(bar_w as u16 + 5)),
                col("VALIDATED", Constraint::Length(9)).drop(1),
            ],
            playbooks.len(),
            &mut self.rates,
            false,
            "no remediation has finished yet",
            ctx,
            |i| {
                let p = playbooks[i];
                let runs = metric(p, "runs");
                let name = p.topic.split_once(':').map_or(p.topic.as_str(), |x| x.1);
                let (rate, style) = match p.metrics.get("success_rate") {
                    Some(r) if runs > 0.0 => {
                        let spans = bar(*r, bar_w, t.bar, t.bar_empty);
                        let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
                        let style = if *r >= 0.9 {
                            t.ok
                        } else if *r >= 0.6 {
                            t.warn
                        } else {
                            t.bad
                        };
                        (format!("{text} {:>3.0}%", r * 100.0), style)
                    }
                    _ => ("not run".into(), t.dim),
                };
                vec![
                    (name.to_string(), t.accent),
                    (format!("{runs:.0}"), Style::default()),
                    (format!("{:.0}", metric(p, "succeeded")), t.ok),
                    (format!("{:.0}", metric(p, "restores")), t.warn),
                    (rate, style),
                    (
                        p.metrics
                            .get("validation_secs")
                            .map_or("—".into(), |s| format!("{s:.0} s")),
                        t.dim,
                    ),
                ]
            },
        );

        let [spark, found] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(2)]).areas(trend);
        let samples: Vec<f64> = learning.mttr.iter().map(|m| m.minutes).collect();
        let trend_block = if samples.is_empty() {
            section(" MTTR trend ".into(), ctx)
        } else {
            let avg = samples.iter().sum::<f64>() / samples.len() as f64;
            let last = samples.last().copied().unwrap_or(0.0);
            section(
                format!(" MTTR trend · last {last:.1} · avg {avg:.1} min "),
                ctx,
            )
        };
        let inner = trend_block.inner(spark);
        f.render_widget(trend_block, spark);
        // The newest samples that fit, in tenths of a minute.
        let width = inner.width as usize;
        let data: Vec<u64> = samples
            .iter()
            .skip(samples.len().saturating_sub(width))
            .map(|m| (m * 10.0).round().max(0.0) as u64)
            .collect();
        f.render_widget(Sparkline::default().data(&data).style(t.bar), inner);

        let w = found.width.saturating_sub(2) as usize;
        let mut lines: Vec<Line> = findings
            .iter()
            .map(|i| Line::raw(fit(&i.insight, w)))
            .collect();
        if lines.is_empty() {
            lines.push(Line::styled(
                "no operator verdicts or validations to learn thresholds from yet (y/n on a hypothesis)",
                t.dim,
            ));
        }
        f.render_widget(
            Paragraph::new(lines).block(section(" Hypotheses and thresholds ".into(), ctx)),
            found,
        );

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
                Span::styled(fit(&ins.topic, 28), t.accent),
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
            lines.push(Line::styled("no insights yet (:learn runs a cycle)", t.dim));
        }
        f.render_widget(Paragraph::new(lines).style(t.base), inner);
    }

    fn hints(&self, _ctx: &Ctx) -> Vec<Action> {
        vec![Action::Down]
    }
}
