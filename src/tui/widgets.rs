//! Small shared pieces: scrolling cursor, text fitting, number formatting, bars.

use std::ops::Range;

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

use super::keymap::Action;

/// A selected row and the first visible row of a list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scroll {
    pub selected: usize,
    pub offset: usize,
    /// Rows shown at the last draw (used for paging).
    pub page: usize,
}

impl Scroll {
    /// Applies a navigation action to a list of `len` rows; true if it was one.
    pub fn navigate(&mut self, action: Action, len: usize) -> bool {
        let page = self.page.max(1);
        let last = len.saturating_sub(1);
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(page),
            Action::PageDown => self.selected = (self.selected + page).min(last),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = last,
            _ => return false,
        }
        true
    }

    /// Keeps the selection inside `len` rows.
    pub fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }

    /// The rows to draw in `height` lines, moving the window to keep the selection visible.
    pub fn visible(&mut self, len: usize, height: usize) -> Range<usize> {
        self.clamp(len);
        self.page = height;
        if height == 0 || len == 0 {
            self.offset = 0;
            return 0..0;
        }
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height));
        self.offset..(self.offset + height).min(len)
    }

    /// Whether the selection is on the last row (a tail view follows new rows then).
    pub fn at_end(&self, len: usize) -> bool {
        len == 0 || self.selected + 1 >= len
    }
}

/// Shortens `s` to `width` display columns, ending in `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    let total: usize = s.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// A compact age: `45s`, `12m`, `3h`, `5d`.
pub fn age(from: DateTime<Utc>, now: DateTime<Utc>) -> String {
    duration((now - from).num_seconds().max(0))
}

/// A compact duration in seconds: `45s`, `12m`, `3h05m`→`3h`, `5d`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else if secs < 86_400 {
        let h = secs / 3600;
        let m = (secs % 3600) / 60;
        if m == 0 || h >= 10 {
            format!("{h}h")
        } else {
            format!("{h}h{m:02}")
        }
    } else {
        format!("{}d", secs / 86_400)
    }
}

/// `HH:MM:SS` in UTC.
pub fn clock(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%S").to_string()
}

/// Dollars from cents: `$1,234.56`, or `$1,235` when `whole`.
pub fn money(cents: u64, whole: bool) -> String {
    let dollars = cents / 100;
    let mut digits = dollars.to_string();
    let mut grouped = String::new();
    while digits.len() > 3 {
        let tail = digits.split_off(digits.len() - 3);
        grouped = format!(",{tail}{grouped}");
    }
    grouped = format!("{digits}{grouped}");
    if whole {
        let rounded = if cents % 100 >= 50 {
            dollars + 1
        } else {
            dollars
        };
        if rounded != dollars {
            return money(rounded * 100, true);
        }
        format!("${grouped}")
    } else {
        format!("${grouped}.{:02}", cents % 100)
    }
}

/// A horizontal bar of `width` cells for a ratio in 0..=1.
pub fn bar(ratio: f64, width: usize, filled: Style, empty: Style) -> Vec<Span<'static>> {
    let ratio = if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let full = (ratio * width as f64).round() as usize;
    vec![
        Span::styled("█".repeat(full), filled),
        Span::styled("░".repeat(width - full), empty),
    ]
}

/// A centred rectangle of at most `w`×`h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// A bordered overlay centred in `area` (at most 110 columns), showing the
/// lines `body` builds for its inner width from line `scroll` (kept in
/// range here); when they overflow, the bottom border says which lines show
/// and that `keys` scroll. Shared by the `:agents` and `:cluster` views.
pub fn scrolling_overlay(
    f: &mut ratatui::Frame,
    area: Rect,
    title: &str,
    body: impl FnOnce(usize) -> Vec<Line<'static>>,
    scroll: &mut usize,
    keys: &str,
    t: &super::theme::Theme,
) {
    use ratatui::widgets::{Block, Borders, Clear, Paragraph};
    let r = centered(area, 110, area.height.saturating_sub(2).max(3));
    let width = r.width.saturating_sub(2) as usize;
    let body = body(width);
    let height = (body.len() as u16 + 2).min(r.height);
    let r = Rect { height, ..r };
    let page = height.saturating_sub(2) as usize;
    let total = body.len();
    *scroll = (*scroll).min(total.saturating_sub(page));
    let more = if total > page {
        format!(
            " lines {}–{} of {total} · {keys} scroll ",
            *scroll + 1,
            *scroll + page
        )
    } else {
        String::new()
    };
    let body: Vec<Line<'static>> = body.into_iter().skip(*scroll).collect();
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border_focus)
        .title(Span::styled(fit(title, width), t.dialog_title))
        .title_bottom(Line::styled(more, t.dim).right_aligned())
        .style(t.dialog);
    f.render_widget(Paragraph::new(body).style(t.dialog).block(block), r);
}

/// A `label: value` line for detail views.
pub fn field(
    label: &str,
    value: impl Into<String>,
    label_style: Style,
    value_style: Style,
) -> Line<'static> {
    labeled(
        label,
        12,
        label_style,
        vec![Span::styled(value.into(), value_style)],
    )
}

/// A detail line: `label` padded to `width` columns, then the `value` spans.
pub fn labeled(
    label: &str,
    width: usize,
    label_style: Style,
    value: Vec<Span<'static>>,
) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("{label:<width$}"), label_style)];
    spans.extend(value);
    Line::from(spans)
}

/// The whole word in a wide column, its first four characters in a narrow one.
pub fn narrow(word: &str, wide: bool) -> String {
    if wide {
        word.to_string()
    } else {
        word.chars().take(4).collect()
    }
}

/// The short form of a resource kind for narrow tables (`deployment` →
/// `deploy`, `ec2_instance` → `ec2`, `credential` → `cred`); a kind with no
/// short form is shown whole (the column cuts it if it must).
pub fn short_kind(kind: &str) -> &str {
    match kind {
        "deployment" => "deploy",
        "statefulset" => "sts",
        "daemonset" => "ds",
        "replicaset" => "rs",
        "clusterrole" => "crole",
        "namespace" => "ns",
        "context" => "ctx",
        "service" => "svc",
        "cronjob" => "cron",
        "ec2_instance" => "ec2",
        "rds_instance" => "rds",
        "gce_instance" => "gce",
        "ecs_service" => "ecs",
        "bigquery_dataset" => "bq",
        "lambda_function" => "lambda",
        "s3_bucket" => "s3",
        "credential" => "cred",
        "directory" => "dir",
        other => other,
    }
}

/// The short form of an event's actor: `agent:discovery` → `disc`,
/// `operator:alice` → `alice`. People's names are never shortened, only the
/// prefixes and the runtime's own long names.
pub fn short_actor(actor: &str) -> &str {
    let name = actor
        .strip_prefix("agent:")
        .or_else(|| actor.strip_prefix("operator:"))
        .unwrap_or(actor);
    match name {
        "investigation" => "invest",
        "remediation" => "remed",
        "supervisor" => "super",
        "discovery" => "disc",
        "security" => "sec",
        "learning" => "learn",
        "alertmanager" => "alertmgr",
        other => other,
    }
}

/// The short form of an event kind for narrow tables: long words become
/// their usual abbreviations (`incident_acknowledged` → `inc_ack`).
pub fn short_event_kind(kind: &str) -> String {
    kind.split('_')
        .map(|w| match w {
            "incident" => "inc",
            "investigation" => "inv",
            "remediation" => "rem",
            "acknowledged" => "ack",
            "approval" => "appr",
            "requested" => "req",
            "hypothesis" => "hyp",
            "recommendation" => "rec",
            "notification" => "notif",
            "discovered" => "found",
            "heartbeat" => "beat",
            "finished" => "done",
            "changed" => "chg",
            "learning" => "learn",
            "security" => "sec",
            "finding" => "find",
            "resource" => "res",
            "snapshot" => "snap",
            "operator" => "op",
            "command" => "cmd",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_keep_names() {
        assert_eq!(short_kind("deployment"), "deploy");
        assert_eq!(short_kind("ec2_instance"), "ec2");
        assert_eq!(short_kind("credential"), "cred");
        assert_eq!(short_kind("pod"), "pod");
        assert_eq!(short_kind("custom_thing"), "custom_thing");
        assert_eq!(short_actor("agent:discovery"), "disc");
        assert_eq!(short_actor("operator:alice"), "alice");
        assert_eq!(short_actor("alice"), "alice");
        assert_eq!(short_actor("supervisor"), "super");
        assert_eq!(short_event_kind("incident_acknowledged"), "inc_ack");
        assert_eq!(short_event_kind("agent_heartbeat"), "agent_beat");
        assert_eq!(short_event_kind("health_changed"), "health_chg");
        assert_eq!(short_event_kind("x"), "x");
    }

    #[test]
    fn scroll_keeps_selection_visible() {
        let mut s = Scroll::default();
        assert_eq!(s.visible(100, 10), 0..10);
        s.navigate(Action::PageDown, 100);
        assert_eq!(s.selected, 10);
        assert_eq!(s.visible(100, 10), 1..11);
        s.navigate(Action::Bottom, 100);
        assert_eq!(s.visible(100, 10), 90..100);
        assert!(s.at_end(100));
        s.navigate(Action::Top, 100);
        assert_eq!(s.visible(100, 10), 0..10);
        // shrinking list clamps
        s.selected = 50;
        assert_eq!(s.visible(5, 10), 0..5);
        assert_eq!(s.selected, 4);
        assert_eq!(s.visible(0, 10), 0..0);
        assert_eq!(s.visible(3, 0), 0..0);
    }

    #[test]
    fn formatting() {
        assert_eq!(fit("checkout-7d9f8", 8), "checkou…");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abc", 0), "");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3h05");
        assert_eq!(duration(86_400 * 3), "3d");
        assert_eq!(money(12_345_678, false), "$123,456.78");
        assert_eq!(money(1_400_000, true), "$14,000");
        assert_eq!(money(99_950, true), "$1,000");
        assert_eq!(money(5, false), "$0.05");
    }

    #[test]
    fn labels_pad_and_narrow_columns_cut() {
        let s = Style::default();
        let line = labeled("kind", 6, s, vec![Span::raw("a"), Span::raw("b")]);
        let text: Vec<&str> = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, ["kind  ", "a", "b"]);
        assert_eq!(
            field("id", "x", s, s).spans[0].content,
            format!("{:<12}", "id")
        );
        assert_eq!(narrow("critical", false), "crit");
        assert_eq!(narrow("critical", true), "critical");
        assert_eq!(narrow("low", false), "low");
    }

    #[test]
    fn bar_is_clamped() {
        let s = Style::default();
        let spans = bar(1.7, 10, s, s);
        assert_eq!(spans[0].content.chars().count(), 10);
        let spans = bar(f64::NAN, 4, s, s);
        assert_eq!(spans[1].content.chars().count(), 4);
    }
}
