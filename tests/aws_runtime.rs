//! AWS remediations through the real runtime against moto's server: alert →
//! investigation (the shipped playbooks) → policy (the shipped Rego bundle) →
//! approval → snapshot → action on the emulator → validation against the
//! emulator's own answers → success, or restore when validation fails.

mod aws_support;
mod runtime_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use shieldops::clock::{ManualClock, SharedClock};
use shieldops::connectors::Registry;
use shieldops::connectors::aws::AwsConfig;
use shieldops::event::{Alert, AlertStatus, RemediationOutcome, ResourceId, Severity};
use shieldops::runtime::command::Command;
use shieldops::runtime::{Intake, RuntimeOptions};
use shieldops::state::{Stage, State};

use aws_support::{Moto, config, connector, sdk};
use runtime_support::{Driven, shipped_policy, start_time};

/// The runtime on one AWS connector pointed at `moto`, on simulated time.
async fn start(moto: &Moto, region: &str) -> Driven {
    let clock = ManualClock::new(start_time());
    // An action that cannot settle gives up after a few seconds of real time.
    let settings = AwsConfig {
        action_timeout_secs: 4,
        ..config(&moto.url(), region)
    };
    let aws = connector(&settings, Arc::new(clock.clone()) as SharedClock).await;
    let mut registry = Registry::new();
    registry.add(aws);
    Driven::start(
        clock,
        registry,
        shipped_policy(),
        None,
        RuntimeOptions::default(),
    )
    // Every health check is an HTTP round trip to moto.
    .settling(Duration::from_millis(150))
}

async fn alert(h: &Driven, name: &str, resource: &ResourceId, labels: &[(&str, &str)]) {
    h.runtime()
        .intake
        .send(Intake::Alert {
            alert: Alert {
                name: name.into(),
                severity: Severity::High,
                fingerprint: format!("{name}@{resource}"),
                resource: resource.clone(),
                summary: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                status: AlertStatus::Firing,
                source: "test".into(),
            },
            recorded: None,
            posted_by: None,
        })
        .await
        .unwrap();
}

/// The one remediation once it waits for approval.
async fn awaiting_approval(h: &Driven) -> shieldops::state::Remediation {
    let state = h
        .until("approval requested", |s: &State| {
            s.remediations
                .values()
                .any(|r| r.stage == Stage::AwaitingApproval)
        })
        .await;
    state.remediations.values().next().unwrap().clone()
}

async fn finished(h: &Driven, id: u64) -> shieldops::state::Remediation {
    let state = h
        .until("remediation finished", |s: &State| {
            matches!(s.remediations[&id].stage, Stage::Finished(_))
        })
        .await;
    state.remediations[&id].clone()
}

async fn instance_type(ec2: &aws_sdk_ec2::Client, id: &str) -> (String, String) {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    (
        i.state().and_then(|s| s.name()).unwrap().as_str().into(),
        i.instance_type().unwrap().as_str().into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_instance_is_resized_only_after_approval_and_validated() {
    let moto = Moto::start();
    let region = "eu-west-1";
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&moto.url(), region).await);
    let mut tags = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in [("team", "payments"), ("environment", "production")] {
        tags = tags.tags(Tag::builder().key(k).value(v).build());
    }
    let iid = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(tags.build())
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let id = ResourceId::new(format!("aws/moto/{region}/ec2/{iid}"));

    let h = start(&moto, region).await;
    h.until("discovery of the instance", |s| s.fleet.get(&id).is_some())
        .await;
    alert(
        &h,
        "EC2CPUSaturated",
        &id,
        // Within the family: the alert chose it, so the policy bounds it
        // against the type the runtime reads from the fleet.
        &[("target_instance_type", "t3.large")],
    )
    .await;
    let rem = awaiting_approval(&h).await;
    assert_eq!(rem.action.name, "resize_instance");
    assert_eq!(rem.action.params["instance_type"], "t3.large");
    assert_eq!(rem.action.params["from_instance_type"], "t3.micro");
    assert_eq!(
        rem.action.param_sources["instance_type"],
        shieldops::event::ParamSource::Alert
    );
    assert_eq!(
        rem.action.param_sources["from_instance_type"],
        shieldops::event::ParamSource::Live
    );
    assert_eq!(rem.playbook.as_deref(), Some("ec2-cpu-saturated"));
    let decision = rem.decision.as_ref().unwrap();
    assert!(decision.allow, "{decision:?}");
    // An alert chose a size three steps up (micro → large): two approvals.
    assert_eq!(rem.required_approvals, 2, "{decision:?}");
    assert_eq!(
        instance_type(&ec2, &iid).await,
        ("running".into(), "t3.micro".into()),
        "nothing ran before approval"
    );

    for who in ["alice", "bob"] {
        h.command(
            who,
            Command::Approve {
                remediation: rem.id,
                comment: "go".into(),
            },
        )
        .await
        .expect("the approval is accepted");
    }
    let rem = finished(&h, rem.id).await;
    assert_eq!(
        rem.stage,
        Stage::Finished(RemediationOutcome::Succeeded),
        "{rem:#?}"
    );
    let snapshot = rem.snapshot.as_ref().expect("snapshot before the action");
    assert!(
        snapshot.summary.contains("t3.micro"),
        "the snapshot records the previous type: {}",
        snapshot.summary
    );
    let executed = rem.execution.as_ref().unwrap();
    assert!(executed.success, "{executed:?}");
    assert!(rem.validation.as_ref().unwrap().0);
    assert_eq!(
        instance_type(&ec2, &iid).await,
        ("running".into(), "t3.large".into())
    );
    let report = h.log.verify().unwrap();
    assert!(report.first_bad.is_none(), "{report:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_that_does_not_help_is_restored() {
    let moto = Moto::start();
    let region = "eu-west-3";
    let ecs = aws_sdk_ecs::Client::new(&sdk(&moto.url(), region).await);
    ecs.create_cluster()
        .cluster_name("web")
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family("checkout")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("checkout:1")
                .memory(256)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // moto starts a service with no running tasks, and a new deployment does
    // not start any: the service stays below its desired count whatever is done.
    ecs.create_service()
        .cluster("web")
        .service_name("checkout")
        .task_definition("checkout:1")
        .desired_count(2)
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("team")
                .value("payments")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = ResourceId::new(format!("aws/moto/{region}/ecs/web/checkout"));

    let h = start(&moto, region).await;
    h.until("discovery of the unhealthy service", |s| {
        s.fleet
            .get(&id)
            .is_some_and(|r| r.resource.health.reason == "no_running_tasks")
    })
    .await;
    alert(&h, "ECSServiceUnhealthy", &id, &[]).await;
    let rem = awaiting_approval(&h).await;
    assert_eq!(rem.action.name, "force_new_deployment");
    assert_eq!(rem.playbook.as_deref(), Some("ecs-service-unhealthy"));

    h.command(
        "alice",
        Command::Approve {
            remediation: rem.id,
            comment: "replace the stuck tasks".into(),
        },
    )
    .await
    .expect("the approval is accepted");
    let rem = finished(&h, rem.id).await;
    assert_eq!(
        rem.stage,
        Stage::Finished(RemediationOutcome::RolledBack),
        "{rem:#?}"
    );
    // The new deployment never settles (no task starts): the action reports
    // what it did and that it failed, and the runtime restores.
    let executed = rem.execution.as_ref().unwrap();
    assert!(!executed.success, "{executed:?}");
    assert!(
        executed
            .steps
            .iter()
            .any(|s| s.contains("forceNewDeployment")),
        "{executed:?}"
    );
    assert!(executed.message.contains("0 of 2 running"), "{executed:?}");
    assert!(executed.message.contains("within 4s"), "{executed:?}");
    let restore = rem.restore.as_ref().expect("a restore ran");
    assert!(restore.success, "{restore:?}");
    let now = ecs
        .describe_services()
        .cluster("web")
        .services("checkout")
        .send()
        .await
        .unwrap();
    let s = &now.services()[0];
    assert_eq!(s.desired_count(), 2, "the recorded count is back");
    assert!(s.task_definition().unwrap().ends_with("checkout:1"));
    let report = h.log.verify().unwrap();
    assert!(report.first_bad.is_none(), "{report:?}");
    h.stop().await;
}
