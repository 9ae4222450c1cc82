//! Zero configuration: with no config file the console's fleet includes the
//! machine it runs on, with its installed packages, beside the demo fleet.

mod demo_support;

use demo_support::{export, headless_demo};

#[test]
fn with_no_config_the_local_host_is_in_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let status = headless_demo(dir.path(), 25, "alice")
        // The helper leaves the local host out for the deterministic demo tests.
        .env_remove("SHIELDOPS_NO_LOCAL_HOST")
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .status()
        .unwrap();
    assert!(status.success());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let id = format!("linux/local/{}", hostname.trim());
    let events = export(dir.path());
    let host = events
        .iter()
        .find(|e| e["kind"] == "resource_discovered" && e["resource"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} was not discovered"));
    let r = &host["resource"];
    assert_eq!(r["connector"], "linux:local");
    assert_eq!(r["kind"], "host");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(r["attributes"]["kernel"], kernel.trim());
    assert!(
        r["attributes"]["pkg:dpkg"].is_string(),
        "installed packages listed"
    );
    // systemd is not PID 1 here: the host says so instead of failing.
    if !std::path::Path::new("/run/systemd/system").exists() {
        assert!(
            r["attributes"]["service_manager"]
                .as_str()
                .unwrap()
                .starts_with("none:"),
            "{}",
            r["attributes"]
        );
    }
    // The demo's own story still played out.
    assert!(events.iter().any(|e| e["kind"] == "scenario_finished"));
}
