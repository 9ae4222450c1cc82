//! `[prometheus]` over TLS with basic authentication, against a real
//! Prometheus serving HTTPS (`--web.config.file`, a self-signed certificate
//! made with `openssl`): the CA file is what makes the server trusted, and the
//! password read from its file is what lets the query in. Either missing
//! leaves the answer unknown, saying why, without the password.

mod prometheus_support;
mod remote_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prometheus_support::{Proc, free_port, tool};
use shieldops::connectors::prometheus::{BasicAuthConfig, Prometheus, PrometheusConfig};

/// bcrypt (cost 4) of `correct horse`, as Prometheus's web config wants it.
const HASH: &str = "$2b$04$VxpGUvOMxqKBd7DRfAlyF.BKWhThXjzh2v4OZiATzT3Zvodp374He";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_file_and_basic_auth_from_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = remote_support::self_signed_cert(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  shieldops: {HASH}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global:\n  scrape_interval: 1s\n",
    )
    .unwrap();
    let port = free_port();
    let mut proc = Proc(
        Command::new(tool("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.config.file={}", web.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse\n").unwrap();
    let mut config = PrometheusConfig::new(format!("https://localhost:{port}"));
    config.ca_file = Some(cert.clone());
    config.basic_auth = Some(BasicAuthConfig {
        username: "shieldops".into(),
        password_file: password.clone(),
    });
    config.timeout_ms = 2000;
    let good = Prometheus::new(&config).unwrap();

    // Ready when the API answers through TLS and authentication (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(status) = proc.0.try_wait().unwrap() {
            panic!("prometheus exited early: {status}");
        }
        match good.query("vector(42)", chrono::Utc::now()).await {
            Ok(a) => break a,
            Err(e) if Instant::now() > deadline => panic!("never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert_eq!(answer.series[0].last(), Some(42.0));

    // Without the CA file the server is not trusted.
    let mut untrusted = config.clone();
    untrusted.ca_file = None;
    let e = Prometheus::new(&untrusted)
        .unwrap()
        .query("vector(1)", chrono::Utc::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("certificate"), "{e}");

    // A wrong password: refused, and the error does not carry it.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "battery staple").unwrap();
    let mut refused = config.clone();
    refused.basic_auth = Some(BasicAuthConfig {
        username: "shieldops".into(),
        password_file: wrong,
    });
    let e = Prometheus::new(&refused)
        .unwrap()
        .query("vector(1)", chrono::Utc::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("401"), "{e}");
    assert!(
        !e.contains("battery") && !e.contains("correct horse"),
        "{e}"
    );
}
