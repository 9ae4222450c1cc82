//! The `:cluster` overlay and the header's role: which node this console is
//! attached to and what it is (leader, standby, or single when not
//! clustered), who holds the lease and until when, and every node's lag
//! behind the stream by its last heartbeat.
//!
//! Everything here comes from the server (names and URLs from other nodes'
//! heartbeats): it is shown as plain text, control characters removed.
//! Relative times are measured against the moment the view was gathered,
//! on the node that gathered it, never against the console's own clock
//! (which runs at the demo's speed).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::theme::Theme;
use super::widgets::{clock, duration, fit, scrolling_overlay};
use crate::cluster::{ClusterView, NodeRole};

/// Longest name or URL shown whole.
const MAX_TEXT: usize = 120;

/// `s` without control characters (no terminal escapes), bounded.
fn plain(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

fn role_style(role: NodeRole, t: &Theme) -> Style {
    match role {
        NodeRole::Leader => t.ok,
        NodeRole::Standby => t.accent,
        NodeRole::Single => t.dim,
    }
}

/// The header's role segment, the widest variant that fits in `room`
/// cells (none at all when even the shortest does not).
pub fn header_spans(view: Option<&ClusterView>, room: usize, t: &Theme) -> Vec<Span<'static>> {
    let Some(view) = view else {
        let text = " ◆ single ";
        return if text.chars().count() <= room {
            vec![Span::styled(text, role_style(NodeRole::Single, t))]
        } else {
            Vec::new()
        };
    };
    let role = view.role.label();
    let node = plain(&view.node);
    let variants: Vec<(String, Style)> = match (view.role, view.leader()) {
        (NodeRole::Standby, Some((leader, console))) if leader != view.node => {
            let leader = plain(leader);
            let mut v = Vec::new();
            if let Some(url) = console {
                v.push(format!(
                    " ◆ {role} {node} · leader {leader} {} ",
                    plain(url)
                ));
            }
            v.push(format!(" ◆ {role} · leader {leader} "));
            v.push(format!(" ◆ {role} of {leader} "));
            v.push(format!(" ◆ {role} "));
            v.into_iter()
                .map(|s| (s, role_style(view.role, t)))
                .collect()
        }
        (NodeRole::Standby, Some(_)) => vec![
            (format!(" ◆ {role} {node} · taking over "), t.warn),
            (" ◆ taking over ".to_string(), t.warn),
        ],
        (NodeRole::Standby, None) => vec![
            (format!(" ◆ {role} {node} · no leader "), t.bad),
            (format!(" ◆ {role} · no leader "), t.bad),
            (format!(" ◆ {role} "), t.bad),
        ],
        _ => vec![
            (format!(" ◆ {role} {node} "), role_style(view.role, t)),
            (format!(" ◆ {role} "), role_style(view.role, t)),
        ],
    };
    variants
        .into_iter()
        .find(|(text, _)| text.chars().count() <= room)
        .map(|(text, style)| vec![Span::styled(text, style)])
        .unwrap_or_default()
}

/// The overlay's lines for a width.
pub fn lines(view: Option<&ClusterView>, width: usize, t: &Theme) -> Vec<Line<'static>> {
    let Some(view) = view else {
        return vec![
            Line::raw(" This console is not clustered: one machine records and acts."),
            Line::styled(
                " (`serve --cluster` replicates the log on NATS JetStream, with a leader and standbys.)",
                t.dim,
            ),
        ];
    };
    let mut out = Vec::new();
    let label = |s: &str| Span::styled(format!(" {s:<8}"), t.dim);
    let lease = match &view.lease {
        Some(l) => {
            let left = (l.expires - view.at).num_milliseconds();
            let expiry = if left > 0 {
                format!("expires in {:.1}s unless renewed", left as f64 / 1000.0)
            } else {
                "expired, not yet renewed or taken".into()
            };
            let spans = vec![
                label("lease"),
                Span::raw("held by "),
                Span::styled(plain(&l.holder), t.ok),
                Span::raw(format!(" · revision {} · {expiry}", l.revision)),
            ];
            let mut line = Line::from(spans);
            // The URL only whole (the node table lists it too).
            if let Some(url) = &l.console {
                let url = Span::styled(format!(" · {}", plain(url)), t.dim);
                if line.width() + url.width() <= width {
                    line.spans.push(url);
                }
            }
            line
        }
        None => Line::from(vec![
            label("lease"),
            Span::styled("nobody holds it: a standby takes it shortly", t.bad),
        ]),
    };
    out.push(lease);
    out.push(Line::from(vec![
        label("stream"),
        Span::raw(format!("last seq {}", view.stream_seq)),
        Span::styled(format!(" · gathered {}Z", clock(view.at)), t.dim),
    ]));
    out.push(Line::raw(""));
    let name_w = view
        .nodes
        .iter()
        .map(|n| plain(&n.name).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 20)
        + 7;
    let head = format!(
        " {:<name_w$} {:<8} {:>9} {:>6} {:>9}  console",
        "node", "role", "last seq", "lag", "heartbeat"
    );
    out.push(Line::styled(fit(&head, width), t.dim));
    for n in &view.nodes {
        let mut name = plain(&n.name);
        if n.name == view.node {
            name.push_str(" (this)");
        }
        let lag = view.lag(n);
        let age = duration((view.at - n.at).num_seconds());
        let lag_style = if lag == 0 { t.ok } else { t.warn };
        let row = vec![
            Span::styled(format!(" {:<name_w$} ", fit(&name, name_w)), t.accent),
            Span::styled(format!("{:<8} ", n.role.label()), role_style(n.role, t)),
            Span::raw(format!("{:>9} ", n.last_seq)),
            Span::styled(format!("{lag:>6} "), lag_style),
            Span::raw(format!("{:>9}  ", format!("{age} ago"))),
            Span::styled(
                n.console
                    .as_deref()
                    .map(plain)
                    .unwrap_or_else(|| "-".into()),
                t.dim,
            ),
        ];
        let line = Line::from(row);
        if line.width() <= width {
            out.push(line);
        } else {
            // Narrow: the console URL on a line of its own.
            let mut spans = line.spans;
            let url = spans.pop();
            out.push(Line::from(spans));
            if let Some(url) = url {
                out.push(Line::from(vec![
                    Span::raw(" ".repeat(name_w + 2)),
                    Span::styled(fit(&url.content, width.saturating_sub(name_w + 2)), t.dim),
                ]));
            }
        }
    }
    if view.nodes.is_empty() {
        out.push(Line::styled(" no heartbeat seen yet", t.dim));
    }
    out
}

/// Draws the overlay over `area` from line `scroll` (kept in range here);
/// `keys` names the scrolling keys for the hint shown when it overflows.
pub fn draw(
    f: &mut Frame,
    area: Rect,
    view: Option<&ClusterView>,
    scroll: &mut usize,
    keys: &str,
    t: &Theme,
) {
    let title = match view {
        Some(v) => format!(
            " Cluster: site {} · this node {} ({}) ",
            plain(&v.site),
            plain(&v.node),
            v.role.label()
        ),
        None => " Cluster: not clustered ".to_string(),
    };
    let body = |width| {
        let mut body = lines(view, width, t);
        body.push(Line::raw(""));
        body.push(Line::styled(
            fit(
                " lag: records behind the stream by each node's last heartbeat (informational; the lease decides who leads) · any key closes",
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
    use crate::cluster::{LeaseView, NodeSeen};

    fn view() -> ClusterView {
        let at = crate::tui::testing::fixture_now();
        ClusterView {
            site: "eu".into(),
            node: "b".into(),
            role: NodeRole::Standby,
            lease: Some(LeaseView {
                holder: "a\u{1b}[2J".into(),
                console: Some("ws://10.0.0.1:7420/ws".into()),
                revision: 7,
                expires: at + chrono::Duration::milliseconds(2500),
            }),
            nodes: vec![NodeSeen {
                name: "b".into(),
                role: NodeRole::Standby,
                console: None,
                last_seq: 90,
                at,
            }],
            stream_seq: 100,
            at,
        }
    }

    fn text(lines: &[Line]) -> String {
        lines
            .iter()
            .map(|l| {
                l.spans
                    .iter()
                    .map(|s| s.content.as_ref())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_header_names_the_leader_as_room_allows_and_never_an_escape() {
        let t = Theme::mono();
        let v = view();
        let wide = text(&[Line::from(header_spans(Some(&v), 80, &t))]);
        assert!(
            wide.contains("standby b · leader a[2J ws://10.0.0.1:7420/ws"),
            "{wide}"
        );
        assert!(!wide.contains('\u{1b}'));
        let mid = text(&[Line::from(header_spans(Some(&v), 30, &t))]);
        assert!(mid.contains("standby · leader a"), "{mid}");
        let short = text(&[Line::from(header_spans(Some(&v), 12, &t))]);
        assert_eq!(short.trim(), "◆ standby");
        assert!(header_spans(Some(&v), 5, &t).is_empty());
        let single = text(&[Line::from(header_spans(None, 80, &t))]);
        assert_eq!(single.trim(), "◆ single");
    }

    #[test]
    fn lag_and_lease_time_are_measured_on_the_gathering_node() {
        let t = Theme::mono();
        let shown = text(&lines(Some(&view()), 100, &t));
        assert!(shown.contains("expires in 2.5s"), "{shown}");
        assert!(shown.contains("last seq 100"), "{shown}");
        assert!(shown.contains("b (this)"), "{shown}");
        assert!(shown.contains("     10 "), "lag of 10: {shown}");
        let alone = text(&lines(None, 100, &t));
        assert!(alone.contains("not clustered"), "{alone}");
    }
}
