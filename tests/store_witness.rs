//! Checkpoints of the log's head reach a webhook off the machine, signed
//! with the channel's secret, every N events and at shutdown; the last one
//! verifies the log, and catches it once the log is cut short.

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod demo_support;
use demo_support::{headless_demo, shieldops};

const SECRET: &str = "witness-s3cret-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_signed_periodic_final_and_verify_the_log() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/audit"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[notify.channels.audit]
type = "webhook"
url = "{}/audit"
secret = "{SECRET}"

[store.checkpoints]
channel = "audit"
every = 100
"#,
            server.uri()
        ),
    )
    .unwrap();
    let dir = root.path().join("site");
    let mut demo = headless_demo(&dir, 25, "alice");
    demo.arg("--config").arg(&config);
    let out = tokio::task::spawn_blocking(move || demo.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let requests = server.received_requests().await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut seqs = Vec::new();
    let mut last = None;
    for r in &requests {
        let header = |name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_string();
        shieldops::notify::webhook::verify(
            SECRET.as_bytes(),
            &header("X-ShieldOps-Timestamp"),
            &header("X-ShieldOps-Signature"),
            &r.body,
            now,
            600,
        )
        .expect("each checkpoint is signed with the channel's secret");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["type"], "shieldops.log_checkpoint");
        seqs.push(body["seq"].as_u64().unwrap());
        last = Some(body);
    }
    let last = last.expect("at least the shutdown checkpoint");
    assert_eq!(last["reason"], "shutdown");
    let periodic = &seqs[..seqs.len() - 1];
    assert!(!periodic.is_empty(), "{seqs:?}");
    assert!(periodic.iter().all(|s| s % 100 == 0), "{seqs:?}");
    assert!(periodic.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // The final checkpoint is the log's head: it verifies the log.
    let checkpoint = format!("{}:{}", last["seq"], last["hash"].as_str().unwrap());
    let verify = shieldops(&dir)
        .args(["log", "verify", "--checkpoint", &checkpoint])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{text}");
    assert!(text.contains("matches checkpoint"), "{text}");

    // Root on this host drops the last three events and rebuilds a shorter,
    // valid log with a matching anchor: only the witness can tell.
    let log_dir = dir.join("data").join("log");
    let head = last["seq"].as_u64().unwrap();
    let rebuilt = root.path().join("rebuilt");
    {
        let log = shieldops::store::EventLog::open_read_only(
            &log_dir,
            &shieldops::store::OpenOptions::default(),
        )
        .unwrap();
        log.salvage_into(&rebuilt, head - 3).unwrap();
    }
    std::fs::remove_dir_all(&log_dir).unwrap();
    std::fs::rename(&rebuilt, &log_dir).unwrap();
    let plain = shieldops(&dir).args(["log", "verify"]).output().unwrap();
    assert!(
        plain.status.success(),
        "alone, the shorter log looks intact"
    );
    let verify = shieldops(&dir)
        .args(["log", "verify", "--checkpoint", &checkpoint])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("FAILED at seq {}", head - 2)),
        "{text}"
    );
}
