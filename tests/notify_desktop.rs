//! Desktop notifications through a real session D-Bus: this test starts its
//! own `dbus-daemon --session`, an Xvfb display and the dunst notification
//! daemon, routes an incident to the desktop channel, and reads the
//! notification back from `dunstctl history`.
//!
//! One test per binary on purpose: it points this process at its private bus
//! through `DBUS_SESSION_BUS_ADDRESS` before anything else runs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use shieldops::event::{EventKind, Severity};

mod notify_support;
use notify_support::{Bench, sent};

const INSTALL: &str = "run scripts/install-test-deps.sh";

/// Child processes, killed on drop (last started first).
#[derive(Default)]
struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn need(cmd: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false);
    assert!(found, "`{cmd}` is not installed; {INSTALL}");
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..200 {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A display number with no X server or lock file.
fn free_display() -> u32 {
    (90..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number")
}

fn dunstctl(bus: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("dunstctl")
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn an_incident_pops_up_through_dbus_and_dunst() {
    for cmd in ["dbus-daemon", "Xvfb", "dunst", "dunstctl"] {
        need(cmd);
    }
    let home = tempfile::tempdir().unwrap();
    let mut daemons = Daemons::default();

    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dbus-daemon");
    let mut address = String::new();
    BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    daemons.0.push(bus);
    let address = address.trim().to_string();
    assert!(address.starts_with("unix:"), "bus address: {address:?}");

    let display = free_display();
    daemons.0.push(
        Command::new("Xvfb")
            .arg(format!(":{display}"))
            .args(["-screen", "0", "800x600x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb"),
    );
    wait_for("Xvfb", || {
        Path::new(&format!("/tmp/.X11-unix/X{display}")).exists()
    });

    // dunst with its defaults (an empty config home), on the private bus.
    daemons.0.push(
        Command::new("dunst")
            .env("DISPLAY", format!(":{display}"))
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("XDG_CONFIG_HOME", home.path())
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dunst"),
    );
    wait_for("dunst on the bus", || {
        dunstctl(&address, &["is-paused"]).is_some()
    });

    // SAFETY: set before the tokio runtime or any other thread of this test
    // exists; the binary holds this one test, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address) };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let mut bench = Bench::new();
        bench.discover_checkout().await;
        bench.start(
            r#"
[notify.channels.desk]
type = "desktop"

[[notify.rules]]
kinds = ["incident_opened"]
channels = ["desk"]
"#,
        );
        let id = bench
            .open_incident("checkout crash-looping", Severity::Critical)
            .await;
        let events = bench.until("desktop notification", |n| !n.is_empty()).await;
        assert_eq!(sent(&events).len(), 1, "{events:#?}");
        let EventKind::NotificationSent { to, .. } = &events[0].kind else {
            unreachable!()
        };
        assert_eq!(to, "desktop session");
        bench.stop().await;
        id
    });

    // Displayed notifications reach dunst's history once closed.
    wait_for("the notification on screen", || {
        dunstctl(&address, &["count", "displayed"])
            .is_some_and(|n| n.trim().parse::<u32>().unwrap_or(0) >= 1)
    });
    dunstctl(&address, &["close-all"]).expect("dunstctl close-all");
    let mut found = None;
    wait_for("the notification in dunst's history", || {
        let Some(text) = dunstctl(&address, &["history"]) else {
            return false;
        };
        let history: Value = serde_json::from_str(&text).expect("history is JSON");
        found = history["data"][0].as_array().and_then(|list| {
            list.iter()
                .find(|n| n["appname"]["data"] == "shieldops")
                .cloned()
        });
        found.is_some()
    });
    let n = found.unwrap();
    assert_eq!(
        n["summary"]["data"],
        format!("ShieldOps: Incident #{id}: checkout crash-looping")
    );
    let body = n["body"]["data"].as_str().unwrap();
    assert!(body.contains("KubePodCrashLooping"), "{body}");
    // Sent with critical urgency, which dunst (by default) never times out.
    assert_eq!(n["timeout"]["data"], 0, "{n:#}");
}
