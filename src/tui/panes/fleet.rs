//! Pane 1, Fleet: every resource with its health and reason; drill into one
//! for its recent events, open incidents and the actions taken on it.
//!
//! The sorted, filtered row list is cached and rebuilt only when the fleet,
//! the sort or the filter changes; each frame formats only the visible rows,
//! so a fleet of 50,000 resources draws as fast as one of fifty.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Ctx, DetailScroll, Handled, Pane, block, col, draw_detail, draw_table, heading};
use crate::event::{HealthStatus, ResourceId};
use crate::state::{HealthCounts, IncidentStatus, ResourceView};
use crate::tui::keymap::Action;
use crate::tui::widgets::{Scroll, age};

/// Sort orders, cycled with the sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FleetSort {
    /// Worst health first, then name.
    #[default]
    Health,
    Name,
    /// Production first.
    Environment,
    Team,
    /// Newest first.
    Age,
}

impl FleetSort {
    fn next(self) -> FleetSort {
        match self {
            FleetSort::Health => FleetSort::Name,
            FleetSort::Name => FleetSort::Environment,
            FleetSort::Environment => FleetSort::Team,
            FleetSort::Team => FleetSort::Age,
            FleetSort::Age => FleetSort::Health,
        }
    }
    fn label(self) -> &'static str {
        match self {
            FleetSort::Health => "health",
            FleetSort::Name => "name",
            FleetSort::Environment => "env",
            FleetSort::Team => "team",
            FleetSort::Age => "age",
        }
    }
}

#[derive(Debug, Default)]
struct Cache {
    key: Option<(u64, FleetSort, String)>,
    rows: Vec<ResourceId>,
    counts: HealthCounts,
    total: usize,
}

/// Fleet pane state.
#[derive(Debug, Default)]
pub struct FleetPane {
    scroll: Scroll,
    sort: FleetSort,
    filter: String,
    drill: Option<ResourceId>,
    detail: DetailScroll,
    cache: Cache,
}

fn health_rank(h: HealthStatus) -> u8 {
    match h {
        HealthStatus::Unhealthy => 0,
        HealthStatus::Degraded => 1,
        HealthStatus::Unknown => 2,
        HealthStatus::Healthy => 3,
    }
}

fn matches(view: &ResourceView, needle: &str) -> bool {
    let r = &view.resource;
    [
        r.name.as_str(),
        r.kind.as_str(),
        r.provider.label(),
        r.environment.as_str(),
        r.team.as_str(),
        r.health.status.as_str(),
        r.health.reason.as_str(),
        r.id.as_str(),
    ]
    .iter()
    .any(|f| f.to_lowercase().contains(needle))
}

impl FleetPane {
    fn refresh(&mut self, ctx: &Ctx) {
        let key = (ctx.gens.fleet, self.sort, self.filter.clone());
        if self.cache.key.as_ref() == Some(&key) {
            return;
        }
        let fleet = &ctx.state.fleet;
        let needle = self.filter.to_lowercase();
        let mut views: Vec<&ResourceView> = fleet
            .resources
            .values()
            .filter(|v| needle.is_empty() || matches(v, &needle))
            .collect();
        match self.sort {
            FleetSort::Health => views.sort_by(|a, b| {
                health_rank(a.resource.health.status)
                    .cmp(&health_rank(b.resource.health.status))
                    .then_with(|| b.resource.environment.cmp(&a.resource.environment))
                    .then_with(|| a.resource.name.cmp(&b.resource.name))
            }),
            FleetSort::Name => views.sort_by(|a, b| a.resource.name.cmp(&b.resource.name)),
            FleetSort::Environment => views.sort_by(|a, b| {
                b.resource
                    .environment
                    .cmp(&a.resource.environment)
                    .then_with(|| a.resource.name.cmp(&b.resource.name))
            }),
            FleetSort::Team => views.sort_by(|a, b| {
                a.resource
                    .team
                    .cmp(&b.resource.team)
                    .then_with(|| a.resource.name.cmp(&b.resource.name))
            }),
            FleetSort::Age => views.sort_by(|a, b| {
                b.resource
                    .created_at
                    .cmp(&a.resource.created_at)
                    .then_with(|| a.resource.name.cmp(&b.resource.name))
            }),
        }
        // Keep the same resource selected across a rebuild when it is still listed.
        let selected = self.cache.rows.get(self.scroll.selected).cloned();
        self.cache.rows = views.iter().map(|v| v.resource.id.clone()).collect();
        if let Some(id) = selected {
            if let Some(pos) = self.cache.rows.iter().position(|r| *r == id) {
                self.scroll.selected = pos;
            }
        }
        self.cache.counts = fleet.health_counts();
        self.cache.total = fleet.resources.len();
        self.cache.key = Some(key);
    }

    /// The resource currently drilled into.
    pub fn drilled(&self) -> Option<&ResourceId> {
        self.drill.as_ref()
    }

    fn draw_list(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        self.refresh(ctx);
        let [summary, table] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        let c = self.cache.counts;
        let t = ctx.theme;
        // Narrow screens get the short form so the whole line fits in 80 columns.
        let wide = area.width >= 100;
        let (res, h, d, u, k, sort) = if wide {
            (
                "resources  ",
                "healthy",
                "degraded",
                "unhealthy",
                "unknown",
                "   sort: ",
            )
        } else {
            ("", "ok", "degr", "unhl", "unkn", "  sort:")
        };
        let mut spans = vec![
            Span::styled(format!(" {} ", self.cache.total), t.accent),
            Span::raw(res),
            Span::styled(format!("● {} {h}", c.healthy), t.ok),
            Span::raw("  "),
            Span::styled(format!("● {} {d}", c.degraded), t.warn),
            Span::raw("  "),
            Span::styled(format!("● {} {u}", c.unhealthy), t.bad),
            Span::raw("  "),
            Span::styled(format!("● {} {k}", c.unknown), t.unknown),
            Span::styled(format!("{sort}{}", self.sort.label()), t.dim),
        ];
        if !self.filter.is_empty() {
            spans.push(Span::styled(format!("  filter: {}", self.filter), t.accent));
        }
        f.render_widget(Paragraph::new(Line::from(spans)).style(t.base), summary);

        let wide = table.width >= 110;
        let columns = if wide {
            vec![
                col("NAME", Constraint::Fill(3)),
                col("KIND", Constraint::Length(14)),
                col("PROV", Constraint::Length(5)),
                col("ENV", Constraint::Length(4)),
                col("TEAM", Constraint::Length(10)),
                col("HEALTH", Constraint::Length(9)),
                col("REASON", Constraint::Fill(2)),
                col("AGE", Constraint::Length(5)),
            ]
        } else {
            vec![
                col("NAME", Constraint::Fill(3)),
                col("KIND", Constraint::Length(9)),
                col("PROV", Constraint::Length(5)),
                col("ENV", Constraint::Length(4)),
                col("TEAM", Constraint::Length(8)),
                col("HEALTH", Constraint::Length(9)),
                col("REASON", Constraint::Fill(2)),
                col("AGE", Constraint::Length(4)),
            ]
        };
        let title = format!(
            " 1 Fleet ({}{}) ",
            self.cache.rows.len(),
            if self.filter.is_empty() {
                ""
            } else {
                " matching"
            }
        );
        let rows = &self.cache.rows;
        let state = ctx.state;
        let len = rows.len();
        draw_table(
            f,
            table,
            block(title, ctx),
            &columns,
            len,
            &mut self.scroll,
            true,
            "no resources match",
            ctx,
            |i| {
                let Some(view) = state.fleet.get(&rows[i]) else {
                    return vec![(rows[i].to_string(), t.dim)];
                };
                let r = &view.resource;
                vec![
                    (r.name.clone(), t.accent),
                    (r.kind.clone(), Style::default()),
                    (r.provider.label().to_string(), Style::default()),
                    (r.environment.short().to_string(), Style::default()),
                    (r.team.clone(), Style::default()),
                    (
                        r.health.status.as_str().to_string(),
                        t.health(r.health.status),
                    ),
                    (r.health.reason.clone(), t.dim),
                    (age(r.created_at, ctx.now), t.dim),
                ]
            },
        );
    }

    fn draw_drill(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx, id: &ResourceId) {
        let t = ctx.theme;
        let state = ctx.state;
        let mut lines: Vec<Line<'static>> = Vec::new();
        let Some(view) = state.fleet.get(id) else {
            lines.push(Line::styled(format!("{id} is gone from the fleet"), t.warn));
            draw_detail(
                f,
                area,
                block(format!(" 1 Fleet › {id} "), ctx),
                lines,
                &mut self.detail,
                ctx,
            );
            return;
        };
        let r = &view.resource;
        let label = t.dim;
        let field = |k: &str, v: String, s: Style| {
            Line::from(vec![
                Span::styled(format!("{k:<11}"), label),
                Span::styled(v, s),
            ])
        };
        lines.push(field("id", r.id.to_string(), t.accent));
        lines.push(field(
            "kind",
            format!("{} · {} · {}", r.kind, r.provider.label(), r.connector),
            Style::default(),
        ));
        lines.push(field(
            "env / team",
            format!("{} / {}", r.environment.as_str(), r.team),
            Style::default(),
        ));
        let mut health = r.health.status.as_str().to_string();
        if !r.health.reason.is_empty() {
            health.push_str(&format!(": {}", r.health.reason));
        }
        lines.push(field("health", health, t.health(r.health.status)));
        if !r.health.message.is_empty() {
            lines.push(field("", r.health.message.clone(), t.dim));
        }
        lines.push(field(
            "age",
            format!(
                "{} (created {})",
                age(r.created_at, ctx.now),
                crate::event::rfc3339(&r.created_at)
            ),
            Style::default(),
        ));
        for (k, v) in &r.attributes {
            lines.push(field(k, v.clone(), Style::default()));
        }
        if !r.labels.is_empty() {
            let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            lines.push(field("labels", labels.join(" "), t.dim));
        }
        lines.push(Line::raw(""));
        lines.push(heading("Open incidents", ctx));
        let open: Vec<_> = view
            .incidents
            .iter()
            .filter_map(|i| state.incidents.get(i))
            .filter(|i| i.status != IncidentStatus::Resolved)
            .collect();
        if open.is_empty() {
            lines.push(Line::styled("  none", t.dim));
        }
        for inc in open {
            lines.push(Line::from(vec![
                Span::styled(format!("  #{:<5}", inc.id), t.dim),
                Span::styled(
                    format!("{:<9}", inc.severity.as_str()),
                    t.severity(inc.severity),
                ),
                Span::raw(format!(
                    "{} ({:?}, {} ago)",
                    inc.title,
                    inc.status,
                    age(inc.opened_at, ctx.now)
                )),
            ]));
        }
        lines.push(Line::raw(""));
        lines.push(heading("Actions taken", ctx));
        if view.remediations.is_empty() {
            lines.push(Line::styled("  none", t.dim));
        }
        for rem in view
            .remediations
            .iter()
            .filter_map(|r| state.remediations.get(r))
        {
            lines.push(Line::from(vec![
                Span::styled(format!("  #{:<5}", rem.id), t.dim),
                Span::styled(format!("{:<18}", rem.action.name), t.accent),
                Span::raw(rem.stage.label().to_string()),
            ]));
        }
        lines.push(Line::raw(""));
        lines.push(heading("Recent events", ctx));
        for (seq, summary) in view.recent.iter().rev() {
            lines.push(Line::from(vec![
                Span::styled(format!("  {seq:>6} "), t.dim),
                Span::raw(summary.clone()),
            ]));
        }
        let title = format!(" 1 Fleet › {} ", r.name);
        draw_detail(f, area, block(title, ctx), lines, &mut self.detail, ctx);
    }
}

impl Pane for FleetPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        if self.drill.is_some() {
            if action == Action::Back {
                self.drill = None;
                return Handled::Consumed;
            }
            return if self.detail.navigate(action) {
                Handled::Consumed
            } else {
                Handled::NotConsumed
            };
        }
        self.refresh(ctx);
        let len = self.cache.rows.len();
        if self.scroll.navigate(action, len) {
            return Handled::Consumed;
        }
        match action {
            Action::Open => {
                if let Some(id) = self.cache.rows.get(self.scroll.selected) {
                    self.drill = Some(id.clone());
                    self.detail = DetailScroll::default();
                }
                Handled::Consumed
            }
            Action::Sort => {
                self.sort = self.sort.next();
                Handled::Consumed
            }
            Action::Back if !self.filter.is_empty() => {
                self.filter.clear();
                Handled::Consumed
            }
            _ => Handled::NotConsumed,
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        match self.drill.clone() {
            Some(id) => self.draw_drill(f, area, ctx, &id),
            None => self.draw_list(f, area, ctx),
        }
    }

    fn hints(&self, _ctx: &Ctx) -> Vec<Action> {
        if self.drill.is_some() {
            vec![Action::Down, Action::Back]
        } else {
            vec![Action::Down, Action::Open, Action::Sort, Action::Filter]
        }
    }

    fn set_filter(&mut self, text: &str) -> bool {
        if self.filter != text {
            self.filter = text.to_string();
            self.scroll = Scroll::default();
        }
        true
    }

    fn filter(&self) -> &str {
        &self.filter
    }
}

/// Whether an event changes what the fleet list shows (bumps `Generations::fleet`).
pub fn touches_fleet(kind: &crate::event::EventKind) -> bool {
    use crate::event::EventKind::*;
    matches!(
        kind,
        ResourceDiscovered { .. }
            | ResourceChanged { .. }
            | ResourceGone { .. }
            | HealthChanged { .. }
    )
}
