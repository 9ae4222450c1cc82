//! The .deb as a bastion gets it: packaged by `scripts/release.sh` (its
//! `--deb-only` path, from the debug binary already built for the tests),
//! installed with dpkg, and used from /usr/bin: `--version`, `man shieldops`,
//! the completions, the systemd unit, the service account and the headless
//! demo; then purged. Needs root (dpkg); skipped with a message otherwise.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_shieldops");
const INSTALLED: &str = "/usr/bin/shieldops";

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "shieldops"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"))
}

/// Purges the package however the test ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "shieldops"]).output();
    }
}

#[test]
fn the_deb_installs_and_its_binary_man_page_and_demo_work() {
    if !rustix::process::getuid().is_root() {
        eprintln!("SKIPPED: installing the .deb needs root (dpkg -i)");
        return;
    }
    if installed() {
        eprintln!("SKIPPED: a shieldops package is already installed here; not replacing it");
        return;
    }
    let out_dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new(repo.join("scripts/release.sh"))
        .args(["--profile", "dev", "--deb-only", "--binary", BIN, "--out"])
        .arg(out_dir.path())
        .current_dir(repo));
    let deb = out_dir.path().join(format!(
        "shieldops_{}-1_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    assert!(deb.exists(), "no {}", deb.display());

    let _purge = Purge;
    run(Command::new("dpkg").arg("-i").arg(&deb));

    let version = text(&run(Command::new(INSTALLED).arg("--version")));
    assert!(
        version.starts_with(&format!("shieldops {} (commit ", env!("CARGO_PKG_VERSION")))
            && version.contains(", built "),
        "{version}"
    );

    let page = text(&run(Command::new("man")
        .arg("shieldops")
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")));
    assert!(
        page.contains("NAME") && page.contains("--data-dir"),
        "{page}"
    );
    let serve = text(&run(Command::new("man").args(["-w", "shieldops-serve"])));
    assert!(serve.contains("/usr/share/man/man1/"), "{serve}");

    // The installed bash completion loads and registers itself.
    let complete = text(&run(Command::new("bash").arg("-c").arg(
        "source /usr/share/bash-completion/completions/shieldops && complete -p shieldops",
    )));
    assert!(complete.contains("shieldops"), "{complete}");

    // The unit is one systemd accepts, run as the account postinst made, and
    // the config it reads is that account's to read, not to write.
    let unit = "/usr/lib/systemd/system/shieldops.service";
    let unit_text = std::fs::read_to_string(unit).unwrap();
    for line in [
        "User=shieldops",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=shieldops",
    ] {
        assert!(unit_text.contains(line), "the unit lacks {line}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        run(Command::new("systemd-analyze").args(["verify", unit]));
    }
    run(Command::new("getent").args(["passwd", "shieldops"]));
    let meta = text(&run(Command::new("stat").args([
        "-c",
        "%a %U %G",
        "/etc/shieldops/config.toml",
    ])));
    assert_eq!(meta.trim(), "640 root shieldops");
    let policies = Path::new("/usr/share/shieldops/policies/decision.rego");
    assert!(policies.exists(), "no default policies to edit");

    // The headless demo, from the installed binary, with its shipped config.
    let data = tempfile::tempdir().unwrap();
    let demo = text(&run(Command::new(INSTALLED)
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .arg("--log-dir")
        .arg(data.path().join("logs"))
        .args(["--config", "/etc/shieldops/config.toml"])
        .args([
            "demo",
            "--headless",
            "--speed",
            "50",
            "--approve-as",
            "alice",
        ])
        .args(["--until-quiet", "--start", "2026-06-03T10:00:00Z"])
        .env("SHIELDOPS_NO_LOCAL_HOST", "1")
        .env_remove("SHIELDOPS_DATA_DIR")));
    assert!(demo.contains("scenario played out"), "{demo}");
    run(Command::new(INSTALLED)
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args(["log", "verify"]));

    run(Command::new("dpkg").args(["--purge", "shieldops"]));
    assert!(!Path::new(INSTALLED).exists(), "purge left the binary");
}
