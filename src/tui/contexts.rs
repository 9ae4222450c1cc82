//! `:ctx`: the Kubernetes contexts the console knows of, read from the state
//! only (so it works the same attached to a remote runtime) — each context's
//! connector status and how many of its resources are listed and unhealthy.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::panes::fleet::kube_group;
use super::theme::Theme;
use super::widgets::{centered, fit};
use crate::event::{ConnectorState, HealthStatus};
use crate::state::State;

/// The connector id prefix of a Kubernetes context (`k8s:<context>`).
const PREFIX: &str = "k8s:";
/// The connector family recorded when no cluster is configured.
const FAMILY: &str = "k8s";

/// One context as `:ctx` lists it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextRow {
    pub name: String,
    /// The connector's last reported condition, if it reported one.
    pub status: Option<(ConnectorState, String)>,
    pub resources: usize,
    pub unhealthy: usize,
}

/// Every context seen in connector statuses or in the fleet, by name.
pub fn kube_contexts(state: &State) -> Vec<ContextRow> {
    with_counts(state, &resource_counts(state))
}

/// Listed and unhealthy resources per context: a walk over the whole fleet,
/// so the open `:ctx` list keeps it until the fleet changes ([`CountsCache`]).
fn resource_counts(state: &State) -> BTreeMap<String, (usize, usize)> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for view in state.fleet.resources.values() {
        if let Some((context, _)) = kube_group(&view.resource) {
            let slot = match counts.get_mut(context) {
                Some(slot) => slot,
                None => counts.entry(context.to_string()).or_default(),
            };
            slot.0 += 1;
            slot.1 += usize::from(view.resource.health.status == HealthStatus::Unhealthy);
        }
    }
    counts
}

/// Rows from the connectors' statuses (few, read every time) and the counts.
fn with_counts(state: &State, counts: &BTreeMap<String, (usize, usize)>) -> Vec<ContextRow> {
    fn row<'a>(rows: &'a mut BTreeMap<String, ContextRow>, name: &str) -> &'a mut ContextRow {
        rows.entry(name.to_string()).or_insert_with(|| ContextRow {
            name: name.to_string(),
            ..Default::default()
        })
    }
    let mut rows: BTreeMap<String, ContextRow> = BTreeMap::new();
    for (id, view) in &state.fleet.connectors {
        if let Some(name) = id.0.strip_prefix(PREFIX) {
            row(&mut rows, name).status = Some((view.status, view.message.clone()));
        }
    }
    for (name, &(resources, unhealthy)) in counts {
        let r = row(&mut rows, name);
        r.resources = resources;
        r.unhealthy = unhealthy;
    }
    rows.into_values().collect()
}

/// The per-context counts of the fleet generation they were taken at.
#[derive(Debug, Default)]
pub struct CountsCache {
    taken_at: Option<u64>,
    counts: BTreeMap<String, (usize, usize)>,
}

impl CountsCache {
    /// The rows, counting again only when the fleet changed since the last call.
    pub fn rows(&mut self, state: &State, fleet_generation: u64) -> Vec<ContextRow> {
        if self.taken_at != Some(fleet_generation) {
            self.counts = resource_counts(state);
            self.taken_at = Some(fleet_generation);
        }
        with_counts(state, &self.counts)
    }
}

/// Why there are no contexts, when the runtime recorded that none is configured.
pub fn absent_line(state: &State) -> Option<&str> {
    state
        .fleet
        .connectors
        .iter()
        .find(|(id, v)| id.0 == FAMILY && v.status == ConnectorState::Absent)
        .map(|(_, v)| v.message.as_str())
}

/// Draws the `:ctx` list over the screen; `current` is the Fleet pane's narrowing.
pub fn draw(
    f: &mut Frame,
    area: Rect,
    state: &State,
    rows: &[ContextRow],
    current: Option<&str>,
    t: &Theme,
) {
    let height = (rows.len().max(1) as u16 + 5).min(area.height);
    let r = centered(area, 96, height);
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border_focus)
        .title(Span::styled(" Kubernetes contexts ", t.dialog_title))
        .style(t.dialog);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let width = inner.width as usize;
    let mut lines = vec![Line::styled(
        fit(
            &format!(
                "   {:<24} {:<9} {:>9} {:>9}  MESSAGE",
                "CONTEXT", "STATUS", "RESOURCES", "UNHEALTHY"
            ),
            width,
        ),
        t.header,
    )];
    if rows.is_empty() {
        let text = absent_line(state).unwrap_or("no Kubernetes context is known to the runtime");
        lines.push(Line::styled(fit(&format!("   {text}"), width), t.dim));
    }
    for row in rows {
        let (status, message, style) = match &row.status {
            Some((s, m)) => {
                let style = match s {
                    ConnectorState::Ok => t.ok,
                    ConnectorState::Degraded => t.warn,
                    ConnectorState::Failing => t.bad,
                    ConnectorState::Absent => t.dim,
                };
                (s.as_str(), m.as_str(), style)
            }
            None => ("-", "", t.dim),
        };
        let mark = if current == Some(row.name.as_str()) {
            " ▸ "
        } else {
            "   "
        };
        let text = format!(
            "{mark}{:<24} {status:<9} {:>9} {:>9}  {message}",
            fit(&row.name, 24),
            row.resources,
            row.unhealthy
        );
        lines.push(Line::from(Span::styled(fit(&text, width), style)));
    }
    lines.push(Line::raw(""));
    let shown = current.map_or("all contexts".to_string(), |c| format!("context {c}"));
    lines.push(Line::styled(
        fit(
            &format!("   Fleet shows {shown} · :ctx NAME narrows it · :ctx all shows all"),
            width,
        ),
        t.dim,
    ));
    f.render_widget(Paragraph::new(lines).style(t.dialog), inner);
}
