//! Pane 5, Cost: spend by service, team and environment (latest sample
//! window), anomalies, and recommendations with their monthly savings.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Ctx, Handled, Pane, block, col, draw_table, resource_name, section};
use crate::state::CostRecommendationView;
use crate::tui::keymap::Action;
use crate::tui::widgets::{Scroll, clock, fit, money};

/// Cost pane state: the cursor moves over the recommendations.
#[derive(Debug, Default)]
pub struct CostPane {
    scroll: Scroll,
    anomalies: Scroll,
    /// Spend sums by service, team and environment, rebuilt when cost samples arrive.
    spend: Option<(u64, [Spend; 3])>,
}

/// Spend per group key, largest first.
type Spend = Vec<(String, u64)>;

fn spend_block(f: &mut Frame, area: Rect, title: &str, rows: &[(String, u64)], ctx: &Ctx) {
    let t = ctx.theme;
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let width = area.width.saturating_sub(2) as usize;
    let value_w = 10usize;
    let lines: Vec<Line> = if rows.is_empty() {
        vec![Line::styled("no samples yet", t.dim)]
    } else {
        rows.iter()
            .map(|(k, cents)| {
                let share = if total > 0 {
                    *cents as f64 / total as f64
                } else {
                    0.0
                };
                Line::from(vec![
                    Span::raw(format!(
                        "{:<w$}",
                        fit(k, width.saturating_sub(value_w + 1)),
                        w = width.saturating_sub(value_w + 1)
                    )),
                    Span::styled(
                        format!(" {:>w$}", money(*cents, false), w = value_w),
                        if share >= 0.5 {
                            t.accent
                        } else {
                            Style::default()
                        },
                    ),
                ])
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(lines).block(section(format!(" {title} · {} ", money(total, false)), ctx)),
        area,
    );
}

impl Pane for CostPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        let len = ctx.state.cost.recommendations.len();
        Handled::consumed_if(self.scroll.navigate(action, len))
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let t = ctx.theme;
        let cost = &ctx.state.cost;
        let spend_h = 7u16.min(area.height / 3);
        let [spend, anomalies, recs] = Layout::vertical([
            Constraint::Length(spend_h),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ])
        .areas(area);
        let [by_service, by_team, by_env] =
            Layout::horizontal([Constraint::Fill(1); 3]).areas(spend);
        if self.spend.as_ref().is_none_or(|(g, _)| *g != ctx.gens.cost) {
            self.spend = Some((
                ctx.gens.cost,
                [
                    cost.spend_by(|e| e.service.clone()),
                    cost.spend_by(|e| e.team.clone()),
                    cost.spend_by(|e| e.environment.as_str().to_string()),
                ],
            ));
        }
        if let Some((_, [s, tm, e])) = &self.spend {
            spend_block(f, by_service, "by service", s, ctx);
            spend_block(f, by_team, "by team", tm, ctx);
            spend_block(f, by_env, "by env", e, ctx);
        }

        let list: Vec<_> = cost.anomalies.iter().rev().collect();
        let state = ctx.state;
        draw_table(
            f,
            anomalies,
            section(format!(" Anomalies ({}) ", list.len()), ctx),
            &[
                col("WHEN", Constraint::Length(8)),
                col("SERVICE", Constraint::Fill(1)),
                col("RESOURCE", Constraint::Fill(1)),
                col("EXPECTED", Constraint::Length(10)),
                col("ACTUAL", Constraint::Length(10)),
                col("Δ", Constraint::Length(6)),
            ],
            list.len(),
            &mut self.anomalies,
            false,
            "no anomalies",
            ctx,
            |i| {
                let a = list[i];
                let delta = if a.expected_cents > 0 {
                    format!(
                        "{:+.0}%",
                        (a.actual_cents as f64 / a.expected_cents as f64 - 1.0) * 100.0
                    )
                } else {
                    "new".into()
                };
                vec![
                    (clock(a.at), t.dim),
                    (a.service.clone(), t.accent),
                    (resource_name(state, &a.resource), Style::default()),
                    (money(a.expected_cents, false), t.dim),
                    (money(a.actual_cents, false), t.bad),
                    (delta, t.bad),
                ]
            },
        );

        let mut recs_list: Vec<&CostRecommendationView> = cost.recommendations.values().collect();
        recs_list.sort_by(|a, b| {
            b.monthly_savings_cents
                .cmp(&a.monthly_savings_cents)
                .then(a.title.cmp(&b.title))
        });
        draw_table(
            f,
            recs,
            block(
                format!(
                    " 5 Recommendations ({}) · saves {}/month ",
                    recs_list.len(),
                    money(cost.total_savings_cents(), true)
                ),
                ctx,
            ),
            &[
                col("RECOMMENDATION", Constraint::Fill(3)),
                col("RESOURCE", Constraint::Fill(1)),
                col("$/MONTH", Constraint::Length(9)),
            ],
            recs_list.len(),
            &mut self.scroll,
            true,
            "no recommendations",
            ctx,
            |i| {
                let r = recs_list[i];
                vec![
                    (r.title.clone(), Style::default()),
                    (resource_name(state, &r.resource), t.dim),
                    (money(r.monthly_savings_cents, true), t.ok),
                ]
            },
        );
    }

    fn hints(&self, _ctx: &Ctx) -> Vec<Action> {
        vec![Action::Down]
    }
}
