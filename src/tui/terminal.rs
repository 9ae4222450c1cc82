//! The terminal: raw mode and the alternate screen behind a guard that always
//! restores them (drop, panic hook, signals), a backend that can emit no
//! colour at all, and frames wrapped in synchronized output.

use std::io::{self, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::{Hide, MoveTo, Show};
use crossterm::style::{Attribute, Print, SetAttribute};
use crossterm::terminal::ClearType as TermClear;
use crossterm::terminal::{
    BeginSynchronizedUpdate, Clear, EndSynchronizedUpdate, EnterAlternateScreen,
    LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{execute, queue};
use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::style::Modifier;
use ratatui::{Frame, Terminal};

/// Whether the terminal is currently in console mode (raw + alternate screen).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Puts the terminal back: ends any open synchronized update, leaves the
/// alternate screen, shows the cursor, leaves raw mode. Safe to call twice.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(
            out,
            EndSynchronizedUpdate,
            SetAttribute(Attribute::Reset),
            LeaveAlternateScreen,
            Show
        );
        let _ = disable_raw_mode();
    }
}

/// Holds the terminal in console mode; dropping it restores the terminal.
pub struct TerminalGuard(());

impl TerminalGuard {
    /// Enters raw mode and the alternate screen, and installs the panic hook.
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let guard = TerminalGuard(());
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            Hide,
            Clear(TermClear::All)
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// A panic hook that restores the terminal before the panic message is printed,
/// so the message is readable and the shell usable.
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// A crossterm backend that, in no-colour mode, writes only positions, text
/// and modifiers (bold, underline, reverse…): not even colour resets, so the
/// output contains no SGR colour sequence at all.
pub struct ConsoleBackend<W: Write> {
    inner: CrosstermBackend<W>,
    no_color: bool,
}

impl<W: Write> ConsoleBackend<W> {
    /// Wraps a writer.
    pub fn new(writer: W, no_color: bool) -> Self {
        ConsoleBackend {
            inner: CrosstermBackend::new(writer),
            no_color,
        }
    }

    fn draw_mono<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let mut modifier = Modifier::empty();
        let mut last: Option<(u16, u16)> = None;
        let w = &mut self.inner;
        for (x, y, cell) in content {
            if !matches!(last, Some((lx, ly)) if x == lx + 1 && y == ly) {
                queue!(w, MoveTo(x, y))?;
            }
            last = Some((x, y));
            if cell.modifier != modifier {
                queue!(w, SetAttribute(Attribute::Reset))?;
                for (m, a) in [
                    (Modifier::BOLD, Attribute::Bold),
                    (Modifier::DIM, Attribute::Dim),
                    (Modifier::ITALIC, Attribute::Italic),
                    (Modifier::UNDERLINED, Attribute::Underlined),
                    (Modifier::SLOW_BLINK, Attribute::SlowBlink),
                    (Modifier::RAPID_BLINK, Attribute::RapidBlink),
                    (Modifier::REVERSED, Attribute::Reverse),
                    (Modifier::HIDDEN, Attribute::Hidden),
                    (Modifier::CROSSED_OUT, Attribute::CrossedOut),
                ] {
                    if cell.modifier.contains(m) {
                        queue!(w, SetAttribute(a))?;
                    }
                }
                modifier = cell.modifier;
            }
            queue!(w, Print(cell.symbol()))?;
        }
        if !modifier.is_empty() {
            queue!(w, SetAttribute(Attribute::Reset))?;
        }
        Ok(())
    }
}

impl<W: Write> Write for ConsoleBackend<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Write::flush(&mut self.inner)
    }
}

impl<W: Write> Backend for ConsoleBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        if self.no_color {
            self.draw_mono(content)
        } else {
            self.inner.draw(content)
        }
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }
    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}

/// Draws one frame inside a synchronized update (DEC mode 2026), so a remote
/// terminal never paints half a frame. The update is ended even when drawing fails.
pub fn draw_synced<W: Write>(
    terminal: &mut Terminal<ConsoleBackend<W>>,
    render: impl FnOnce(&mut Frame),
) -> io::Result<()> {
    queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    let drawn = terminal.draw(render).map(|_| ());
    let ended = execute!(terminal.backend_mut(), EndSynchronizedUpdate);
    drawn.and(ended)
}
