//! Console behaviour: two-step approvals, read-only mode, quitting, attention,
//! command mode, filters, small terminals, colours that carry meaning, and
//! NO_COLOR output with no colour escape sequences.

mod tui_support;

use chrono::Duration;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::{Terminal, TerminalOptions, Viewport};
use shieldops::event::{Action as Act, Environment, EventKind, NewEvent, ResourceId};
use shieldops::runtime::command::Command;
use shieldops::tui::panes::PaneId;
use shieldops::tui::terminal::ConsoleBackend;
use shieldops::tui::testing::{fixture_now, fixture_pending, fixture_state, seal_all};
use shieldops::tui::{App, Effect, TuiOptions};
use tui_support::{app, app_with, opts, press, render, screen, type_text};

fn sends(effects: &[Effect]) -> Vec<&Command> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn approve_takes_two_steps_and_carries_the_comment() {
    let mut app = app();
    let id = fixture_pending();
    let mut effects = press(&mut app, "3 a");
    assert!(app.dialog_open().is_some(), "a opens the dialog");
    effects.extend(type_text(&mut app, "headroom ok; d and q are text here"));
    assert!(sends(&effects).is_empty(), "nothing is sent before Ctrl-S");
    let effects = press(&mut app, "<c-s>");
    assert_eq!(
        sends(&effects),
        vec![&Command::Approve {
            remediation: id,
            comment: "headroom ok; d and q are text here".into()
        }]
    );
    assert!(app.dialog_open().is_none());
    assert!(!app.should_quit(), "q typed into the comment did not quit");
}

#[test]
fn approval_dialog_names_the_approver() {
    let mut app = app();
    press(&mut app, "3 a");
    assert!(screen(&mut app, 80, 24).contains("approving as alice (from 10.0.0.7)"));
}

#[test]
fn deny_requires_a_reason() {
    let mut app = app();
    let id = fixture_pending();
    press(&mut app, "3 d");
    let effects = press(&mut app, "<c-s>");
    assert!(sends(&effects).is_empty(), "an empty reason is refused");
    assert!(app.dialog_open().is_some(), "the dialog stays open");
    assert!(screen(&mut app, 120, 40).contains("a reason is required to deny"));
    type_text(&mut app, "change freeze");
    let effects = press(&mut app, "<c-s>");
    assert_eq!(
        sends(&effects),
        vec![&Command::Deny {
            remediation: id,
            reason: "change freeze".into()
        }]
    );
}

#[test]
fn esc_cancels_without_sending() {
    let mut app = app();
    let mut effects = press(&mut app, "3 a");
    effects.extend(type_text(&mut app, "hmm"));
    effects.extend(press(&mut app, "<esc>"));
    assert!(app.dialog_open().is_none());
    assert!(sends(&effects).is_empty());
    assert!(app.toast_text().unwrap().contains("nothing was sent"));
}

#[test]
fn approve_needs_a_pending_selection() {
    let mut app = app();
    // Not on the Remediations pane.
    let effects = press(&mut app, "1 a");
    assert!(app.dialog_open().is_none() && effects.is_empty());
    // On a finished remediation (second row: the first of the full list is the pending one).
    let effects = press(&mut app, "3 j j a");
    assert!(app.dialog_open().is_none() && effects.is_empty());
    assert!(app.toast_text().unwrap().contains("not awaiting approval"));
    // Ctrl-S alone does nothing.
    assert!(sends(&press(&mut app, "<c-s>")).is_empty());
}

#[test]
fn read_only_explains_and_never_sends() {
    let mut app = app_with(TuiOptions {
        read_only: true,
        ..opts()
    });
    let mut effects = Vec::new();
    for keys in ["3 a", "3 d", "3 <enter> a", "a <c-s>", "d <c-s>"] {
        effects.extend(press(&mut app, keys));
        assert!(app.dialog_open().is_none(), "{keys} opened a dialog");
        let toast = app.toast_text().unwrap_or_default().to_string();
        assert!(
            toast.contains("read-only") || toast.contains("no dialog"),
            "{keys}: {toast}"
        );
    }
    effects.extend(type_text(&mut app, "abcdefghijklmnoprstuvwxyz"));
    assert!(sends(&effects).is_empty(), "read-only sent {effects:?}");
    assert!(screen(&mut app, 120, 40).contains("READ-ONLY"));
}

#[test]
fn quit_asks_while_approvals_are_pending() {
    let mut app = app();
    press(&mut app, "q");
    assert!(app.confirming_quit() && !app.should_quit());
    press(&mut app, "x n");
    assert!(!app.confirming_quit() && !app.should_quit());
    press(&mut app, ": q <enter>");
    assert!(app.confirming_quit());
    press(&mut app, "y");
    assert!(app.should_quit());

    let mut idle = App::new(&opts(), shieldops::state::State::new(), fixture_now());
    press(&mut idle, "q");
    assert!(idle.should_quit(), "nothing pending: q quits at once");
}

#[test]
fn new_approval_request_rings_and_notifies_once() {
    let mut state = fixture_state();
    let base = state.last_seq;
    let mut app = App::new(&opts(), state.clone(), fixture_now());
    // Build a new proposal + request continuing the fixture's seqs.
    let at = fixture_now();
    let drafts: Vec<NewEvent> = (0..base)
        .map(|_| NewEvent::new(at, "pad", EventKind::ScenarioFinished { name: "x".into() }))
        .chain([
            NewEvent::new(
                at,
                "remediation",
                EventKind::RemediationProposed {
                    playbook: None,
                    incident: None,
                    investigation: None,
                    action: Act::new("restart_pod", ResourceId::new("linux/prod/bastion-1")),
                    environment: Environment::Production,
                    team: "platform".into(),
                    reason: "sshd wedged".into(),
                    requested_by: "remediation-agent".into(),
                },
            ),
            NewEvent::new(
                at,
                "policy",
                EventKind::PolicyDecided {
                    remediation: base + 1,
                    decision: shieldops::event::PolicyDecision {
                        allow: true,
                        deny: vec![],
                        required_approvals: 1,
                        risk: shieldops::event::Risk::Medium,
                        controls: vec![],
                        bundle_hash: String::new(),
                        input_digest: String::new(),
                    },
                },
            ),
            NewEvent::new(
                at,
                "remediation",
                EventKind::ApprovalRequested {
                    remediation: base + 1,
                    required: 1,
                    expires_at: at + Duration::minutes(30),
                },
            ),
        ])
        .collect();
    let events: Vec<_> = seal_all(drafts).into_iter().skip(base as usize).collect();
    let mut effects = Vec::new();
    for e in &events {
        effects.extend(app.apply_event(e));
        state.apply(e);
    }
    assert_eq!(effects.iter().filter(|e| **e == Effect::Bell).count(), 1);
    assert!(effects.iter().any(|e| matches!(e, Effect::Notify { summary, .. } if summary.contains(&format!("#{}", base + 1)))));
    // Replaying the same request does not ring again.
    assert!(app.apply_event(&events[2]).is_empty());

    // Bell and notification are configurable.
    let mut quiet = App::new(
        &TuiOptions {
            bell: false,
            desktop_notify: false,
            ..opts()
        },
        fixture_state(),
        fixture_now(),
    );
    let effects: Vec<_> = events.iter().flat_map(|e| quiet.apply_event(e)).collect();
    assert!(effects.is_empty());
}

#[test]
fn dialog_closes_when_the_remediation_stops_waiting() {
    let mut state = fixture_state();
    let id = fixture_pending();
    let base = state.last_seq;
    let mut app = App::new(&opts(), state.clone(), fixture_now());
    press(&mut app, "3 a");
    let drafts: Vec<NewEvent> = (0..=base)
        .map(|i| {
            if i < base {
                NewEvent::new(
                    fixture_now(),
                    "pad",
                    EventKind::ScenarioFinished { name: "x".into() },
                )
            } else {
                NewEvent::new(
                    fixture_now(),
                    "runtime",
                    EventKind::ApprovalExpired { remediation: id },
                )
            }
        })
        .chain([NewEvent::new(
            fixture_now(),
            "runtime",
            EventKind::RemediationFinished {
                remediation: id,
                status: shieldops::event::RemediationOutcome::Expired,
                detail: "expired".into(),
            },
        )])
        .collect();
    for e in seal_all(drafts).iter().skip(base as usize) {
        app.apply_event(e);
        state.apply(e);
    }
    assert!(app.dialog_open().is_none());
    assert!(
        app.toast_text()
            .unwrap()
            .contains("no longer awaiting approval")
    );
    assert!(sends(&press(&mut app, "<c-s>")).is_empty());
}

#[test]
fn command_mode_switches_panes_and_completes() {
    let mut app = app();
    press(&mut app, ": r e m <enter>");
    assert_eq!(app.focus(), PaneId::Remediations);
    assert_eq!(app.complete("le").0, "learn");
    assert_eq!(app.complete("th").0, "theme ");
    let (text, found) = app.complete("theme ");
    assert_eq!(text, "theme ");
    assert!(found.contains(&"solarized-16".to_string()));
    assert_eq!(app.complete("theme so").0, "theme solarized-16");
    press(&mut app, ": l e <tab> <enter>");
    assert_eq!(app.focus(), PaneId::Learning);
    app.run_command("theme light");
    assert_eq!(app.theme().name, "light");
    app.run_command("theme no-such-theme");
    assert_eq!(
        app.theme().name,
        "default",
        "a bad theme falls back to the default"
    );
    assert!(app.toast_text().unwrap().contains("no-such-theme"));
    app.run_command("bogus");
    assert!(app.toast_text().unwrap().contains("unknown command"));
    press(&mut app, "<tab>");
    assert_eq!(app.focus(), PaneId::Events);
    press(&mut app, "<tab> <backtab> <backtab>");
    assert_eq!(app.focus(), PaneId::Learning);
}

#[test]
fn bad_theme_and_keys_become_warnings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("themes")).unwrap();
    std::fs::write(
        dir.path().join("themes/broken.toml"),
        "[styles]\nbad = { fg = 42 }\n",
    )
    .unwrap();
    let keys: shieldops::tui::KeymapConfig = toml::from_str("approve = \"nonsense-key\"").unwrap();
    let mut app = app_with(TuiOptions {
        theme: "broken".into(),
        config_dir: Some(dir.path().to_path_buf()),
        keys,
        ..opts()
    });
    assert_eq!(app.theme().name, "default");
    assert!(app.toast_text().unwrap().contains("broken.toml"));
    // The default key still works.
    press(&mut app, "3 a");
    assert!(app.dialog_open().is_some());
}

#[test]
fn fleet_filter_and_drill_down() {
    let mut app = app();
    press(&mut app, "/");
    type_text(&mut app, "orders");
    press(&mut app, "<enter>");
    let s = screen(&mut app, 120, 40);
    assert!(
        s.contains("orders-db") && !s.contains("checkout-7d9f8"),
        "{s}"
    );
    press(&mut app, "<enter>");
    let s = screen(&mut app, 120, 40);
    assert!(
        s.contains("CPUCreditBalanceLow") && s.contains("Recent events"),
        "{s}"
    );
    press(&mut app, "<esc> <esc>");
    assert!(
        screen(&mut app, 120, 40).contains("checkout-7d9f8"),
        "Esc clears the filter"
    );
}

#[test]
fn remediations_pane_selects_the_first_pending_row_on_entry() {
    let mut app = app();
    press(&mut app, "3 j j 1 3 <enter>");
    assert!(screen(&mut app, 120, 40).contains("Remediations › #81 set_resources"));
}

#[test]
fn no_panic_at_any_small_size() {
    let mut app = app();
    for keys in [
        "1",
        "1 <enter>",
        "2 <enter>",
        "3",
        "3 a",
        "4",
        "5",
        "6",
        "7 <enter>",
        "<esc> ?",
    ] {
        press(&mut app, "<esc> <esc>");
        press(&mut app, keys);
        for w in 0..=90u16 {
            for h in [0u16, 1, 2, 5, 9, 10, 11, 15, 24] {
                render(&mut app, w, h);
            }
        }
    }
    let s = screen(&mut app, 20, 5);
    assert!(s.contains("terminal too"), "{s}");
}

fn find_cell(terminal: &Terminal<ratatui::backend::TestBackend>, text: &str) -> Option<(u16, u16)> {
    let buf = terminal.backend().buffer();
    for y in 0..buf.area.height {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(byte) = row.find(text) {
            let x = row[..byte].chars().count() as u16;
            return Some((x, y));
        }
    }
    None
}

fn is_red(c: Color) -> bool {
    matches!(c, Color::Red | Color::LightRed)
        || matches!(c, Color::Rgb(r, g, b) if r > 180 && g < 100 && b < 100)
}

#[test]
fn colour_carries_meaning_in_the_default_theme() {
    let mut app = app();
    let t = render(&mut app, 120, 40);
    let (x, y) = find_cell(&t, "unhealthy OOMKilled").expect("unhealthy row");
    assert!(is_red(t.backend().buffer()[(x, y)].fg), "unhealthy is red");
    let (x, y) = find_cell(&t, "degraded  Minimum").expect("degraded row");
    assert_eq!(
        t.backend().buffer()[(x, y)].fg,
        Color::Yellow,
        "degraded is yellow"
    );
    let (x, y) = find_cell(&t, "healthy   ").expect("healthy row");
    assert_eq!(
        t.backend().buffer()[(x, y)].fg,
        Color::Green,
        "healthy is green"
    );

    press(&mut app, "2");
    let t = render(&mut app, 120, 40);
    let (x, y) = find_cell(&t, "critical").expect("severity cell");
    assert!(
        is_red(t.backend().buffer()[(x, y)].fg),
        "critical severity is red"
    );

    press(&mut app, "4");
    let t = render(&mut app, 120, 40);
    let (x, y) = find_cell(&t, "critical cve").expect("critical finding");
    assert!(is_red(t.backend().buffer()[(x, y)].fg));

    // The pending badge stands out when non-zero.
    let (x, y) = find_cell(&t, "⚑ 1 pending").expect("badge");
    assert_ne!(t.backend().buffer()[(x, y)].bg, Color::Reset);
}

fn every_view(app: &mut App, mut each: impl FnMut(&mut App, &str)) {
    for keys in [
        "1",
        "1 <enter>",
        "2",
        "2 <enter>",
        "3",
        "3 <enter>",
        "3 a",
        "3 d",
        "4",
        "4 <enter>",
        "5",
        "6",
        "7",
        "7 <enter>",
        "?",
    ] {
        press(app, "<esc> <esc> <esc>");
        press(app, keys);
        each(app, keys);
    }
}

#[test]
fn mono_renders_no_colour_at_all() {
    let mut app = app_with(TuiOptions {
        no_color: true,
        ..opts()
    });
    assert_eq!(app.theme().name, "mono");
    every_view(&mut app, |app, keys| {
        let t = render(app, 120, 40);
        for cell in t.backend().buffer().content() {
            assert!(
                matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
                "{keys}: colour {:?}/{:?} at {:?}",
                cell.fg,
                cell.bg,
                cell.symbol()
            );
        }
    });
    // :theme cannot bring colour back.
    app.run_command("theme default");
    assert_eq!(app.theme().name, "mono");
}

fn sgr_colour_codes(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut found = Vec::new();
    let mut rest = text.as_ref();
    while let Some(i) = rest.find("\x1b[") {
        let seq = &rest[i + 2..];
        let end = seq
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(seq.len());
        if seq[end..].starts_with('m') {
            for param in seq[..end].split(';') {
                let colour = matches!(param.len(), 2)
                    && (param.starts_with('3') || param.starts_with('4') || param.starts_with('9'))
                    || matches!(param, "38" | "48" | "58" | "59")
                    || (param.len() == 3 && param.starts_with("10"));
                if colour {
                    found.push(format!("\\x1b[{}m", &seq[..end]));
                    break;
                }
            }
        }
        rest = &seq[end.min(seq.len())..];
    }
    found
}

#[test]
fn no_color_output_has_no_sgr_colour_codes() {
    let render_bytes = |no_color: bool| -> Vec<u8> {
        let mut app = app_with(TuiOptions { no_color, ..opts() });
        let area = Rect::new(0, 0, 120, 40);
        let sink = SharedVec::default();
        let mut terminal = Terminal::with_options(
            ConsoleBackend::new(sink.clone(), no_color),
            TerminalOptions {
                viewport: Viewport::Fixed(area),
            },
        )
        .unwrap();
        every_view(&mut app, |app, _| {
            shieldops::tui::terminal::draw_synced(&mut terminal, |f| app.draw(f)).unwrap();
        });
        drop(terminal);
        sink.take()
    };
    let coloured = render_bytes(false);
    assert!(
        !sgr_colour_codes(&coloured).is_empty(),
        "control: the default theme does emit colour"
    );
    let mono = render_bytes(true);
    assert!(mono.len() > 10_000, "frames were written");
    let text = String::from_utf8_lossy(&mono);
    assert!(
        text.contains("\x1b[?2026h") && text.contains("\x1b[?2026l"),
        "frames are synchronized"
    );
    let codes = sgr_colour_codes(&mono);
    assert!(
        codes.is_empty(),
        "colour codes in NO_COLOR output: {:?}",
        &codes[..codes.len().min(5)]
    );
    // The literal forms too (`\x1b[38;` alone would also match a cursor move to row 38).
    let mut patterns: Vec<String> = ["38;5;", "38;2;", "48;5;", "48;2;"]
        .iter()
        .map(|p| format!("\x1b[{p}"))
        .collect();
    for d in 0..10 {
        patterns.push(format!("\x1b[3{d}m"));
        patterns.push(format!("\x1b[4{d}m"));
    }
    for pattern in &patterns {
        assert!(!text.contains(pattern.as_str()), "found {pattern:?}");
    }
}

/// A writer whose bytes can be read after the terminal that owns it is gone.
#[derive(Clone, Default)]
struct SharedVec(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl SharedVec {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

impl std::io::Write for SharedVec {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn override_command_sends_a_freeze_override_only_with_an_id_and_a_reason() {
    let mut app = app_with(opts());
    assert!(app.run_command("override").is_empty());
    assert!(app.run_command("override 12").is_empty());
    assert!(app.toast_text().unwrap().contains("reason"));
    let effects = app.run_command("override #12 checkout is down");
    assert!(matches!(
        effects.as_slice(),
        [Effect::Send(shieldops::runtime::command::Command::OverrideFreeze { remediation: 12, reason })]
            if reason == "checkout is down"
    ));
    let mut read_only = app_with(TuiOptions {
        read_only: true,
        ..opts()
    });
    assert!(read_only.run_command("override 12 because").is_empty());
    assert!(read_only.toast_text().unwrap().contains("read-only"));
}

#[test]
fn hypothesis_verdicts_are_sent_from_the_open_investigation_only() {
    let mut app = app();
    // In the list, the verdict keys do nothing.
    assert!(sends(&press(&mut app, "2 y n")).is_empty());
    let state = fixture_state();
    let inv = *state.investigations.keys().next_back().unwrap();
    let titles: Vec<String> = state.investigations[&inv]
        .hypotheses
        .iter()
        .map(|h| h.title.clone())
        .collect();
    let effects = press(&mut app, "<enter> y");
    assert_eq!(
        sends(&effects),
        vec![&Command::HypothesisFeedback {
            investigation: inv,
            hypothesis: titles[0].clone(),
            confirmed: true,
        }]
    );
    // `h` moves to the next hypothesis; `n` refutes it.
    let effects = press(&mut app, "h n");
    assert_eq!(
        sends(&effects),
        vec![&Command::HypothesisFeedback {
            investigation: inv,
            hypothesis: titles[1].clone(),
            confirmed: false,
        }]
    );
    // Past the last hypothesis the selection wraps to the first.
    let n = titles.len();
    let keys = vec!["h"; n - 1].join(" ");
    press(&mut app, &keys);
    let effects = press(&mut app, "y");
    assert!(matches!(
        sends(&effects).as_slice(),
        [Command::HypothesisFeedback { hypothesis, .. }] if *hypothesis == titles[0]
    ));
}

#[test]
fn the_selected_cost_recommendation_is_proposed_unless_read_only() {
    let state = fixture_state();
    let best = state
        .cost
        .recommendations
        .values()
        .max_by_key(|r| r.monthly_savings_cents)
        .unwrap()
        .resource
        .clone();
    let mut app = app();
    let effects = press(&mut app, "5 p");
    assert_eq!(
        sends(&effects),
        vec![&Command::ApplyRecommendation { resource: best }]
    );
    let mut read_only = app_with(TuiOptions {
        read_only: true,
        ..opts()
    });
    assert!(sends(&press(&mut read_only, "5 p")).is_empty());
    assert!(read_only.toast_text().unwrap().contains("read-only"));
}

#[test]
fn learn_command_runs_a_cycle_and_shows_the_learning_pane() {
    let mut app = app();
    let effects = app.run_command("learn");
    assert_eq!(sends(&effects), vec![&Command::Learn]);
    assert!(screen(&mut app, 120, 40).contains("MTTR by incident type"));
}

/// `:ctx` lists the Kubernetes contexts from the state, narrows the Fleet
/// pane to one (with completion of the names) and `:ctx all` undoes it.
/// It reads state only: no command reaches the runtime.
#[test]
fn ctx_lists_narrows_and_completes_contexts() {
    let state = shieldops::tui::testing::fixture_kube_state();
    // Attached consoles are read-only in the same way: nothing is sent.
    let mut app = App::new(&opts(), state, fixture_now());
    assert_eq!(app.complete("ct").0, "ctx ");
    let (text, found) = app.complete("ctx ");
    assert_eq!(text, "ctx ");
    assert_eq!(found, vec!["prod-eu", "staging-eu", "all"]);
    assert_eq!(app.complete("ctx st").0, "ctx staging-eu");
    assert_eq!(app.complete("ctx a").0, "ctx all");

    let effects = press(&mut app, ":");
    let mut effects = effects;
    effects.extend(type_text(&mut app, "ctx"));
    effects.extend(press(&mut app, "<enter>"));
    assert!(sends(&effects).is_empty(), "{effects:?}");
    let s = screen(&mut app, 120, 40);
    assert!(s.contains("Kubernetes contexts"), "{s}");
    assert!(
        s.contains("staging-eu") && s.contains("failing") && s.contains("HTTP 401"),
        "{s}"
    );
    // Any key closes the list.
    press(&mut app, "<esc>");
    assert!(!screen(&mut app, 120, 40).contains("Kubernetes contexts"));

    press(&mut app, ":");
    type_text(&mut app, "ctx staging-eu");
    let effects = press(&mut app, "<enter>");
    assert!(sends(&effects).is_empty());
    assert_eq!(app.focus(), PaneId::Fleet);
    let s = screen(&mut app, 120, 40);
    assert!(
        s.contains("search-api") && s.contains("ctx: staging-eu"),
        "{s}"
    );
    assert!(
        !s.contains("checkout-7d9f8") && !s.contains("orders-db"),
        "only the staging-eu fleet is listed: {s}"
    );

    press(&mut app, ":");
    type_text(&mut app, "ctx nope");
    press(&mut app, "<enter>");
    let toast = app.toast_text().unwrap_or_default().to_string();
    assert!(
        toast.contains("nope") && toast.contains("prod-eu, staging-eu"),
        "{toast}"
    );

    press(&mut app, ":");
    type_text(&mut app, "ctx all");
    press(&mut app, "<enter>");
    let s = screen(&mut app, 120, 40);
    assert!(
        s.contains("checkout-7d9f8") && s.contains("orders-db"),
        "{s}"
    );
}

/// Without any cluster, `:ctx` and the Fleet pane say how to add one (the
/// line the runtime recorded when it found no kubeconfig).
#[test]
fn ctx_without_clusters_says_how_to_add_one() {
    let mut state = shieldops::state::State::new();
    let events = seal_all(vec![NewEvent::new(
        fixture_now(),
        "runtime",
        EventKind::ConnectorStatus {
            connector: shieldops::event::ConnectorId::new("k8s"),
            status: shieldops::event::ConnectorState::Absent,
            message: shieldops::connectors::kubernetes::HOW_TO_ADD.into(),
        },
    )]);
    state.apply(&events[0]);
    let mut app = App::new(&opts(), state, fixture_now());
    let s = screen(&mut app, 200, 40);
    assert!(s.contains("No Kubernetes cluster configured"), "{s}");
    press(&mut app, ":");
    type_text(&mut app, "ctx");
    press(&mut app, "<enter>");
    let s = screen(&mut app, 200, 40);
    assert!(
        s.contains("Kubernetes contexts") && s.contains("No Kubernetes cluster configured"),
        "{s}"
    );
    press(&mut app, "<esc> :");
    type_text(&mut app, "ctx prod");
    press(&mut app, "<enter>");
    let toast = app.toast_text().unwrap_or_default().to_string();
    assert!(
        toast.contains("No Kubernetes cluster configured"),
        "{toast}"
    );
}

/// Opening a Kubernetes resource asks the runtime to inspect it (a viewer's
/// command); other providers' resources are not inspected.
#[test]
fn drilling_into_a_kubernetes_resource_asks_for_an_inspection() {
    let mut app = app();
    press(&mut app, "/");
    type_text(&mut app, "checkout-7d9f8");
    let effects = press(&mut app, "<enter> <down> <down> <enter>");
    assert_eq!(
        sends(&effects),
        vec![&Command::Inspect {
            resource: ResourceId::new("k8s/prod-eu/payments/pod/checkout-7d9f8")
        }]
    );
    let s = screen(&mut app, 120, 40);
    assert!(s.contains("waiting for the answer"), "{s}");
    press(&mut app, "<esc> <esc>");
    press(&mut app, "/");
    type_text(&mut app, "orders-db");
    let effects = press(&mut app, "<enter> <enter>");
    assert!(sends(&effects).is_empty(), "{effects:?}");
}
