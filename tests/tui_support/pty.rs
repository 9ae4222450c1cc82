//! The real binary in a pseudo-terminal: keystrokes in, the screen parsed
//! by a terminal emulator out. Waits poll the parsed screen against a deadline.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_shieldops");
/// Generous: the scenario needs some simulated minutes before it asks for approval.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The demo console running in a pty.
pub struct Console {
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
}

impl Console {
    /// Starts `shieldops [extra] demo` in a `size` pty with `TERM=term`.
    pub fn start(data: &Path, extra: &[&str], term: &str, size: (u16, u16)) -> Console {
        Console::start_env(data, extra, term, size, &[])
    }

    /// As [`Console::start`], with extra environment variables (e.g. `NO_COLOR`).
    pub fn start_env(
        data: &Path,
        extra: &[&str],
        term: &str,
        size: (u16, u16),
        env: &[(&str, &str)],
    ) -> Console {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: size.1,
                cols: size.0,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(BIN);
        cmd.arg("--data-dir");
        cmd.arg(data.join("data"));
        cmd.arg("--log-dir");
        cmd.arg(data.join("logs"));
        for a in extra {
            cmd.arg(a);
        }
        // A fixed weekday start: production is outside the default change freeze.
        cmd.args(["demo", "--speed", "20", "--start", "2026-06-03T10:00:00Z"]);
        cmd.env("SHIELDOPS_USER", "alice");
        // The demo's screens are compared as they play: this machine's live
        // numbers would make them vary, so the local host stays out.
        cmd.env("SHIELDOPS_NO_LOCAL_HOST", "1");
        cmd.env("TERM", term);
        cmd.env("HOME", data);
        cmd.env("XDG_CONFIG_HOME", data.join("config"));
        cmd.env("XDG_DATA_HOME", data.join("xdg-data"));
        cmd.env("XDG_STATE_HOME", data.join("state"));
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("SSH_CONNECTION");
        // No desktop session in tests: the notification fails and must be harmless.
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn shieldops");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(size.1, size.0, 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (p, r) = (parser.clone(), raw.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        p.lock().unwrap().process(&buf[..n]);
                        r.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                }
            }
        });
        Console {
            parser,
            raw,
            writer,
            child,
            _master: pair.master,
        }
    }

    pub fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `cond` holds for the screen; panics with the screen on timeout.
    pub fn wait_for(&mut self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if cond(&screen) {
                return screen;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("shieldops exited ({status:?}) while waiting for {what}; screen:\n{screen}");
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    /// Quits with `q` (and `y` when asked) and waits for the process to exit cleanly.
    pub fn quit(mut self) -> Vec<u8> {
        self.send(b"q");
        let end = Instant::now() + Duration::from_secs(30);
        let mut confirmed = false;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "shieldops exited with {status:?}; screen:\n{}",
                    self.screen()
                );
                break;
            }
            if !confirmed && self.screen().contains("Quit anyway?") {
                self.send(b"y");
                confirmed = true;
            }
            assert!(
                Instant::now() < end,
                "shieldops did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Give the reader thread a moment to drain the last bytes (it ends at EOF).
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !self.parser.lock().unwrap().screen().alternate_screen(),
            "the terminal was left on the alternate screen"
        );
        self.raw.lock().unwrap().clone()
    }
}
