//! The seven panes. Each one owns its UI state, handles actions (saying
//! whether it consumed them), draws itself, and lists the actions it offers
//! so the footer and help are built from the same source.

pub mod cost;
pub mod events;
pub mod fleet;
pub mod investigations;
pub mod learning;
pub mod remediations;
pub mod security;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use super::keymap::{Action, Keymap};
use super::theme::Theme;
use super::widgets::{Scroll, fit};
use crate::state::State;

/// Whether a pane used an action or lets it fall through to the global keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Consumed,
    NotConsumed,
}

impl Handled {
    /// `Consumed` when the action was `used`, else `NotConsumed`.
    pub fn consumed_if(used: bool) -> Handled {
        if used {
            Handled::Consumed
        } else {
            Handled::NotConsumed
        }
    }
}

/// Counters that say when cached views must be rebuilt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generations {
    /// Bumped when a resource is discovered, removed or changes health.
    pub fleet: u64,
    /// Bumped when anything a resource says changes: what bumps `fleet`,
    /// and its attributes changing.
    pub resources: u64,
    /// Bumped when a cost sample arrives.
    pub cost: u64,
    /// Bumped on every event.
    pub any: u64,
}

/// What a pane needs to handle keys and draw.
pub struct Ctx<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
    pub keymap: &'a Keymap,
    pub now: DateTime<Utc>,
    pub gens: Generations,
    /// Which resources changed at which fleet generation.
    pub fleet_changes: &'a fleet::FleetChanges,
    pub read_only: bool,
}

/// The panes, in their numbered order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaneId {
    Fleet,
    Investigations,
    Remediations,
    Security,
    Cost,
    Learning,
    Events,
}

impl PaneId {
    /// All panes in order (1–7).
    pub const ALL: [PaneId; 7] = [
        PaneId::Fleet,
        PaneId::Investigations,
        PaneId::Remediations,
        PaneId::Security,
        PaneId::Cost,
        PaneId::Learning,
        PaneId::Events,
    ];

    /// Position in the tab bar, 0-based.
    pub fn index(self) -> usize {
        PaneId::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// Full title.
    pub fn title(self) -> &'static str {
        match self {
            PaneId::Fleet => "Fleet",
            PaneId::Investigations => "Investigations",
            PaneId::Remediations => "Remediations",
            PaneId::Security => "Security",
            PaneId::Cost => "Cost",
            PaneId::Learning => "Learning",
            PaneId::Events => "Events",
        }
    }

    /// Title for narrow screens.
    pub fn short(self) -> &'static str {
        match self {
            PaneId::Fleet => "Fleet",
            PaneId::Investigations => "Inv",
            PaneId::Remediations => "Rem",
            PaneId::Security => "Sec",
            PaneId::Cost => "Cost",
            PaneId::Learning => "Learn",
            PaneId::Events => "Events",
        }
    }

    /// The action that focuses this pane.
    pub fn action(self) -> Action {
        match self {
            PaneId::Fleet => Action::Fleet,
            PaneId::Investigations => Action::Investigations,
            PaneId::Remediations => Action::Remediations,
            PaneId::Security => Action::Security,
            PaneId::Cost => Action::Cost,
            PaneId::Learning => Action::Learning,
            PaneId::Events => Action::Events,
        }
    }

    /// The pane an action focuses, if it is a pane action.
    pub fn from_action(action: Action) -> Option<PaneId> {
        PaneId::ALL.into_iter().find(|p| p.action() == action)
    }
}

/// One pane of the console.
pub trait Pane {
    /// Handles an action; `NotConsumed` lets the global keys have it.
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled;
    /// Draws the pane into `area`.
    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx);
    /// The actions this pane offers in its current view, for footer and help.
    fn hints(&self, ctx: &Ctx) -> Vec<Action>;
    /// Sets the filter text; false when the pane has no filter.
    fn set_filter(&mut self, _text: &str) -> bool {
        false
    }
    /// The current filter text.
    fn filter(&self) -> &str {
        ""
    }
    /// Called when the pane gains focus.
    fn on_focus(&mut self, _ctx: &Ctx) {}
    /// A command the last handled key asks the runtime for, taken once.
    fn take_command(&mut self) -> Option<crate::runtime::command::Command> {
        None
    }
}

/// Navigation hints shared by list views.
pub fn list_hints() -> Vec<Action> {
    vec![Action::Down, Action::Open, Action::Filter]
}

/// The hints of a pane with a list and a detail view: scrolling and Back
/// while the detail is open, else the list's own `list` hints.
pub fn view_hints(detail_open: bool, list: Vec<Action>) -> Vec<Action> {
    if detail_open {
        vec![Action::Down, Action::Back]
    } else {
        list
    }
}

/// Handles a key while a detail view is open: Back closes it, navigation
/// scrolls it. `None` when no detail is open, so the list gets the key.
pub fn handle_detail<T>(
    open: &mut Option<T>,
    detail: &mut DetailScroll,
    action: Action,
) -> Option<Handled> {
    open.as_ref()?;
    if action == Action::Back {
        *open = None;
        return Some(Handled::Consumed);
    }
    Some(Handled::consumed_if(detail.navigate(action)))
}

/// A filtered list's last resort: Back clears a set filter; any other key
/// (or Back with no filter) falls through to the global keys.
pub fn clear_filter_on_back(action: Action, filter: &mut String) -> Handled {
    if action == Action::Back && !filter.is_empty() {
        filter.clear();
        Handled::Consumed
    } else {
        Handled::NotConsumed
    }
}

/// Opens `item` (the selected row, if any) in a detail view scrolled to the
/// top. Open is consumed even on an empty list, so it never falls through.
pub fn open_detail<T>(open: &mut Option<T>, detail: &mut DetailScroll, item: Option<T>) -> Handled {
    if let Some(item) = item {
        *open = Some(item);
        *detail = DetailScroll::default();
    }
    Handled::Consumed
}

/// Sets a list's filter text; a changed filter starts the list from the top.
pub fn set_list_filter(filter: &mut String, scroll: &mut Scroll, text: &str) -> bool {
    if filter != text {
        *filter = text.to_string();
        *scroll = Scroll::default();
    }
    true
}

/// Draws the detail view of an item the state no longer knows: one warning line.
pub fn draw_missing(
    f: &mut Frame,
    area: Rect,
    title: String,
    message: String,
    scroll: &mut DetailScroll,
    ctx: &Ctx,
) {
    let lines = vec![Line::styled(message, ctx.theme.warn)];
    draw_detail(f, area, block(title, ctx), lines, scroll, ctx);
}

/// A table column: header, width, and when it gives way on a narrow screen.
pub struct Column {
    pub title: &'static str,
    pub width: Constraint,
    /// Fewest cells a `Fill` column is worth showing in (a `Length` column
    /// needs its length).
    pub min: u16,
    /// 0: always shown; otherwise the column is dropped when the table does
    /// not fit, highest number first.
    pub drop: u8,
}

/// Shorthand for a column that is always shown (a `Fill` column at least 8 wide).
pub fn col(title: &'static str, width: Constraint) -> Column {
    let min = match width {
        Constraint::Length(n) | Constraint::Min(n) | Constraint::Max(n) => n,
        _ => 8,
    };
    Column {
        title,
        width,
        min,
        drop: 0,
    }
}

impl Column {
    /// The column is dropped on a narrow screen; higher `rank` goes first.
    pub fn drop(mut self, rank: u8) -> Column {
        self.drop = rank;
        self
    }

    /// A `Fill` column needs at least `min` cells, else droppable columns go.
    pub fn min(mut self, min: u16) -> Column {
        self.min = min;
        self
    }
}

/// Which columns fit in `width` cells (1 cell between columns): droppable
/// columns go, highest rank first, until the minimum widths fit.
pub fn fitting_columns(columns: &[Column], width: u16) -> Vec<bool> {
    let mut keep = vec![true; columns.len()];
    let need = |keep: &[bool]| -> usize {
        let kept: Vec<&Column> = columns
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c)
            .collect();
        kept.iter().map(|c| c.min as usize).sum::<usize>() + kept.len().saturating_sub(1)
    };
    while need(&keep) > width as usize {
        let victim = columns
            .iter()
            .enumerate()
            .filter(|(i, c)| keep[*i] && c.drop > 0)
            .max_by_key(|(i, c)| (c.drop, *i))
            .map(|(i, _)| i);
        match victim {
            Some(i) => keep[i] = false,
            None => break,
        }
    }
    keep
}

/// One table cell: text and style.
pub type Cell = (String, Style);

/// Draws a table of `len` rows, building only the visible ones. `row(i)`
/// returns row `i`'s cells; text is fitted to the column width with `…`.
#[allow(clippy::too_many_arguments)]
pub fn draw_table(
    f: &mut Frame,
    area: Rect,
    block: Block,
    columns: &[Column],
    len: usize,
    scroll: &mut Scroll,
    highlight: bool,
    empty: &str,
    ctx: &Ctx,
    mut row: impl FnMut(usize) -> Vec<Cell>,
) {
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let keep = fitting_columns(columns, inner.width);
    let shown: Vec<&Column> = columns
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c)
        .collect();
    let widths: Vec<u16> = Layout::horizontal(shown.iter().map(|c| c.width))
        .spacing(1)
        .split(Rect::new(0, 0, inner.width, 1))
        .iter()
        .map(|r| r.width)
        .collect();
    let header = Row::new(
        shown
            .iter()
            .zip(&widths)
            .map(|(c, w)| Span::raw(fit(c.title, *w as usize))),
    )
    .style(ctx.theme.header);
    let body_height = inner.height.saturating_sub(1) as usize;
    let range = scroll.visible(len, body_height);
    let rows: Vec<Row> = range
        .clone()
        .map(|i| {
            let cells = row(i);
            let r = Row::new(
                cells
                    .into_iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(c, _)| c)
                    .zip(&widths)
                    .map(|((text, style), w)| Span::styled(fit(&text, *w as usize), style)),
            );
            if highlight && i == scroll.selected {
                r.style(ctx.theme.selected)
            } else {
                r
            }
        })
        .collect();
    let table = Table::new(rows, widths.iter().map(|w| Constraint::Length(*w)))
        .header(header)
        .column_spacing(1)
        .style(ctx.theme.base);
    f.render_widget(table, inner);
    if len == 0 && inner.height > 1 {
        let msg = Rect::new(inner.x, inner.y + 1, inner.width, 1);
        f.render_widget(
            Paragraph::new(fit(empty, inner.width as usize)).style(ctx.theme.dim),
            msg,
        );
    }
}

/// A bordered block with a title, highlighted when focused.
pub fn block<'a>(title: String, ctx: &Ctx) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(ctx.theme.border_focus)
        .title(Span::styled(title, ctx.theme.title))
        .style(ctx.theme.base)
}

/// A plain bordered block for secondary sections.
pub fn section<'a>(title: String, ctx: &Ctx) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(ctx.theme.border)
        .title(Span::styled(title, ctx.theme.title))
        .style(ctx.theme.base)
}

/// Scroll position of a detail view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetailScroll {
    pub offset: usize,
    pub page: usize,
    pub max: usize,
}

impl DetailScroll {
    /// Applies a navigation action; true if it was one.
    pub fn navigate(&mut self, action: Action) -> bool {
        let page = self.page.max(1);
        match action {
            Action::Up => self.offset = self.offset.saturating_sub(1),
            Action::Down => self.offset = (self.offset + 1).min(self.max),
            Action::PageUp => self.offset = self.offset.saturating_sub(page),
            Action::PageDown => self.offset = (self.offset + page).min(self.max),
            Action::Top => self.offset = 0,
            Action::Bottom => self.offset = self.max,
            _ => return false,
        }
        true
    }
}

/// Draws a scrollable detail view of pre-built lines (long lines wrap at word boundaries).
pub fn draw_detail(
    f: &mut Frame,
    area: Rect,
    block: Block,
    lines: Vec<Line<'static>>,
    scroll: &mut DetailScroll,
    ctx: &Ctx,
) {
    let inner = block.inner(area);
    f.render_widget(block, area);
    let height = inner.height as usize;
    let wrapped: Vec<Line<'static>> = lines
        .into_iter()
        .flat_map(|l| wrap_line(l, inner.width.max(1) as usize))
        .collect();
    scroll.page = height;
    scroll.max = wrapped.len().saturating_sub(height);
    scroll.offset = scroll.offset.min(scroll.max);
    let visible: Vec<Line<'static>> = wrapped
        .into_iter()
        .skip(scroll.offset)
        .take(height)
        .collect();
    f.render_widget(Paragraph::new(visible).style(ctx.theme.base), inner);
}

/// Wraps a styled line to `width` columns, breaking after spaces where possible.
pub fn wrap_line(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    use unicode_width::UnicodeWidthChar;
    let line_style = line.style;
    let cells: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
        .collect();
    let mut rows: Vec<Vec<(char, Style)>> = Vec::new();
    let mut row: Vec<(char, Style)> = Vec::new();
    let mut used = 0usize;
    let mut last_space: Option<usize> = None;
    for (c, st) in cells {
        let w = c.width().unwrap_or(0);
        if used + w > width && !row.is_empty() {
            match last_space {
                Some(i) if i + 1 < row.len() => {
                    let rest = row.split_off(i + 1);
                    rows.push(std::mem::take(&mut row));
                    row = rest;
                }
                _ => rows.push(std::mem::take(&mut row)),
            }
            used = row.iter().map(|(c, _)| c.width().unwrap_or(0)).sum();
            last_space = row.iter().rposition(|(c, _)| *c == ' ');
        }
        if c == ' ' {
            last_space = Some(row.len());
        }
        row.push((c, st));
        used += w;
    }
    rows.push(row);
    rows.into_iter()
        .map(|r| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            let mut text = String::new();
            let mut style: Option<Style> = None;
            for (c, st) in r {
                if style.is_some_and(|s| s != st) {
                    spans.push(Span::styled(
                        std::mem::take(&mut text),
                        style.unwrap_or_default(),
                    ));
                }
                style = Some(st);
                text.push(c);
            }
            if !text.is_empty() {
                spans.push(Span::styled(text, style.unwrap_or_default()));
            }
            Line::from(spans).style(line_style)
        })
        .collect()
}

/// A section heading line inside a detail view.
pub fn heading(text: &str, ctx: &Ctx) -> Line<'static> {
    Line::from(Span::styled(text.to_string(), ctx.theme.header))
}

/// The resource's display name, or its id when the fleet does not know it.
pub fn resource_name(state: &State, id: &crate::event::ResourceId) -> String {
    state
        .fleet
        .get(id)
        .map(|v| v.resource.name.clone())
        .unwrap_or_else(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::widgets::labeled;

    #[test]
    fn detail_keys_close_scroll_or_fall_through() {
        let mut detail = DetailScroll {
            offset: 0,
            page: 5,
            max: 20,
        };
        let mut open: Option<u64> = None;
        assert_eq!(handle_detail(&mut open, &mut detail, Action::Down), None);
        assert_eq!(open_detail(&mut open, &mut detail, None), Handled::Consumed);
        assert_eq!(open, None);
        detail.offset = 7;
        assert_eq!(
            open_detail(&mut open, &mut detail, Some(3)),
            Handled::Consumed
        );
        assert_eq!((open, detail.offset), (Some(3), 0));
        let mut detail = DetailScroll {
            offset: 0,
            page: 5,
            max: 20,
        };
        assert_eq!(
            handle_detail(&mut open, &mut detail, Action::PageDown),
            Some(Handled::Consumed)
        );
        assert_eq!(detail.offset, 5);
        assert_eq!(
            handle_detail(&mut open, &mut detail, Action::Sort),
            Some(Handled::NotConsumed)
        );
        assert_eq!(
            handle_detail(&mut open, &mut detail, Action::Back),
            Some(Handled::Consumed)
        );
        assert_eq!(open, None);
    }

    #[test]
    fn filters_reset_the_list_and_back_clears_them() {
        let mut filter = String::new();
        let mut scroll = Scroll {
            selected: 9,
            offset: 4,
            page: 10,
        };
        assert!(set_list_filter(&mut filter, &mut scroll, ""));
        assert_eq!(scroll.selected, 9, "an unchanged filter keeps the place");
        assert!(set_list_filter(&mut filter, &mut scroll, "db"));
        assert_eq!((filter.as_str(), scroll), ("db", Scroll::default()));
        assert_eq!(
            clear_filter_on_back(Action::Open, &mut filter),
            Handled::NotConsumed
        );
        assert_eq!(
            clear_filter_on_back(Action::Back, &mut filter),
            Handled::Consumed
        );
        assert!(filter.is_empty());
        assert_eq!(
            clear_filter_on_back(Action::Back, &mut filter),
            Handled::NotConsumed
        );
    }

    #[test]
    fn hints_follow_the_view() {
        assert_eq!(
            view_hints(true, list_hints()),
            vec![Action::Down, Action::Back]
        );
        assert_eq!(view_hints(false, list_hints()), list_hints());
        assert_eq!(Handled::consumed_if(true), Handled::Consumed);
        assert_eq!(Handled::consumed_if(false), Handled::NotConsumed);
        let line = labeled("id", 4, Style::default(), vec![Span::raw("x")]);
        assert_eq!(line.spans[0].content, "id  ");
    }
}
