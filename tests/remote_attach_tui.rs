//! `shieldops attach` as a person uses it: the real binary in a
//! pseudo-terminal, its screen parsed by a terminal emulator, attached to a
//! real `serve`. An approval by keystroke is recorded under the token's
//! principal; when the server goes away the header says since when.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use shieldops::remote::auth::Role;

mod remote_support;
use remote_support::{Console, Server, WEEKDAY_START};

fn wait_screen(
    parser: &Arc<Mutex<vt100::Parser>>,
    what: &str,
    cond: impl Fn(&str) -> bool,
) -> String {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let screen = parser.lock().unwrap().screen().contents();
        if cond(&screen) {
            return screen;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_console_approves_as_its_token_and_shows_a_lost_server() {
    let mut server = Server::start(
        &[("alice", Role::Approver), ("victor", Role::Viewer)],
        &["--speed", "20", "--start", WEEKDAY_START],
    );
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let home = server.dir.path().join("client");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_shieldops"));
    cmd.args(["--log-dir"]);
    cmd.arg(home.join("logs"));
    cmd.args(["attach", &server.url()]);
    cmd.env("SHIELDOPS_TOKEN", server.token("alice"));
    // The console's own idea of who it is must not matter.
    cmd.env("SHIELDOPS_USER", "mallory");
    cmd.env("TERM", "xterm-256color");
    cmd.env("HOME", &home);
    cmd.env("XDG_CONFIG_HOME", home.join("config"));
    cmd.env_remove("NO_COLOR");
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut writer = pair.master.take_writer().unwrap();
    let parser = Arc::new(Mutex::new(vt100::Parser::new(40, 120, 0)));
    let p = parser.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => p.lock().unwrap().process(&buf[..n]),
            }
        }
    });
    let mut send = |bytes: &[u8]| {
        writer.write_all(bytes).unwrap();
        writer.flush().unwrap();
    };

    let port = server.addr.port().to_string();
    wait_screen(&parser, "the header", |s| {
        s.contains(&format!("alice@127.0.0.1:{port}")) && s.contains("● live")
    });
    wait_screen(&parser, "a pending approval", |s| {
        !s.contains("⚑ 0 pending")
    });
    send(b"3");
    wait_screen(&parser, "the approval queue", |s| {
        s.contains("Approval queue (")
    });
    send(b"a");
    wait_screen(&parser, "the approval dialog", |s| {
        s.contains("approving as alice")
    });
    send(b"approved from afar");
    wait_screen(&parser, "the typed comment", |s| {
        s.contains("approved from afar")
    });
    send(b"\x13"); // Ctrl-S
    wait_screen(&parser, "the server's answer", |s| s.contains("approved #"));

    // The approval is recorded under the token's principal.
    let mut watcher = Console::attach(&server.opts("victor")).await.unwrap();
    watcher
        .until(60, "the remediation to leave the queue", |s| {
            s.remediations.values().any(|r| {
                r.approvals
                    .iter()
                    .any(|a| a.comment == "approved from afar")
            })
        })
        .await;
    let approval = watcher
        .state
        .remediations
        .values()
        .flat_map(|r| r.approvals.iter())
        .find(|a| a.comment == "approved from afar")
        .unwrap()
        .clone();
    assert_eq!(approval.by, "alice");
    assert_eq!(approval.source.as_deref(), Some("127.0.0.1"));

    // The server goes away: the console stays up and says since when.
    server.terminate();
    wait_screen(&parser, "the disconnected header", |s| {
        s.contains("✕ disconnected since")
    });
    send(b"q");
    let end = Instant::now() + Duration::from_secs(30);
    let mut confirmed = false;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        if !confirmed
            && parser
                .lock()
                .unwrap()
                .screen()
                .contents()
                .contains("Quit anyway?")
        {
            send(b"y");
            confirmed = true;
        }
        assert!(Instant::now() < end, "attach did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}
