//! TLS on `serve`: a self-signed certificate (made with the `openssl` CLI,
//! installed by scripts/install-test-deps.sh) serves `wss://`, which `attach`
//! trusts through `--ca`; plain `ws://` to the TLS port fails. Off loopback,
//! `serve` refuses to start without TLS unless told `--insecure-listen`, and
//! `attach` will not send a token over ws:// off loopback unless told
//! `--insecure-plaintext`; a token file must be private.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

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

#[test]
fn attach_keeps_tokens_off_clear_text_networks_and_out_of_argv() {
    let dir = tempfile::tempdir().unwrap();
    // Refused before any connection is tried: nothing is sent anywhere.
    let out = shieldops(dir.path())
        .args(["attach", "ws://192.0.2.10:7420/ws", "--headless"])
        .env("SHIELDOPS_TOKEN", "so_not-sent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unencrypted") && err.contains("--insecure-plaintext"),
        "{err}"
    );

    // A token file others can read is refused; a private one attaches.
    let server = Server::start(&[("alice", Role::Viewer)], &["--no-scenario"]);
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{}\n", server.token("alice"))).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let attach = |file: &std::path::Path| {
        shieldops(dir.path())
            .args(["attach", &server.url(), "--headless", "--token-file"])
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = attach(&file).wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{out:?}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = attach(&file);
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{first:?}: {e}"));
    assert_eq!(v["principal"], "alice");
}
