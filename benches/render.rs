//! Console render benchmarks.
//!
//! - Frame time of every pane (list and detail views) with 50,000 fleet
//!   resources and a state folded from 1,000,000 events, on a 200×50
//!   `TestBackend`. Goal: ≤ 2 ms per frame.
//! - Keystroke to frame: one key handled and the frame drawn.
//! - Bytes written per second through the real crossterm backend at 200×50
//!   (printed before the timings): idle, where only the clock ticks (goal
//!   ≤ 200 B/s), and with a stream of events like the live demo's (goal
//!   ≤ 8 KiB/s).
//!
//! Run: `cargo bench --bench render` (set `RENDER_BENCH_EVENTS` to fold fewer events).

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use criterion::{Criterion, criterion_group};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use shieldops::runtime::command::Identity;
use shieldops::state::State;
use shieldops::tui::scheduler::Scheduler;
use shieldops::tui::terminal::{ConsoleBackend, draw_synced};
use shieldops::tui::testing::{big_state, fixture_now, fixture_state, live_stream};
use shieldops::tui::{App, TuiOptions};

const W: u16 = 200;
const H: u16 = 50;

fn opts() -> TuiOptions {
    TuiOptions {
        theme: "default".into(),
        no_color: false,
        read_only: false,
        max_fps: 10,
        identity: Identity::declared("bench"),
        bell: false,
        desktop_notify: false,
        keys: Default::default(),
        config_dir: None,
        title: "bench".into(),
        ..TuiOptions::default()
    }
}

fn key(c: char) -> KeyEvent {
    let code = match c {
        '\n' => KeyCode::Enter,
        '\x1b' => KeyCode::Esc,
        c => KeyCode::Char(c),
    };
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.handle_key(key(c));
    }
}

fn big() -> State {
    let events: usize = std::env::var("RENDER_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let started = Instant::now();
    let state = big_state(50_000, events);
    eprintln!(
        "folded {} events into {} resources in {:.1?}",
        state.event_count,
        state.fleet.resources.len(),
        started.elapsed()
    );
    state
}

fn frames(c: &mut Criterion) {
    let state = big();
    let views = [
        ("fleet", "1"),
        ("fleet_detail", "1\n"),
        ("fleet_ctx", ":ctx prod-eu\n"),
        ("ctx_list", ":ctx\n"),
        ("investigations", "2"),
        ("investigation_detail", "2\n"),
        ("remediations", "3"),
        ("remediation_detail", "3\n"),
        ("approval_dialog", "3a"),
        ("security", "4"),
        ("cost", "5"),
        ("learning", "6"),
        ("events", "7"),
        ("event_detail", "7\n"),
        ("help", "?"),
    ];
    let mut group = c.benchmark_group("frame_200x50");
    for (name, keys) in views {
        let mut app = App::new(&opts(), state.clone(), fixture_now());
        press(&mut app, keys);
        let mut terminal = Terminal::new(TestBackend::new(W, H)).unwrap();
        // Warm the caches: the first frame after a change sorts; steady frames do not.
        terminal.draw(|f| app.draw(f)).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                terminal.draw(|f| app.draw(f)).unwrap();
            })
        });
    }
    group.finish();

    // Key to frame: move the fleet cursor and draw (the sorted list is cached).
    let mut app = App::new(&opts(), state.clone(), fixture_now());
    let mut terminal = Terminal::new(TestBackend::new(W, H)).unwrap();
    terminal.draw(|f| app.draw(f)).unwrap();
    let mut down = true;
    c.bench_function("key_to_frame_fleet_50k", |b| {
        b.iter(|| {
            app.handle_key(key(if down { 'j' } else { 'k' }));
            down = !down;
            terminal.draw(|f| app.draw(f)).unwrap();
        })
    });

    // Rebuilding the fleet view after a health change (sort of 50k rows).
    let mut app = App::new(&opts(), state, fixture_now());
    let stream = live_stream(app.state.last_seq, 2);
    let mut terminal = Terminal::new(TestBackend::new(W, H)).unwrap();
    c.bench_function("fleet_frame_after_health_change_50k", |b| {
        b.iter(|| {
            // Alternate the same health change so each iteration re-sorts.
            let mut e = stream[1].clone();
            e.seq = app.state.last_seq + 1;
            app.apply_event(&e);
            terminal.draw(|f| app.draw(f)).unwrap();
        })
    });
}

/// Counts bytes written.
#[derive(Clone, Default)]
struct Counter(Rc<Cell<u64>>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.set(self.0.get() + buf.len() as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Simulates `seconds` of the console at 200×50 with `rate` events a second
/// (from the live stream), the scheduler's frame limit and a clock tick each
/// second; returns bytes written per second after the first full frame.
fn bytes_per_second(pane: &str, rate: u32, seconds: u32) -> f64 {
    let mut app = App::new(&opts(), fixture_state(), fixture_now());
    press(&mut app, pane);
    let counter = Counter::default();
    let mut terminal = Terminal::with_options(
        ConsoleBackend::new(counter.clone(), false),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, W, H)),
        },
    )
    .unwrap();
    draw_synced(&mut terminal, |f| app.draw(f)).unwrap();
    let first = counter.0.get();
    let stream = live_stream(app.state.last_seq, (rate * seconds) as usize);
    let mut scheduler = Scheduler::new(10);
    let t0 = Instant::now();
    scheduler.drawn(t0);
    let step = Duration::from_millis(10);
    let mut next_event = 0usize;
    let ticks = seconds * 100;
    for tick in 1..=ticks {
        let at = t0 + step * tick;
        let elapsed_ms = (tick * 10) as i64;
        let now = fixture_now() + ChronoDuration::milliseconds(elapsed_ms);
        if rate > 0 {
            let due = (elapsed_ms as u64 * rate as u64 / 1000) as usize;
            while next_event < due.min(stream.len()) {
                app.apply_event(&stream[next_event]);
                next_event += 1;
                scheduler.mark();
            }
        }
        if elapsed_ms % 1000 == 0 {
            scheduler.mark(); // the clock's second changed
        }
        if scheduler.due(at) {
            app.set_now(now);
            draw_synced(&mut terminal, |f| app.draw(f)).unwrap();
            scheduler.drawn(at);
        }
    }
    (counter.0.get() - first) as f64 / seconds as f64
}

fn report_bytes() {
    for (label, pane, rate) in [
        ("idle, fleet pane", "1", 0),
        ("idle, events pane", "7", 0),
        ("live demo stream 4 ev/s, fleet pane", "1", 4),
        (
            "live demo stream 4 ev/s, events pane (tail scrolling)",
            "7",
            4,
        ),
        (
            "live demo stream 20 ev/s, events pane (tail scrolling)",
            "7",
            20,
        ),
    ] {
        let bps = bytes_per_second(pane, rate, 60);
        eprintln!("bytes/s at {W}x{H}, {label}: {bps:.0} B/s");
    }
}

criterion_group!(benches, frames);

fn main() {
    report_bytes();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
