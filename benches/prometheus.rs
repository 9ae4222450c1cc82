//! Prometheus evidence: the queries of one investigation, run at once,
//! against a real local Prometheus holding 10,000 series (2,000 pods of five
//! cAdvisor and kube-state-metrics series each, scraped every second from an
//! exporter this bench serves). Goal: one investigation's queries finish
//! within 2 s (the slowest of the runs counts).
//!
//! Run: `cargo bench --bench prometheus` (`PROM_BENCH_RUNS=5` for fewer runs).
//! Needs `prometheus` (scripts/install-test-deps.sh).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use shieldops::connectors::prometheus::{Prometheus as Client, PrometheusConfig};
use shieldops::event::{ConnectorId, Environment, Health, Provider, Resource, ResourceId};

#[path = "support/goal.rs"]
mod goal;
#[path = "../tests/prometheus_support/mod.rs"]
mod prometheus_support;

use prometheus_support::{Exporter, Prometheus, Target, label};

const PODS: usize = 2_000;
const SERIES_PER_POD: usize = 5;

/// Five series per pod, counters growing with time.
fn body(t: f64) -> String {
    let n = (10.0 * t).floor() as u64;
    let mut out = String::with_capacity(PODS * SERIES_PER_POD * 120);
    for i in 0..PODS {
        let pod = label(&format!("api-{:04}-x{}", i, i % 7));
        let ns = format!("team-{}", i % 20);
        let l = format!("namespace=\"{ns}\",pod=\"{pod}\",container=\"app\"");
        out.push_str(&format!(
            "container_cpu_cfs_periods_total{{{l}}} {}\n\
             container_cpu_cfs_throttled_periods_total{{{l}}} {}\n\
             container_memory_working_set_bytes{{{l}}} {}\n\
             container_spec_memory_limit_bytes{{{l}}} {}\n\
             kube_pod_container_status_restarts_total{{{l}}} {}\n",
            10 * n,
            (i as u64 % 10) * n,
            (300 + i as u64 % 500) << 20,
            1u64 << 30,
            i % 3,
        ));
    }
    out
}

fn pod(i: usize) -> Resource {
    Resource {
        id: ResourceId::new(format!("bench/pod/{i}")),
        name: format!("api-{:04}-x{}", i, i % 7),
        kind: "pod".into(),
        provider: Provider::Kubernetes,
        connector: ConnectorId::new("bench"),
        environment: Environment::Production,
        team: "bench".into(),
        labels: Default::default(),
        attributes: [("namespace".to_string(), format!("team-{}", i % 20))].into(),
        health: Health::healthy(),
        created_at: Utc::now(),
    }
}

fn main() {
    let runs: usize = std::env::var("PROM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let exporter = Exporter::start(Arc::new(body)).await;
        let prometheus = Prometheus::start(&[Target {
            job: "bench".into(),
            addr: format!("127.0.0.1:{}", exporter.port),
            bearer: None,
        }])
        .await;
        prometheus
            .until_series(
                "count(count_over_time(container_cpu_cfs_periods_total[1m]) >= 3) >= 2000",
                Duration::from_secs(120),
            )
            .await;
        let client = Client::new(&PrometheusConfig::new(prometheus.url())).unwrap();
        let series = client
            .query("count({job=\"bench\"})", Utc::now())
            .await
            .unwrap();
        let held = series.series[0].last().unwrap_or(0.0);
        eprintln!("prometheus holds {held} series of the bench job");
        assert!(held >= (PODS * SERIES_PER_POD) as f64);

        let mut times = Vec::with_capacity(runs);
        for r in 0..runs {
            let target = pod((r * 97) % PODS);
            let started = Instant::now();
            let readings = client
                .readings(&target, chrono::Duration::minutes(60), Utc::now())
                .await
                .unwrap();
            times.push(started.elapsed());
            for q in &readings {
                assert!(q.value.is_ok(), "{}: {:?}", q.name, q.value);
            }
        }
        times.sort();
        let worst = times.last().unwrap().as_secs_f64();
        let median = times[times.len() / 2].as_secs_f64();
        eprintln!(
            "one investigation's queries ({} at once), {runs} runs: median {:.1} ms, worst {:.1} ms",
            3,
            median * 1000.0,
            worst * 1000.0
        );
        goal::at_most(
            "prometheus evidence queries of one investigation, 10k series (worst run)",
            worst * 1000.0,
            2000.0,
            "ms",
        );
    });
}
