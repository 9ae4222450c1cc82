//! Escalation reaches people: `approval_escalated` is delivered through the
//! notify channels its contact is mapped to (a signed webhook received on
//! 127.0.0.1), and a contact mapped to no channel is a start-up error that
//! names the key and its line.

use serde_json::Value;
use shieldops::config::Config;
use shieldops::event::EventKind;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod notify_support;
use notify_support::{Bench, sent};

const HOOK_SECRET: &str = "w3bh00k-signing-secret-42";

fn config(server: &MockServer) -> String {
    format!(
        r#"
[runtime]
escalation_chain = ["oncall-secondary"]

[notify.channels.hook]
type = "webhook"
url = "{}/hook"
secret = "{HOOK_SECRET}"

[notify.escalation]
oncall-secondary = ["hook"]
"#,
        server.uri()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_is_delivered_to_the_contacts_channel() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let mut bench = Bench::new();
    bench.discover_checkout().await;
    bench.start(&config(&server));
    let rem = bench.propose_checkout_restart().await;
    // Routed by no rule: only the escalation mapping sends anything.
    bench
        .append(EventKind::ApprovalRequested {
            remediation: rem,
            required: 1,
            expires_at: notify_support::start_time(),
        })
        .await;
    let escalated = bench
        .append(EventKind::ApprovalEscalated {
            remediation: rem,
            to: "oncall-secondary".into(),
            level: 1,
        })
        .await
        .seq;
    let events = bench
        .until("the escalation sent", |n| !sent(n).is_empty())
        .await;
    let EventKind::NotificationSent {
        channel, event_seq, ..
    } = &sent(&events)[0].kind
    else {
        unreachable!()
    };
    assert_eq!(channel, "hook");
    assert_eq!(*event_seq, Some(escalated));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests.len(),
        1,
        "the approval request itself is routed nowhere"
    );
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let text = body.to_string();
    assert!(text.contains("escalated to oncall-secondary"), "{text}");
    assert!(text.contains(&format!("#{rem}")), "{text}");
    bench.stop().await;
}

#[test]
fn an_unmapped_escalation_contact_is_a_start_up_error_with_its_line() {
    let text = r#"
[runtime]
approval_ttl_secs = 600
escalation_chain = ["oncall-secondary", "incident-commander"]

[notify.channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "w3bh00k-signing-secret-42"

[notify.escalation]
oncall-secondary = ["hook"]
"#;
    let e = Config::parse(text, "site.toml").unwrap_err().to_string();
    assert!(e.contains("site.toml"), "{e}");
    assert!(e.contains("line 4"), "{e}");
    assert!(e.contains("runtime.escalation_chain"), "{e}");
    assert!(e.contains("incident-commander"), "{e}");

    let unknown_channel = text.replace(
        "oncall-secondary = [\"hook\"]",
        "oncall-secondary = [\"hook\"]\nincident-commander = [\"pager\"]",
    );
    let e = Config::parse(&unknown_channel, "site.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 13"), "{e}");
    assert!(e.contains("notify.escalation.incident-commander"), "{e}");
    assert!(e.contains("`pager`"), "{e}");

    let mapped = unknown_channel.replace("[\"pager\"]", "[\"hook\"]");
    let config = Config::parse(&mapped, "site.toml").unwrap();
    let plan = shieldops::notify::NotifyPlan::from_config(&config.notify)
        .unwrap()
        .expect("an escalation mapping alone runs a notifier");
    assert!(plan.reaches("incident-commander"));
    assert!(!plan.reaches("nobody"));
}
