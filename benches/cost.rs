//! Cost allocation over 50,000 pods on 2,500 nodes. Goal: ≤ 200 ms.
//!
//! - `allocate`: the pure allocation (OpenCost manner) over the pod model.
//! - `cost_fleet`: the same fleet as resources (attributes parsed from
//!   strings, pods summed per workload, idle per node), which is what the
//!   cost agent runs on every sample.
//!
//! Run: `cargo bench --bench cost`.

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::Criterion;
use shieldops::agents::cost::allocation::{Node, Pod, allocate};
use shieldops::agents::cost::fleet::cost_fleet;
use shieldops::agents::cost::pricing::PriceTable;
use shieldops::event::{
    ConnectorId, Environment, Health, Provider, Resource, ResourceId, StringMap,
};

const PODS: usize = 50_000;
const NODES: usize = 2_500;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 3, 10, 0, 0).unwrap()
}

fn pods_and_nodes() -> (Vec<Node>, Vec<Pod>) {
    let nodes: Vec<Node> = (0..NODES)
        .map(|i| Node {
            name: format!("node-{i}"),
            usd_per_hour: 0.192,
            cpu_millicores: 4000.0,
            memory_mib: 16384.0,
        })
        .collect();
    let pods = (0..PODS)
        .map(|i| Pod {
            id: format!("pod-{i}"),
            node: format!("node-{}", i % NODES),
            namespace: format!("ns-{}", i % 40),
            team: format!("team-{}", i % 12),
            environment: ["development", "staging", "production"][i % 3].into(),
            cpu_request_millicores: 250.0 + (i % 7) as f64 * 50.0,
            cpu_usage_millicores: 100.0 + (i % 11) as f64 * 40.0,
            memory_request_mib: 256.0 + (i % 5) as f64 * 128.0,
            memory_usage_mib: 200.0 + (i % 9) as f64 * 90.0,
        })
        .collect();
    (nodes, pods)
}

fn resource(id: String, kind: &str, attrs: &[(&str, String)]) -> Resource {
    Resource {
        id: ResourceId::new(id.clone()),
        name: id,
        kind: kind.into(),
        provider: Provider::Kubernetes,
        connector: ConnectorId::new("bench"),
        environment: Environment::Production,
        team: "team".into(),
        labels: StringMap::from([("team".to_string(), "team".to_string())]),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        health: Health::healthy(),
        created_at: t0(),
    }
}

fn fleet_resources() -> Vec<Resource> {
    let mut out = Vec::with_capacity(PODS + NODES + PODS / 10);
    for i in 0..NODES {
        out.push(resource(
            format!("node-{i}"),
            "node",
            &[
                ("context", "c".into()),
                ("instance_type", "m5.xlarge".into()),
                ("region", "us-east-1".into()),
                ("cpu_capacity_millicores", "4000".into()),
                ("memory_capacity_mib", "16384".into()),
            ],
        ));
    }
    for w in 0..PODS / 10 {
        out.push(resource(
            format!("deploy-{w}"),
            "deployment",
            &[("context", "c".into())],
        ));
    }
    for i in 0..PODS {
        out.push(resource(
            format!("pod-{i}"),
            "pod",
            &[
                ("context", "c".into()),
                ("node", format!("node-{}", i % NODES)),
                ("owner", format!("deploy-{}", i / 10)),
                ("namespace", format!("ns-{}", i % 40)),
                ("cpu_request_millicores", "250".into()),
                ("cpu_usage_millicores", format!("{}", 100 + i % 300)),
                ("memory_limit_mib", "512".into()),
                ("memory_need_mib", format!("{}", 200 + i % 250)),
            ],
        ));
    }
    out
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let (nodes, pods) = pods_and_nodes();
    c.bench_function("allocate 50,000 pods on 2,500 nodes", |b| {
        b.iter(|| black_box(allocate(&nodes, &pods)))
    });
    let resources = fleet_resources();
    let prices = PriceTable::embedded();
    c.bench_function("cost_fleet 50,000 pods as resources", |b| {
        b.iter(|| black_box(cost_fleet(&resources, &prices)))
    });
    c.final_summary();
}
