//! The AWS connector against moto's server (EC2, ECS, Cost Explorer): fleet
//! discovery with tags and status checks, pagination, actions with snapshot
//! and real restore, Cost Explorer billing lines; and, through test doubles,
//! CloudTrail evidence, throttling and expired credentials.

mod aws_support;

use std::time::Duration;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use shieldops::clock::SharedClock;
use shieldops::connectors::aws::{self, AwsConnector};
use shieldops::connectors::{InfraConnector, Listing, Scope, TimeWindow};
use shieldops::event::{Action, ConnectorState, Environment, HealthStatus, ResourceId};

use aws_support::{Moto, Responder, config, connector, manual_clock, sdk};

/// Runs `count` tagged instances of `instance_type`; returns their ids.
async fn run_instances(
    ec2: &aws_sdk_ec2::Client,
    count: i32,
    tags: &[(&str, &str)],
) -> Vec<String> {
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(count)
        .max_count(count)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("RunInstances");
    out.instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

async fn fresh(c: &AwsConnector) -> Vec<shieldops::event::Resource> {
    match c.refresh(&Scope::default()).await.expect("refresh") {
        Listing::Fresh(r) => r,
        Listing::Unchanged => panic!("expected a fresh listing"),
    }
}

async fn state_and_type(ec2: &aws_sdk_ec2::Client, id: &str) -> (String, String) {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    (
        i.state()
            .and_then(|s| s.name())
            .unwrap()
            .as_str()
            .to_string(),
        i.instance_type().unwrap().as_str().to_string(),
    )
}

#[tokio::test]
async fn discovers_tagged_instances_with_status_checks_and_polls_on_schedule() {
    let moto = Moto::start();
    let region = "eu-west-1";
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&moto.url(), region).await);
    let ids = run_instances(
        &ec2,
        3,
        &[
            ("Name", "api"),
            ("team", "payments"),
            ("environment", "staging"),
        ],
    )
    .await;
    let clock = manual_clock();
    let c = connector(&config(&moto.url(), region), clock.clone() as SharedClock).await;
    assert_eq!(c.id().0, "aws:moto/eu-west-1");

    let resources = fresh(&c).await;
    let instances: Vec<_> = resources
        .iter()
        .filter(|r| r.kind == "ec2_instance")
        .collect();
    assert_eq!(instances.len(), 3);
    for r in &instances {
        assert!(
            ids.iter()
                .any(|i| r.id.as_str() == format!("aws/moto/eu-west-1/ec2/{i}")),
            "{}",
            r.id
        );
        assert_eq!(r.team, "payments");
        assert_eq!(r.environment, Environment::Staging);
        assert_eq!(r.name, "api");
        assert_eq!(r.attributes["state"], "running");
        assert_eq!(r.attributes["instance_type"], "t3.micro");
        assert_eq!(r.attributes["instance_status"], "ok");
        assert!(r.attributes["availability_zone"].starts_with("eu-west-1"));
        assert!(r.attributes.contains_key("launch_time"));
        assert_eq!(r.health.status, HealthStatus::Healthy);
    }
    assert_eq!(c.status().unwrap().0, ConnectorState::Ok);

    // Before the interval has passed the connector does not call AWS at all.
    clock.advance(Duration::from_secs(30));
    assert!(matches!(
        c.refresh(&Scope::default()).await.unwrap(),
        Listing::Unchanged
    ));
    clock.advance(Duration::from_secs(31));
    assert_eq!(fresh(&c).await.len(), 3);

    // Health of one instance, read directly.
    let h = c.health(&instances[0].id).await.unwrap();
    assert_eq!(h.status, HealthStatus::Healthy);
}

#[tokio::test]
async fn lists_more_than_a_thousand_instances_across_pages() {
    let moto = Moto::start();
    let region = "us-west-2";
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&moto.url(), region).await);
    // One reservation per instance, as in a real account: DescribeInstances
    // pages by reservation (at most 1,000 a page), so this takes two pages.
    use futures::StreamExt;
    let created: usize = futures::stream::iter(0..1100)
        .map(|_| {
            let ec2 = ec2.clone();
            async move { run_instances(&ec2, 1, &[("team", "search")]).await.len() }
        })
        .buffer_unordered(16)
        .fold(0, |sum, n| async move { sum + n })
        .await;
    assert_eq!(created, 1100);
    let c = connector(&config(&moto.url(), region), manual_clock() as SharedClock).await;
    let resources = fresh(&c).await;
    let mut ids: Vec<&str> = resources.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1100);
}

#[tokio::test]
async fn instance_actions_run_and_restore_for_real() {
    let moto = Moto::start();
    let region = "eu-central-1";
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&moto.url(), region).await);
    let iid = run_instances(
        &ec2,
        1,
        &[("team", "payments"), ("environment", "production")],
    )
    .await
    .remove(0);
    let c = connector(&config(&moto.url(), region), manual_clock() as SharedClock).await;
    let id = ResourceId::new(format!("aws/moto/{region}/ec2/{iid}"));

    let out = c
        .execute(&Action::new("reboot_instance", id.clone()))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert!(
        out.steps.iter().any(|s| s.starts_with("RebootInstances")),
        "{:?}",
        out.steps
    );
    assert_eq!(state_and_type(&ec2, &iid).await.0, "running");

    // stop, then restore = running again.
    let before_stop = c.snapshot(&id).await.unwrap();
    let out = c
        .execute(&Action::new("stop_instance", id.clone()))
        .await
        .unwrap();
    assert!(out.success && out.message.contains("stopped"), "{out:?}");
    assert_eq!(state_and_type(&ec2, &iid).await.0, "stopped");
    let back = c.restore(&before_stop).await.unwrap();
    assert!(back.success, "{back:?}");
    assert_eq!(state_and_type(&ec2, &iid).await.0, "running");

    // resize: stop, modify, start; restore = previous type, running.
    let before_resize = c.snapshot(&id).await.unwrap();
    let out = c
        .execute(&Action::new("resize_instance", id.clone()).with("instance_type", "m5.large"))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert_eq!(
        state_and_type(&ec2, &iid).await,
        ("running".into(), "m5.large".into())
    );
    let back = c.restore(&before_resize).await.unwrap();
    assert!(back.success, "{back:?}");
    assert_eq!(
        state_and_type(&ec2, &iid).await,
        ("running".into(), "t3.micro".into())
    );

    // start from stopped; restore = stopped again.
    c.execute(&Action::new("stop_instance", id.clone()))
        .await
        .unwrap();
    let stopped = c.snapshot(&id).await.unwrap();
    let out = c
        .execute(&Action::new("start_instance", id.clone()))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert_eq!(state_and_type(&ec2, &iid).await.0, "running");
    assert!(c.restore(&stopped).await.unwrap().success);
    assert_eq!(state_and_type(&ec2, &iid).await.0, "stopped");

    // Bad parameters are refused before anything is called.
    let err = c
        .execute(&Action::new("resize_instance", id.clone()).with("instance_type", "enormous"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("instance_type"), "{err}");
    let err = c
        .execute(&Action::new("reboot_instance", id.clone()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("running"), "{err}");
    // Another connector's resource is never acted on.
    let other = ResourceId::new(format!("aws/moto/us-east-1/ec2/{iid}"));
    assert!(
        c.execute(&Action::new("reboot_instance", other))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn ecs_services_scale_redeploy_and_restore_count_and_task_definition() {
    let moto = Moto::start();
    let region = "eu-west-2";
    let conf = sdk(&moto.url(), region).await;
    let ecs = aws_sdk_ecs::Client::new(&conf);
    ecs.create_cluster()
        .cluster_name("web")
        .send()
        .await
        .unwrap();
    for image in ["checkout:1", "checkout:2"] {
        ecs.register_task_definition()
            .family("checkout")
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("app")
                    .image(image)
                    .memory(256)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
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
    // moto starts services with no running tasks; settle it at its desired count.
    ecs.update_service()
        .cluster("web")
        .service("checkout")
        .desired_count(2)
        .send()
        .await
        .unwrap();

    let c = connector(&config(&moto.url(), region), manual_clock() as SharedClock).await;
    let resources = fresh(&c).await;
    let svc = resources
        .iter()
        .find(|r| r.kind == "ecs_service")
        .expect("the service is listed");
    assert_eq!(
        svc.id.as_str(),
        format!("aws/moto/{region}/ecs/web/checkout")
    );
    assert_eq!(svc.team, "payments");
    assert_eq!(svc.attributes["desired_count"], "2");
    assert_eq!(svc.attributes["running_count"], "2");
    assert_eq!(svc.attributes["task_definition"], "checkout:1");
    assert_eq!(svc.health.status, HealthStatus::Healthy);
    let id = svc.id.clone();

    let snap = c.snapshot(&id).await.unwrap();
    let out = c
        .execute(&Action::new("set_desired_count", id.clone()).with("desired_count", "5"))
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    let out = c
        .execute(&Action::new("force_new_deployment", id.clone()))
        .await
        .unwrap();
    assert!(
        out.success && out.steps.iter().any(|s| s.contains("new deployment")),
        "{out:?}"
    );
    // Someone also changed the task definition since the snapshot.
    ecs.update_service()
        .cluster("web")
        .service("checkout")
        .task_definition("checkout:2")
        .send()
        .await
        .unwrap();

    let back = c.restore(&snap).await.unwrap();
    assert!(back.success, "{back:?}");
    let now = ecs
        .describe_services()
        .cluster("web")
        .services("checkout")
        .send()
        .await
        .unwrap();
    let s = &now.services()[0];
    assert_eq!(s.desired_count(), 2);
    assert!(
        s.task_definition().unwrap().ends_with("checkout:1"),
        "{:?}",
        s.task_definition()
    );

    let err = c
        .execute(&Action::new("set_desired_count", id.clone()).with("desired_count", "-1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("desired_count"), "{err}");
    let events = c
        .events(
            &id,
            TimeWindow {
                from: chrono::Utc::now() - chrono::Duration::hours(1),
                to: chrono::Utc::now() + chrono::Duration::minutes(1),
            },
        )
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.reason == "deployment"),
        "{events:?}"
    );
}

#[tokio::test]
async fn cost_explorer_lines_by_day_service_and_team() {
    let moto = Moto::start();
    let seeded = serde_json::json!({"results": [{
        "ResultsByTime": [
            {"TimePeriod": {"Start": "2026-01-05", "End": "2026-01-06"}, "Total": {}, "Estimated": false, "Groups": [
                {"Keys": ["Amazon Elastic Compute Cloud - Compute", "team$payments"], "Metrics": {"UnblendedCost": {"Amount": "41.25", "Unit": "USD"}}},
                {"Keys": ["Amazon Elastic Container Service", "team$"], "Metrics": {"UnblendedCost": {"Amount": "3.5", "Unit": "USD"}}}
            ]},
            {"TimePeriod": {"Start": "2026-01-06", "End": "2026-01-07"}, "Total": {}, "Estimated": true, "Groups": [
                {"Keys": ["Amazon Elastic Compute Cloud - Compute", "team$payments"], "Metrics": {"UnblendedCost": {"Amount": "44", "Unit": "USD"}}}
            ]}
        ],
        "DimensionValueAttributes": []
    }]});
    let (status, body) = aws_support::http(
        moto.port,
        "POST",
        "/moto-api/static/ce/cost-and-usage-results",
        &seeded.to_string(),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let conf = config(&moto.url(), "us-east-1");
    let ce = aws::CostExplorer::connect(Some("moto"), &conf, Some(&aws_support::profiles())).await;
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 1, d).unwrap();
    let lines = ce
        .daily_costs(day(5), day(7))
        .await
        .unwrap()
        .expect("Cost Explorer answers");
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].day, day(5));
    assert_eq!(lines[0].service, "Amazon Elastic Compute Cloud - Compute");
    assert_eq!(lines[0].team.as_deref(), Some("payments"));
    assert_eq!(lines[0].amount, 41.25);
    assert_eq!(lines[0].currency, "USD");
    assert_eq!(lines[1].team, None);
    assert_eq!(lines[2].day, day(6));
    assert!(ce.daily_costs(day(7), day(5)).await.is_err());
    // The cost agent reads the same lines through its billing source, with
    // an inclusive last day.
    use shieldops::agents::cost::billing::BillingSource;
    assert_eq!(ce.lines(day(5), day(6)).await.unwrap(), lines);
}

#[tokio::test]
async fn cost_explorer_without_permission_is_absent_not_fatal() {
    // Test double: answers every Cost Explorer call with AccessDeniedException.
    let denied = Responder::start(|_, _, _| {
        (
            400,
            "application/x-amz-json-1.1",
            br#"{"__type":"AccessDeniedException","Message":"User is not authorized to perform: ce:GetCostAndUsage"}"#.to_vec(),
        )
    });
    let conf = config(&denied.url(), "us-east-1");
    let ce = aws::CostExplorer::connect(Some("moto"), &conf, Some(&aws_support::profiles())).await;
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 1, d).unwrap();
    assert_eq!(ce.daily_costs(day(5), day(7)).await.unwrap(), None);
    assert_eq!(denied.count(), 1);
    use shieldops::agents::cost::billing::BillingSource;
    let refused = ce.lines(day(5), day(6)).await.unwrap_err();
    assert!(refused.contains("no permission"), "{refused}");
}

/// A recorded `LookupEvents` answer in CloudTrail's real wire format (JSON 1.1,
/// epoch-second timestamps, the raw record as a JSON string).
const RECORDED_LOOKUP_EVENTS: &str = include_str!("aws_support/cloudtrail_lookup_events.json");

#[tokio::test]
async fn cloudtrail_changes_become_evidence() {
    let moto = Moto::start();
    let region = "ap-southeast-2";
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&moto.url(), region).await);
    let iid = run_instances(&ec2, 1, &[("team", "payments")])
        .await
        .remove(0);
    // Test double for CloudTrail (moto has no LookupEvents): CloudTrail calls
    // get the recorded response; every other call is passed through to moto.
    let moto_port = moto.port;
    let trail = Responder::start(move |_, head, body| {
        if head.contains("CloudTrail_20131101.LookupEvents") {
            assert!(String::from_utf8_lossy(body).contains("ResourceName"));
            (
                200,
                "application/x-amz-json-1.1",
                RECORDED_LOOKUP_EVENTS.as_bytes().to_vec(),
            )
        } else {
            let (status, body) = aws_support::forward(moto_port, head, body);
            (status, "text/xml", body)
        }
    });
    let c = connector(&config(&trail.url(), region), manual_clock() as SharedClock).await;
    let id = ResourceId::new(format!("aws/moto/{region}/ec2/{iid}"));
    let window = TimeWindow {
        from: chrono::DateTime::parse_from_rfc3339("2026-01-07T08:00:00Z")
            .unwrap()
            .to_utc(),
        to: chrono::DateTime::parse_from_rfc3339("2026-01-07T11:00:00Z")
            .unwrap()
            .to_utc(),
    };
    let events = c.events(&id, window).await.unwrap();
    let changes: Vec<_> = events.iter().filter(|e| e.kind == "change").collect();
    // The recorded page has two write calls and one read-only call.
    assert_eq!(changes.len(), 2, "{events:?}");
    assert_eq!(changes[0].reason, "ModifyInstanceAttribute");
    assert!(
        changes[0].message.contains("alice"),
        "{}",
        changes[0].message
    );
    assert_eq!(changes[1].reason, "StopInstances");
    assert!(changes[0].at < changes[1].at);
}

#[tokio::test]
async fn throttling_backs_off_and_keeps_the_fleet() {
    let moto = Moto::start();
    let region = "ca-central-1";
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&moto.url(), region).await);
    run_instances(&ec2, 2, &[("team", "payments")]).await;
    // Test double in front of moto: passes calls through until told to
    // throttle, then answers HTTP 400 ThrottlingException.
    let throttle = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = throttle.clone();
    let moto_port = moto.port;
    let double = Responder::start(move |_, head, body| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            (
                400,
                "text/xml",
                b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>ThrottlingException</Code><Message>Rate exceeded</Message></Error></Errors><RequestID>test-double</RequestID></Response>".to_vec(),
            )
        } else {
            let (status, body) = aws_support::forward(moto_port, head, body);
            (status, "text/xml", body)
        }
    });
    let clock = manual_clock();
    let c = connector(&config(&double.url(), region), clock.clone() as SharedClock).await;
    assert_eq!(fresh(&c).await.len(), 2);

    throttle.store(true, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(61));
    let err = c.refresh(&Scope::default()).await.unwrap_err();
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    let (state, line) = c.status().unwrap();
    assert_eq!(state, ConnectorState::Degraded);
    assert!(
        line.contains("throttled")
            && line.contains("next try in 120s")
            && line.contains("last known fleet"),
        "{line}"
    );

    // During the back-off nothing is sent at all.
    let sent = double.count();
    clock.advance(Duration::from_secs(100));
    assert!(matches!(
        c.refresh(&Scope::default()).await.unwrap(),
        Listing::Unchanged
    ));
    assert_eq!(double.count(), sent);
    // A second throttle doubles the back-off.
    clock.advance(Duration::from_secs(21));
    assert!(c.refresh(&Scope::default()).await.is_err());
    assert!(
        c.status().unwrap().1.contains("next try in 240s"),
        "{:?}",
        c.status()
    );

    // Once AWS answers again the fleet comes back whole and the status clears.
    throttle.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(241));
    assert_eq!(fresh(&c).await.len(), 2);
    assert_eq!(c.status().unwrap().0, ConnectorState::Ok);
}

#[tokio::test]
async fn expired_credentials_say_so() {
    let moto = Moto::start();
    let mut conf = config(&moto.url(), "us-east-1");
    conf.profiles = vec!["expired".into()];
    let setup = aws::connect_with(
        Some(&conf),
        manual_clock() as SharedClock,
        Some(&aws_support::profiles()),
    )
    .await;
    assert!(setup.absent.is_empty(), "{:?}", setup.absent);
    let c = &setup.connectors[0];
    let (state, line) = c.status().unwrap();
    assert_eq!(state, ConnectorState::Failing);
    assert!(
        line.contains("profile `expired`") && line.contains("expired at 2020-01-01"),
        "{line}"
    );
    assert!(line.contains("aws sso login"), "{line}");
}

#[tokio::test]
async fn credentials_rejected_by_aws_mark_the_connector_failing() {
    // Test double: EC2 answering every call as AWS does for an expired session token.
    let double = Responder::start(|_, _, _| {
        (
            400,
            "text/xml",
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error></Errors><RequestID>test-double</RequestID></Response>".to_vec(),
        )
    });
    let c = connector(
        &config(&double.url(), "us-east-1"),
        manual_clock() as SharedClock,
    )
    .await;
    // The poll fails (so discovery keeps the fleet) and the status says why.
    assert!(c.refresh(&Scope::default()).await.is_err());
    let (state, line) = c.status().unwrap();
    assert_eq!(state, ConnectorState::Failing);
    assert!(
        line.contains("credentials expired") && line.contains("ExpiredToken"),
        "{line}"
    );
}

#[tokio::test]
async fn no_aws_section_means_absent_with_a_line_saying_how_to_add_it() {
    let setup = aws::connect(None, manual_clock() as SharedClock).await;
    assert!(setup.connectors.is_empty());
    assert_eq!(setup.absent.len(), 1);
    assert_eq!(setup.absent[0].0, aws::family_id());
    assert!(setup.absent[0].1.contains("[aws]"), "{}", setup.absent[0].1);
}
