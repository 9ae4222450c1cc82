//! Slack, PagerDuty and the signed webhook delivered to local HTTP receivers
//! (wiremock test doubles on 127.0.0.1), with retries, back-off, the circuit
//! breaker, restart without re-notifying, and no secret in events or logs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use shieldops::event::{EventKind, Severity};
use shieldops::notify::webhook;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod notify_support;
use notify_support::{Bench, failed, sent};

const SLACK_PATH: &str = "/services/T000/B000/sl4cks3cr3tpath";
const ROUTING_KEY: &str = "R0UTINGKEYabcdef0123456789";
const HOOK_SECRET: &str = "w3bh00k-signing-secret-42";
const HOOK_PATH: &str = "/hook/t0k3nInTheUrl";

fn config(server: &MockServer, extra: &str) -> String {
    let base = server.uri();
    format!(
        r#"
[notify.channels.slack]
type = "slack"
webhook_url = "{base}{SLACK_PATH}"

[notify.channels.pager]
type = "pagerduty"
routing_key = "{ROUTING_KEY}"
url = "{base}/v2/enqueue"

[notify.channels.hook]
type = "webhook"
url = "{base}{HOOK_PATH}"
secret = "{HOOK_SECRET}"

[[notify.rules]]
kinds = ["incident_opened", "incident_acknowledged", "incident_resolved"]
min_severity = "high"
environments = ["production"]
teams = ["payments"]
channels = ["slack", "pager", "hook"]
{extra}
"#
    )
}

fn received(requests: &[Request], p: &str) -> Vec<(Request, Value)> {
    requests
        .iter()
        .filter(|r| r.url.path() == p)
        .map(|r| {
            (
                r.clone(),
                serde_json::from_slice(&r.body).expect("JSON body"),
            )
        })
        .collect()
}

/// Every secret the config holds, and the parts a careless error would leak.
fn secrets() -> Vec<&'static str> {
    vec![
        SLACK_PATH,
        "sl4cks3cr3tpath",
        ROUTING_KEY,
        HOOK_SECRET,
        "t0k3nInTheUrl",
    ]
}

fn assert_no_secret(text: &str, where_: &str) {
    for s in secrets() {
        assert!(
            !text.contains(s),
            "secret {s:?} leaked into {where_}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_lifecycle_reaches_slack_pagerduty_and_the_signed_webhook() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let mut bench = Bench::new();
    bench.discover_checkout().await;
    bench.start(&config(&server, ""));

    let id = bench
        .open_incident("checkout crash-looping", Severity::Critical)
        .await;
    // Below the rule's severity and so not routed anywhere.
    bench.open_incident("checkout slow", Severity::Medium).await;
    bench
        .append(EventKind::IncidentAcknowledged {
            incident: id,
            by: "alice".into(),
        })
        .await;
    bench
        .append(EventKind::IncidentResolved {
            incident: id,
            resolution: "memory limit raised".into(),
        })
        .await;
    let events = bench.until("9 deliveries", |n| sent(n).len() >= 9).await;
    assert!(failed(&events).is_empty(), "{events:#?}");
    for e in sent(&events) {
        let EventKind::NotificationSent {
            event_seq, attempt, ..
        } = &e.kind
        else {
            unreachable!()
        };
        assert_eq!(*attempt, 1);
        assert_ne!(
            *event_seq,
            Some(id + 1),
            "the medium incident was not routed"
        );
    }
    let requests = server.received_requests().await.unwrap();

    // Slack: Block Kit with a header, the body and a context line.
    let slack = received(&requests, SLACK_PATH);
    assert_eq!(slack.len(), 3);
    let (_, first) = &slack[0];
    assert_eq!(first["blocks"][0]["type"], "header");
    assert_eq!(
        first["blocks"][0]["text"]["text"],
        format!("Incident #{id}: checkout crash-looping")
    );
    assert_eq!(first["blocks"][1]["type"], "section");
    assert_eq!(first["blocks"][1]["text"]["type"], "mrkdwn");
    let context = first["blocks"][2]["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.contains("severity critical")
            && context.contains("env production")
            && context.contains("team payments"),
        "{context}"
    );
    assert!(first["text"].as_str().unwrap().starts_with("[critical]"));

    // PagerDuty: trigger, acknowledge, resolve under one dedup key.
    let pd = received(&requests, "/v2/enqueue");
    let actions: Vec<&str> = pd
        .iter()
        .map(|(_, b)| b["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
    for (_, b) in &pd {
        assert_eq!(b["routing_key"], ROUTING_KEY);
        assert_eq!(b["dedup_key"], format!("shieldops-incident-{id}"));
    }
    let trigger = &pd[0].1["payload"];
    assert_eq!(trigger["severity"], "critical");
    assert_eq!(trigger["source"], notify_support::CHECKOUT);
    assert_eq!(trigger["group"], "payments");
    assert_eq!(trigger["class"], "incident_opened");
    assert!(
        pd[1].1.get("payload").is_none(),
        "acknowledge carries no payload"
    );

    // Webhook: JSON signed over "{timestamp}.{body}"; the receiver verifies.
    let hooks = received(&requests, HOOK_PATH);
    assert_eq!(hooks.len(), 3);
    let now = chrono::Utc::now().timestamp();
    for (req, body) in &hooks {
        let ts = req.headers[webhook::TIMESTAMP_HEADER].to_str().unwrap();
        let sig = req.headers[webhook::SIGNATURE_HEADER].to_str().unwrap();
        assert_eq!(
            webhook::verify(HOOK_SECRET.as_bytes(), ts, sig, &req.body, now, 300),
            Ok(())
        );
        assert_eq!(
            webhook::verify(b"not-the-secret-at-all", ts, sig, &req.body, now, 300),
            Err(webhook::VerifyError::Mismatch)
        );
        assert_eq!(body["version"], 1);
        assert_eq!(body["incident"], id);
        assert_eq!(body["environment"], "production");
    }
    let kinds: Vec<&str> = hooks
        .iter()
        .map(|(_, b)| b["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "incident_opened",
            "incident_acknowledged",
            "incident_resolved"
        ]
    );

    for e in &events {
        assert_no_secret(&e.to_json().to_string(), "a notification event");
    }
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_the_third_attempt_after_back_off() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let mut bench = Bench::new();
    bench.discover_checkout().await;
    let cfg = format!(
        r#"
[notify.retry]
max_attempts = 4
initial_backoff_ms = 2000
max_backoff_ms = 8000

[notify.channels.hook]
type = "webhook"
url = "{}{HOOK_PATH}"
secret = "{HOOK_SECRET}"

[[notify.rules]]
channels = ["hook"]
"#,
        server.uri()
    );
    bench.start(&cfg);
    let started = shieldops::clock::Clock::now(&bench.clock);
    let id = bench
        .open_incident("checkout down", Severity::Critical)
        .await;

    // Nothing is retried until the injected clock passes the back-off.
    let events = bench.until("first failure", |n| failed(n).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(failed(&events).len(), 1);

    let events = bench
        .until_advancing("delivery", Duration::from_millis(500), |n| {
            !sent(n).is_empty()
        })
        .await;
    let attempts: Vec<(u32, bool, bool)> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::NotificationFailed {
                attempt,
                gave_up,
                event_seq,
                ..
            } => {
                assert_eq!(*event_seq, Some(id));
                (*attempt, false, *gave_up)
            }
            EventKind::NotificationSent { attempt, .. } => (*attempt, true, false),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        attempts,
        [(1, false, false), (2, false, false), (3, true, false)]
    );
    let EventKind::NotificationFailed { error, .. } = &events[0].kind else {
        unreachable!()
    };
    assert!(error.contains("503") && error.contains("busy"), "{error}");
    // Equal jitter: the waits were at least half of 2 s and 4 s.
    let waited = events[2].at - started;
    assert!(waited >= chrono::Duration::seconds(3), "{waited}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_after_repeated_failures_and_half_opens_after_cooldown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let mut bench = Bench::new();
    bench.discover_checkout().await;
    let cfg = format!(
        r#"
[notify.retry]
max_attempts = 5
initial_backoff_ms = 100
max_backoff_ms = 100

[notify.breaker]
failure_threshold = 3
cooldown_secs = 60

[notify.channels.hook]
type = "webhook"
url = "{}{HOOK_PATH}"
secret = "{HOOK_SECRET}"

[[notify.rules]]
channels = ["hook"]
"#,
        server.uri()
    );
    bench.start(&cfg);
    bench.open_incident("first", Severity::Critical).await;
    // Three real failures open the breaker; the fourth attempt is refused
    // without a request, and the notification is given up.
    let events = bench
        .until_advancing("gave up", Duration::from_millis(100), |n| {
            failed(n)
                .iter()
                .any(|e| matches!(e.kind, EventKind::NotificationFailed { gave_up: true, .. }))
        })
        .await;
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let last = failed(&events).last().unwrap().kind.clone();
    let EventKind::NotificationFailed { attempt, error, .. } = last else {
        unreachable!()
    };
    assert_eq!(attempt, 4);
    assert!(error.contains("circuit breaker open"), "{error}");

    // While open, a new notification is refused at once.
    bench.open_incident("second", Severity::Critical).await;
    bench
        .until("second refused", |n| failed(n).len() == 5)
        .await;
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    // After the cooldown one trial goes through, and it succeeds.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    bench.clock.advance(Duration::from_secs(61));
    let third = bench.open_incident("third", Severity::Critical).await;
    let events = bench.until("third sent", |n| !sent(n).is_empty()).await;
    let EventKind::NotificationSent { event_seq, .. } = &sent(&events)[0].kind else {
        unreachable!()
    };
    assert_eq!(*event_seq, Some(third));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_notifier_does_not_notify_twice() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let cfg = format!(
        r#"
[notify.channels.hook]
type = "webhook"
url = "{}{HOOK_PATH}"
secret = "{HOOK_SECRET}"

[[notify.rules]]
kinds = ["incident_opened"]
channels = ["hook"]
"#,
        server.uri()
    );
    let mut bench = Bench::new();
    bench.discover_checkout().await;
    bench.start_fresh(&cfg);
    bench.open_incident("one", Severity::High).await;
    bench.until("one sent", |n| sent(n).len() == 1).await;
    bench.stop().await;

    // Events appended while no notifier runs are delivered on restart;
    // the first incident is not delivered again even though the restarted
    // notifier starts from an empty state and replays the whole log.
    let two = bench.open_incident("two", Severity::High).await;
    bench.start_fresh(&cfg);
    let events = bench.until("two sent", |n| sent(n).len() == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bench.notifications().len(), 2, "{events:#?}");
    let EventKind::NotificationSent { event_seq, .. } = &sent(&events)[1].kind else {
        unreachable!()
    };
    assert_eq!(*event_seq, Some(two));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    bench.stop().await;

    // Missed for longer than the replay window (an hour): stale, not sent;
    // what happens after the restart is.
    bench.open_incident("three", Severity::High).await;
    bench.clock.advance(Duration::from_secs(2 * 3600));
    bench.start_fresh(&cfg);
    let four = bench.open_incident("four", Severity::High).await;
    let events = bench.until("four sent", |n| sent(n).len() == 3).await;
    let EventKind::NotificationSent { event_seq, .. } = &sent(&events)[2].kind else {
        unreachable!()
    };
    assert_eq!(*event_seq, Some(four));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bench.notifications().len(), 3);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    bench.stop().await;
}

/// Captures everything the notifier logs through `tracing`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_events_or_logs_even_when_receivers_echo_them() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let server = MockServer::start().await;
    // Receivers that refuse and repeat the credential back in their error.
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_string(format!("invalid routing key {ROUTING_KEY}")),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_string(format!("no_service for {}{SLACK_PATH}", server.uri())),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(
            ResponseTemplate::new(401).set_body_string(format!("bad secret {HOOK_SECRET}")),
        )
        .mount(&server)
        .await;
    let mut bench = Bench::new();
    bench.discover_checkout().await;
    bench.start(&config(&server, ""));
    bench.open_incident("leaky", Severity::Critical).await;
    let events = bench
        .until("three failures", |n| failed(n).len() == 3)
        .await;
    for e in &events {
        let EventKind::NotificationFailed {
            gave_up,
            attempt,
            error,
            ..
        } = &e.kind
        else {
            panic!("{e:?}")
        };
        // A 4xx is not retried.
        assert!(*gave_up && *attempt == 1, "{e:?}");
        assert!(error.contains("********"), "the echo was masked: {error}");
        assert_no_secret(&e.to_json().to_string(), "a notification event");
    }

    // A receiver that is down: the transport error must not name the URL.
    // (A port bound and released: nothing listens there.)
    let uri = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    bench.stop().await;
    let mut bench = Bench::new();
    bench.discover_checkout().await;
    bench.start(&format!(
        r#"
[notify.retry]
max_attempts = 1

[notify.channels.slack]
type = "slack"
webhook_url = "{uri}{SLACK_PATH}"

[[notify.rules]]
channels = ["slack"]
"#
    ));
    bench.open_incident("unreachable", Severity::Critical).await;
    let events = bench
        .until("connection failure", |n| failed(n).len() == 1)
        .await;
    let EventKind::NotificationFailed { error, .. } = &events[0].kind else {
        unreachable!()
    };
    assert!(error.contains("HTTP request failed"), "{error}");
    assert_no_secret(&events[0].to_json().to_string(), "a notification event");
    bench.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("notification failed"),
        "the failures were logged: {logs}"
    );
    assert_no_secret(&logs, "the logs");
}
