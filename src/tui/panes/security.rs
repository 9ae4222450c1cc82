//! Pane 4, Security: the posture score and how it was reached, the
//! vulnerability data's freshness (stale or missing data is a loud warning,
//! never an empty "no vulnerabilities"), and one list at a time — open
//! findings by severity, compliance controls by framework, credentials by
//! expiry, or Kubernetes container images — each drilling into its evidence.
//! `s` switches the list (the pane's "sort": which facts come first).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{
    Cell, Column, Ctx, DetailScroll, Handled, Pane, block, clear_filter_on_back, col, draw_detail,
    draw_missing, draw_table, handle_detail, open_detail, resource_name, section, set_list_filter,
    view_hints,
};
use crate::event::{ControlStatus, Provider, Resource, ResourceId, Severity};
use crate::state::{State, TrackedControl, TrackedFinding};
use crate::tui::keymap::Action;
use crate::tui::theme::Theme;
use crate::tui::widgets::{Scroll, age, bar, fit, labeled, narrow};

/// Frameworks in the order the pane lists them.
const FRAMEWORKS: &[&str] = &["SOC2", "PCI-DSS", "HIPAA", "CIS"];

/// Which list the pane shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum View {
    #[default]
    Findings,
    Controls,
    Credentials,
    Images,
}

impl View {
    fn next(self) -> Self {
        match self {
            View::Findings => View::Controls,
            View::Controls => View::Credentials,
            View::Credentials => View::Images,
            View::Images => View::Findings,
        }
    }

    fn name(self) -> &'static str {
        match self {
            View::Findings => "findings",
            View::Controls => "controls",
            View::Credentials => "credentials",
            View::Images => "images",
        }
    }
}

/// What a detail view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Open {
    Finding(String),
    Control(String),
    Credential(String),
}

/// Security pane state.
#[derive(Debug, Default)]
pub struct SecurityPane {
    view: View,
    scroll: Scroll,
    filter: String,
    open: Option<Open>,
    detail: DetailScroll,
    fleet: FleetIndex,
}

/// What the pane needs from the whole fleet, gathered once per change of
/// the resources: walking 50,000 of them on every frame is too slow.
#[derive(Debug, Default)]
struct FleetIndex {
    taken_at: Option<u64>,
    /// Credential resources (their rows are read fresh from the state).
    credentials: Vec<ResourceId>,
    images: Vec<ImageRow>,
}

impl FleetIndex {
    fn refresh(&mut self, ctx: &Ctx) {
        if self.taken_at == Some(ctx.gens.resources) {
            return;
        }
        self.taken_at = Some(ctx.gens.resources);
        self.credentials = ctx
            .state
            .fleet
            .resources
            .values()
            .filter(|v| v.resource.kind == "credential")
            .map(|v| v.resource.id.clone())
            .collect();
        self.images = image_rows(ctx.state);
    }
}

/// A credential as the pane lists it: the resource (when a connector lists
/// it) and its expiry (from the resource or its expiry finding).
struct CredentialRow<'a> {
    id: String,
    name: String,
    store: String,
    expires: Option<DateTime<Utc>>,
    rotated: Option<String>,
    severity: Option<Severity>,
    resource: Option<&'a Resource>,
}

/// One container image reference and the workloads running it.
#[derive(Debug)]
struct ImageRow {
    image: String,
    workloads: Vec<String>,
}

fn matches(needle: &str, fields: &[&str]) -> bool {
    needle.is_empty() || fields.iter().any(|f| f.to_lowercase().contains(needle))
}

fn status_rank(s: ControlStatus) -> u8 {
    match s {
        ControlStatus::Failing => 0,
        ControlStatus::Unknown => 1,
        ControlStatus::Passing => 2,
        ControlStatus::NotApplicable => 3,
    }
}

fn status_style(s: ControlStatus, t: &Theme) -> Style {
    match s {
        ControlStatus::Failing => t.bad,
        ControlStatus::Unknown => t.unknown,
        ControlStatus::Passing => t.ok,
        ControlStatus::NotApplicable => t.dim,
    }
}

fn status_label(s: ControlStatus) -> &'static str {
    match s {
        ControlStatus::Failing => "FAIL",
        ControlStatus::Unknown => "unknown",
        ControlStatus::Passing => "pass",
        ControlStatus::NotApplicable => "n/a",
    }
}

fn framework_rank(fw: &str) -> usize {
    FRAMEWORKS
        .iter()
        .position(|f| *f == fw)
        .unwrap_or(FRAMEWORKS.len())
}

/// Controls by framework, failing first, then unknown, passing, not applicable.
fn controls<'a>(state: &'a State, needle: &str) -> Vec<&'a TrackedControl> {
    let mut list: Vec<&TrackedControl> = state
        .security
        .controls
        .values()
        .filter(|c| {
            let r = &c.result;
            matches(
                needle,
                &[
                    &r.framework,
                    &r.control,
                    &r.title,
                    r.status.as_str(),
                    r.resource.as_ref().map(|x| x.as_str()).unwrap_or("fleet"),
                ],
            )
        })
        .collect();
    list.sort_by(|a, b| {
        let (a, b) = (&a.result, &b.result);
        framework_rank(&a.framework)
            .cmp(&framework_rank(&b.framework))
            .then(a.framework.cmp(&b.framework))
            .then(status_rank(a.status).cmp(&status_rank(b.status)))
            .then(a.control.cmp(&b.control))
            .then(a.resource.cmp(&b.resource))
    });
    list
}

/// Credential resources and credential expiry findings, soonest expiry first
/// (unknown expiry last).
fn credentials<'a>(state: &'a State, index: &FleetIndex, needle: &str) -> Vec<CredentialRow<'a>> {
    let mut rows: BTreeMap<String, CredentialRow<'a>> = BTreeMap::new();
    for id in &index.credentials {
        let Some(r) = state.fleet.resources.get(id).map(|v| &v.resource) else {
            continue;
        };
        let attr = |k: &str| r.attributes.get(k).cloned();
        rows.insert(
            r.id.to_string(),
            CredentialRow {
                id: r.id.to_string(),
                name: r.name.clone(),
                store: attr("store").unwrap_or_default(),
                expires: attr("expires_at")
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc)),
                rotated: attr("rotated_at").or_else(|| attr("created_at")),
                severity: None,
                resource: Some(r),
            },
        );
    }
    for t in state.security.findings.values() {
        let f = &t.finding;
        if !f.open || f.category != "credential" {
            continue;
        }
        let row = rows
            .entry(f.resource.to_string())
            .or_insert_with(|| CredentialRow {
                id: f.resource.to_string(),
                name: resource_name(state, &f.resource),
                store: String::new(),
                expires: None,
                rotated: None,
                severity: None,
                resource: None,
            });
        row.expires = row.expires.or(f.expires_at);
        row.severity = row.severity.max(Some(f.severity));
    }
    let mut list: Vec<CredentialRow> = rows
        .into_values()
        .filter(|c| matches(needle, &[&c.id, &c.name, &c.store]))
        .collect();
    list.sort_by(|a, b| {
        (a.expires.is_none(), a.expires, &a.id).cmp(&(b.expires.is_none(), b.expires, &b.id))
    });
    list
}

/// The image rows matching `needle`.
fn images<'a>(index: &'a FleetIndex, needle: &str) -> Vec<&'a ImageRow> {
    index
        .images
        .iter()
        .filter(|row| {
            matches(needle, &[&row.image]) || row.workloads.iter().any(|w| matches(needle, &[w]))
        })
        .collect()
}

/// Container image references of Kubernetes resources (`images`, else `image`).
fn image_rows(state: &State) -> Vec<ImageRow> {
    let mut by_image: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for view in state.fleet.resources.values() {
        let r = &view.resource;
        if r.provider != Provider::Kubernetes {
            continue;
        }
        let refs = r
            .attributes
            .get("images")
            .or_else(|| r.attributes.get("image"));
        for image in refs.into_iter().flat_map(|s| s.split(',')) {
            let image = image.trim();
            if !image.is_empty() {
                by_image
                    .entry(image.to_string())
                    .or_default()
                    .push(format!("{} {}", r.kind, r.name));
            }
        }
    }
    by_image
        .into_iter()
        .map(|(image, workloads)| ImageRow { image, workloads })
        .collect()
}

/// The vulnerability data's freshness line: missing and stale data are loud.
fn vulndb_line(ctx: &Ctx) -> Line<'static> {
    let t = ctx.theme;
    match &ctx.state.security.vulndb {
        None => Line::from(vec![Span::styled(
            " ⚠ no vulnerability data loaded: run `shieldops cve import` (no CVE findings does not mean no CVEs)",
            t.warn.add_modifier(Modifier::BOLD),
        )]),
        Some(db) => {
            let sources = db
                .sources
                .iter()
                .map(|s| format!("{} {} old", s.name, age(s.imported_at, ctx.now)))
                .collect::<Vec<_>>()
                .join(", ");
            let records: u64 = db.sources.iter().map(|s| s.records).sum();
            if db.stale || db.sources.is_empty() {
                let sources = if sources.is_empty() {
                    "no sources".to_string()
                } else {
                    sources
                };
                Line::from(vec![Span::styled(
                    format!(
                        " ⚠ STALE vulnerability data: {sources} (limit {}d) — findings may be missing; run `shieldops cve import`",
                        db.max_age_days
                    ),
                    t.bad.add_modifier(Modifier::BOLD | Modifier::REVERSED),
                )])
            } else {
                Line::from(vec![
                    Span::styled(" vulnerability data ", t.dim),
                    Span::styled(
                        format!("{sources}, {records} records (limit {}d)", db.max_age_days),
                        t.ok,
                    ),
                ])
            }
        }
    }
}

impl SecurityPane {
    fn findings<'a>(&self, ctx: &Ctx<'a>) -> Vec<&'a TrackedFinding> {
        let needle = self.filter.to_lowercase();
        ctx.state
            .security
            .open()
            .into_iter()
            .filter(|t| {
                let f = &t.finding;
                matches(
                    &needle,
                    &[&f.title, &f.id, &f.category, f.resource.as_str()],
                )
            })
            .collect()
    }

    fn len(&self, ctx: &Ctx) -> usize {
        let needle = self.filter.to_lowercase();
        match self.view {
            View::Findings => self.findings(ctx).len(),
            View::Controls => controls(ctx.state, &needle).len(),
            View::Credentials => credentials(ctx.state, &self.fleet, &needle).len(),
            View::Images => images(&self.fleet, &needle).len(),
        }
    }

    fn selected(&self, ctx: &Ctx) -> Option<Open> {
        let needle = self.filter.to_lowercase();
        let i = self.scroll.selected;
        match self.view {
            View::Findings => self
                .findings(ctx)
                .get(i)
                .map(|x| Open::Finding(x.finding.id.clone())),
            View::Controls => controls(ctx.state, &needle)
                .get(i)
                .map(|c| Open::Control(c.result.key())),
            View::Credentials => credentials(ctx.state, &self.fleet, &needle)
                .get(i)
                .map(|c| Open::Credential(c.id.clone())),
            // An image reference has nothing more to show than its row.
            View::Images => None,
        }
    }

    fn draw_list(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let t = ctx.theme;
        let state = ctx.state;
        let posture = state.security.posture();
        let mut by_sev: BTreeMap<Severity, usize> = BTreeMap::new();
        for x in state.security.open() {
            *by_sev.entry(x.finding.severity).or_default() += 1;
        }
        let [top, fresh, rest] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(area);
        let score = posture.score;
        let score_style = if score >= 80 {
            t.ok
        } else if score >= 50 {
            t.warn
        } else {
            t.bad
        };
        let wide = area.width >= 110;
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
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                format!("{n} {}", narrow(sev.as_str(), wide)),
                if n > 0 { t.severity(sev) } else { t.dim },
            ));
        }
        spans.push(Span::styled("  controls ", t.dim));
        spans.push(Span::styled(format!("{}✓ ", posture.passing), t.ok));
        spans.push(Span::styled(
            format!("{}✗ ", posture.failing),
            if posture.failing > 0 { t.bad } else { t.dim },
        ));
        spans.push(Span::styled(
            format!("{}?", posture.unknown),
            if posture.unknown > 0 {
                t.unknown
            } else {
                t.dim
            },
        ));
        f.render_widget(Paragraph::new(Line::from(spans)).style(t.base), top);
        f.render_widget(Paragraph::new(vulndb_line(ctx)).style(t.base), fresh);

        let side_by_side = rest.width >= 110;
        let (list_area, side) = if side_by_side {
            let [a, b] = Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(rest);
            (a, b)
        } else {
            let [a, b] = Layout::vertical([
                Constraint::Fill(3),
                Constraint::Length((FRAMEWORKS.len() + 2) as u16),
            ])
            .areas(rest);
            (a, b)
        };
        self.draw_view(f, list_area, ctx, side_by_side);
        self.draw_side(f, side, ctx, side_by_side);
    }

    /// The list of the current view.
    fn draw_view(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx, wide: bool) {
        let t = ctx.theme;
        let state = ctx.state;
        let needle = self.filter.to_lowercase();
        let next = self.view.next().name();
        let title = |n: usize| {
            let what = self.view.name();
            if self.filter.is_empty() {
                format!(" 4 Security {what} ({n}) · s: {next} ")
            } else {
                format!(
                    " 4 Security {what} ({n} matching /{}) · s: {next} ",
                    self.filter
                )
            }
        };
        match self.view {
            View::Findings => {
                let list = self.findings(ctx);
                let columns: Vec<Column> = vec![
                    col("SEV", Constraint::Length(if wide { 8 } else { 4 })),
                    col("CAT", Constraint::Length(if wide { 10 } else { 4 })),
                    col("FINDING", Constraint::Fill(3)),
                    col("RESOURCE", Constraint::Fill(1)),
                    col("SEEN", Constraint::Length(4)),
                ];
                let len = list.len();
                let empty = if state.security.vulndb.as_ref().is_some_and(|d| !d.stale) {
                    "no open findings"
                } else {
                    "no open findings — but the vulnerability data is missing or stale"
                };
                draw_table(
                    f,
                    area,
                    block(title(len), ctx),
                    &columns,
                    len,
                    &mut self.scroll,
                    true,
                    empty,
                    ctx,
                    |i| {
                        let fd = &list[i].finding;
                        let what = match &fd.vulnerability {
                            Some(v) => format!(
                                "{} {} {}→{}{}",
                                v.cve,
                                v.package,
                                v.installed_version,
                                v.fixed_version.as_deref().unwrap_or("no fix"),
                                v.cvss_score
                                    .map(|s| format!(" CVSS {s:.1}"))
                                    .unwrap_or_default()
                            ),
                            None => fd.title.clone(),
                        };
                        vec![
                            (narrow(fd.severity.as_str(), wide), t.severity(fd.severity)),
                            (narrow(&fd.category, wide), t.dim),
                            (what, Style::default()),
                            (resource_name(state, &fd.resource), t.dim),
                            (age(list[i].first_seen, ctx.now), t.dim),
                        ]
                    },
                );
            }
            View::Controls => {
                let list = controls(state, &needle);
                let columns: Vec<Column> = vec![
                    col("STATUS", Constraint::Length(7)),
                    col("FRAMEWORK", Constraint::Length(9)),
                    col("CONTROL", Constraint::Length(if wide { 20 } else { 12 })),
                    col("SUBJECT", Constraint::Fill(1)),
                    col("EVIDENCE", Constraint::Fill(2)),
                ];
                let len = list.len();
                draw_table(
                    f,
                    area,
                    block(title(len), ctx),
                    &columns,
                    len,
                    &mut self.scroll,
                    true,
                    "no compliance results yet",
                    ctx,
                    |i| {
                        let r = &list[i].result;
                        vec![
                            (status_label(r.status).into(), status_style(r.status, t)),
                            (r.framework.clone(), t.dim),
                            (r.control.clone(), Style::default()),
                            (
                                r.resource
                                    .as_ref()
                                    .map(|x| resource_name(state, x))
                                    .unwrap_or_else(|| "fleet".into()),
                                t.dim,
                            ),
                            (r.evidence.join("; "), t.dim),
                        ]
                    },
                );
            }
            View::Credentials => {
                let list = credentials(state, &self.fleet, &needle);
                let columns: Vec<Column> = vec![
                    col("EXPIRES", Constraint::Length(9)),
                    col("CREDENTIAL", Constraint::Fill(2)),
                    col("STORE", Constraint::Length(if wide { 14 } else { 8 })),
                    col("ROTATED", Constraint::Fill(1)),
                ];
                let len = list.len();
                draw_table(
                    f,
                    area,
                    block(title(len), ctx),
                    &columns,
                    len,
                    &mut self.scroll,
                    true,
                    "no credentials known",
                    ctx,
                    |i| credential_cells(&list[i], ctx),
                );
            }
            View::Images => {
                let list = images(&self.fleet, &needle);
                let [note, table] =
                    Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
                f.render_widget(
                    Paragraph::new(fit(
                        " image references only: image contents are not scanned (out of scope)",
                        note.width as usize,
                    ))
                    .style(t.warn),
                    note,
                );
                let columns: Vec<Column> = vec![
                    col("IMAGE", Constraint::Fill(2)),
                    col("N", Constraint::Length(3)),
                    col("WORKLOADS", Constraint::Fill(2)),
                ];
                let len = list.len();
                draw_table(
                    f,
                    table,
                    block(title(len), ctx),
                    &columns,
                    len,
                    &mut self.scroll,
                    true,
                    "no Kubernetes container images known",
                    ctx,
                    |i| {
                        vec![
                            (list[i].image.clone(), Style::default()),
                            (list[i].workloads.len().to_string(), t.dim),
                            (list[i].workloads.join(", "), t.dim),
                        ]
                    },
                );
            }
        }
    }

    /// Controls by framework and the credentials expiring soonest.
    fn draw_side(&self, f: &mut Frame, area: Rect, ctx: &Ctx, stacked: bool) {
        let t = ctx.theme;
        let state = ctx.state;
        let (comp_area, cred_area) = if stacked {
            let [a, b] = Layout::vertical([
                Constraint::Length((FRAMEWORKS.len() + 2) as u16),
                Constraint::Min(0),
            ])
            .areas(area);
            (a, b)
        } else {
            let [a, b] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
            (a, b)
        };
        let mut counts: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
        for c in state.security.controls.values() {
            let slot = counts.entry(c.result.framework.as_str()).or_default();
            slot[status_rank(c.result.status) as usize] += 1;
        }
        let mut names: Vec<&str> = counts.keys().copied().collect();
        names.sort_by_key(|n| (framework_rank(n), *n));
        let mut lines = Vec::new();
        for name in names {
            let [failing, unknown, passing, na] = counts[name];
            lines.push(Line::from(vec![
                Span::styled(format!("{name:<8}"), t.header),
                Span::styled(format!("{passing:>3}✓"), t.ok),
                Span::styled(
                    format!("{failing:>3}✗"),
                    if failing > 0 { t.bad } else { t.dim },
                ),
                Span::styled(
                    format!("{unknown:>3}?"),
                    if unknown > 0 { t.unknown } else { t.dim },
                ),
                Span::styled(format!("{na:>3} n/a"), t.dim),
            ]));
        }
        if lines.is_empty() {
            lines.push(Line::styled("no compliance results yet", t.dim));
        }
        f.render_widget(
            Paragraph::new(lines).block(section(" Controls by framework ".into(), ctx)),
            comp_area,
        );
        if cred_area.height < 3 {
            return;
        }
        let width = cred_area.width.saturating_sub(2) as usize;
        let lines: Vec<Line> = credentials(state, &self.fleet, "")
            .iter()
            .take(cred_area.height.saturating_sub(2) as usize)
            .map(|c| {
                let cells = credential_cells(c, ctx);
                let (when, style) = cells[0].clone();
                Line::from(vec![
                    Span::styled(format!("{when:<9}"), style),
                    Span::raw(fit(&format!(" {}", c.name), width.saturating_sub(9))),
                ])
            })
            .collect();
        let lines = if lines.is_empty() {
            vec![Line::styled("no credentials known", t.dim)]
        } else {
            lines
        };
        f.render_widget(
            Paragraph::new(lines).block(section(" Credentials by expiry ".into(), ctx)),
            cred_area,
        );
    }

    fn draw_finding(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx, id: &str) {
        let t = ctx.theme;
        let title = format!(" 4 Security › {id} ");
        let Some(x) = ctx.state.security.findings.get(id) else {
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
        if let Some(v) = &fd.vulnerability {
            lines.push(row("cve", v.cve.clone(), t.accent));
            if let Some(score) = v.cvss_score {
                lines.push(row("cvss", format!("{score:.1}"), t.severity(fd.severity)));
            }
            if let Some(vector) = &v.cvss_vector {
                lines.push(row("vector", vector.clone(), t.dim));
            }
            lines.push(row("package", v.package.clone(), Style::default()));
            lines.push(row(
                "installed",
                v.installed_version.clone(),
                Style::default(),
            ));
            lines.push(row(
                "fixed in",
                v.fixed_version
                    .clone()
                    .unwrap_or_else(|| "no fix known".into()),
                Style::default(),
            ));
            lines.push(row("source", v.source.clone(), t.dim));
            lines.push(row("why", v.reason.clone(), Style::default()));
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

    fn draw_control(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx, key: &str) {
        let t = ctx.theme;
        let title = format!(" 4 Security › {key} ");
        let Some(c) = ctx.state.security.controls.get(key) else {
            return draw_missing(
                f,
                area,
                title,
                format!("control result {key} is not known"),
                &mut self.detail,
                ctx,
            );
        };
        let r = &c.result;
        let row = |k: &str, v: String, s: Style| labeled(k, 11, t.dim, vec![Span::styled(v, s)]);
        let mut lines = vec![
            row(
                "control",
                format!("{} {}", r.framework, r.control),
                t.accent,
            ),
            row("title", r.title.clone(), Style::default()),
            row(
                "status",
                r.status.as_str().into(),
                status_style(r.status, t),
            ),
            row(
                "subject",
                r.resource
                    .as_ref()
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "fleet-wide".into()),
                Style::default(),
            ),
            row("evaluated", crate::event::rfc3339(&c.evaluated_at), t.dim),
            Line::raw(""),
            Line::styled("evidence", t.header),
        ];
        if r.evidence.is_empty() {
            lines.push(Line::styled("  (none recorded)", t.dim));
        }
        for e in &r.evidence {
            lines.push(Line::raw(format!("  {e}")));
        }
        draw_detail(f, area, block(title, ctx), lines, &mut self.detail, ctx);
    }

    fn draw_credential(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx, id: &str) {
        let t = ctx.theme;
        let title = format!(" 4 Security › {id} ");
        let list = credentials(ctx.state, &self.fleet, "");
        let Some(c) = list.iter().find(|c| c.id == id) else {
            return draw_missing(
                f,
                area,
                title,
                format!("credential {id} is not known"),
                &mut self.detail,
                ctx,
            );
        };
        let row = |k: &str, v: String, s: Style| labeled(k, 11, t.dim, vec![Span::styled(v, s)]);
        let cells = credential_cells(c, ctx);
        let mut lines = vec![
            row("credential", c.name.clone(), t.accent),
            row("id", c.id.clone(), Style::default()),
            row("expires", cells[0].0.clone(), cells[0].1),
        ];
        if let Some(r) = c.resource {
            for (k, v) in &r.attributes {
                lines.push(row(k, v.clone(), Style::default()));
            }
        }
        let related: Vec<&TrackedFinding> = ctx
            .state
            .security
            .findings
            .values()
            .filter(|x| x.finding.open && x.finding.resource.as_str() == c.id)
            .collect();
        if !related.is_empty() {
            lines.push(Line::raw(""));
            lines.push(Line::styled("open findings", t.header));
            for x in related {
                lines.push(Line::styled(
                    format!("  {} {}", x.finding.severity.as_str(), x.finding.title),
                    t.severity(x.finding.severity),
                ));
            }
        }
        draw_detail(f, area, block(title, ctx), lines, &mut self.detail, ctx);
    }
}

/// A credential's row cells: expiry, name, store, rotation age.
fn credential_cells(c: &CredentialRow, ctx: &Ctx) -> Vec<Cell> {
    let t = ctx.theme;
    let (when, style) = match c.expires {
        Some(e) if e <= ctx.now => ("EXPIRED".to_string(), t.critical),
        Some(e) => (
            format!("in {}", age(ctx.now, e)),
            match c.severity {
                Some(s) => t.severity(s),
                None if (e - ctx.now).num_days() <= 7 => t.high,
                None => t.dim,
            },
        ),
        None => ("no expiry".to_string(), t.dim),
    };
    let rotated = c
        .rotated
        .as_deref()
        .and_then(|r| DateTime::parse_from_rfc3339(r).ok())
        .map(|r| format!("{} ago", age(r.with_timezone(&Utc), ctx.now)))
        .unwrap_or_else(|| "unknown".into());
    vec![
        (when, style),
        (c.name.clone(), Style::default()),
        (c.store.clone(), t.dim),
        (rotated, t.dim),
    ]
}

impl Pane for SecurityPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        self.fleet.refresh(ctx);
        if let Some(handled) = handle_detail(&mut self.open, &mut self.detail, action) {
            return handled;
        }
        let len = self.len(ctx);
        if self.scroll.navigate(action, len) {
            return Handled::Consumed;
        }
        match action {
            Action::Open => {
                self.scroll.clamp(len);
                let item = self.selected(ctx);
                open_detail(&mut self.open, &mut self.detail, item)
            }
            Action::Sort => {
                self.view = self.view.next();
                self.scroll = Scroll::default();
                Handled::Consumed
            }
            _ => clear_filter_on_back(action, &mut self.filter),
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        self.fleet.refresh(ctx);
        match self.open.clone() {
            None => self.draw_list(f, area, ctx),
            Some(Open::Finding(id)) => self.draw_finding(f, area, ctx, &id),
            Some(Open::Control(key)) => self.draw_control(f, area, ctx, &key),
            Some(Open::Credential(id)) => self.draw_credential(f, area, ctx, &id),
        }
    }

    fn hints(&self, _ctx: &Ctx) -> Vec<Action> {
        view_hints(
            self.open.is_some(),
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
