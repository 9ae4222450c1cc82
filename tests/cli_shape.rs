//! The command line as a user meets it, through the real binary: each
//! subcommand offers only its own options, `--version` names the build, the
//! completions and man pages come out of the definitions and load in their
//! shells and in `man`, and a reader that closes the pipe early ends the
//! command quietly.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_shieldops");

fn shieldops() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("SHIELDOPS_DATA_DIR")
        .env("SHIELDOPS_NO_LOCAL_HOST", "1")
        .env_remove("NO_COLOR");
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn help(args: &[&str]) -> String {
    let out = shieldops().args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?} --help: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn each_subcommand_offers_only_its_own_options() {
    for args in [&["log"][..], &["log", "export"], &["log", "verify"]] {
        let text = help(args);
        assert!(text.contains("--data-dir"), "{args:?}: {text}");
        for foreign in [
            "--theme",
            "--context",
            "--read-only",
            "--no-color",
            "--log-dir",
        ] {
            assert!(
                !text.contains(foreign),
                "{args:?} offers {foreign}:\n{text}"
            );
        }
    }
    for (args, theirs, not_theirs) in [
        (
            &["run"][..],
            &["--theme", "--context", "--read-only"][..],
            &[][..],
        ),
        (
            &["demo"],
            &["--theme", "--read-only", "--headless"],
            &["--context"],
        ),
        (
            &["serve"],
            &["--context", "--read-only", "--listen"],
            &["--theme"],
        ),
        (
            &["attach"],
            &["--theme", "--token-file"],
            &["--read-only", "--data-dir"],
        ),
        (
            &["policy", "test"],
            &[],
            &["--data-dir", "--config", "--theme"],
        ),
        (
            &["token", "mint"],
            &["--principal"],
            &["--data-dir", "--theme"],
        ),
    ] {
        let text = help(args);
        for o in theirs {
            assert!(text.contains(o), "{args:?} lacks {o}:\n{text}");
        }
        for o in not_theirs {
            assert!(!text.contains(o), "{args:?} offers {o}:\n{text}");
        }
    }
}

#[test]
fn a_console_option_before_a_command_that_ignores_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = shieldops()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--read-only", "log", "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--read-only does not apply to `shieldops log stats`"),
        "{}",
        stderr(&out)
    );
    // From the environment it is not the operator's choice for this command.
    let out = shieldops()
        .env("SHIELDOPS_NO_LOCAL_HOST", "1")
        .args(["playbook", "validate", "playbooks"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A log of `n` events in `dir/data`.
fn log_with(dir: &Path, n: u32) {
    let out = shieldops()
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["log", "stress", "--writers", "1", "--count", &n.to_string()])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn paths_are_accepted_before_and_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 5);
    let data = dir.path().join("data");
    for args in [
        vec![
            "--data-dir",
            data.to_str().unwrap(),
            "--log-dir",
            "/nonexistent",
            "log",
            "stats",
        ],
        vec!["log", "--data-dir", data.to_str().unwrap(), "stats"],
        vec!["log", "stats", "--data-dir", data.to_str().unwrap()],
    ] {
        let out = shieldops().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("5"), "{args:?}: {}", stdout(&out));
    }
}

#[test]
fn version_names_the_version_commit_and_build_date() {
    let out = shieldops().arg("--version").output().unwrap();
    assert!(out.status.success());
    let line = stdout(&out);
    let prefix = format!("shieldops {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&prefix), "{line}");
    let rest = line[prefix.len()..].trim_end();
    let (commit, date) = rest
        .strip_suffix(')')
        .and_then(|r| r.split_once(", built "))
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        "{line}"
    );
    // Built from this checkout: the commit is HEAD's (unless a packager named one).
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(h) if h.status.success() && std::env::var_os("SHIELDOPS_BUILD_COMMIT").is_none() => {
            assert_eq!(commit, String::from_utf8_lossy(&h.stdout).trim(), "{line}");
        }
        _ => assert!(!commit.is_empty(), "{line}"),
    }
}

fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn completions_load_in_their_shells_and_name_real_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, check) in [
        ("bash", &["bash", "-n"][..]),
        ("zsh", &["zsh", "-n"]),
        ("fish", &["fish", "--no-execute"]),
    ] {
        let out = shieldops().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for word in ["serve", "attach", "export", "listen"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
        let path = dir.path().join(format!("shieldops.{shell}"));
        std::fs::write(&path, &script).unwrap();
        if !has(check[0]) {
            eprintln!(
                "{} is not installed: the {shell} script is not parsed",
                check[0]
            );
            continue;
        }
        let parsed = Command::new(check[0])
            .args(&check[1..])
            .arg(&path)
            .output()
            .unwrap();
        assert!(parsed.status.success(), "{shell}: {}", stderr(&parsed));
    }
    // bash: loading the script registers the completion function.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p shieldops",
            dir.path().join("shieldops.bash").display()
        ))
        .output()
        .unwrap();
    assert!(stdout(&out).contains("shieldops"), "{}", stderr(&out));
}

#[test]
fn man_pages_render_with_man() {
    let dir = tempfile::tempdir().unwrap();
    let out = shieldops()
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    if !has("man") {
        eprintln!("man is not installed: the pages are not rendered");
        return;
    }
    for (page, expect) in [
        ("shieldops.1", "--data-dir"),
        ("shieldops-log-export.1", "--format"),
        ("shieldops-serve.1", "--listen"),
    ] {
        let out = Command::new("man")
            .args(["-P", "cat", "-l"])
            .arg(dir.path().join(page))
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(out.status.success(), "{page}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("NAME") && text.contains(expect),
            "{page}:\n{text}"
        );
        assert!(
            !stderr(&out).contains("warning"),
            "{page}: {}",
            stderr(&out)
        );
    }
}

/// `args` with stdout a pipe whose reader is already gone: every write fails
/// with EPIPE.
fn into_closed_pipe(dir: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    shieldops()
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(writer)
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 50);
    for args in [
        &["log", "export"][..],
        &["log", "stats"],
        &["log", "tail", "--from", "1"],
        &["log", "verify"],
        &["config", "show"],
        &["policy", "test", "policies"],
        &["playbook", "validate", "playbooks"],
        &["cve", "status"],
        &["completions", "bash"],
        &["token", "mint", "--principal", "alice", "--role", "viewer"],
    ] {
        let out = into_closed_pipe(dir.path(), args);
        // `cve status` exits 2 for missing data before it would print more.
        let expected = if args[0] == "cve" { [0, 2] } else { [0, 0] };
        assert!(
            out.status.code().is_some_and(|c| expected.contains(&c)),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{args:?} complained");
    }
    // The headless demo's summary, on its own demo fleet.
    let fresh = tempfile::tempdir().unwrap();
    let demo = [
        "demo",
        "--headless",
        "--speed",
        "200",
        "--approve-as",
        "alice",
        "--until-quiet",
        "--start",
        "2026-06-03T10:00:00Z",
    ];
    let out = into_closed_pipe(fresh.path(), &demo);
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert_eq!(stderr(&out), "", "the demo complained");
}

#[test]
fn log_export_into_head_exits_zero_without_a_word() {
    let dir = tempfile::tempdir().unwrap();
    // Far more than a pipe holds, so `head` leaves while export still writes.
    log_with(dir.path(), 3000);
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"set -o pipefail; "$0" --data-dir "$1" log export | head -n 1"#)
        .arg(BIN)
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert_eq!(stderr(&out), "");
    assert!(stdout(&out).contains("\"seq\":1,"), "{}", stdout(&out));
}
