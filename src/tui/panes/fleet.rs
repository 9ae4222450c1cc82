//! Pane 1, Fleet: every resource with its health and reason; drill into one
//! for its recent events, open incidents and the actions taken on it.
//!
//! The sorted, filtered row list is cached and rebuilt only when the fleet,
//! the sort or the filter changes; each frame formats only the visible rows,
//! so a fleet of 50,000 resources draws as fast as one of fifty.

use std::cmp::Ordering;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{
    Ctx, DetailScroll, Handled, Pane, block, clear_filter_on_back, col, draw_detail, draw_missing,
    draw_table, handle_detail, heading, open_detail, set_list_filter, view_hints,
};
use crate::event::{ConnectorState, HealthStatus, ResourceId};
use crate::state::{HealthCounts, IncidentStatus, ResourceView};
use crate::tui::keymap::Action;
use crate::tui::widgets::{Scroll, age, labeled};

/// More changed resources than this since the last build means a full re-sort.
const MAX_INCREMENTAL: usize = 256;

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

/// The list order for a sort key (ties broken by name, so the order is total and stable).
fn order(sort: FleetSort, a: &ResourceView, b: &ResourceView) -> Ordering {
    let (a, b) = (&a.resource, &b.resource);
    let first = match sort {
        FleetSort::Health => health_rank(a.health.status)
            .cmp(&health_rank(b.health.status))
            .then_with(|| b.environment.cmp(&a.environment)),
        FleetSort::Name => Ordering::Equal,
        FleetSort::Environment => b.environment.cmp(&a.environment),
        FleetSort::Team => a.team.cmp(&b.team),
        FleetSort::Age => b.created_at.cmp(&a.created_at),
    };
    first
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.id.cmp(&b.id))
}

/// Case-insensitive substring test against an already lowercased needle,
/// without allocating for ASCII needles (filtering 50,000 rows per keystroke).
fn contains_ci(hay: &str, needle: &str) -> bool {
    if needle.is_ascii() {
        let n = needle.as_bytes();
        hay.len() >= n.len()
            && hay
                .as_bytes()
                .windows(n.len())
                .any(|w| w.eq_ignore_ascii_case(n))
    } else {
        hay.to_lowercase().contains(needle)
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
    .any(|f| contains_ci(f, needle))
}

impl FleetPane {
    fn refresh(&mut self, ctx: &Ctx) {
        let key = (ctx.gens.fleet, self.sort, self.filter.clone());
        if self.cache.key.as_ref() == Some(&key) {
            return;
        }
        let fleet = &ctx.state.fleet;
        let selected = self.cache.rows.get(self.scroll.selected).cloned();
        let needle = self.filter.to_lowercase();
        // A few resources changed since the last build (same sort and filter):
        // move just those rows instead of sorting the whole fleet again.
        let incremental = match &self.cache.key {
            Some((built, sort, filter)) if *sort == self.sort && *filter == self.filter => {
                ctx.fleet_changes.since(*built, MAX_INCREMENTAL)
            }
            _ => None,
        };
        if let Some(changed) = incremental {
            self.cache.rows.retain(|id| !changed.contains(id));
            for id in &changed {
                let Some(view) = fleet.get(id) else { continue };
                if !needle.is_empty() && !matches(view, &needle) {
                    continue;
                }
                let pos = self.cache.rows.partition_point(|r| {
                    fleet
                        .get(r)
                        .is_some_and(|v| order(self.sort, v, view) == Ordering::Less)
                });
                self.cache.rows.insert(pos, id.clone());
            }
        } else {
            let mut views: Vec<&ResourceView> = fleet
                .resources
                .values()
                .filter(|v| needle.is_empty() || matches(v, &needle))
                .collect();
            let sort = self.sort;
            views.sort_by(|a, b| order(sort, a, b));
            self.cache.rows = views.iter().map(|v| v.resource.id.clone()).collect();
        }
        // Keep the same resource selected across a rebuild when it is still listed.
        if let Some(id) = selected
            && let Some(pos) = self.cache.rows.iter().position(|r| *r == id)
        {
            self.scroll.selected = pos;
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
        let t = ctx.theme;
        // Connectors that are not answering normally get a line each (at most
        // three), so an expired credential or a missing section is seen
        // where the resources would be.
        let notices: Vec<Line> = ctx
            .state
            .fleet
            .connectors
            .iter()
            .filter(|(_, v)| v.status != ConnectorState::Ok)
            .take(3)
            .map(|(id, v)| {
                let style = match v.status {
                    ConnectorState::Failing => t.bad,
                    ConnectorState::Degraded => t.warn,
                    _ => t.dim,
                };
                Line::from(vec![
                    Span::styled(format!(" ▲ {id} {}: ", v.status.as_str()), style),
                    Span::styled(v.message.clone(), t.dim),
                ])
            })
            .collect();
        let [summary, notice_area, table] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(notices.len() as u16),
            Constraint::Min(0),
        ])
        .areas(area);
        if !notices.is_empty() {
            f.render_widget(Paragraph::new(notices).style(t.base), notice_area);
        }
        let c = self.cache.counts;
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
            return draw_missing(
                f,
                area,
                format!(" 1 Fleet › {id} "),
                format!("{id} is gone from the fleet"),
                &mut self.detail,
                ctx,
            );
        };
        let r = &view.resource;
        let label = t.dim;
        let field = |k: &str, v: String, s: Style| labeled(k, 11, label, vec![Span::styled(v, s)]);
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
        if let Some(handled) = handle_detail(&mut self.drill, &mut self.detail, action) {
            return handled;
        }
        self.refresh(ctx);
        let len = self.cache.rows.len();
        if self.scroll.navigate(action, len) {
            return Handled::Consumed;
        }
        match action {
            Action::Open => {
                let id = self.cache.rows.get(self.scroll.selected).cloned();
                open_detail(&mut self.drill, &mut self.detail, id)
            }
            Action::Sort => {
                self.sort = self.sort.next();
                Handled::Consumed
            }
            _ => clear_filter_on_back(action, &mut self.filter),
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        match self.drill.clone() {
            Some(id) => self.draw_drill(f, area, ctx, &id),
            None => self.draw_list(f, area, ctx),
        }
    }

    fn hints(&self, _ctx: &Ctx) -> Vec<Action> {
        view_hints(
            self.drill.is_some(),
            vec![Action::Down, Action::Open, Action::Sort, Action::Filter],
        )
    }

    fn set_filter(&mut self, text: &str) -> bool {
        set_list_filter(&mut self.filter, &mut self.scroll, text)
    }

    fn filter(&self) -> &str {
        &self.filter
    }
}

/// The resource whose place in the fleet list an event may change, if any.
/// (Attribute changes do not: the list neither sorts nor filters by them.)
pub fn fleet_change(kind: &crate::event::EventKind) -> Option<&ResourceId> {
    use crate::event::EventKind::*;
    match kind {
        ResourceDiscovered { resource } => Some(&resource.id),
        ResourceGone { resource } | HealthChanged { resource, .. } => Some(resource),
        _ => None,
    }
}

/// Recent fleet changes, so the list can move only the rows that changed.
#[derive(Debug, Default)]
pub struct FleetChanges {
    log: std::collections::VecDeque<(u64, ResourceId)>,
}

/// Changes remembered; older ones force a full rebuild.
const CHANGES_KEPT: usize = 1024;

impl FleetChanges {
    /// Records that `id` changed at fleet generation `gen`.
    pub fn record(&mut self, generation: u64, id: ResourceId) {
        self.log.push_back((generation, id));
        while self.log.len() > CHANGES_KEPT {
            self.log.pop_front();
        }
    }

    /// The distinct resources changed after generation `since`, when the log
    /// still covers them all and there are at most `max`.
    pub fn since(&self, since: u64, max: usize) -> Option<std::collections::BTreeSet<ResourceId>> {
        let oldest = self.log.front().map(|(g, _)| *g)?;
        if oldest > since + 1 {
            return None;
        }
        let changed: std::collections::BTreeSet<ResourceId> = self
            .log
            .iter()
            .filter(|(g, _)| *g > since)
            .map(|(_, id)| id.clone())
            .collect();
        (changed.len() <= max).then_some(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventKind, Health, NewEvent};
    use crate::state::State;
    use crate::tui::keymap::Keymap;
    use crate::tui::panes::Generations;
    use crate::tui::testing::{fixture_now, fixture_state};
    use crate::tui::theme::Theme;

    /// A context at the fixture clock.
    fn ctx<'a>(
        state: &'a State,
        theme: &'a Theme,
        keymap: &'a Keymap,
        changes: &'a FleetChanges,
        gens: Generations,
    ) -> Ctx<'a> {
        Ctx {
            state,
            theme,
            keymap,
            now: fixture_now(),
            gens,
            fleet_changes: changes,
            read_only: false,
        }
    }

    /// Incremental updates give exactly the order a full sort gives.
    #[test]
    fn incremental_order_matches_a_full_rebuild() {
        let mut state = fixture_state();
        let theme = Theme::default_theme();
        let keymap = Keymap::default();
        let mut changes = FleetChanges::default();
        let mut gens = Generations {
            fleet: 1,
            cost: 1,
            any: 1,
        };
        let mut pane = FleetPane::default();
        let ids: Vec<ResourceId> = state.fleet.resources.keys().cloned().collect();
        let statuses = [
            HealthStatus::Unhealthy,
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Unknown,
        ];
        for round in 0..40usize {
            pane.refresh(&ctx(&state, &theme, &keymap, &changes, gens));
            let id = ids[(round * 7) % ids.len()].clone();
            let kind = EventKind::HealthChanged {
                resource: id.clone(),
                health: Health::new(statuses[round % 4], "r", ""),
            };
            let (event, _) = Event::seal(
                state.last_seq + 1,
                Default::default(),
                NewEvent::new(fixture_now(), "t", kind),
            );
            state.apply(&event);
            gens.fleet += 1;
            changes.record(gens.fleet, id);
            let ctx = ctx(&state, &theme, &keymap, &changes, gens);
            pane.refresh(&ctx);
            let mut fresh = FleetPane {
                sort: pane.sort,
                ..FleetPane::default()
            };
            fresh.refresh(&ctx);
            assert_eq!(pane.cache.rows, fresh.cache.rows, "round {round}");
            if round == 20 {
                pane.sort = FleetSort::Team;
            }
        }
    }
}
