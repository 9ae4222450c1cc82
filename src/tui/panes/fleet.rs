//! Pane 1, Fleet: every resource with its health and reason; drill into one
//! for its recent events, open incidents and the actions taken on it.
//! Kubernetes resources are grouped by context, then namespace, under header
//! rows with counts (Enter on a header folds it); `:ctx NAME` narrows the
//! pane to one context. Drilling into a Kubernetes resource asks the runtime
//! to inspect it, and the drill-down shows the events and log tail that came
//! back, with their time.
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

/// What the list is built for: fleet generation, sort, filter, context.
type CacheKey = (u64, FleetSort, String, Option<String>);

#[derive(Debug, Default)]
struct Cache {
    key: Option<CacheKey>,
    /// Matching resources in list order (ungrouped first, then by group).
    rows: Vec<Listed>,
    /// What is drawn: `rows` with group headers, folded groups left out.
    display: Vec<ListRow>,
    /// Fold state `display` was built for.
    folded_gen: u64,
    counts: HealthCounts,
    total: usize,
}

/// A Kubernetes group: (context, namespace); namespace `None` is the context itself.
type GroupKey = (String, Option<String>);

/// One drawn row.
#[derive(Debug, Clone, PartialEq)]
enum ListRow {
    Header {
        group: GroupKey,
        count: usize,
        unhealthy: usize,
    },
    /// An index into the cached rows.
    Resource(usize),
}

/// A listed resource with what the grouping needs, so laying out the rows
/// never looks the fleet up again.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    id: ResourceId,
    /// Kubernetes (context, namespace).
    group: Option<(String, String)>,
    bad: bool,
}

impl Listed {
    fn of(view: &ResourceView) -> Listed {
        let r = &view.resource;
        Listed {
            id: r.id.clone(),
            group: kube_group(r).map(|(c, ns)| (c.to_string(), ns.to_string())),
            bad: r.health.status == HealthStatus::Unhealthy,
        }
    }
}

/// The selected row, by identity.
enum Selected {
    Resource(ResourceId),
    Group(GroupKey),
}

/// Fleet pane state.
#[derive(Debug, Default)]
pub struct FleetPane {
    scroll: Scroll,
    sort: FleetSort,
    filter: String,
    /// `:ctx NAME`: only this Kubernetes context's fleet is listed.
    context: Option<String>,
    folded: std::collections::BTreeSet<GroupKey>,
    folded_gen: u64,
    drill: Option<ResourceId>,
    detail: DetailScroll,
    cache: Cache,
    /// A command the last key asks for (inspecting a drilled resource).
    pending: Option<crate::runtime::command::Command>,
}

/// The Kubernetes (context, namespace) a resource is listed under; `None`
/// for other providers, which keep the flat list. Cluster-scoped objects
/// have an empty namespace. The connector sets both attributes; ids are the
/// fallback (`k8s/<context>/[<namespace>/]<kind>/<name>`).
pub fn kube_group(r: &crate::event::Resource) -> Option<(&str, &str)> {
    if r.provider != crate::event::Provider::Kubernetes {
        return None;
    }
    let from_id: Vec<&str> =
        r.id.as_str()
            .strip_prefix("k8s/")
            .map(|rest| rest.split('/').collect())
            .unwrap_or_default();
    let context = r
        .attributes
        .get("context")
        .map(String::as_str)
        .or_else(|| from_id.first().copied())?;
    let namespace = match r.attributes.get("namespace") {
        Some(ns) => ns.as_str(),
        None if r.attributes.contains_key("context") => "",
        None if from_id.len() == 4 => from_id[1],
        None => "",
    };
    Some((context, namespace))
}

fn health_rank(h: HealthStatus) -> u8 {
    match h {
        HealthStatus::Unhealthy => 0,
        HealthStatus::Degraded => 1,
        HealthStatus::Unknown => 2,
        HealthStatus::Healthy => 3,
    }
}

/// The list order for a sort key: other providers first, then Kubernetes
/// groups by context and namespace; within a group by the sort key (ties
/// broken by name, so the order is total and stable).
fn order(sort: FleetSort, a: &ResourceView, b: &ResourceView) -> Ordering {
    let (a, b) = (&a.resource, &b.resource);
    let group = kube_group(a).cmp(&kube_group(b));
    if group != Ordering::Equal {
        return group;
    }
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
    if let Some((context, namespace)) = kube_group(r)
        && (contains_ci(context, needle) || contains_ci(namespace, needle))
    {
        return true;
    }
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
    /// Whether a resource is listed under the filter and the `:ctx` narrowing.
    fn listed(&self, view: &ResourceView, needle: &str) -> bool {
        if let Some(only) = &self.context
            && kube_group(&view.resource).map(|g| g.0) != Some(only.as_str())
        {
            return false;
        }
        needle.is_empty() || matches(view, needle)
    }

    fn refresh(&mut self, ctx: &Ctx) {
        let key = (
            ctx.gens.fleet,
            self.sort,
            self.filter.clone(),
            self.context.clone(),
        );
        if self.cache.key.as_ref() == Some(&key) {
            if self.cache.folded_gen != self.folded_gen {
                self.rebuild_display(self.selected_key());
            }
            return;
        }
        let selected = self.selected_key();
        let fleet = &ctx.state.fleet;
        let needle = self.filter.to_lowercase();
        // A few resources changed since the last build (same sort, filter and
        // context): move just those rows instead of sorting the whole fleet again.
        let incremental = match &self.cache.key {
            Some((built, sort, filter, context))
                if *sort == self.sort && *filter == self.filter && *context == self.context =>
            {
                ctx.fleet_changes.since(*built, MAX_INCREMENTAL)
            }
            _ => None,
        };
        if let Some(changed) = incremental {
            self.cache.rows.retain(|r| !changed.contains(&r.id));
            for id in &changed {
                let Some(view) = fleet.get(id) else { continue };
                if !self.listed(view, &needle) {
                    continue;
                }
                let pos = self.cache.rows.partition_point(|r| {
                    fleet
                        .get(&r.id)
                        .is_some_and(|v| order(self.sort, v, view) == Ordering::Less)
                });
                self.cache.rows.insert(pos, Listed::of(view));
            }
        } else {
            let mut views: Vec<&ResourceView> = fleet
                .resources
                .values()
                .map(|view| &**view)
                .filter(|v| self.listed(v, &needle))
                .collect();
            let sort = self.sort;
            views.sort_by(|a, b| order(sort, a, b));
            self.cache.rows = views.iter().map(|v| Listed::of(v)).collect();
        }
        self.cache.counts = fleet.health_counts();
        self.cache.total = fleet.resources.len();
        self.cache.key = Some(key);
        self.rebuild_display(selected);
    }

    /// What is selected now, to find again after a rebuild.
    fn selected_key(&self) -> Option<Selected> {
        match self.cache.display.get(self.scroll.selected)? {
            ListRow::Resource(i) => self
                .cache
                .rows
                .get(*i)
                .map(|r| Selected::Resource(r.id.clone())),
            ListRow::Header { group, .. } => Some(Selected::Group(group.clone())),
        }
    }

    /// Lays the sorted rows out with a header before each context and each
    /// namespace (counting its resources and the unhealthy ones), leaving out
    /// the rows of folded groups. One pass over the cached rows, with no
    /// fleet lookups and no allocation per resource row.
    fn rebuild_display(&mut self, selected: Option<Selected>) {
        let rows = &self.cache.rows;
        let mut display = Vec::with_capacity(rows.len() + 16);
        // Index in `display` of the open context and namespace headers.
        let mut open: [Option<usize>; 2] = [None, None];
        let mut current: Option<&(String, String)> = None;
        let mut hidden = false;
        let bump = |display: &mut Vec<ListRow>, at: Option<usize>, bad: bool| {
            if let Some(ListRow::Header {
                count, unhealthy, ..
            }) = at.and_then(|i| display.get_mut(i))
            {
                *count += 1;
                *unhealthy += usize::from(bad);
            }
        };
        for (i, row) in rows.iter().enumerate() {
            if let Some(group) = &row.group {
                let (c, ns) = group;
                let same_context = current.is_some_and(|(cc, _)| cc == c);
                if current != Some(group) {
                    if !same_context {
                        open[0] = Some(display.len());
                        display.push(ListRow::Header {
                            group: (c.clone(), None),
                            count: 0,
                            unhealthy: 0,
                        });
                    }
                    let context_folded = self.folded.contains(&(c.clone(), None));
                    let ns_key = (c.clone(), Some(ns.clone()));
                    open[1] = None;
                    if !context_folded {
                        open[1] = Some(display.len());
                        hidden = self.folded.contains(&ns_key);
                        display.push(ListRow::Header {
                            group: ns_key,
                            count: 0,
                            unhealthy: 0,
                        });
                    } else {
                        hidden = true;
                    }
                    current = Some(group);
                }
                bump(&mut display, open[0], row.bad);
                bump(&mut display, open[1], row.bad);
                if hidden {
                    continue;
                }
            }
            display.push(ListRow::Resource(i));
        }
        self.cache.display = display;
        self.cache.folded_gen = self.folded_gen;
        // Keep the same row selected across a rebuild when it is still listed.
        if let Some(sel) = selected {
            let rows = &self.cache.rows;
            let same = |r: &ListRow| match (r, &sel) {
                (ListRow::Resource(i), Selected::Resource(id)) => rows[*i].id == *id,
                (ListRow::Header { group, .. }, Selected::Group(g)) => group == g,
                _ => false,
            };
            if let Some(pos) = self.cache.display.iter().position(same) {
                self.scroll.selected = pos;
            }
        }
    }

    /// Narrows the list to one Kubernetes context (`None`: every resource).
    pub fn set_context(&mut self, context: Option<String>) {
        if self.context != context {
            self.context = context;
            self.scroll = Scroll::default();
            self.drill = None;
        }
    }

    /// The context the list is narrowed to, if any.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
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
        if let Some(c) = &self.context {
            spans.push(Span::styled(format!("  ctx: {c}"), t.accent));
        }
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
            if self.filter.is_empty() && self.context.is_none() {
                ""
            } else {
                " matching"
            }
        );
        let rows = &self.cache.display;
        let listed = &self.cache.rows;
        let folded = &self.folded;
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
                let id = match &rows[i] {
                    ListRow::Resource(at) => &listed[*at].id,
                    ListRow::Header {
                        group,
                        count,
                        unhealthy,
                    } => return header_cells(group, *count, *unhealthy, folded, wide, ctx),
                };
                let Some(view) = state.fleet.get(id) else {
                    return vec![(id.to_string(), t.dim)];
                };
                let r = &view.resource;
                // Rows under a Kubernetes group are indented beneath its headers.
                let name = if kube_group(r).is_some() {
                    format!("    {}", r.name)
                } else {
                    r.name.clone()
                };
                vec![
                    (name, t.accent),
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
        if kube_group(r).is_some() || view.inspection.is_some() {
            lines.push(Line::raw(""));
            inspection_lines(view, &mut lines, ctx);
        }
        lines.push(Line::raw(""));
        lines.push(heading("Recent events", ctx));
        for (seq, summary) in view.recent.iter().rev() {
            lines.push(Line::from(vec![
                Span::styled(format!("  {seq:>6} "), t.dim),
                Span::raw(summary.to_string()),
            ]));
        }
        let title = format!(" 1 Fleet › {} ", r.name);
        draw_detail(f, area, block(title, ctx), lines, &mut self.detail, ctx);
    }
}

/// What the last inspection brought back (events, log tail), with its time,
/// or that one is on its way.
fn inspection_lines(view: &ResourceView, lines: &mut Vec<Line<'static>>, ctx: &Ctx) {
    let t = ctx.theme;
    let Some(ins) = &view.inspection else {
        lines.push(heading("Inspection", ctx));
        lines.push(Line::styled(
            "  asked the runtime for events and the log tail; waiting for the answer…",
            t.dim,
        ));
        return;
    };
    lines.push(heading(
        &format!(
            "Inspection ({} ago, {}, for {})",
            age(ins.at, ctx.now),
            crate::event::rfc3339(&ins.at),
            ins.requested_by
        ),
        ctx,
    ));
    if let Some(e) = &ins.error {
        lines.push(Line::styled(format!("  failed: {e}"), t.bad));
    }
    for e in &ins.evidence {
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<14}", e.source), t.accent),
            Span::raw(e.summary.clone()),
        ]));
        for d in &e.detail {
            lines.push(Line::styled(format!("    {d}"), t.dim));
        }
    }
}

impl Pane for FleetPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        if let Some(handled) = handle_detail(&mut self.drill, &mut self.detail, action) {
            return handled;
        }
        self.refresh(ctx);
        let len = self.cache.display.len();
        if self.scroll.navigate(action, len) {
            return Handled::Consumed;
        }
        match action {
            Action::Open => match self.cache.display.get(self.scroll.selected).cloned() {
                Some(ListRow::Header { group, .. }) => {
                    if !self.folded.remove(&group) {
                        self.folded.insert(group);
                    }
                    self.folded_gen += 1;
                    Handled::Consumed
                }
                Some(ListRow::Resource(at)) => {
                    let Some(id) = self.cache.rows.get(at).map(|r| r.id.clone()) else {
                        return Handled::Consumed;
                    };
                    // Kubernetes resources are inspected on the way in: the
                    // runtime asks the connector for events and the log tail.
                    if ctx
                        .state
                        .fleet
                        .get(&id)
                        .is_some_and(|v| kube_group(&v.resource).is_some())
                    {
                        self.pending = Some(crate::runtime::command::Command::Inspect {
                            resource: id.clone(),
                        });
                    }
                    open_detail(&mut self.drill, &mut self.detail, Some(id))
                }
                None => Handled::Consumed,
            },
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

    fn take_command(&mut self) -> Option<crate::runtime::command::Command> {
        self.pending.take()
    }

    fn set_filter(&mut self, text: &str) -> bool {
        set_list_filter(&mut self.filter, &mut self.scroll, text)
    }

    fn filter(&self) -> &str {
        &self.filter
    }
}

/// The cells of a group header row: the group's name (indented for a
/// namespace, with a fold marker), then its counts.
fn header_cells(
    group: &GroupKey,
    count: usize,
    unhealthy: usize,
    folded: &std::collections::BTreeSet<GroupKey>,
    wide: bool,
    ctx: &Ctx,
) -> Vec<(String, Style)> {
    let t = ctx.theme;
    let mark = if folded.contains(group) { "▸" } else { "▾" };
    let (name, kind) = match &group.1 {
        None => (format!("{mark} {}", group.0), "context"),
        Some(ns) if ns.is_empty() => (format!("  {mark} (cluster)"), "namespace"),
        Some(ns) => (format!("  {mark} {ns}"), "namespace"),
    };
    let counts_style = if unhealthy > 0 { t.bad } else { t.dim };
    let plural = if count == 1 { "" } else { "s" };
    // Narrow tables carry the unhealthy count in the HEALTH column so both fit.
    let (health, reason) = if wide {
        (
            String::new(),
            format!("{count} resource{plural}, {unhealthy} unhealthy"),
        )
    } else {
        (
            format!("{unhealthy} unhl"),
            format!("{count} resource{plural}"),
        )
    };
    vec![
        (name, t.header),
        (kind.to_string(), t.dim),
        ("k8s".to_string(), t.dim),
        (String::new(), t.dim),
        (String::new(), t.dim),
        (health, counts_style),
        (reason, counts_style),
        (String::new(), t.dim),
    ]
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
            resources: 1,
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
