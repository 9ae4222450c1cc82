//! The default log directory is the XDG state directory, private to the
//! user: a symlink planted in its place is refused with a clear message, an
//! absent one is created 0700.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn attach_with_state_home(state: &std::path::Path, data: &std::path::Path) -> std::process::Output {
    // Nothing listens on port 9 of loopback: attach fails after logging starts.
    Command::new(env!("CARGO_BIN_EXE_shieldops"))
        .arg("--data-dir")
        .arg(data)
        .args(["attach", "ws://127.0.0.1:9/ws", "--headless"])
        .env("XDG_STATE_HOME", state)
        .env("SHIELDOPS_TOKEN", "so_test")
        .output()
        .unwrap()
}

#[test]
fn a_planted_symlink_is_refused_and_an_absent_dir_is_created_private() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let victim = tmp.path().join("victim");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&victim).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("shieldops")).unwrap();
    let out = attach_with_state_home(&state, &tmp.path().join("data"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing log directory") && err.contains("symlink"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        0,
        "nothing written through it"
    );

    std::fs::remove_file(state.join("shieldops")).unwrap();
    let out = attach_with_state_home(&state, &tmp.path().join("data"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("log directory"), "{err}");
    let mode = std::fs::metadata(state.join("shieldops"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}
