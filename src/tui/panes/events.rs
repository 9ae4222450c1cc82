//! Pane 7, Events: the live tail of the log (bounded by the state), filtered
//! by kind and text. The filter `kind:approval text` keeps events whose kind
//! contains `approval` and whose line contains `text`. Enter shows one event
//! in full with its hash. With the cursor on the last row the view follows
//! new events; moving up pins it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;

use super::{
    Ctx, DetailScroll, Handled, Pane, block, clear_filter_on_back, col, draw_detail, draw_missing,
    draw_table, handle_detail, open_detail,
};
use crate::state::EventLine;
use crate::tui::keymap::Action;
use crate::tui::widgets::{Scroll, labeled};

/// Events pane state.
#[derive(Debug)]
pub struct EventsPane {
    scroll: Scroll,
    filter: String,
    follow: bool,
    open: Option<u64>,
    detail: DetailScroll,
    /// Seqs in `state.recent` that pass the filter, with the last seq, filter
    /// and clock second they were built for.
    cache: Option<(u64, String, i64, Vec<u64>)>,
}

impl Default for EventsPane {
    fn default() -> Self {
        EventsPane {
            scroll: Scroll::default(),
            filter: String::new(),
            follow: true,
            open: None,
            detail: DetailScroll::default(),
            cache: None,
        }
    }
}

/// A parsed events filter.
#[derive(Debug, Default, PartialEq)]
pub struct EventFilter {
    pub kinds: Vec<String>,
    pub text: Vec<String>,
}

impl EventFilter {
    /// Parses `kind:NAME` (or `k:NAME`) terms and free text terms, case-insensitively.
    pub fn parse(s: &str) -> EventFilter {
        let mut f = EventFilter::default();
        for term in s.split_whitespace() {
            let lower = term.to_lowercase();
            if let Some(k) = lower
                .strip_prefix("kind:")
                .or_else(|| lower.strip_prefix("k:"))
            {
                if !k.is_empty() {
                    f.kinds.push(k.to_string());
                }
            } else {
                f.text.push(lower);
            }
        }
        f
    }

    /// Whether a tail line passes: any kind term matches, and every text term appears.
    pub fn matches(&self, line: &EventLine) -> bool {
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| line.kind.contains(k.as_str())) {
            return false;
        }
        if self.text.is_empty() {
            return true;
        }
        let hay =
            format!("{} {} {} {}", line.seq, line.actor, line.kind, line.summary).to_lowercase();
        self.text.iter().all(|t| hay.contains(t.as_str()))
    }
}

impl EventsPane {
    /// Seqs of the lines shown, oldest first. New events join the list at most
    /// once per clock second: a scrolling tail rewrites every row, and over
    /// SSH one scroll a second is what keeps the console within its byte budget.
    fn rows(&mut self, ctx: &Ctx) -> &[u64] {
        let last = ctx.state.last_seq;
        let second = ctx.now.timestamp();
        let fresh = matches!(&self.cache, Some((s, f, built, _))
            if *f == self.filter && (*s == last || *built == second));
        if !fresh {
            let filter = EventFilter::parse(&self.filter);
            let seqs: Vec<u64> = ctx
                .state
                .recent
                .iter()
                .filter(|l| filter.matches(l))
                .map(|l| l.seq)
                .collect();
            self.cache = Some((last, self.filter.clone(), second, seqs));
        }
        self.cache.as_ref().map(|c| c.3.as_slice()).unwrap_or(&[])
    }

    fn line<'a>(ctx: &Ctx<'a>, seq: u64) -> Option<&'a EventLine> {
        let recent = &ctx.state.recent;
        // The tail is in seq order, so a binary search finds a line without a scan.
        recent
            .binary_search_by_key(&seq, |l| l.seq)
            .ok()
            .and_then(|i| recent.get(i))
    }
}

impl Pane for EventsPane {
    fn handle(&mut self, action: Action, ctx: &Ctx) -> Handled {
        if let Some(handled) = handle_detail(&mut self.open, &mut self.detail, action) {
            return handled;
        }
        let len = self.rows(ctx).len();
        if self.follow {
            self.scroll.selected = len.saturating_sub(1);
        }
        if self.scroll.navigate(action, len) {
            self.follow = self.scroll.at_end(len);
            return Handled::Consumed;
        }
        match action {
            Action::Open => {
                let selected = self.scroll.selected;
                let seq = self.rows(ctx).get(selected).copied();
                open_detail(&mut self.open, &mut self.detail, seq)
            }
            _ => clear_filter_on_back(action, &mut self.filter),
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let t = ctx.theme;
        if let Some(seq) = self.open {
            let title = format!(" 7 Events › {seq} ");
            let Some(l) = Self::line(ctx, seq) else {
                return draw_missing(
                    f,
                    area,
                    title,
                    format!("event {seq} has left the live tail (see `shieldops log export`)"),
                    &mut self.detail,
                    ctx,
                );
            };
            let row = |k: &str, v: String, s: Style| labeled(k, 9, t.dim, vec![Span::styled(v, s)]);
            let lines = vec![
                row("seq", l.seq.to_string(), t.accent),
                row("at", crate::event::rfc3339(&l.at), Style::default()),
                row("actor", l.actor.clone(), Style::default()),
                row("kind", l.kind.clone(), t.accent),
                row("summary", l.summary.clone(), Style::default()),
                row("hash", l.hash.clone(), t.dim),
            ];
            draw_detail(f, area, block(title, ctx), lines, &mut self.detail, ctx);
            return;
        }
        let wide = area.width >= 110;
        let len = self.rows(ctx).len();
        if self.follow {
            self.scroll.selected = len.saturating_sub(1);
        }
        let columns = vec![
            col("SEQ", Constraint::Length(7)),
            col("TIME", Constraint::Length(8)),
            // Narrow: short forms of actors and kinds (`disc`, `health_chg`).
            col("ACTOR", Constraint::Length(if wide { 14 } else { 8 })),
            col("KIND", Constraint::Length(if wide { 22 } else { 14 })),
            col("SUMMARY", Constraint::Fill(1)),
        ];
        let title = format!(
            " 7 Events ({}{}){} ",
            len,
            if self.filter.is_empty() {
                String::new()
            } else {
                format!(" matching /{}", self.filter)
            },
            if self.follow { " · following" } else { "" }
        );
        let rows: Vec<u64> = self.rows(ctx).to_vec();
        draw_table(
            f,
            area,
            block(title, ctx),
            &columns,
            len,
            &mut self.scroll,
            true,
            "no events match",
            ctx,
            |i| {
                let Some(l) = Self::line(ctx, rows[i]) else {
                    return Vec::new();
                };
                let kind_style = if l.kind.starts_with("approval") || l.kind == "agent_error" {
                    t.warn
                } else {
                    Style::default()
                };
                vec![
                    (l.seq.to_string(), t.dim),
                    (crate::tui::widgets::clock(l.at), t.dim),
                    (
                        if wide {
                            l.actor.clone()
                        } else {
                            crate::tui::widgets::short_actor(&l.actor).to_string()
                        },
                        Style::default(),
                    ),
                    (
                        if wide {
                            l.kind.clone()
                        } else {
                            crate::tui::widgets::short_event_kind(&l.kind)
                        },
                        kind_style,
                    ),
                    (l.summary.clone(), Style::default()),
                ]
            },
        );
    }

    fn hints(&self, _ctx: &Ctx) -> Vec<Action> {
        if self.open.is_some() {
            vec![Action::Back]
        } else {
            vec![Action::Down, Action::Open, Action::Filter, Action::Bottom]
        }
    }

    fn set_filter(&mut self, text: &str) -> bool {
        if self.filter != text {
            self.filter = text.to_string();
            self.follow = true;
        }
        true
    }

    fn filter(&self) -> &str {
        &self.filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn line(kind: &str, summary: &str) -> EventLine {
        EventLine {
            seq: 1,
            at: Utc::now(),
            actor: "remediation".into(),
            kind: kind.into(),
            summary: summary.into(),
            hash: "00".into(),
        }
    }

    #[test]
    fn filter_by_kind_and_text() {
        let f = EventFilter::parse("kind:approval alice");
        assert_eq!(f.kinds, vec!["approval"]);
        assert!(f.matches(&line("approval_granted", "rem #4 approved by Alice")));
        assert!(!f.matches(&line("approval_granted", "rem #4 approved by bob")));
        assert!(!f.matches(&line("agent_heartbeat", "alice")));
        assert!(EventFilter::parse("").matches(&line("x", "y")));
        assert!(EventFilter::parse("k:heart").matches(&line("agent_heartbeat", "ok")));
    }
}
