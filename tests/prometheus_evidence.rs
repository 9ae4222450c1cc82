//! Prometheus as evidence, against a real Prometheus scraping a real node
//! exporter and an exporter this test serves with controlled values: the
//! readings have the expected numbers, hostile label values are escaped,
//! a failing or hanging Prometheus leaves facts unknown within one timeout,
//! the investigation records the evidence and the shipped `high-latency`
//! playbook decides on the numbers (the Kubernetes side is the real
//! connector against the test API server), and PromQL validation
//! conditions hold, wait or stay unknown as the answers say.

mod kube_support;
mod prometheus_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use kube_support::{TestApiServer, deployment, node};
use prometheus_support::{Exporter, NodeExporter, Prometheus, Target, workload};
use serde_json::json;
use shieldops::agents::AgentContext;
use shieldops::agents::investigation::{InvestigationJob, investigate};
use shieldops::clock::ManualClock;
use shieldops::connectors::prometheus::{self as prom, PrometheusConfig, Reading};
use shieldops::connectors::{InfraConnector, Registry};
use shieldops::event::{
    Alert, AlertStatus, ConnectorId, Environment, EventKind, Health, PlaybookChoice, Provider,
    Resource, ResourceId, Severity, StringMap,
};
use shieldops::playbook::{Library, PromqlCheck, Verdict};
use shieldops::store::EventLog;

/// A pod name a workload owner chose to break out of a PromQL string.
const HOSTILE: &str = "evil\"} or vector(1) #\n\\x";

fn resource(provider: Provider, kind: &str, name: &str, ns: Option<&str>) -> Resource {
    let mut attributes = StringMap::new();
    if let Some(ns) = ns {
        attributes.insert("namespace".to_string(), ns.to_string());
    }
    Resource {
        id: ResourceId::new(format!("test/{kind}/{name}")),
        name: name.into(),
        kind: kind.into(),
        provider,
        connector: ConnectorId::new("test"),
        environment: Environment::Production,
        team: "shop".into(),
        labels: StringMap::new(),
        attributes,
        health: Health::healthy(),
        created_at: Utc::now(),
    }
}

fn value(readings: &[Reading], name: &str) -> Result<f64, String> {
    readings
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no reading {name}"))
        .value
        .clone()
}

/// A Prometheus scraping the workload exporter (and a node exporter), with
/// at least two scrapes of each so rates are defined.
struct Stack {
    prometheus: Prometheus,
    _exporter: Exporter,
    _node: NodeExporter,
}

async fn stack() -> Stack {
    let exporter = Exporter::start(Arc::new(|t| {
        workload("web-abc-x1", &[(HOSTILE.to_string(), 0.1)], t)
    }))
    .await;
    let node = NodeExporter::start().await;
    let prometheus = Prometheus::start(&[
        Target {
            job: "workload".into(),
            addr: format!("127.0.0.1:{}", exporter.port),
            bearer: None,
        },
        Target {
            job: "node".into(),
            addr: format!("127.0.0.1:{}", node.port),
            bearer: None,
        },
    ])
    .await;
    let within = Duration::from_secs(60);
    for q in [
        "count_over_time(container_cpu_cfs_periods_total[1m]) >= 3",
        "count_over_time(node_load1[1m]) >= 3",
    ] {
        prometheus.until_series(q, within).await;
    }
    Stack {
        prometheus,
        _exporter: exporter,
        _node: node,
    }
}

fn client(url: &str, timeout_ms: u64) -> prom::Prometheus {
    let mut c = PrometheusConfig::new(url);
    c.timeout_ms = timeout_ms;
    prom::Prometheus::new(&c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_from_a_real_prometheus_have_the_expected_numbers() {
    let s = stack().await;
    let p = client(&s.prometheus.url(), 5000);
    let window = chrono::Duration::minutes(1);
    let now = Utc::now();

    let pod = resource(Provider::Kubernetes, "pod", "web-abc-x1", Some("shop"));
    let r = p.readings(&pod, window, now).await.unwrap();
    assert!(
        (value(&r, "cpu_throttle_ratio").unwrap() - 0.4).abs() < 1e-9,
        "{r:?}"
    );
    assert!(
        (value(&r, "memory_working_set_ratio").unwrap() - 900.0 / 1024.0).abs() < 1e-9,
        "{r:?}"
    );
    assert_eq!(value(&r, "restarts").unwrap(), 0.0, "{r:?}");

    // The hostile name matches exactly its own series: 0.1, not vector(1),
    // not a parse error, not the other pod's 0.4.
    let evil = resource(Provider::Kubernetes, "pod", HOSTILE, Some("shop"));
    let r = p.readings(&evil, window, now).await.unwrap();
    assert!(
        (value(&r, "cpu_throttle_ratio").unwrap() - 0.1).abs() < 1e-9,
        "{r:?}"
    );
    // Same name, other namespace: nothing, so unknown, and the evidence says why.
    let elsewhere = resource(Provider::Kubernetes, "pod", HOSTILE, Some("other\"ns"));
    let r = p.readings(&elsewhere, window, now).await.unwrap();
    for q in &r {
        let why = q.value.clone().unwrap_err();
        assert!(
            why.contains("no series") || why.contains("NaN"),
            "{}: {why}",
            q.name
        );
    }

    let deploy = resource(Provider::Kubernetes, "deployment", "web", Some("shop"));
    let r = p.readings(&deploy, window, now).await.unwrap();
    assert!(
        (value(&r, "latency_p99_seconds").unwrap() - 0.95).abs() < 1e-9,
        "{r:?}"
    );
    assert!(
        (value(&r, "error_ratio").unwrap() - 0.02).abs() < 1e-9,
        "{r:?}"
    );

    // The node exporter's own host, by its uname nodename.
    let nodename = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let host = resource(Provider::Linux, "host", &nodename, None);
    let r = p.readings(&host, window, now).await.unwrap();
    let free = value(&r, "filesystem_free_ratio").unwrap();
    assert!(free > 0.0 && free <= 1.0, "{r:?}");
    let load = value(&r, "load_per_cpu").unwrap();
    assert!(load >= 0.0 && load.is_finite(), "{r:?}");
    let stranger = resource(Provider::Linux, "host", "no-such-host", None);
    let r = p.readings(&stranger, window, now).await.unwrap();
    assert!(value(&r, "load_per_cpu").unwrap_err().contains("no series"));

    // Prometheus refusing a site's bad override: unknown, saying so.
    let mut c = PrometheusConfig::new(s.prometheus.url());
    c.queries.insert(
        "pod".into(),
        [(
            "restarts".to_string(),
            // Balanced, so the config accepts it; a range function without a range.
            "sum(rate(x{pod=\"{pod}\"}))".to_string(),
        )]
        .into(),
    );
    let bad = prom::Prometheus::new(&c).unwrap();
    let r = bad.readings(&pod, window, now).await.unwrap();
    let why = value(&r, "restarts").unwrap_err();
    assert!(why.contains("bad_data"), "{why}");
    assert!(value(&r, "cpu_throttle_ratio").is_ok());

    // The range endpoint answers the same series over time.
    let a = p
        .query_range(
            "sum(container_cpu_cfs_periods_total)",
            now - chrono::Duration::seconds(10),
            now,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(a.series.len(), 1);
    assert!(a.series[0].samples.len() >= 3, "{a:?}");
}

/// Accepts connections and never answers a byte.
async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_or_absent_prometheus_leaves_facts_unknown_within_one_timeout() {
    let (port, task) = silent_server().await;
    let p = client(&format!("http://127.0.0.1:{port}"), 700);
    let pod = resource(Provider::Kubernetes, "pod", "web-abc-x1", Some("shop"));
    let started = Instant::now();
    let r = p
        .readings(&pod, chrono::Duration::minutes(5), Utc::now())
        .await
        .unwrap();
    let took = started.elapsed();
    // Three queries at once: one timeout, not three.
    assert!(took < Duration::from_millis(1400), "{took:?}");
    assert_eq!(r.len(), 3);
    for q in &r {
        assert!(
            q.value.clone().unwrap_err().contains("no answer within"),
            "{q:?}"
        );
    }
    task.abort();

    let closed = prometheus_support::free_port();
    let p = client(&format!("http://127.0.0.1:{closed}"), 2000);
    let r = p
        .readings(&pod, chrono::Duration::minutes(5), Utc::now())
        .await
        .unwrap();
    assert!(r.iter().all(|q| q.value.is_err()));
    // No queries are written for an EC2 instance: nothing is asked.
    let ec2 = resource(Provider::Aws, "ec2_instance", "i-1", None);
    assert!(
        p.readings(&ec2, chrono::Duration::minutes(5), Utc::now())
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_validation_holds_waits_or_stays_unknown_as_answered() {
    let s = stack().await;
    let p = client(&s.prometheus.url(), 5000);
    let library = Library::load(None).unwrap();
    let spec = &library.get("high-latency").unwrap().validation;
    let condition = spec.promql.clone().unwrap();
    let web = resource(Provider::Kubernetes, "deployment", "web", Some("shop"));
    let now = Utc::now();
    // p99 is 0.95 s: the shipped condition (`< 0.5`) answers nothing yet.
    assert_eq!(p.holds(&condition, Some(&web), now).await, Ok(false));
    // Its mirror holds.
    let slow = condition.replace("< 0.5", "> 0.5");
    assert_eq!(p.holds(&slow, Some(&web), now).await, Ok(true));
    // A target without the placeholders' values, or a query Prometheus refuses: unknown.
    assert!(p.holds(&condition, None, now).await.is_err());
    assert!(
        p.holds("rate(x[5m]", None, now)
            .await
            .unwrap_err()
            .contains("bad_data")
    );

    let check = |r: Result<bool, String>| match r {
        Ok(true) => PromqlCheck::Holds,
        Ok(false) => PromqlCheck::Empty,
        Err(e) => PromqlCheck::Unknown(e),
    };
    let healthy = Health::healthy();
    let mut run = spec.start(now);
    let c = check(p.holds(&condition, Some(&web), now).await);
    assert_eq!(run.observe_with(&healthy, &c, now), Verdict::Pending);
    let end = now + chrono::Duration::from_std(spec.timeout).unwrap();
    match run.observe_with(&healthy, &c, end) {
        Verdict::Failed(why) => assert!(why.contains("empty answer"), "{why}"),
        v => panic!("{v:?}"),
    }
    let mut passing = spec.clone();
    passing.promql = Some(slow.clone());
    passing.stable_polls = 2;
    let mut run = passing.start(now);
    for i in 0..2 {
        let c = check(p.holds(&slow, Some(&web), Utc::now()).await);
        let v = run.observe_with(&healthy, &c, now + chrono::Duration::seconds(i));
        if i == 1 {
            assert!(matches!(v, Verdict::Passed(_)), "{v:?}");
        }
    }
}

/// Runs the real investigation of `alert` on `resource` with the Kubernetes
/// connector on `server` and Prometheus at `prom_url`; returns the choice,
/// the conclusion and the Prometheus evidence lines.
async fn investigate_with(
    server: &TestApiServer,
    dir: &std::path::Path,
    prom_url: &str,
    timeout_ms: u64,
    alert: &str,
    resource: &str,
) -> (Option<PlaybookChoice>, String, Vec<String>, Duration) {
    let conn = Arc::new(kube_support::connect(server, dir).await);
    let id = ResourceId::new(resource);
    assert!(
        kube_support::eventually(Duration::from_secs(20), || conn
            .cache()
            .resource(&id)
            .is_some())
        .await
    );
    let mut registry = Registry::new();
    let connector: Arc<dyn InfraConnector> = conn;
    registry.add(connector);
    registry.set_prometheus(Arc::new(client(prom_url, timeout_ms)));
    let log_dir = tempfile::tempdir_in(dir).unwrap().keep();
    let log = EventLog::open(&log_dir.join("log")).unwrap();
    let ctx = AgentContext {
        log: log.clone(),
        registry,
        clock: Arc::new(ManualClock::new(Utc::now())),
        playbooks: Arc::new(Library::load(None).unwrap()),
    };
    let started = Instant::now();
    investigate(
        ctx,
        InvestigationJob {
            investigation: 1,
            incident: 1,
            resource: id.clone(),
            alert: Alert {
                name: alert.into(),
                severity: Severity::High,
                resource: id,
                fingerprint: "fp".into(),
                summary: String::new(),
                labels: [("namespace".to_string(), "shop".to_string())].into(),
                status: AlertStatus::Firing,
                source: "test".into(),
            },
            connector: ConnectorId::new("k8s:test"),
            evidence_so_far: 0,
        },
    )
    .await;
    let took = started.elapsed();
    let mut evidence = Vec::new();
    for e in log.scan(1) {
        match e.unwrap().kind {
            EventKind::EvidenceCollected { evidence: ev, .. } if ev.source == "prometheus" => {
                evidence.push(ev.summary);
            }
            EventKind::InvestigationConcluded {
                conclusion,
                playbook,
                ..
            } => return (playbook, conclusion, evidence, took),
            _ => {}
        }
    }
    panic!("the investigation concluded nothing");
}

async fn investigate_web(
    server: &TestApiServer,
    dir: &std::path::Path,
    prom_url: &str,
    timeout_ms: u64,
) -> (Option<PlaybookChoice>, String, Vec<String>, Duration) {
    let web = "k8s/test/shop/deployment/web";
    investigate_with(server, dir, prom_url, timeout_ms, "HighLatency", web).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpu_throttling_playbook_scales_out_a_pod_throttled_in_40_percent_of_periods() {
    let s = stack().await;
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(node("node-a"));
    server.create(deployment("shop", "web", 2, "web:1"));
    let rs = server
        .list("ReplicaSet")
        .into_iter()
        .next()
        .expect("the deployment's ReplicaSet");
    let rs_name = rs["metadata"]["name"].as_str().unwrap();
    // The pod the exporter reports on, owned by the ReplicaSet.
    let mut p = kube_support::pod("shop", "web-abc-x1", Some(rs_name), "node-a", "web:1");
    p["metadata"]["ownerReferences"][0]["uid"] = rs["metadata"]["uid"].clone();
    server.create(p);
    let (choice, conclusion, evidence, _) = investigate_with(
        &server,
        dir.path(),
        &s.prometheus.url(),
        5000,
        "CPUThrottlingHigh",
        "k8s/test/shop/pod/web-abc-x1",
    )
    .await;
    let d = choice.unwrap_or_else(|| panic!("no choice: {conclusion}"));
    assert_eq!(
        (d.playbook.as_str(), d.branch.as_str()),
        ("cpu-throttling", "scale-out"),
        "{conclusion}"
    );
    assert_eq!(d.action.name, "scale");
    assert_eq!(d.action.params["replicas"], "4", "2 × 2");
    assert!(
        evidence
            .iter()
            .any(|e| e.starts_with("prometheus cpu_throttle_ratio = 0.4 over 15m")),
        "{evidence:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_high_latency_playbook_decides_on_real_numbers_and_not_without_them() {
    let s = stack().await;
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.create(node("node-a"));
    server.create(deployment("shop", "web", 2, "web:1"));

    // Slow (p99 0.95 s), answering (2% errors), one revision: add replicas.
    let (choice, conclusion, evidence, _) =
        investigate_web(&server, dir.path(), &s.prometheus.url(), 5000).await;
    let d = choice.unwrap_or_else(|| panic!("no choice: {conclusion}"));
    assert_eq!(
        (d.playbook.as_str(), d.branch.as_str()),
        ("high-latency", "saturated")
    );
    assert_eq!(d.action.name, "scale");
    assert_eq!(d.action.params["replicas"], "3", "ceil(2 × 1.5)");
    assert!(
        evidence
            .iter()
            .any(|e| e.starts_with("prometheus latency_p99_seconds = 0.95 over 10m")),
        "{evidence:?}"
    );
    assert!(
        evidence.iter().all(|e| e.contains("the p99 latency")),
        "{evidence:?}"
    );

    // A new revision just rolled out: the same numbers roll it back.
    server.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    });
    let (choice, conclusion, _, _) =
        investigate_web(&server, dir.path(), &s.prometheus.url(), 5000).await;
    let d = choice.unwrap_or_else(|| panic!("no choice: {conclusion}"));
    assert_eq!(d.branch, "slow-after-deploy");
    assert_eq!(d.action.name, "rollback_deployment");

    // Prometheus hanging: the latency is unknown, not low; the playbook does
    // not act and says which facts it lacked, within the timeout.
    let (port, task) = silent_server().await;
    let (choice, conclusion, evidence, took) = investigate_web(
        &server,
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        800,
    )
    .await;
    task.abort();
    assert!(choice.is_none(), "{conclusion}");
    assert!(
        conclusion.contains("did not act") && conclusion.contains("prometheus.latency_p99_seconds"),
        "{conclusion}"
    );
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("latency_p99_seconds unknown over 10m: no answer within")),
        "{evidence:?}"
    );
    // One 800 ms timeout for all its queries, while the connector is read.
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remediation_passes_validation_only_when_its_promql_condition_holds() {
    use shieldops::agents::remediation::{ExecutionJob, Resume, execute};
    use shieldops::clock::{ScaledClock, SharedClock};
    use shieldops::connectors::sim::Sim;
    use shieldops::event::{Action, RemediationOutcome};

    const CHECKOUT: &str = "k8s/demo-prod/checkout/deployment/checkout-api";
    let prometheus = Prometheus::start(&[]).await;
    let clock: SharedClock = Arc::new(ScaledClock::real());
    let library = Library::load(None).unwrap();
    for (condition, with_prometheus, want, why) in [
        (
            "vector(1) > 0",
            true,
            RemediationOutcome::Succeeded,
            "healthy",
        ),
        (
            "vector(0) > 1",
            true,
            RemediationOutcome::RolledBack,
            "PromQL condition not met (empty answer): vector(0) > 1",
        ),
        (
            "vector(1) > 0",
            false,
            RemediationOutcome::RolledBack,
            "PromQL condition unknown (no [prometheus] is configured)",
        ),
    ] {
        let sim = Sim::open(42, None, clock.clone()).unwrap();
        let mut registry = sim.registry();
        if with_prometheus {
            registry.set_prometheus(Arc::new(client(&prometheus.url(), 2000)));
        }
        let target = ResourceId::new(CHECKOUT);
        let mut connector = None;
        for c in registry.all() {
            let listed = c.list_resources(&Default::default()).await.unwrap();
            if listed.iter().any(|r| r.id == target) {
                connector = Some(c.id().clone());
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("log")).unwrap();
        let ctx = AgentContext {
            log: log.clone(),
            registry,
            clock: clock.clone(),
            playbooks: Arc::new(Library::load(None).unwrap()),
        };
        let mut validation = library.get("high-latency").unwrap().validation.clone();
        validation.promql = Some(condition.to_string());
        validation.timeout = Duration::from_secs(2);
        validation.interval = Duration::from_secs(1);
        validation.stable_polls = 1;
        execute(
            ctx,
            ExecutionJob {
                remediation: 1,
                action: Action::new("scale", target).with("replicas", "6"),
                connector: connector.expect("the sim lists checkout-api"),
                resume: Resume::Start,
                snapshot: None,
                validation,
                on_failure: None,
            },
        )
        .await;
        let mut validated = None;
        let mut finished = None;
        for e in log.scan(1) {
            match e.unwrap().kind {
                EventKind::ValidationFinished { passed, detail, .. } => {
                    validated = Some((passed, detail))
                }
                EventKind::RemediationFinished { status, .. } => finished = Some(status),
                _ => {}
            }
        }
        let (passed, detail) = validated.expect("validation ran");
        assert_eq!(passed, want == RemediationOutcome::Succeeded, "{detail}");
        assert!(detail.contains(why), "{condition}: {detail}");
        assert_eq!(finished, Some(want), "{condition}: {detail}");
    }
}
