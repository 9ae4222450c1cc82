//! `shieldops run` with a kubeconfig: each selected context's fleet reaches
//! the event log through the watches; a context the kubeconfig lacks is a
//! clear error. Runs the real binary against the test API server (a test
//! double, see tests/kube_support).

mod demo_support;
mod kube_support;

use kube_support::{TestApiServer, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_records_the_clusters_fleet_and_refuses_unknown_contexts() {
    let server = TestApiServer::start().await;
    server.create(pod("shop", "web-1", None, "node-a", "web:1"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path(), "test");

    let mut bad = demo_support::shieldops(dir.path());
    bad.env("KUBECONFIG", &kubeconfig)
        .args(["run", "--headless", "--context", "nope"]);
    let out = tokio::task::spawn_blocking(move || bad.output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("context `nope`") && err.contains("test"),
        "{err}"
    );

    // `run` has no unattended approver, so it never goes quiet: watch the log, then stop it.
    let mut run = demo_support::shieldops(dir.path());
    run.env("KUBECONFIG", &kubeconfig)
        .args([
            "run",
            "--headless",
            "--speed",
            "50",
            "--start",
            demo_support::WEEKDAY_START,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = run.spawn().unwrap();
    let path = dir.path().to_path_buf();
    let discovered = kube_support::eventually(std::time::Duration::from_secs(60), || {
        demo_support::try_export(&path).is_some_and(|events| {
            events.iter().any(|e| {
                e["kind"] == "resource_discovered"
                    && e["resource"]["id"] == "k8s/test/shop/pod/web-1"
            })
        })
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(discovered, "the cluster's pod never reached the log");
}

/// Runs `run --headless` with `config` (and the environment `env`) until
/// `seen` holds for the exported log or a minute passes; returns whether it held.
async fn run_until(
    dir: &std::path::Path,
    config: &std::path::Path,
    env: &[(&str, &std::ffi::OsStr)],
    seen: impl Fn(&[serde_json::Value]) -> bool,
) -> bool {
    let mut run = demo_support::shieldops(dir);
    run.arg("--config").arg(config);
    for (k, v) in env {
        run.env(k, v);
    }
    run.args([
        "run",
        "--headless",
        "--speed",
        "50",
        "--start",
        demo_support::WEEKDAY_START,
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = run.spawn().unwrap();
    let path = dir.to_path_buf();
    let held = kube_support::eventually(std::time::Duration::from_secs(60), || {
        demo_support::try_export(&path).is_some_and(|events| seen(&events))
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    held
}

/// `[kubernetes]` picks the kubeconfig and contexts without any environment;
/// a bad key is refused with its path and line; with no cluster anywhere the
/// log records the one line the Fleet pane shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_section_selects_clusters_and_says_when_there_are_none() {
    let server = TestApiServer::start().await;
    server.create(pod("shop", "web-2", None, "node-a", "web:1"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path(), "test");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let no_env: [(&str, &std::ffi::OsStr); 2] = [
        ("KUBECONFIG", std::ffi::OsStr::new("")),
        ("HOME", home.as_os_str()),
    ];

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[kubernetes]\ncontext = \"test\"\n").unwrap();
    let mut cmd = demo_support::shieldops(dir.path());
    cmd.arg("--config").arg(&bad).args(["run", "--headless"]);
    for (k, v) in no_env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("context"), "{err}");

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[kubernetes]\nkubeconfig = {:?}\ncontexts = [\"test\"]\n",
            kubeconfig.display().to_string()
        ),
    )
    .unwrap();
    let found = run_until(dir.path(), &good, &no_env, |events| {
        events.iter().any(|e| {
            e["kind"] == "resource_discovered" && e["resource"]["id"] == "k8s/test/shop/pod/web-2"
        })
    })
    .await;
    assert!(found, "the configured cluster's pod never reached the log");

    let other = tempfile::tempdir().unwrap();
    let empty = other.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let absent = run_until(other.path(), &empty, &no_env, |events| {
        events.iter().any(|e| {
            e["kind"] == "connector_status"
                && e["connector"] == "k8s"
                && e["status"] == "absent"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("No Kubernetes cluster configured"))
        })
    })
    .await;
    assert!(absent, "no cluster: the how-to-add line was not recorded");
}
