//! Shared helpers for the console tests: build the app on the fixture, press keys, render.

#![allow(dead_code)]

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
