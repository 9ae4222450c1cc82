//! Each shipped playbook fires on real-shaped evidence, and does not fire on
//! evidence it lacks. Kubernetes playbooks run the real investigation agent
//! against the Kubernetes connector and the test API server (a test double,
//! see tests/kube_support): ReplicaSet revisions and creation times, pod
//! statuses, events, previous-container logs and node allocatable, as the
//! API serves them. Linux and AWS playbooks are fed the facts those
//! connectors' own code reports (the same names and sources).

mod kube_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube_support::{TestApiServer, deployment, node, pod};
use serde_json::{Value, json};
use shieldops::agents::AgentContext;
use shieldops::agents::investigation::facts::{FactInput, playbook_facts};
use shieldops::agents::investigation::{InvestigationJob, investigate};
use shieldops::clock::ManualClock;
use shieldops::connectors::kubernetes::{ClusterTarget, KubeConnector};
use shieldops::connectors::{InfraConnector, Registry};
use shieldops::event::{
    Alert, AlertStatus, ConnectorId, Environment, EventKind, Health, HealthStatus, PlaybookChoice,
    Provider, Resource, ResourceId, Severity, StringMap,
};
use shieldops::playbook::Library;
use shieldops::store::EventLog;
use tokio::sync::Notify;

struct Cluster {
    server: TestApiServer,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        Cluster {
            server: TestApiServer::start().await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The ReplicaSet of `deployment` whose template runs `image`.
    fn replicaset(&self, image: &str) -> Value {
        self.server
            .list("ReplicaSet")
            .into_iter()
            .find(|r| r["spec"]["template"]["spec"]["containers"][0]["image"] == image)
            .unwrap_or_else(|| panic!("no ReplicaSet runs {image}"))
    }

    /// A pod of `rs` (owned by it, uid and all), with `status` merged over a running one.
    fn pod_of(&self, rs: &Value, suffix: &str, image: &str, status: Value) -> String {
        let rs_name = rs["metadata"]["name"].as_str().unwrap();
        let name = format!("{rs_name}-{suffix}");
        let mut p = pod("shop", &name, Some(rs_name), "node-a", image);
        p["metadata"]["ownerReferences"][0]["uid"] = rs["metadata"]["uid"].clone();
        kube_support::merge_patch(&mut p["status"], &status);
        self.server.create(p);
        name
    }

    fn event(&self, kind: &str, name: &str, reason: &str, message: &str, at: DateTime<Utc>) {
        let n = self.server.list("Event").len();
        self.server
            .create(json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{n}"), "namespace": "shop"},
            "involvedObject": {"kind": kind, "name": name, "namespace": "shop"},
            "reason": reason, "message": message,
            "type": if reason == "ScalingReplicaSet" { "Normal" } else { "Warning" },
            "count": 1, "lastTimestamp": at.to_rfc3339()}));
    }

    /// Runs the investigation agent on `alert` for `resource` at `now` and
    /// returns the playbook's choice and the conclusion.
    async fn investigate(
        &self,
        alert: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> (Option<PlaybookChoice>, String) {
        let kc = kube::config::Kubeconfig::read_from(
            self.server.write_kubeconfig(self.dir.path(), "test"),
        )
        .unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let conn = Arc::new(
            KubeConnector::start(
                ClusterTarget {
                    context: "test".into(),
                    config,
                },
                Arc::new(Notify::new()),
            )
            .unwrap(),
        );
        assert!(conn.wait_synced(Duration::from_secs(20)).await);
        let id = ResourceId::new(resource);
        let events = self.server.list("Event").len();
        let seen = kube_support::eventually(Duration::from_secs(20), || {
            conn.cache().resource(&id).is_some()
                && conn
                    .cache()
                    .resources()
                    .iter()
                    .filter(|r| r.kind == "pod")
                    .map(|r| conn.cache().events(&r.id).len())
                    .sum::<usize>()
                    + conn
                        .cache()
                        .resources()
                        .iter()
                        .filter(|r| r.kind == "deployment")
                        .map(|r| conn.cache().events(&r.id).len())
                        .sum::<usize>()
                    >= events
        })
        .await;
        assert!(seen, "{resource} or its events never reached the fleet");
        let mut registry = Registry::new();
        let connector: Arc<dyn InfraConnector> = conn.clone();
        registry.add(connector);
        // A fresh log per investigation: each reads only its own conclusion.
        let log_dir = tempfile::tempdir_in(self.dir.path()).unwrap().keep();
        let log = EventLog::open(&log_dir.join("log")).unwrap();
        let ctx = AgentContext {
            log: log.clone(),
            registry,
            clock: Arc::new(ManualClock::new(now)),
            playbooks: Arc::new(Library::load(None).unwrap()),
        };
        let job = InvestigationJob {
            investigation: 1,
            incident: 1,
            resource: id.clone(),
            alert: Alert {
                name: alert.into(),
                severity: Severity::Critical,
                resource: id,
                fingerprint: "fp".into(),
                summary: String::new(),
                labels: [("namespace".to_string(), "shop".to_string())].into(),
                status: AlertStatus::Firing,
                source: "test".into(),
            },
            connector: ConnectorId::new("k8s:test"),
            evidence_so_far: 0,
        };
        investigate(ctx, job).await;
        let mut errors = Vec::new();
        for e in log.scan(1) {
            match e.unwrap().kind {
                EventKind::InvestigationConcluded {
                    conclusion,
                    playbook,
                    ..
                } => return (playbook, conclusion),
                EventKind::AgentError { error, .. } => errors.push(error),
                _ => {}
            }
        }
        panic!("the investigation concluded nothing: {errors:?}");
    }
}

fn crash_looping(last_reason: &str, restarts: i64) -> Value {
    json!({"containerStatuses": [{"name": "app", "image": "web", "imageID": "", "ready": false,
        "restartCount": restarts,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": if last_reason == "OOMKilled" { 137 } else { 1 }, "reason": last_reason}}}]})
}

fn pending() -> Value {
    json!({"phase": "Pending", "containerStatuses": null,
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/2 nodes are available: 2 Insufficient memory."}]})
}

fn pod_id(name: &str) -> String {
    format!("k8s/test/shop/pod/{name}")
}

impl Cluster {
    /// Investigates `alert` on `resource` at `now`; the playbook and branch
    /// chosen must be these. Returns the choice.
    async fn expect(
        &self,
        alert: &str,
        resource: &str,
        now: DateTime<Utc>,
        playbook: &str,
        branch: &str,
    ) -> PlaybookChoice {
        let (found, conclusion) = self.investigate(alert, resource, now).await;
        let d = found.unwrap_or_else(|| panic!("no playbook choice: {conclusion}"));
        assert_eq!(
            (d.playbook.as_str(), d.branch.as_str()),
            (playbook, branch),
            "{conclusion}"
        );
        d
    }

    /// A Deployment `web` at `web:1`, rolled to `web:2` when `rolled`, on node-a.
    fn web(&self, rolled: bool) {
        self.server.create(node("node-a"));
        self.server.create(deployment("shop", "web", 2, "web:1"));
        if rolled {
            self.server.update("Deployment", "shop", "web", |d| {
                d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_after_a_new_revision_rolls_back_from_the_replicaset_history() {
    let c = Cluster::start().await;
    c.web(true);
    let rs = c.replicaset("web:2");
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let pod = c.pod_of(&rs, "x1", "web:2", crash_looping("Error", 5));
    let log = "starting web 2.0\nlistening on :8080\npanic: connection reset\n";
    c.server.set_log("shop", &pod, "app", true, log);
    // Twenty minutes after the new ReplicaSet was created.
    let now = Utc::now() + chrono::Duration::minutes(20);
    let d = c
        .expect(
            "KubePodCrashLooping",
            &pod_id(&pod),
            now,
            "pod-crash-loop",
            "after-deploy",
        )
        .await;
    assert_eq!(d.action.name, "rollback_deployment");
    // The same pod seen as a service that went down after a change.
    c.expect(
        "ServiceDown",
        &pod_id(&pod),
        now,
        "service-down",
        "after-change",
    )
    .await;
    // An OOM kill twenty minutes after the new revision: a regression.
    let oom = c.pod_of(&rs, "x2", "web:2", crash_looping("OOMKilled", 2));
    c.server
        .set_log("shop", &oom, "app", true, "allocating cache\n");
    let d = c
        .expect(
            "KubeContainerOOMKilled",
            &pod_id(&oom),
            now,
            "oom-kill",
            "recent-deploy-regression",
        )
        .await;
    assert_eq!(
        d.action.params["reason"],
        "OOMKilled 20 minutes after deploy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_revision_crash_loop_restarts_the_pod_and_a_config_error_does_not() {
    let c = Cluster::start().await;
    c.web(false);
    let rs = c.replicaset("web:1");
    let pod = c.pod_of(&rs, "x1", "web:1", crash_looping("Error", 4));
    let log = "starting web 1.0\nlistening on :8080\npanic: runtime error: index out of range\n";
    c.server.set_log("shop", &pod, "app", true, log);
    // The only revision is three hours old: no deploy explains the loop.
    let now = Utc::now() + chrono::Duration::hours(3);
    let d = c
        .expect(
            "KubePodCrashLooping",
            &pod_id(&pod),
            now,
            "pod-crash-loop",
            "transient",
        )
        .await;
    assert_eq!(d.action.name, "restart_pod");
    assert_eq!(
        d.action.target.as_str(),
        pod_id(&pod),
        "a restart acts on the pod"
    );

    // The previous container's log says its configuration is broken: a
    // restart will not help, and nothing changed to roll back to.
    let log = "starting web 1.0\nError: failed to load config: open /etc/web/config.yaml: no such file or directory\n";
    c.server.set_log("shop", &pod, "app", true, log);
    let found = c
        .investigate("KubePodCrashLooping", &pod_id(&pod), now)
        .await;
    assert!(found.0.is_none(), "{:?}", found.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_killed_pod_gets_a_larger_limit_and_an_orphan_gets_nothing() {
    let c = Cluster::start().await;
    c.web(false);
    let rs = c.replicaset("web:1");
    let pod = c.pod_of(&rs, "x1", "web:1", crash_looping("OOMKilled", 3));
    c.server
        .set_log("shop", &pod, "app", true, "allocating cache\n");
    let now = Utc::now() + chrono::Duration::hours(3);
    let d = c
        .expect(
            "KubeContainerOOMKilled",
            &pod_id(&pod),
            now,
            "oom-kill",
            "raise-limit",
        )
        .await;
    // One figure for every OOM fix (`sizing`): with no observed
    // demand, one 64 MiB step over the 256Mi limit.
    assert_eq!(d.action.params["memory_limit_mib"], "320");
    // The crash-loop alert on the same pod: its health reason is
    // CrashLoopBackOff, and the last termination says OOMKilled.
    let d = c
        .expect(
            "KubePodCrashLooping",
            &pod_id(&pod),
            now,
            "pod-crash-loop",
            "oom-crash-loop",
        )
        .await;
    assert_eq!(
        d.action.params["memory_limit_mib"], "320",
        "the same figure"
    );

    // A pod no Deployment owns: whether a deploy explains the kill cannot be
    // known, so the playbook does not act, and says which facts it lacked.
    let mut orphan = kube_support::pod("shop", "lonely", None, "node-a", "web:1");
    kube_support::merge_patch(&mut orphan["status"], &crash_looping("OOMKilled", 3));
    c.server.create(orphan);
    let (found, conclusion) = c
        .investigate("KubeContainerOOMKilled", &pod_id("lonely"), now)
        .await;
    assert!(found.is_none(), "{found:?}");
    assert!(
        conclusion.contains("oom-kill did not act")
            && conclusion.contains("changes.recent_deploy")
            && conclusion.contains("oom-kill.yaml:")
            // No analyzer's action stands in for the playbook's.
            && conclusion.contains("no automatic action"),
        "{conclusion}"
    );
}

/// A pending pod of the ReplicaSet running `web:1`, with `resources`.
fn pending_pod(c: &Cluster, suffix: &str, resources: Option<Value>) -> String {
    let rs = c.replicaset("web:1");
    let rs_name = rs["metadata"]["name"].as_str().unwrap();
    let name = format!("{rs_name}-{suffix}");
    let mut p = pod("shop", &name, Some(rs_name), "", "web:1");
    p["metadata"]["ownerReferences"][0]["uid"] = rs["metadata"]["uid"].clone();
    p["spec"]["nodeName"] = Value::Null;
    if let Some(r) = resources {
        p["spec"]["containers"][0]["resources"] = r;
    }
    p["status"] = pending();
    c.server.create(p);
    name
}

fn sized_node(name: &str, cpu: &str, memory: &str, cordoned: bool) -> Value {
    let mut n = node(name);
    n["status"]["allocatable"] = json!({"cpu": cpu, "memory": memory, "pods": "110"});
    if cordoned {
        n["spec"]["unschedulable"] = json!(true);
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_pod_whose_request_fits_no_schedulable_node_is_brought_down() {
    let c = Cluster::start().await;
    c.server
        .create(sized_node("node-a", "3920m", "16Gi", false));
    // The biggest node is cordoned: nothing new is scheduled there.
    c.server.create(sized_node("node-b", "15", "64Gi", true));
    c.server.create(deployment("shop", "web", 2, "web:1"));
    let requests =
        json!({"requests": {"memory": "20Gi", "cpu": "500m"}, "limits": {"memory": "20Gi"}});
    let name = pending_pod(&c, "x9", Some(requests));
    let now = Utc::now() + chrono::Duration::hours(3);
    let why = "0/2 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable.";
    c.event(
        "Pod",
        &name,
        "FailedScheduling",
        why,
        now - chrono::Duration::minutes(2),
    );
    let d = c
        .expect(
            "KubePodNotScheduled",
            &pod_id(&name),
            now,
            "pods-pending",
            "request-exceeds-any-node",
        )
        .await;
    assert_eq!(d.action.params["memory_request_mib"], "13107", "16Gi × 0.8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recent_scale_up_beyond_capacity_is_scaled_back() {
    let c = Cluster::start().await;
    c.server
        .create(sized_node("node-a", "3920m", "16Gi", false));
    c.server.create(deployment("shop", "web", 6, "web:1"));
    let name = pending_pod(&c, "x6", None);
    let rs_name = c.replicaset("web:1")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let now = Utc::now() + chrono::Duration::hours(3);
    let scaled = format!("Scaled up replica set {rs_name} to 6 from 2");
    c.event(
        "Deployment",
        "web",
        "ScalingReplicaSet",
        &scaled,
        now - chrono::Duration::minutes(15),
    );
    let d = c
        .expect(
            "KubePodNotScheduled",
            &pod_id(&name),
            now,
            "pods-pending",
            "scaled-beyond-capacity",
        )
        .await;
    assert_eq!(d.action.name, "scale");
    assert_eq!(d.action.params["replicas"], "2");
    assert_eq!(d.action.params["current_replicas"], "6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_whose_new_image_cannot_be_pulled_is_rolled_back() {
    let c = Cluster::start().await;
    c.web(true);
    let rs = c.replicaset("web:2");
    let waiting = json!({"containerStatuses": [{"name": "app", "image": "web:2", "imageID": "",
        "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"web:2\""}}}]});
    let name = c.pod_of(&rs, "x3", "web:2", waiting);
    let now = Utc::now() + chrono::Duration::minutes(10);
    let pulled = "Failed to pull image \"web:2\": rpc error: code = NotFound desc = failed to resolve reference \"docker.io/library/web:2\": not found";
    c.event(
        "Pod",
        &name,
        "Failed",
        pulled,
        now - chrono::Duration::minutes(4),
    );
    c.event(
        "Pod",
        &name,
        "BackOff",
        "Back-off pulling image \"web:2\"",
        now - chrono::Duration::minutes(3),
    );
    let d = c
        .expect(
            "KubeDeploymentRolloutStuck",
            "k8s/test/shop/deployment/web",
            now,
            "deployment-rollout-failed",
            "image-pull",
        )
        .await;
    assert_eq!(d.action.name, "rollback_deployment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_whose_new_pods_cannot_be_scheduled_is_rolled_back() {
    let c = Cluster::start().await;
    c.web(true);
    let rs = c.replicaset("web:2");
    let name = c.pod_of(&rs, "x2", "web:2", pending());
    let now = Utc::now() + chrono::Duration::minutes(30);
    let why = "0/1 nodes are available: 1 Insufficient cpu.";
    c.event(
        "Pod",
        &name,
        "FailedScheduling",
        why,
        now - chrono::Duration::minutes(3),
    );
    let d = c
        .expect(
            "KubeDeploymentRolloutStuck",
            "k8s/test/shop/deployment/web",
            now,
            "deployment-rollout-failed",
            "unschedulable",
        )
        .await;
    assert_eq!(d.action.name, "rollback_deployment");
}

// ------------------------------------------------- Linux and AWS playbooks --

fn resource(provider: Provider, kind: &str, id: &str) -> Resource {
    Resource {
        id: ResourceId::new(id),
        name: id.rsplit('/').next().unwrap().into(),
        kind: kind.into(),
        provider,
        connector: ConnectorId::new("test"),
        environment: Environment::Production,
        team: "web".into(),
        labels: StringMap::new(),
        attributes: StringMap::new(),
        health: Health::healthy(),
        created_at: Utc::now(),
    }
}

/// The choice of the playbook matching `alert` on `r` given what its
/// connector reports (`None` for evidence that could not be read).
fn decide(
    alert: &str,
    r: &Resource,
    health: Health,
    metrics: Option<&[(&str, f64)]>,
    events: Option<&[shieldops::event::InfraEvent]>,
) -> Option<(String, String, String)> {
    decide_among(alert, r, std::slice::from_ref(r), health, metrics, events)
}

/// [`decide`] with the rest of the connector's listing (owner chains).
fn decide_among(
    alert: &str,
    r: &Resource,
    listing: &[Resource],
    health: Health,
    metrics: Option<&[(&str, f64)]>,
    events: Option<&[shieldops::event::InfraEvent]>,
) -> Option<(String, String, String)> {
    let library = Library::load(None).unwrap();
    let a = Alert {
        name: alert.into(),
        severity: Severity::Critical,
        resource: r.id.clone(),
        fingerprint: "fp".into(),
        summary: String::new(),
        labels: BTreeMap::new(),
        status: AlertStatus::Firing,
        source: "test".into(),
    };
    let p = library.matching_resource(&a, r.provider, &r.kind)?;
    let metrics: Option<BTreeMap<String, f64>> =
        metrics.map(|m| m.iter().map(|(k, v)| (k.to_string(), *v)).collect());
    let facts = playbook_facts(&FactInput {
        alert: &a,
        resource: r,
        health: &health,
        listing,
        events,
        changes: events,
        workload_events: events,
        metrics: metrics.as_ref(),
        diagnosis: &[],
        steps: &p.investigate,
        now: Utc::now(),
    });
    let d = p.decide(&facts, &r.id).unwrap()?;
    Some((p.name.clone(), d.branch, d.action.name))
}

fn some(p: &str, b: &str, a: &str) -> Option<(String, String, String)> {
    Some((p.into(), b.into(), a.into()))
}

#[test]
fn linux_playbooks_fire_on_what_the_linux_connector_reports() {
    let host = resource(Provider::Linux, "host", "linux/web-1");
    // The Linux connector's host metrics (`/proc`, the fullest mount).
    let full = [
        ("disk_usage_ratio", 0.93),
        ("inode_usage_ratio", 0.2),
        ("load1", 0.4),
    ];
    let degraded = Health::new(HealthStatus::Degraded, "disk_nearly_full", "/ 93% used");
    assert_eq!(
        decide(
            "HostDiskNearlyFull",
            &host,
            degraded.clone(),
            Some(&full),
            Some(&[])
        ),
        some("host-disk-full", "rotated-logs", "clean_disk")
    );
    // Metrics unreadable (the host did not answer): no action.
    assert_eq!(
        decide("HostDiskNearlyFull", &host, degraded, None, Some(&[])),
        None
    );

    let unit = resource(
        Provider::Linux,
        "service",
        "linux/web-1/service/nginx.service",
    );
    let failed = Health::new(
        HealthStatus::Unhealthy,
        "unit_failed",
        "nginx.service failed",
    );
    // A unit's NRestarts and exit status.
    let once = [("restarts", 1.0), ("active", 0.0), ("exit_status", 1.0)];
    assert_eq!(
        decide(
            "HostServiceFailed",
            &unit,
            failed.clone(),
            Some(&once),
            Some(&[])
        ),
        some("systemd-unit-failed", "crashed", "restart_service")
    );
    assert_eq!(
        decide("ServiceDown", &unit, failed.clone(), Some(&once), Some(&[])),
        some("service-down", "unit-failed", "restart_service")
    );
    // A unit that keeps failing is not restarted again.
    let looping = [("restarts", 7.0), ("active", 0.0)];
    assert_eq!(
        decide(
            "ServiceDown",
            &unit,
            failed.clone(),
            Some(&looping),
            Some(&[])
        ),
        None
    );
    // Without its restart count, whether it loops is unknown: no restart.
    assert_eq!(
        decide("HostServiceFailed", &unit, failed, Some(&[]), Some(&[])),
        None
    );
}

#[test]
fn aws_playbooks_fire_on_what_the_aws_connector_reports() {
    let vm = resource(Provider::Aws, "ec2_instance", "aws/us-east-1/ec2/i-0abc");
    let impaired = Health::new(
        HealthStatus::Unhealthy,
        "instance_status_check",
        "instance reachability check failed",
    );
    assert_eq!(
        decide(
            "EC2StatusCheckFailed",
            &vm,
            impaired,
            Some(&[("status_checks_passed", 0.0)]),
            Some(&[])
        ),
        some("ec2-status-check-failed", "guest-stuck", "reboot_instance")
    );
    let svc = resource(Provider::Aws, "ecs_service", "aws/us-east-1/ecs/prod/api");
    let busy = [("desired_count", 4.0), ("running_count", 4.0)];
    assert_eq!(
        decide(
            "ECSServiceSaturated",
            &svc,
            Health::healthy(),
            Some(&busy),
            Some(&[])
        ),
        some("ecs-service-saturated", "scale-out", "set_desired_count")
    );
    let short = Health::new(
        HealthStatus::Degraded,
        "tasks_below_desired",
        "2 of 4 running",
    );
    assert_eq!(
        decide("ECSServiceUnhealthy", &svc, short, Some(&busy), Some(&[])),
        some(
            "ecs-service-unhealthy",
            "tasks-missing",
            "force_new_deployment"
        )
    );
}

#[test]
fn a_rollout_past_its_progress_deadline_rolls_back_only_to_a_kept_revision() {
    let web = resource(
        Provider::Kubernetes,
        "deployment",
        "k8s/test/shop/deployment/web",
    );
    let revision = |name: &str, rev: &str, hours_ago: i64| {
        let mut rs = resource(
            Provider::Kubernetes,
            "replicaset",
            &format!("k8s/test/shop/replicaset/{name}"),
        );
        rs.attributes.insert("owner".into(), web.id.to_string());
        rs.attributes.insert("revision".into(), rev.into());
        rs.attributes.insert("images".into(), format!("web:{rev}"));
        rs.created_at = Utc::now() - chrono::Duration::hours(hours_ago);
        rs
    };
    // As the deployment analyzer reports a Progressing=False condition.
    let stuck = Health::new(
        HealthStatus::Unhealthy,
        "ProgressDeadlineExceeded",
        "ReplicaSet \"web-2\" has timed out progressing.",
    );
    let kept = [
        web.clone(),
        revision("web-2", "2", 1),
        revision("web-1", "1", 48),
    ];
    assert_eq!(
        decide_among(
            "KubeDeploymentRolloutStuck",
            &web,
            &kept,
            stuck.clone(),
            Some(&[]),
            Some(&[])
        ),
        some(
            "deployment-rollout-failed",
            "progress-deadline",
            "rollback_deployment"
        )
    );
    // The first revision ever: nothing to roll back to, nothing is done.
    let first = [web.clone(), revision("web-1", "1", 1)];
    assert_eq!(
        decide_among(
            "KubeDeploymentRolloutStuck",
            &web,
            &first,
            stuck,
            Some(&[]),
            Some(&[])
        ),
        None
    );
}
