//! EC2 CPU from CloudWatch against moto's server: datapoints put with the
//! real SDK (`PutMetricData`) come back through the connector's
//! `GetMetricData` as each running instance's mean and p95 over the window;
//! an instance without datapoints, or a refused call, leaves usage unknown
//! with the reason; and the cost agent in the real runtime rightsizes an
//! instance from the fetched numbers, and recommends nothing without them.

mod aws_support;
mod runtime_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime as SmithyTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use chrono::{DateTime, Utc};
use shieldops::clock::{Clock, ManualClock, SharedClock};
use shieldops::connectors::aws::AwsConfig;
use shieldops::connectors::{InfraConnector, Registry};
use shieldops::event::{Resource, USAGE_UNKNOWN};
use shieldops::runtime::RuntimeOptions;
use shieldops::state::State;

use aws_support::{Moto, Responder, config, connector, forward, sdk};
use runtime_support::{Driven, shipped_policy, start_time};

const REGION: &str = "us-east-1";

/// Launches `count` running instances of `itype` named `name`; returns their ids.
async fn launch(
    sdk: &aws_config::SdkConfig,
    name: &str,
    itype: InstanceType,
    count: i32,
) -> Vec<String> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(itype)
        .min_count(count)
        .max_count(count)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value(name).build())
                .tags(Tag::builder().key("team").value("data").build())
                .build(),
        )
        .send()
        .await
        .expect("run instances");
    out.instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// Puts CPUUtilization datapoints for an instance, as the EC2 service publishes them.
async fn put_cpu(sdk: &aws_config::SdkConfig, instance: &str, points: &[(DateTime<Utc>, f64)]) {
    let cw = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(sdk)
            .disable_request_compression(true)
            .build(),
    );
    for chunk in points.chunks(20) {
        let data: Vec<MetricDatum> = chunk
            .iter()
            .map(|(at, v)| {
                MetricDatum::builder()
                    .metric_name("CPUUtilization")
                    .dimensions(
                        Dimension::builder()
                            .name("InstanceId")
                            .value(instance)
                            .build(),
                    )
                    .timestamp(SmithyTime::from_secs(at.timestamp()))
                    .value(*v)
                    .unit(StandardUnit::Percent)
                    .build()
            })
            .collect();
        cw.put_metric_data()
            .namespace("AWS/EC2")
            .set_metric_data(Some(data))
            .send()
            .await
            .expect("put metric data");
    }
}

/// One datapoint 30 s into each 5-minute period of the hour before `now`.
fn hour_before(now: DateTime<Utc>, values: &[f64]) -> Vec<(DateTime<Utc>, f64)> {
    let start = now - chrono::Duration::hours(1);
    values
        .iter()
        .enumerate()
        .map(|(k, v)| (start + chrono::Duration::seconds(300 * k as i64 + 30), *v))
        .collect()
}

fn instance<'a>(fleet: &'a [Resource], id: &str) -> &'a Resource {
    fleet
        .iter()
        .find(|r| r.id.as_str().ends_with(id))
        .unwrap_or_else(|| panic!("no instance {id}"))
}

/// A connector on `endpoint` without ECS (moto's ECS is not what these tests are about).
async fn ec2_only(
    endpoint: &str,
    clock: &Arc<ManualClock>,
) -> Arc<shieldops::connectors::aws::AwsConnector> {
    let settings = AwsConfig {
        ecs: false,
        ..config(endpoint, REGION)
    };
    connector(&settings, clock.clone() as SharedClock).await
}

/// moto, SDK clients on it, and one running m5.8xlarge (`etl-prod-0`).
async fn moto_with_etl() -> (Moto, aws_config::SdkConfig, String) {
    let moto = Moto::start();
    let sdk = sdk(&moto.url(), REGION).await;
    let id = launch(&sdk, "etl-prod-0", InstanceType::M58xlarge, 1)
        .await
        .remove(0);
    (moto, sdk, id)
}

fn clock_at_ten() -> Arc<ManualClock> {
    aws_support::manual_clock()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_mean_and_p95_come_from_cloudwatch_and_no_datapoints_is_unknown() {
    let moto = Moto::start();
    let sdk = sdk(&moto.url(), REGION).await;
    let busy = launch(&sdk, "etl-prod-0", InstanceType::M58xlarge, 1)
        .await
        .remove(0);
    let quiet = launch(&sdk, "new-prod-0", InstanceType::M5Large, 1)
        .await
        .remove(0);
    let clock = clock_at_ten();
    let now = clock.now();
    let mut points = hour_before(
        now,
        &[
            4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 40.0,
        ],
    );
    // A second reading in the first period: CloudWatch averages it in (4 and 8 → 6).
    points.push((points[0].0 + chrono::Duration::seconds(60), 8.0));
    // Outside the window: it does not count.
    points.push((now - chrono::Duration::hours(3), 99.0));
    put_cpu(&sdk, &busy, &points).await;

    let conn = connector(&config(&moto.url(), REGION), clock.clone() as SharedClock).await;
    let fleet = conn.list_resources(&Default::default()).await.unwrap();
    let b = instance(&fleet, &busy);
    // Period averages 6, 6, 8, …, 24, 40: mean 196/12 = 16.33; p95 (nearest rank of 12) = 40.
    assert_eq!(b.attributes["cpu_util_pct"], "16.3", "{:?}", b.attributes);
    assert_eq!(b.attributes["cpu_util_p95_pct"], "40.0");
    assert_eq!(b.attributes["cpu_util_datapoints"], "12");
    assert!(!b.attributes.contains_key(USAGE_UNKNOWN));

    let q = instance(&fleet, &quiet);
    assert!(
        !q.attributes.contains_key("cpu_util_pct"),
        "{:?}",
        q.attributes
    );
    assert_eq!(
        q.attributes[USAGE_UNKNOWN],
        "usage unknown: no CloudWatch CPUUtilization datapoints in the last 60 min \
         (instance just started, or its metrics are not published)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_one_call_of_queries_is_batched_and_mapped_back() {
    let moto = Moto::start();
    let sdk = sdk(&moto.url(), REGION).await;
    // 501 instances: two GetMetricData calls (500 queries, then 1).
    let ids = launch(&sdk, "fleet-prod-0", InstanceType::T3Micro, 501).await;
    assert_eq!(ids.len(), 501);
    let clock = clock_at_ten();
    let now = clock.now();
    put_cpu(&sdk, &ids[0], &hour_before(now, &[10.0, 20.0, 30.0])).await;
    put_cpu(&sdk, &ids[500], &hour_before(now, &[50.0, 70.0])).await;
    let conn = ec2_only(&moto.url(), &clock).await;
    let fleet = conn.list_resources(&Default::default()).await.unwrap();
    assert_eq!(instance(&fleet, &ids[0]).attributes["cpu_util_pct"], "20.0");
    assert_eq!(
        instance(&fleet, &ids[500]).attributes["cpu_util_pct"],
        "60.0"
    );
    assert_eq!(
        instance(&fleet, &ids[500]).attributes["cpu_util_p95_pct"],
        "70.0"
    );
    let unknown = fleet
        .iter()
        .filter(|r| r.attributes.contains_key(USAGE_UNKNOWN))
        .count();
    assert_eq!(unknown, 499);
}

/// moto behind a double that refuses every CloudWatch call as AWS does
/// without `cloudwatch:GetMetricData` (its signing name is `monitoring`; EC2
/// passes through).
fn cloudwatch_denied(moto_port: u16) -> (Responder, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let double = Responder::start(move |_, head, body| {
        if head.contains("/monitoring/aws4_request") {
            counter.fetch_add(1, Ordering::SeqCst);
            let xml = "<ErrorResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><Error><Type>Sender</Type>\
                <Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/ops is not authorized to perform: \
                cloudwatch:GetMetricData because no identity-based policy allows the cloudwatch:GetMetricData action</Message>\
                </Error><RequestId>5a1e7f0e-0000-4000-8000-000000000000</RequestId></ErrorResponse>";
            return (403, "text/xml", xml.as_bytes().to_vec());
        }
        let (status, out) = forward(moto_port, head, body);
        (status, "text/xml", out)
    });
    (double, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_leaves_usage_unknown_and_names_the_permission() {
    let (moto, sdk, id) = moto_with_etl().await;
    let clock = clock_at_ten();
    put_cpu(&sdk, &id, &hour_before(clock.now(), &[10.0, 10.0, 10.0])).await;
    let (double, asked) = cloudwatch_denied(moto.port);
    let conn = ec2_only(&double.url(), &clock).await;
    // The fleet is still listed: a CloudWatch refusal fails only the usage.
    let fleet = conn.list_resources(&Default::default()).await.unwrap();
    let r = instance(&fleet, &id);
    assert!(
        !r.attributes.contains_key("cpu_util_pct"),
        "{:?}",
        r.attributes
    );
    let why = &r.attributes[USAGE_UNKNOWN];
    assert!(why.contains("CloudWatch refused GetMetricData"), "{why}");
    assert!(why.contains("AccessDenied"), "{why}");
    assert!(why.ends_with("grant cloudwatch:GetMetricData"), "{why}");
    // Asked once per period however often the fleet is listed (each metric is billed).
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    conn.list_resources(&Default::default()).await.unwrap();
    clock.advance(Duration::from_secs(200));
    conn.list_resources(&Default::default()).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(100));
    conn.list_resources(&Default::default()).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

/// One `GetMetricData` answer page in the query protocol's XML, as CloudWatch
/// sends it: `results` are (id, status, values) and `next` the page token.
fn metric_data_page(results: &[(&str, &str, &[f64])], next: Option<&str>) -> String {
    let members: String = results
        .iter()
        .map(|(id, status, values)| {
            let ts: String = (0..values.len())
                .map(|k| format!("<member>2026-01-07T09:{:02}:00Z</member>", 5 * k))
                .collect();
            let vs: String = values.iter().map(|v| format!("<member>{v}</member>")).collect();
            format!(
                "<member><Id>{id}</Id><Label>CPUUtilization</Label><StatusCode>{status}</StatusCode>\
                 <Timestamps>{ts}</Timestamps><Values>{vs}</Values></member>"
            )
        })
        .collect();
    let next = next
        .map(|t| format!("<NextToken>{t}</NextToken>"))
        .unwrap_or_default();
    format!(
        "<GetMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">\
         <GetMetricDataResult><MetricDataResults>{members}</MetricDataResults>{next}<Messages/>\
         </GetMetricDataResult><ResponseMetadata><RequestId>5a1e7f0e-0000-4000-8000-000000000001</RequestId>\
         </ResponseMetadata></GetMetricDataResponse>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_next_token_page_is_read_and_only_percentages_count() {
    let (moto, _, id) = moto_with_etl().await;
    // Test double in front of moto: CloudWatch answers in two pages (moto
    // never pages), the second only for the token the first gave; EC2 passes through.
    let tokens = Arc::new(std::sync::Mutex::new(Vec::<bool>::new()));
    let seen = tokens.clone();
    let moto_port = moto.port;
    let double = Responder::start(move |_, head, body| {
        if head.contains("/monitoring/aws4_request") {
            let body = String::from_utf8_lossy(body);
            let second = body.contains("NextToken=page-2");
            seen.lock().unwrap().push(second);
            let page = if second {
                // A value no CPU percentage can be, and an id never asked for.
                metric_data_page(
                    &[
                        ("q0", "Complete", &[30.0, 150.0]),
                        ("other", "Complete", &[1.0]),
                    ],
                    None,
                )
            } else {
                metric_data_page(&[("q0", "PartialData", &[10.0, 20.0])], Some("page-2"))
            };
            return (200, "text/xml", page.into_bytes());
        }
        let (status, out) = forward(moto_port, head, body);
        (status, "text/xml", out)
    });
    let clock = clock_at_ten();
    let conn = ec2_only(&double.url(), &clock).await;
    let fleet = conn.list_resources(&Default::default()).await.unwrap();
    let r = instance(&fleet, &id);
    // 10, 20 and 30: the 150 and the other id's reading are not this instance's CPU.
    assert_eq!(r.attributes["cpu_util_pct"], "20.0", "{:?}", r.attributes);
    assert_eq!(r.attributes["cpu_util_p95_pct"], "30.0");
    assert_eq!(r.attributes["cpu_util_datapoints"], "3");
    assert_eq!(*tokens.lock().unwrap(), [false, true]);
}

/// The runtime on one AWS connector pointed at `endpoint`, on simulated time.
async fn runtime_on(endpoint: &str) -> Driven {
    let clock = ManualClock::new(start_time());
    let settings = AwsConfig {
        ecs: false,
        ..config(endpoint, REGION)
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
    .settling(Duration::from_millis(150))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_agent_rightsizes_an_instance_from_cloudwatch_cpu() {
    let (moto, sdk, id) = moto_with_etl().await;
    let values = [
        8.0, 10.0, 9.0, 10.0, 7.0, 6.0, 8.0, 9.0, 10.0, 5.0, 6.0, 8.0,
    ];
    put_cpu(&sdk, &id, &hour_before(start_time(), &values)).await;
    let h = runtime_on(&moto.url()).await;
    let state = h
        .until("a recommendation", |s: &State| {
            !s.cost.recommendations.is_empty()
        })
        .await;
    let rec = state.cost.recommendations.values().next().unwrap();
    // p95 10% of 32 vCPU = 3.2 vCPU; at 60% that needs 6 → m5.2xlarge (8 vCPU).
    // Saving (1.536 − 0.384) × 730 = $840.96.
    assert!(rec.resource.as_str().ends_with(&id), "{}", rec.resource);
    let action = rec.action.as_ref().unwrap();
    assert_eq!(action.name, "resize_instance");
    assert_eq!(action.params["instance_type"], "m5.2xlarge");
    assert_eq!(rec.monthly_savings_cents, 84_096);
    assert!(
        rec.title.contains("p95 CPU 10% of 32 vCPU"),
        "{}",
        rec.title
    );
    // The instance is priced from its availability zone: it has a cost sample.
    assert!(
        state
            .cost
            .resources
            .keys()
            .any(|r| r.as_str().ends_with(&id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cloudwatch_permission_nothing_is_recommended_and_the_agent_says_why() {
    let (moto, sdk, id) = moto_with_etl().await;
    // Idle CPU that would be a recommendation if it could be read.
    put_cpu(&sdk, &id, &hour_before(start_time(), &[1.0; 12])).await;
    let (double, _) = cloudwatch_denied(moto.port);
    let h = runtime_on(&double.url()).await;
    let state = h.agent_says("cost", "usage unknown").await;
    let status = &state.agents["cost"].status;
    assert!(
        status.contains("usage unknown for 1 resource(s): CloudWatch refused GetMetricData"),
        "{status}"
    );
    let state = h.run_for(60).await;
    assert!(
        state.cost.recommendations.is_empty(),
        "{:?}",
        state.cost.recommendations
    );
    // Still costed: the price does not depend on usage.
    assert!(
        state
            .cost
            .resources
            .keys()
            .any(|r| r.as_str().ends_with(&id))
    );
}
