//! The console at 3 a.m., end to end: the real binary running the demo in an
//! 80×24 pseudo-terminal with `TERM=screen` and `NO_COLOR=1`, as over tmux on
//! a bastion. Problems are on the first screen and agree with the counts,
//! `!` shows only problems, `:agents` says which agent is not ok, and Esc
//! then a digit typed fast (one `ESC 4` read) switches panes.

mod tui_support;

use tui_support::pty::Console;

/// The count before `label` on the Fleet summary line (`● 3 degr`).
fn count(screen: &str, label: &str) -> Option<usize> {
    let line = screen.lines().find(|l| l.contains("sort:"))?;
    let before = line.split(&format!(" {label}")).next()?;
    before.rsplit('●').next()?.trim().parse().ok()
}

/// The rows of the problems band: from its head to the first row that is
/// not indented under it.
fn band_rows(screen: &str) -> Option<(usize, Vec<String>)> {
    let mut lines = screen.lines().skip_while(|l| !l.contains("▲ problems ("));
    let head = lines.next()?;
    let n: usize = head
        .split("▲ problems (")
        .nth(1)?
        .split(')')
        .next()?
        .parse()
        .ok()?;
    let rows = lines
        .take_while(|l| l.starts_with("│  ") && !l.starts_with("│  ▾") && !l.starts_with("│    "))
        .map(str::to_string)
        .collect();
    Some((n, rows))
}

/// The screen's problems agree with the summary's counts: the band's count
/// is unhealthy + degraded, and every one of them is a row on this screen.
fn problems_agree(screen: &str) -> bool {
    let (Some(unhl), Some(degr)) = (count(screen, "unhl"), count(screen, "degr")) else {
        return false;
    };
    let Some((n, rows)) = band_rows(screen) else {
        return false;
    };
    let unhealthy_rows = rows.iter().filter(|r| r.contains(" unhealthy ")).count();
    let degraded_rows = rows.iter().filter(|r| r.contains(" degraded ")).count();
    unhl > 0 && n == unhl + degr && unhealthy_rows == unhl && degraded_rows == degr
}

#[test]
fn night_console_at_80x24_over_screen_without_colour() {
    let tmp = tempfile::tempdir().unwrap();
    let mut console = Console::start_env(tmp.path(), &[], "screen", (80, 24), &[("NO_COLOR", "1")]);

    // Problems first: once something is unhealthy, every unhealthy and
    // degraded resource is on the first screen, worst first, and the band
    // counts what the summary line counts.
    let screen = console.wait_for(
        "problems on the first screen, agreeing with the counts",
        |s| s.contains("1 Fleet") && problems_agree(s),
    );
    assert!(screen.contains("sort:health"), "{screen}");
    let (_, rows) = band_rows(&screen).unwrap();
    assert!(rows[0].contains(" unhealthy "), "worst first: {rows:?}");

    // `!`: only problems, said in the title and the summary line.
    console.send(b"!");
    let screen = console.wait_for("problems only", |s| {
        s.contains("problems only)") && s.contains("! problems only")
    });
    let listed: Vec<&str> = screen
        .lines()
        .filter(|l| l.starts_with('│') && !l.contains("NAME"))
        .collect();
    assert!(
        listed.iter().all(|l| !l.contains(" healthy ")),
        "a healthy resource is listed under problems only:\n{screen}"
    );
    assert!(listed.iter().any(|l| l.contains(" unhealthy ")), "{screen}");
    console.send(b"!");
    console.wait_for("all resources again", |s| !s.contains("problems only"));

    // Which agent is not ok, and why.
    console.send(b":agents\r");
    let screen = console.wait_for("the agents overlay", |s| {
        s.contains("Agents: ") && s.contains("last run")
    });
    for agent in ["discovery", "supervisor"] {
        assert!(screen.contains(agent), "{agent} missing:\n{screen}");
    }
    assert!(screen.contains("next "), "{screen}");
    console.send(b"\x1b");
    console.wait_for("the overlay closed", |s| !s.contains("Agents: "));

    // Esc then 4, typed fast: one read of `ESC 4` (Alt-4) switches panes.
    console.send(b"\x1b4");
    console.wait_for("the Security pane", |s| s.contains("4 Security"));
    console.send(b"\x1b7");
    console.wait_for("the Events pane", |s| s.contains("7 Events ("));
    console.send(b"\x1b1");
    console.wait_for("the Fleet pane", |s| s.contains("1 Fleet ("));

    let raw = console.quit();
    let raw = String::from_utf8_lossy(&raw);
    // NO_COLOR: no colour escapes at all (modifiers only).
    for colour in ["\x1b[38;", "\x1b[48;", "\x1b[31m", "\x1b[32m", "\x1b[33m"] {
        assert!(
            !raw.contains(colour),
            "colour escape {colour:?} under NO_COLOR"
        );
    }
}
