//! TLS on `serve`: a self-signed certificate (made with the `openssl` CLI,
//! installed by scripts/install-test-deps.sh) serves `wss://`, which `attach`
//! trusts through `--ca`; plain `ws://` to the TLS port fails. Off loopback,
//! `serve` refuses to start without TLS unless told `--insecure-listen`.

use shieldops::remote::auth::Role;
use shieldops::remote::client::AttachOptions;

mod remote_support;
use remote_support::{Console, Server, self_signed_cert, shieldops};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_trusted_certificate_and_nothing_in_clear_text() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(certs.path());

    let server = Server::start(
        &[("alice", Role::Viewer)],
        &[
            "--no-scenario",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let port = server.addr.port();
    let opts = AttachOptions {
        url: format!("wss://localhost:{port}/ws"),
        token: server.token("alice"),
        ca: Some(cert.clone()),
    };
    let console = Console::attach(&opts)
        .await
        .expect("wss with the trusted cert");
    assert_eq!(console.conn.welcome.principal, "alice");

    // Without the certificate trusted, or in clear text, no session.
    let untrusted = AttachOptions {
        ca: None,
        ..opts.clone()
    };
    assert!(Console::attach(&untrusted).await.is_err());
    let clear = AttachOptions {
        url: format!("ws://127.0.0.1:{port}/ws"),
        ..opts
    };
    assert!(Console::attach(&clear).await.is_err());
}

#[test]
fn off_loopback_without_tls_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = shieldops(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0", "--no-scenario"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--insecure-listen"),
        "{err}"
    );
}
