//! The `:agents` overlay: which agent is not ok and why. Each agent's last
//! run (its last heartbeat), what it said then, its last error and when its
//! next run is due. The header's `agents N/M ok` counts with the same rule
//! ([`liveness`]), so the two always agree.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::panes::wrap_line;
use super::theme::Theme;
use super::widgets::{clock, duration, fit, scrolling_overlay};
use crate::state::{AgentStatus, State};

/// A heartbeat this much later than expected is late.
pub const LATE_SECS: i64 = 30;
/// A heartbeat this much later than expected is missing.
pub const DEAD_SECS: i64 = 120;

/// How an agent is doing, judged from its heartbeats alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Liveness {
    /// No heartbeat was ever recorded (only errors): unknown, not ok.
    Silent,
    /// The heartbeat is more than [`DEAD_SECS`] overdue.
    Missing,
    /// The heartbeat is more than [`LATE_SECS`] overdue.
    Late,
    Ok,
}

impl Liveness {
    /// The word shown for it.
    pub fn label(self) -> &'static str {
        match self {
            Liveness::Silent => "silent",
            Liveness::Missing => "missing",
            Liveness::Late => "late",
            Liveness::Ok => "ok",
        }
    }

    /// Its style in a theme.
    pub fn style(self, t: &Theme) -> ratatui::style::Style {
        match self {
            Liveness::Ok => t.ok,
            Liveness::Late => t.warn,
            Liveness::Missing | Liveness::Silent => t.bad,
        }
    }
}

/// When a heartbeat is next expected: at the next scheduled run when the
/// agent named one (a security scan every minute is not late after 30 s),
/// else right after the last one.
fn expected(a: &AgentStatus) -> Option<DateTime<Utc>> {
    let last = a.last_heartbeat?;
    Some(a.next_run.filter(|n| *n > last).unwrap_or(last))
}

/// Judges an agent at `now`.
pub fn liveness(a: &AgentStatus, now: DateTime<Utc>) -> Liveness {
    let Some(expected) = expected(a) else {
        return Liveness::Silent;
    };
    let overdue = (now - expected).num_seconds();
    if overdue > DEAD_SECS {
        Liveness::Missing
    } else if overdue > LATE_SECS {
        Liveness::Late
    } else {
        Liveness::Ok
    }
}

/// When the next run is due, as a phrase: `in 12s`, `every 5s` (when the
/// scheduled time passed and the heartbeat, reported less often than the
/// agent runs, has not caught up yet), `overdue 3m`, or `not announced`
/// (the supervisor runs on events; older logs carry no schedule).
fn next_run(a: &AgentStatus, now: DateTime<Utc>) -> String {
    let (Some(next), Some(last)) = (a.next_run, a.last_heartbeat) else {
        return if a.last_heartbeat.is_some() {
            "not announced".into()
        } else {
            "unknown".into()
        };
    };
    let every = (next - last).num_seconds();
    if next >= now {
        format!("in {}", duration((next - now).num_seconds()))
    } else if liveness(a, now) == Liveness::Ok && every > 0 {
        format!("every {}", duration(every))
    } else {
        format!("overdue {}", duration((now - next).num_seconds()))
    }
}

/// The agents, worst first, then by name.
pub fn ordered(state: &State, now: DateTime<Utc>) -> Vec<(&String, &AgentStatus, Liveness)> {
    let mut agents: Vec<_> = state
        .agents
        .iter()
        .map(|(name, a)| (name, a, liveness(a, now)))
        .collect();
    agents.sort_by(|x, y| x.2.cmp(&y.2).then_with(|| x.0.cmp(y.0)));
    agents
}

/// The overlay's lines for a width: per agent a line with its liveness,
/// last run and next run, then what it last said and its last error
/// (wrapped, never cut, so the reason can be read).
pub fn lines(state: &State, now: DateTime<Utc>, width: usize, t: &Theme) -> Vec<Line<'static>> {
    let agents = ordered(state, now);
    let mut out = Vec::new();
    if agents.is_empty() {
        out.push(Line::styled(
            " no agent has reported yet (the runtime records a heartbeat after each run)",
            t.dim,
        ));
    }
    let name_w = agents
        .iter()
        .map(|(n, ..)| n.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 14);
    for (name, a, live) in agents {
        let next = next_run(a, now);
        // The clock time goes first when the line would not fit.
        let head = |with_clock: bool| {
            let last = match a.last_heartbeat {
                Some(h) if with_clock => {
                    format!("{} ago ({}Z)", duration((now - h).num_seconds()), clock(h))
                }
                Some(h) => format!("{} ago", duration((now - h).num_seconds())),
                None => "never reported".into(),
            };
            let w = if with_clock { 18 } else { 8 };
            Line::from(vec![
                Span::styled(format!(" {:<name_w$} ", fit(name, name_w)), t.accent),
                Span::styled(format!("{:<8}", live.label()), live.style(t)),
                Span::styled("last run ", t.dim),
                Span::raw(format!("{last:<w$} ")),
                Span::styled("next ", t.dim),
                Span::raw(next.clone()),
            ])
        };
        let line = head(true);
        out.push(if line.width() <= width {
            line
        } else {
            head(false)
        });
        let indent = name_w + 2;
        // An agent without errors takes two lines, so seven fit at 80×24.
        let mut said = crate::redact::line(&a.status);
        if a.last_error.is_none() {
            said.push_str(if said.is_empty() {
                "no error recorded"
            } else {
                " · no error recorded"
            });
        }
        hanging(&mut out, indent, vec![Span::styled(said, t.dim)], width);
        if let Some(e) = &a.last_error {
            let when = a.last_error_at.map_or(String::new(), |at| {
                format!(" {} ago", duration((now - at).num_seconds()))
            });
            let count = if a.errors > 1 {
                format!(" ({} errors in all)", a.errors)
            } else {
                String::new()
            };
            hanging(
                &mut out,
                indent,
                vec![
                    Span::styled(format!("last error{when}{count}: "), t.bad),
                    Span::raw(crate::redact::line(e)),
                ],
                width,
            );
        }
    }
    out
}

/// Appends `spans` wrapped to `width`, every row indented by `indent` cells.
fn hanging(out: &mut Vec<Line<'static>>, indent: usize, spans: Vec<Span<'static>>, width: usize) {
    let room = width.saturating_sub(indent).max(10);
    for row in wrap_line(Line::from(spans), room) {
        let mut spans = vec![Span::raw(" ".repeat(indent))];
        spans.extend(row.spans);
        out.push(Line::from(spans));
    }
}

/// Draws the overlay over `area` from line `scroll` (kept in range here);
/// `keys` names the scrolling keys for the hint shown when it overflows.
pub fn draw(
    f: &mut Frame,
    area: Rect,
    state: &State,
    now: DateTime<Utc>,
    scroll: &mut usize,
    keys: &str,
    t: &Theme,
) {
    let ok = state
        .agents
        .values()
        .filter(|a| liveness(a, now) == Liveness::Ok)
        .count();
    let title = format!(" Agents: {ok}/{} ok ", state.agents.len());
    let body = |width| {
        let mut body = lines(state, now, width, t);
        body.push(Line::styled(
            fit(
                " late: no heartbeat 30s after the run it announced · any key closes",
                width,
            ),
            t.dim,
        ));
        body
    };
    scrolling_overlay(f, area, &title, body, scroll, keys, t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(secs: i64) -> DateTime<Utc> {
        crate::tui::testing::fixture_now() + Duration::seconds(secs)
    }

    fn agent(beat: Option<i64>, next: Option<i64>) -> AgentStatus {
        AgentStatus {
            last_heartbeat: beat.map(at),
            next_run: next.map(at),
            status: "ok".into(),
            ..AgentStatus::default()
        }
    }

    #[test]
    fn lateness_counts_from_the_announced_run() {
        // A scan every minute, 45 s ago: not late (the old rule said late after 30 s).
        let scan = agent(Some(-45), Some(15));
        assert_eq!(liveness(&scan, at(0)), Liveness::Ok);
        assert_eq!(next_run(&scan, at(0)), "in 15s");
        // 31 s past its announced run: late, and the next run says overdue.
        assert_eq!(liveness(&scan, at(46)), Liveness::Late);
        assert_eq!(next_run(&scan, at(46)), "overdue 31s");
        assert_eq!(liveness(&scan, at(15 + 121)), Liveness::Missing);
        // Runs every 5 s but beats every 15 s: between beats it is on schedule.
        let poll = agent(Some(-10), Some(-5));
        assert_eq!(liveness(&poll, at(0)), Liveness::Ok);
        assert_eq!(next_run(&poll, at(0)), "every 5s");
        // No schedule (the supervisor, older logs): late 30 s after the beat.
        let sup = agent(Some(-31), None);
        assert_eq!(liveness(&sup, at(0)), Liveness::Late);
        assert_eq!(next_run(&sup, at(0)), "not announced");
        // Only errors, never a heartbeat: unknown is not ok.
        let silent = agent(None, None);
        assert_eq!(liveness(&silent, at(0)), Liveness::Silent);
        assert_eq!(next_run(&silent, at(0)), "unknown");
        // A next run before the last beat (a clock step back) is ignored.
        let odd = agent(Some(-10), Some(-100));
        assert_eq!(liveness(&odd, at(0)), Liveness::Ok);
    }

    #[test]
    fn errors_are_shown_whole_and_without_escapes() {
        let mut state = crate::tui::testing::fixture_state();
        let a = state.agents.entry("security".into()).or_default();
        a.errors = 3;
        a.last_error_at = Some(at(-60));
        a.last_error = Some(
            "scanner: registry.example.com answered 401 Unauthorized for every image \
             in the payments namespace\u{1b}[2J"
                .into(),
        );
        let t = Theme::mono();
        let text: Vec<String> = lines(&state, at(0), 60, &t)
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        let joined = text.join("\n");
        assert!(
            joined.contains("last error 1m ago (3 errors in all)"),
            "{joined}"
        );
        assert!(joined.contains("401"), "{joined}");
        assert!(joined.contains("namespace"), "{joined}");
        assert!(!joined.contains('\u{1b}'), "{joined}");
        assert!(text.iter().all(|l| l.chars().count() <= 60), "{joined}");
    }
}
