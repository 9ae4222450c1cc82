//! End to end through the real binary: the headless demo, configured with a
//! webhook channel, notifies a local receiver (a wiremock test double on
//! 127.0.0.1) of the incident it opens, signed, and records notification_sent.

use serde_json::Value;
use shieldops::notify::webhook;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

mod demo_support;
use demo_support::{WEEKDAY_START, export, shieldops};

const SECRET: &str = "demo-webhook-secret-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_incident_reaches_the_webhook_and_is_recorded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[notify.channels.hook]
type = "webhook"
url = "{}/shieldops"
secret = "{SECRET}"

[[notify.rules]]
kinds = ["incident_opened"]
min_severity = "high"
channels = ["hook"]
"#,
            server.uri()
        ),
    )
    .unwrap();
    let mut cmd = shieldops(dir.path());
    cmd.arg("--config").arg(&config).args([
        "demo",
        "--headless",
        "--speed",
        "25",
        "--approve-as",
        "alice",
        "--until-quiet",
        "--start",
        WEEKDAY_START,
    ]);
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());

    let events = export(dir.path());
    let opened: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "incident_opened")
        .filter(|e| matches!(e["severity"].as_str(), Some("high" | "critical")))
        .collect();
    assert!(!opened.is_empty(), "the demo opens a serious incident");
    let sent: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "notification_sent" && e["channel"] == "hook")
        .collect();
    for incident in &opened {
        let seq = &incident["seq"];
        let record = sent
            .iter()
            .find(|e| &e["event_seq"] == seq)
            .unwrap_or_else(|| panic!("no notification_sent for incident {seq}: {sent:#?}"));
        assert_eq!(record["actor"], "notify");
        assert!(
            record["to"]
                .as_str()
                .unwrap()
                .starts_with("webhook at 127.0.0.1")
        );
        assert!(record["seq"].as_u64() > incident["seq"].as_u64());
    }
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(SECRET), "the secret is not in the log");
    assert!(!text.contains("/shieldops\""), "nor the URL");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), opened.len(), "one delivery per incident");
    let now = chrono::Utc::now().timestamp();
    for req in &requests {
        let ts = req.headers[webhook::TIMESTAMP_HEADER].to_str().unwrap();
        let sig = req.headers[webhook::SIGNATURE_HEADER].to_str().unwrap();
        webhook::verify(SECRET.as_bytes(), ts, sig, &req.body, now, 300).unwrap();
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["kind"], "incident_opened");
        assert!(opened.iter().any(|i| i["seq"] == body["event_seq"]));
    }

    let verify = shieldops(dir.path())
        .args(["log", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success());
}
