//! The console at 3 a.m. on 80×24: problems on the first screen, the `!`
//! filter, which agent is not ok (`:agents`), and Esc then a key arriving
//! as one Alt-key.

mod tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use shieldops::event::HealthStatus;
use shieldops::tui::App;
use shieldops::tui::panes::PaneId;
use shieldops::tui::testing::fixture_now;
use tui_support::{agents_state, night_state, opts, press, screen, type_text};

fn alt(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT)
}

/// The names of the resources with a health, from the state.
fn names_with(state: &shieldops::state::State, status: HealthStatus) -> Vec<String> {
    state
        .fleet
        .resources
        .values()
        .filter(|v| v.resource.health.status == status)
        .map(|v| v.resource.name.clone())
        .collect()
}

/// The count the Fleet summary line shows before `label` (`● 4 unhl`).
fn summary_count(text: &str, label: &str) -> usize {
    let line = text.lines().nth(2).expect("summary line");
    let before = line
        .split(&format!(" {label}"))
        .next()
        .expect("label present");
    before
        .rsplit('●')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count before {label} in {line:?}"))
}

#[test]
fn every_problem_is_on_the_first_screen_and_the_counts_agree() {
    let state = night_state();
    let unhealthy = names_with(&state, HealthStatus::Unhealthy);
    let degraded = names_with(&state, HealthStatus::Degraded);
    assert_eq!(unhealthy.len(), 4, "the night has four unhealthy resources");
    let mut app = App::new(&opts(), state, fixture_now());
    press(&mut app, "1");
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("sort:health"), "{text}");
    for name in unhealthy.iter().chain(&degraded) {
        assert!(
            text.contains(name.as_str()),
            "{name} not on the first screen:\n{text}"
        );
    }
    assert_eq!(summary_count(&text, "unhl"), unhealthy.len(), "{text}");
    assert_eq!(summary_count(&text, "degr"), degraded.len(), "{text}");
    let band = format!("▲ problems ({})", unhealthy.len() + degraded.len());
    assert!(text.contains(&band), "{text}");
    // Worst first: the band's first row is unhealthy.
    let first = text
        .lines()
        .skip_while(|l| !l.contains("▲ problems"))
        .nth(1)
        .expect("a row under the band");
    assert!(first.contains("unhealthy"), "{first}");
}

#[test]
fn the_band_says_how_many_problems_ctx_keeps_out_of_view() {
    let mut app = App::new(&opts(), night_state(), fixture_now());
    press(&mut app, ":");
    type_text(&mut app, "ctx staging-eu");
    press(&mut app, "<enter>");
    let text = screen(&mut app, 80, 24);
    // staging-eu is healthy; all eight problems are in other places, and
    // the band says so rather than leaving the header's counts unexplained.
    assert!(text.contains("▲ problems (0)"), "{text}");
    assert!(text.contains("8 outside :ctx"), "{text}");
    // A typed filter is a search: its answer is the list, with no band.
    press(&mut app, ":");
    type_text(&mut app, "ctx all");
    press(&mut app, "<enter> /");
    type_text(&mut app, "payout");
    press(&mut app, "<enter>");
    let text = screen(&mut app, 80, 24);
    assert!(!text.contains("problems ("), "{text}");
    assert_eq!(text.matches("payout-5f6d7").count(), 3, "{text}");
}

#[test]
fn enter_on_the_band_folds_it() {
    let mut app = App::new(&opts(), night_state(), fixture_now());
    press(&mut app, "1 <enter>");
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("▸ problems (8)"), "{text}");
    assert_eq!(text.matches("payout-5f6d7").count(), 0, "{text}");
    press(&mut app, "<enter>");
    assert!(screen(&mut app, 80, 24).contains("▲ problems (8)"));
}

#[test]
fn bang_toggles_problems_only() {
    let state = night_state();
    let mut app = App::new(&opts(), state.clone(), fixture_now());
    press(&mut app, "1 !");
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("problems only"), "{text}");
    assert!(
        text.contains("(8 problems only)"),
        "title counts them: {text}"
    );
    for name in names_with(&state, HealthStatus::Healthy) {
        // Names are unique enough in the night fleet except `checkout`
        // (a degraded deployment shares the name with a healthy one).
        if name != "checkout" {
            assert!(!text.contains(&name), "healthy {name} listed:\n{text}");
        }
    }
    assert!(
        !text.contains("reporting-1"),
        "unknown is not a problem: {text}"
    );
    press(&mut app, "!");
    let text = screen(&mut app, 80, 24);
    assert!(!text.contains("problems only"), "{text}");
    assert!(text.contains("web-01"), "{text}");
    // From another pane `!` goes to the Fleet pane's problems.
    press(&mut app, "7 !");
    assert_eq!(app.focus(), PaneId::Fleet);
    assert!(screen(&mut app, 80, 24).contains("(8 problems only)"));
}

#[test]
fn bang_is_in_the_help_and_the_footer() {
    let mut app = App::new(&opts(), night_state(), fixture_now());
    press(&mut app, "1");
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("! problems"), "footer offers it: {text}");
    press(&mut app, "?");
    let mut help = screen(&mut app, 80, 24);
    for _ in 0..5 {
        press(&mut app, "<down> <down> <down> <down> <down>");
        help.push_str(&screen(&mut app, 80, 24));
    }
    assert!(
        help.contains("!           Fleet: only unhealthy and degraded resources"),
        "{help}"
    );
}

#[test]
fn agents_overlay_says_which_agent_and_why() {
    for keys in ["A", ":"] {
        let mut app = App::new(&opts(), agents_state(), fixture_now());
        press(&mut app, keys);
        if keys == ":" {
            type_text(&mut app, "agents");
            press(&mut app, "<enter>");
        }
        let text = screen(&mut app, 80, 24);
        // Discovery stopped five minutes ago after an expired token.
        assert!(text.contains("discovery"), "{text}");
        assert!(text.contains("missing"), "{text}");
        assert!(text.contains("ExpiredToken"), "{text}");
        assert!(text.contains("overdue 5m"), "{text}");
        // Security scans once a minute: 45 s after its run it is not late.
        let security = text
            .lines()
            .find(|l| l.contains(" security ") && l.contains("last run"))
            .expect("security line");
        assert!(security.contains(" ok "), "{security}");
        assert!(security.contains("next in 15s"), "{security}");
        // Cost runs, and its last error is shown with its age.
        assert!(text.contains("last error 1m ago"), "{text}");
        // The header's count agrees with the overlay's.
        let header = text.lines().next().unwrap();
        let ok_in_title = text
            .lines()
            .find_map(|l| l.split("Agents: ").nth(1))
            .and_then(|rest| rest.split(" ok").next())
            .expect("overlay title")
            .to_string();
        assert!(
            header.contains(&format!("agents {ok_in_title} ok")),
            "header {header:?} vs overlay {ok_in_title}"
        );
        // Any key closes it; Esc does nothing else.
        press(&mut app, "<esc>");
        assert!(!screen(&mut app, 80, 24).contains("Agents: "));
    }
}

#[test]
fn agents_are_listed_in_help() {
    let mut app = App::new(&opts(), agents_state(), fixture_now());
    press(&mut app, "?");
    let mut seen = screen(&mut app, 80, 24);
    for _ in 0..6 {
        press(&mut app, "<down> <down> <down> <down> <down>");
        seen.push_str(&screen(&mut app, 80, 24));
    }
    assert!(seen.contains(":agents"), "{seen}");
    assert!(seen.contains("last run, last error"), "{seen}");
}

#[test]
fn esc_then_digit_as_alt_digit_switches_pane() {
    let mut app = App::new(&opts(), night_state(), fixture_now());
    app.handle_key(alt('4'));
    assert_eq!(app.focus(), PaneId::Security);
    // From inside a drill-down: Esc closes it, the digit switches.
    press(&mut app, "1 <down> <enter>");
    assert!(screen(&mut app, 80, 24).contains("1 Fleet ›"));
    app.handle_key(alt('7'));
    assert_eq!(app.focus(), PaneId::Events);
    press(&mut app, "1");
    assert!(
        !screen(&mut app, 80, 24).contains("1 Fleet ›"),
        "drill closed"
    );
    // While typing a filter: Esc undoes it, then the pane switches.
    press(&mut app, "/");
    type_text(&mut app, "web");
    app.handle_key(alt('3'));
    assert_eq!(app.focus(), PaneId::Remediations);
    press(&mut app, "1");
    assert!(!screen(&mut app, 80, 24).contains("filter: web"));
    // In command mode Esc cancels the command and the key acts.
    press(&mut app, ":");
    type_text(&mut app, "q");
    app.handle_key(alt('2'));
    assert_eq!(app.focus(), PaneId::Investigations);
    assert!(!app.should_quit());
}

#[test]
fn alt_digit_in_the_approval_dialog_cancels_and_sends_nothing() {
    let mut app = tui_support::app();
    press(&mut app, "3 a");
    assert!(app.dialog_open().is_some());
    let effects = app.handle_key(alt('1'));
    assert!(effects.is_empty(), "{effects:?}");
    assert!(app.dialog_open().is_none());
    assert_eq!(app.focus(), PaneId::Fleet);
    // Alt-b in the comment box is the box's own word motion, not Esc b.
    press(&mut app, "3 a");
    type_text(&mut app, "ok by me");
    app.handle_key(alt('b'));
    assert!(app.dialog_open().is_some(), "Alt-b kept the dialog open");
}

#[test]
fn a_long_agents_overlay_scrolls_at_80x24() {
    use shieldops::event::{EventKind, NewEvent};
    // One more agent in trouble: the overlay no longer fits 24 rows.
    let mut state = agents_state();
    tui_support::extend(
        &mut state,
        vec![NewEvent::new(
            fixture_now() - chrono::Duration::seconds(30),
            "agent:security",
            EventKind::AgentError {
                agent: "security".into(),
                error: "compliance bundle policies/cis.rego: rule `ssh_root_login` is undefined \
                        for host bastion-1 (input.sshd missing)"
                    .into(),
            },
        )],
    );
    let mut app = App::new(&opts(), state, fixture_now());
    press(&mut app, "A");
    let first = screen(&mut app, 80, 24);
    assert!(first.contains("j/k scroll"), "{first}");
    assert!(!first.contains("any key closes"), "{first}");
    press(&mut app, "<end>");
    let last = screen(&mut app, 80, 24);
    assert!(last.contains("supervisor"), "{last}");
    assert!(last.contains("any key closes"), "{last}");
    assert!(
        last.contains("Agents: "),
        "navigation keeps it open: {last}"
    );
    press(&mut app, "q");
    assert!(!screen(&mut app, 80, 24).contains("Agents: "));
    assert!(
        !app.should_quit(),
        "the key that closes an overlay does not also quit"
    );
}
