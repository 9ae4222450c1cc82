//! Pane 5, Cost: daily spend by service, team (as a bar chart) and
//! environment, each team's budget burn, anomalies with what was expected
//! and over which window, and recommendations with their monthly savings.
//! `p` proposes the selected recommendation; the policy and approvals decide.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, Paragraph};

use super::{Ctx, Handled, Pane, block, col, draw_table, resource_name, section};
use crate::runtime::command::Command;
use crate::state::{Cost, CostRecommendationView};
use crate::tui::keymap::Action;
use crate::tui::widgets::{Scroll, bar, clock, fit, money};

/// Cost pane state: the cursor moves over the recommendations.
#[derive(Debug, Default)]
pub struct CostPane {
    scroll: Scroll,
    anomalies: Scroll,
    /// Spend sums by service, team and environment, rebuilt when cost samples arrive.
    spend: Option<(u64, [Spend; 3])>,
    /// A proposal the last key asked for.
    pending: Option<Command>,
    /// Why usage is unknown for some resources, rebuilt when resources change.
    usage_unknown: Option<(u64, Option<String>)>,
}

/// Why usage is unknown for some resources (rightsizing is silent for them).
fn usage_unknown_note(state: &crate::state::State) -> Option<String> {
    crate::event::usage_unknown_summary(state.fleet.resources.values().filter_map(|v| {
        v.resource
            .attributes
            .get(crate::event::USAGE_UNKNOWN)
            .map(String::as_str)
    }))
}

/// Spend per group key, largest first.
type Spend = Vec<(String, u64)>;

/// Recommendations as listed: largest saving first.
fn recommendations(cost: &Cost) -> Vec<&CostRecommendationView> {
    let mut list: Vec<&CostRecommendationView> = cost.recommendations.values().collect();
    list.sort_by(|a, b| {
        b.monthly_savings_cents
            .cmp(&a.monthly_savings_cents)
            .then(a.title.cmp(&b.title))
    });
    list
}

fn spend_block(f: &mut Frame, area: Rect, title: &str, rows: &[(String, u64)], ctx: &Ctx) {
    let t = ctx.theme;
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let width = area.width.saturating_sub(2) as usize;
    let value_w = 9usize;
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
        Paragraph::new(lines).block(section(
            format!(" {title} · {}/day ", money(total, true)),
            ctx,
        )),
        area,
    );
}

/// Spend per team as horizontal bars: comparing teams is a glance, not a read.
fn team_chart(f: &mut Frame, area: Rect, rows: &[(String, u64)], ctx: &Ctx) {
    let t = ctx.theme;
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let section = section(format!(" by team · {}/day ", money(total, true)), ctx);
    if rows.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("no samples yet", t.dim)).block(section),
            area,
        );
        return;
    }
    let label_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).min(10);
    let bars: Vec<Bar> = rows
        .iter()
        .map(|(team, cents)| {
            Bar::default()
                .value(*cents)
                .label(Line::from(fit(team, label_w)))
                .text_value(money(*cents, true))
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

/// Each budgeted team's burn rate as a bar (full = spending the whole budget by month end).
fn budgets_block(f: &mut Frame, area: Rect, cost: &Cost, ctx: &Ctx) {
    let t = ctx.theme;
    let over = cost.budgets.values().filter(|b| b.alert).count();
    let title = if over > 0 {
        format!(" budgets · {over} over pace ")
    } else {
        " budgets ".to_string()
    };
    let width = area.width.saturating_sub(2) as usize;
    let name_w = 9usize;
    let bar_w = width.saturating_sub(name_w + 7).clamp(1, 12);
    let mut lines: Vec<Line> = Vec::new();
    for (team, b) in &cost.budgets {
        let style = if b.alert { t.bad } else { t.ok };
        let mut spans = vec![Span::raw(format!(
            "{:<name_w$}",
            fit(team, name_w.saturating_sub(1))
        ))];
        spans.extend(bar(b.burn_rate, bar_w, style, t.bar_empty));
        spans.push(Span::styled(format!(" {:>4.2}×", b.burn_rate), style));
        lines.push(Line::from(spans));
    }
    if lines.is_empty() {
        lines.push(Line::styled("no budgets set ([cost] budgets)", t.dim));
    }
    f.render_widget(Paragraph::new(lines).block(section(title, ctx)), area);
}

impl Pane for CostPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        let list = recommendations(&ctx.state.cost);
        if action == Action::ApplyRecommendation {
            self.scroll.clamp(list.len());
            if let Some(r) = list.get(self.scroll.selected) {
                self.pending = Some(Command::ApplyRecommendation {
                    resource: r.resource.clone(),
                });
            }
            return Handled::Consumed;
        }
        Handled::consumed_if(self.scroll.navigate(action, list.len()))
    }

    fn take_command(&mut self) -> Option<Command> {
        self.pending.take()
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
            if area.width >= 110 {
                let [a, b, c, d] = Layout::horizontal([Constraint::Fill(1); 4]).areas(spend);
                spend_block(f, a, "by service", s, ctx);
                team_chart(f, b, tm, ctx);
                spend_block(f, c, "by env", e, ctx);
                budgets_block(f, d, cost, ctx);
            } else {
                let [b, c, d] = Layout::horizontal([Constraint::Fill(1); 3]).areas(spend);
                team_chart(f, b, tm, ctx);
                spend_block(f, c, "by env", e, ctx);
                budgets_block(f, d, cost, ctx);
            }
        }

        let list: Vec<_> = cost.anomalies.iter().rev().collect();
        let state = ctx.state;
        let wide = area.width >= 110;
        let mut columns = vec![
            col("WHEN", Constraint::Length(8)),
            col("SERVICE", Constraint::Fill(1)),
            col("RESOURCE", Constraint::Fill(1)),
            col("EXPECTED", Constraint::Length(9)),
            col("ACTUAL", Constraint::Length(9)),
            col("Δ", Constraint::Length(6)),
        ];
        if wide {
            columns.push(col("WINDOW", Constraint::Fill(2)));
        }
        draw_table(
            f,
            anomalies,
            section(format!(" Anomalies ({}) · per day ", list.len()), ctx),
            &columns,
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
                let mut row = vec![
                    (clock(a.at), t.dim),
                    (a.service.clone(), t.accent),
                    (resource_name(state, &a.resource), Style::default()),
                    (money(a.expected_cents, false), t.dim),
                    (money(a.actual_cents, false), t.bad),
                    (delta, t.bad),
                ];
                if wide {
                    row.push((a.window.clone(), t.dim));
                }
                row
            },
        );

        if self
            .usage_unknown
            .as_ref()
            .is_none_or(|(g, _)| *g != ctx.gens.resources)
        {
            self.usage_unknown = Some((ctx.gens.resources, usage_unknown_note(state)));
        }
        let recs = match self.usage_unknown.as_ref().and_then(|(_, n)| n.as_deref()) {
            Some(note) if recs.height > 3 => {
                let [table, line] =
                    Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(recs);
                f.render_widget(
                    Paragraph::new(Line::styled(fit(note, line.width as usize), t.warn)),
                    line,
                );
                table
            }
            _ => recs,
        };
        let recs_list = recommendations(cost);
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
        vec![Action::Down, Action::ApplyRecommendation]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventKind, NewEvent, USAGE_UNKNOWN};
    use crate::tui::keymap::Keymap;
    use crate::tui::panes::Generations;
    use crate::tui::panes::fleet::FleetChanges;
    use crate::tui::testing::{fixture_now, fixture_state};
    use crate::tui::theme::Theme;

    fn screen(state: &crate::state::State, gens: Generations) -> String {
        let theme = Theme::default_theme();
        let keymap = Keymap::default();
        let changes = FleetChanges::default();
        let ctx = Ctx {
            state,
            theme: &theme,
            keymap: &keymap,
            now: fixture_now(),
            gens,
            fleet_changes: &changes,
            read_only: false,
        };
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).expect("terminal");
        let mut pane = CostPane::default();
        terminal
            .draw(|f| pane.draw(f, f.area(), &ctx))
            .expect("draw");
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_pane_says_why_usage_is_unknown() {
        let mut state = fixture_state();
        let gens = Generations {
            fleet: 1,
            resources: 1,
            cost: 1,
            any: 1,
        };
        assert!(!screen(&state, gens).contains("usage unknown"));
        let id = state.fleet.resources.keys().next().unwrap().clone();
        let kind = EventKind::ResourceChanged {
            resource: id,
            changes: [(
                USAGE_UNKNOWN.to_string(),
                "usage unknown: metrics.k8s.io not served (404); install metrics-server"
                    .to_string(),
            )]
            .into_iter()
            .collect(),
        };
        let (event, _) = Event::seal(
            state.last_seq + 1,
            Default::default(),
            NewEvent::new(fixture_now(), "t", kind),
        );
        state.apply(&event);
        let shown = screen(
            &state,
            Generations {
                resources: 2,
                ..gens
            },
        );
        assert!(
            shown.contains(
                "usage unknown for 1 resource(s): metrics.k8s.io not served (404); install metrics-server"
            ),
            "{shown}"
        );
    }
}
