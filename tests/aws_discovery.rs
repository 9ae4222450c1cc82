//! The discovery agent over the AWS connector against moto: the first poll
//! records the fleet and the connector's status; a poll with nothing changed
//! records nothing; a change records only itself.

mod aws_support;

use std::sync::Arc;
use std::time::Duration;

use shieldops::agents::AgentContext;
use shieldops::agents::discovery::Discovery;
use shieldops::clock::SharedClock;
use shieldops::connectors::Registry;
use shieldops::event::EventKind;
use shieldops::state::State;
use shieldops::store::EventLog;

use aws_support::{Moto, config, connector, manual_clock, sdk};

#[tokio::test]
async fn only_changes_become_events() {
    let moto = Moto::start();
    let region = "sa-east-1";
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&moto.url(), region).await);
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(4)
        .max_count(4)
        .send()
        .await
        .unwrap();
    let first = out.instances()[0].instance_id().unwrap().to_string();

    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&dir.path().join("log")).unwrap();
    let clock = manual_clock();
    let c = connector(&config(&moto.url(), region), clock.clone() as SharedClock).await;
    let mut registry = Registry::new();
    registry.add(c);
    let ctx = AgentContext {
        log: log.clone(),
        registry,
        clock: clock.clone() as SharedClock,
        playbooks: Arc::new(shieldops::playbook::Library::load(None).unwrap()),
    };
    let mut discovery = Discovery::from_state(&State::new());

    // First poll: four instances and the connector's status.
    assert_eq!(discovery.poll(&ctx).await, 5);
    let kinds: Vec<String> = log
        .scan(1)
        .map(|e| e.unwrap().kind.name().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "resource_discovered").count(),
        4
    );
    assert_eq!(kinds.iter().filter(|k| *k == "connector_status").count(), 1);

    // Before the connector's interval: not even a call to AWS.
    assert_eq!(discovery.poll(&ctx).await, 0);
    // After it, a real poll where nothing changed: no events.
    clock.advance(Duration::from_secs(61));
    assert_eq!(discovery.poll(&ctx).await, 0);

    // One instance stops: exactly its state change and its health change.
    ec2.stop_instances()
        .instance_ids(&first)
        .send()
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let before = log.last_seq();
    assert_eq!(discovery.poll(&ctx).await, 2);
    let new: Vec<EventKind> = log.scan(before + 1).map(|e| e.unwrap().kind).collect();
    assert!(new.iter().any(|k| matches!(k, EventKind::ResourceChanged { changes, .. } if changes.get("state").map(String::as_str) == Some("stopped"))), "{new:?}");
    assert!(new.iter().any(|k| matches!(k, EventKind::HealthChanged { health, .. } if health.reason == "instance_stopped")), "{new:?}");
    log.close().await.unwrap();
}
