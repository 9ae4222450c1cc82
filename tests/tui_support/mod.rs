//! Shared helpers for the console tests: build the app on the fixture, press keys, render.

#![allow(dead_code)]

pub mod pty;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use shieldops::runtime::command::Identity;
use shieldops::tui::testing::{fixture_now, fixture_state};
use shieldops::tui::{App, Effect, TuiOptions};

/// Options with a fixed identity and no environment influence.
pub fn opts() -> TuiOptions {
    TuiOptions {
        theme: "default".into(),
        no_color: false,
        read_only: false,
        max_fps: 10,
        identity: Identity::token("alice", Some("10.0.0.7".into())),
        bell: true,
        desktop_notify: true,
        keys: Default::default(),
        config_dir: None,
        title: "demo".into(),
        clock: std::sync::Arc::new(shieldops::clock::ManualClock::new(
            shieldops::tui::testing::fixture_now(),
        )),
        link: None,
        cluster: None,
    }
}

/// The app on the fixture state at the fixture's "now".
pub fn app_with(opts: TuiOptions) -> App {
    App::new(&opts, fixture_state(), fixture_now())
}

/// The app with default test options.
pub fn app() -> App {
    app_with(opts())
}

/// A key event from a spelling: single char, or `<enter>`, `<esc>`, `<tab>`, `<c-s>`, `<down>`, `<up>`.
pub fn key(spec: &str) -> KeyEvent {
    let none = KeyModifiers::NONE;
    match spec {
        "<enter>" => KeyEvent::new(KeyCode::Enter, none),
        "<esc>" => KeyEvent::new(KeyCode::Esc, none),
        "<tab>" => KeyEvent::new(KeyCode::Tab, none),
        "<backtab>" => KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
        "<down>" => KeyEvent::new(KeyCode::Down, none),
        "<up>" => KeyEvent::new(KeyCode::Up, none),
        "<end>" => KeyEvent::new(KeyCode::End, none),
        "<bs>" => KeyEvent::new(KeyCode::Backspace, none),
        "<c-s>" => KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL),
        "<c-c>" => KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
        s if s.chars().count() == 1 => {
            KeyEvent::new(KeyCode::Char(s.chars().next().unwrap()), none)
        }
        other => panic!("unknown key spelling {other}"),
    }
}

/// Presses keys given as a space-separated list of spellings; returns all effects.
pub fn press(app: &mut App, keys: &str) -> Vec<Effect> {
    keys.split(' ')
        .filter(|k| !k.is_empty())
        .flat_map(|k| app.handle_key(key(k)))
        .collect()
}

/// Types text literally, character by character.
pub fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|c| app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)))
        .collect()
}

/// Renders the app into a fresh test terminal.
pub fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| app.draw(f)).unwrap();
    terminal
}

/// The rendered screen as text lines.
pub fn screen(app: &mut App, w: u16, h: u16) -> String {
    let terminal = render(app, w, h);
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Folds `drafts` into `state` as the events after its last one.
pub fn extend(state: &mut shieldops::state::State, drafts: Vec<shieldops::event::NewEvent>) {
    use shieldops::event::Event;
    for draft in drafts {
        let (event, _) = Event::seal(state.last_seq + 1, Default::default(), draft);
        state.apply(&event);
    }
}

/// A resource as a simulated connector reports it.
pub fn resource(
    id: &str,
    kind: &str,
    provider: shieldops::event::Provider,
    team: &str,
    health: shieldops::event::Health,
    attrs: &[(&str, &str)],
) -> shieldops::event::Resource {
    use shieldops::event::{ConnectorId, Environment, Resource, ResourceId};
    Resource {
        id: ResourceId::new(id),
        name: id.rsplit('/').next().unwrap_or(id).into(),
        kind: kind.into(),
        provider,
        connector: ConnectorId::new(format!("sim:{}", provider.label())),
        environment: Environment::Production,
        team: team.into(),
        labels: Default::default(),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        health,
        created_at: fixture_now() - chrono::Duration::days(30),
    }
}

/// The fleet of the night in the issue: the fixture plus thirty healthy EC2
/// instances, a credential about to expire (degraded) and three pods
/// crash-looping in a namespace far down the grouped list.
pub fn night_state() -> shieldops::state::State {
    use shieldops::event::{EventKind, Health, HealthStatus, NewEvent, Provider, ResourceId};
    let mut state = shieldops::tui::testing::fixture_state();
    let now = fixture_now();
    let mut drafts = Vec::new();
    for i in 1..=30 {
        drafts.push(NewEvent::new(
            now,
            "agent:discovery",
            EventKind::ResourceDiscovered {
                resource: resource(
                    &format!("aws/eu-west-1/ec2/web-{i:02}"),
                    "ec2_instance",
                    Provider::Aws,
                    "web",
                    Health::healthy(),
                    &[],
                ),
            },
        ));
    }
    for pod in [
        "payout-5f6d7-abcde",
        "payout-5f6d7-fghij",
        "payout-5f6d7-klmno",
    ] {
        drafts.push(NewEvent::new(
            now,
            "agent:discovery",
            EventKind::ResourceDiscovered {
                resource: resource(
                    &format!("k8s/prod-eu/zz-payouts/pod/{pod}"),
                    "pod",
                    Provider::Kubernetes,
                    "payouts",
                    Health::new(
                        HealthStatus::Unhealthy,
                        "CrashLoopBackOff",
                        "back-off 5m0s restarting failed container",
                    ),
                    &[("context", "prod-eu"), ("namespace", "zz-payouts")],
                ),
            },
        ));
    }
    drafts.push(NewEvent::new(
        now,
        "agent:security",
        EventKind::HealthChanged {
            resource: ResourceId::new("aws/iam/access-key/deploy-bot"),
            health: Health::new(
                HealthStatus::Degraded,
                "CredentialExpiring",
                "expires in 4 days",
            ),
        },
    ));
    extend(&mut state, drafts);
    state
}

/// The fixture with agents as a running runtime reports them: scheduled
/// next runs, one agent whose heartbeat stopped and one with errors.
pub fn agents_state() -> shieldops::state::State {
    use chrono::Duration;
    use shieldops::event::{EventKind, NewEvent};
    let mut state = shieldops::tui::testing::fixture_state();
    let now = fixture_now();
    let beat = |agent: &str, ago: i64, every: i64, status: &str| {
        NewEvent::new(
            now - Duration::seconds(ago),
            format!("agent:{agent}"),
            EventKind::AgentHeartbeat {
                agent: agent.into(),
                status: status.into(),
                next_run: Some(now - Duration::seconds(ago) + Duration::seconds(every)),
            },
        )
    };
    let drafts = vec![
        NewEvent::new(
            now - Duration::seconds(400),
            "agent:discovery",
            EventKind::AgentError {
                agent: "discovery".into(),
                error: "aws:prod/eu-west-1: DescribeInstances failed: ExpiredToken: the security token included in the request is expired".into(),
            },
        ),
        beat("discovery", 310, 5, "ok: 0 change(s) last poll"),
        beat("security", 45, 60, "ok: 2 finding(s) changed last scan"),
        beat("cost", 4, 10, "ok: 3 cost event(s) last sample"),
        NewEvent::new(
            now - Duration::seconds(90),
            "agent:cost",
            EventKind::AgentError {
                agent: "cost".into(),
                error: "price table assets/prices.toml: no price for instance type m7i.large".into(),
            },
        ),
    ];
    extend(&mut state, drafts);
    state
}
