//! Snapshots of every pane (list and detail), the dialogs and the overlays
//! (help, `:ctx`, `:agents`) at 200×50, 120×40 and 80×24, rendered from the
//! deterministic fixture.

mod tui_support;

use tui_support::{app, press, render, type_text};

const SIZES: [(u16, u16); 3] = [(200, 50), (120, 40), (80, 24)];

fn snap(name: &str, keys: &str, typed: Option<&str>, after: &str) {
    for (w, h) in SIZES {
        let mut app = app();
        press(&mut app, keys);
        if let Some(text) = typed {
            type_text(&mut app, text);
        }
        press(&mut app, after);
        let terminal = render(&mut app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), terminal.backend());
    }
}

#[test]
fn fleet_list() {
    snap("fleet_list", "1", None, "");
}

#[test]
fn fleet_detail() {
    // Filtered to the OOMKilled pod: its context and namespace headers come
    // first, then the pod. No inspection has arrived yet.
    snap(
        "fleet_detail",
        "1 /",
        Some("checkout-7d9f8"),
        "<enter> <down> <down> <enter>",
    );
}

/// Snapshots of an app over the Kubernetes fixture after `keys` (and `typed`, then `after`).
fn kube_snap(name: &str, keys: &str, typed: Option<&str>, after: &str) {
    use shieldops::tui::testing::{fixture_kube_state, fixture_now};
    let state = fixture_kube_state();
    for (w, h) in SIZES {
        let mut app = shieldops::tui::App::new(&tui_support::opts(), state.clone(), fixture_now());
        press(&mut app, keys);
        if let Some(text) = typed {
            type_text(&mut app, text);
        }
        press(&mut app, after);
        let terminal = render(&mut app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), terminal.backend());
    }
}

#[test]
fn fleet_detail_with_inspection() {
    // The pod's inspection arrived: its events and the redacted log tail, with the time.
    kube_snap(
        "fleet_detail_inspected",
        "1 /",
        Some("checkout-7d9f8"),
        "<enter> <down> <down> <enter>",
    );
}

#[test]
fn ctx_list() {
    kube_snap("ctx_list", ":", Some("ctx"), "<enter>");
}

#[test]
fn fleet_narrowed_to_a_context() {
    kube_snap("fleet_ctx_staging", ":", Some("ctx staging-eu"), "<enter>");
}

#[test]
fn fleet_group_folded() {
    // Enter on the prod-eu header folds it to its one line with counts.
    kube_snap(
        "fleet_folded",
        "1",
        None,
        "<down> <down> <down> <down> <down> <down> <down> <enter>",
    );
}

#[test]
fn fleet_filtered() {
    snap("fleet_filtered", "1 /", Some("prod"), "<enter>");
}

#[test]
fn investigations_list() {
    snap("investigations_list", "2", None, "");
}

#[test]
fn investigations_detail() {
    snap("investigations_detail", "2 <enter>", None, "");
}

#[test]
fn investigations_detail_second_hypothesis() {
    // `h` selects the next hypothesis (the marker moves); the first shows its verdict.
    snap(
        "investigations_detail_second_hypothesis",
        "2 <enter> h",
        None,
        "",
    );
}

#[test]
fn remediations_list() {
    snap("remediations_list", "3", None, "");
}

#[test]
fn remediations_detail() {
    snap("remediations_detail", "3 <enter>", None, "");
}

#[test]
fn remediations_detail_denied() {
    // The denied restart_node shows every policy deny reason.
    snap("remediations_detail_denied", "3 j j <enter>", None, "");
}

#[test]
fn security_list() {
    snap("security_list", "4", None, "");
}

#[test]
fn security_detail() {
    snap("security_detail", "4 <enter>", None, "");
}

#[test]
fn security_controls() {
    // `s` switches the list to the controls, failing first by framework.
    snap("security_controls", "4 s", None, "");
}

#[test]
fn security_control_detail() {
    snap("security_control_detail", "4 s <enter>", None, "");
}

#[test]
fn security_credentials() {
    snap("security_credentials", "4 s s", None, "");
}

#[test]
fn security_images() {
    snap("security_images", "4 s s s", None, "");
}

#[test]
fn cost() {
    snap("cost", "5", None, "");
}

#[test]
fn learning() {
    snap("learning", "6", None, "");
}

#[test]
fn events_list() {
    snap("events_list", "7", None, "");
}

#[test]
fn events_filtered() {
    snap("events_filtered", "7 /", Some("kind:approval"), "<enter>");
}

#[test]
fn events_detail() {
    snap("events_detail", "7 <enter>", None, "");
}

#[test]
fn approval_dialog() {
    snap(
        "approval_dialog",
        "3 a",
        Some("memory headroom is fine"),
        "",
    );
}

#[test]
fn deny_dialog() {
    snap("deny_dialog", "3 d", None, "");
}

#[test]
fn deny_dialog_refuses_empty_reason() {
    snap("deny_dialog_empty", "3 d <c-s>", None, "");
}

#[test]
fn help_overlay() {
    snap("help", "?", None, "");
}

#[test]
fn quit_confirmation() {
    snap("quit_confirm", "q", None, "");
}

#[test]
fn command_mode_completion() {
    snap("command_completion", ":", Some("t"), "<tab>");
}

#[test]
fn attached_console_while_disconnected() {
    // A remote console that lost its server: the header says since when,
    // and the panes keep the state as of the last event received.
    for (w, h) in SIZES {
        let mut app = app();
        app.set_link(shieldops::tui::Link::Disconnected {
            since: shieldops::tui::testing::fixture_now() - chrono::Duration::seconds(42),
            reason: "the server closed the connection".into(),
        });
        let terminal = render(&mut app, w, h);
        insta::assert_snapshot!(format!("attached_disconnected_{w}x{h}"), terminal.backend());
    }
}

#[test]
fn fleet_connector_status() {
    use shieldops::event::{ConnectorId, ConnectorState, Event, EventKind, NewEvent};
    use shieldops::tui::testing::{fixture_events, fixture_now, fixture_state};
    // An absent AWS section and a connector whose credentials expired: one line each.
    let mut state = fixture_state();
    let last = fixture_events().pop().expect("fixture events");
    let mut prev = last.hash;
    for (i, (connector, status, message)) in [
        (
            "aws",
            ConnectorState::Absent,
            "AWS not configured: add an [aws] section (profiles, regions) to the config file",
        ),
        (
            "aws:prod/eu-west-1",
            ConnectorState::Failing,
            "AWS credentials for profile `prod` are not usable (expired at 2026-03-02 08:00 UTC)",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let draft = NewEvent::new(
            fixture_now(),
            "agent:discovery",
            EventKind::ConnectorStatus {
                connector: ConnectorId::new(connector),
                status,
                message: message.into(),
            },
        );
        let (event, _) = Event::seal(last.seq + 1 + i as u64, prev, draft);
        prev = event.hash;
        state.apply(&event);
    }
    for (w, h) in SIZES {
        let mut app = shieldops::tui::App::new(&tui_support::opts(), state.clone(), fixture_now());
        press(&mut app, "1");
        let terminal = render(&mut app, w, h);
        insta::assert_snapshot!(
            format!("fleet_connector_status_{w}x{h}"),
            terminal.backend()
        );
    }
}

/// Missing or stale vulnerability data is never shown as an empty, calm list.
#[test]
fn security_vulnerability_data_freshness() {
    use shieldops::tui::App;
    use shieldops::tui::testing::{fixture_now, fixture_state};
    use tui_support::{opts, screen};

    let mut state = fixture_state();
    state.security.vulndb = None;
    let mut app = App::new(&opts(), state.clone(), fixture_now());
    press(&mut app, "4");
    let text = screen(&mut app, 120, 40);
    assert!(
        text.contains("no vulnerability data loaded: run `shieldops cve import`"),
        "{text}"
    );

    let db = state.security.vulndb.get_or_insert_with(|| {
        fixture_state()
            .security
            .vulndb
            .expect("the fixture reports its vulnerability data")
    });
    db.stale = false;
    db.sources[0].imported_at = fixture_now() - chrono::Duration::days(2);
    let mut app = App::new(&opts(), state, fixture_now());
    press(&mut app, "4");
    let text = screen(&mut app, 120, 40);
    assert!(
        text.contains("vulnerability data debian 2d old, 48211 records (limit 7d)"),
        "{text}"
    );
    assert!(!text.contains("STALE"), "{text}");
}

/// Snapshots of an app over `state` after `keys` at every size.
fn state_snap(name: &str, state: &shieldops::state::State, keys: &str) {
    use shieldops::tui::testing::fixture_now;
    for (w, h) in SIZES {
        let mut app = shieldops::tui::App::new(&tui_support::opts(), state.clone(), fixture_now());
        press(&mut app, keys);
        let terminal = render(&mut app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), terminal.backend());
    }
}

#[test]
fn fleet_problems_first() {
    // Crash-looping pods in a namespace far down the grouped list, a
    // credential about to expire, thirty healthy instances: sorted by
    // health, every problem is in the band on top.
    state_snap("fleet_problems_first", &tui_support::night_state(), "1");
}

#[test]
fn fleet_problems_only() {
    state_snap("fleet_problems_only", &tui_support::night_state(), "1 !");
}

#[test]
fn agents_overlay() {
    state_snap("agents_overlay", &tui_support::agents_state(), "A");
}

#[test]
fn help_overlay_scrolled() {
    // At 80×24 the help scrolls; its last page shows the commands whole.
    snap("help_scrolled", "?", None, "<end>");
}

#[test]
fn cluster_overlay_and_role_in_the_header() {
    // An attached console on a standby: the header names its role and the
    // leader; `:cluster` shows the nodes, their lag and the lease.
    use shieldops::cluster::NodeRole;
    use shieldops::tui::testing::fixture_cluster;
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = app();
        app.set_cluster(Some(fixture_cluster(NodeRole::Standby)));
        let terminal = render(&mut app, w, h);
        insta::assert_snapshot!(format!("header_standby_{w}x{h}"), terminal.backend());
        press(&mut app, ":");
        type_text(&mut app, "cluster");
        press(&mut app, "<enter>");
        let terminal = render(&mut app, w, h);
        insta::assert_snapshot!(format!("cluster_overlay_{w}x{h}"), terminal.backend());
    }
    // The leader's console, and one attached to a server that is not clustered.
    let mut leader = app();
    leader.set_cluster(Some(fixture_cluster(NodeRole::Leader)));
    insta::assert_snapshot!(
        "header_leader_120x40",
        render(&mut leader, 120, 40).backend()
    );
    let mut single = app();
    single.set_cluster(None);
    insta::assert_snapshot!("header_single_80x24", render(&mut single, 80, 24).backend());
    press(&mut single, ":");
    type_text(&mut single, "cluster");
    press(&mut single, "<enter>");
    insta::assert_snapshot!(
        "cluster_overlay_single_80x24",
        render(&mut single, 80, 24).backend()
    );
}
