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
