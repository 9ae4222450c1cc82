//! The facts catalogue: every fact a playbook condition or parameter may name,
//! its type, the connectors and resource kinds that produce it, and the
//! evidence it comes from. `shieldops playbook validate` (and every load)
//! rejects a condition that names a fact missing here, a fact that no
//! connector produces for the playbook's `trigger.resources`, or a fact whose
//! evidence the playbook's `investigate` does not gather.
//!
//! A producer listed here is a real connector reading a real source; the demo
//! fleet imitates them but is never counted. A fact a connector cannot observe
//! is absent at run time, and an absent fact is *unknown* (see [`super::expr`]).

use super::model::Evidence;

/// The type of a fact's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactType {
    Bool,
    Number,
    Text,
    /// Text, or a number when the text is one (resource attributes).
    Scalar,
}

impl FactType {
    /// The name used in messages and the README.
    pub fn as_str(self) -> &'static str {
        match self {
            FactType::Bool => "boolean",
            FactType::Number => "number",
            FactType::Text => "text",
            FactType::Scalar => "text or number",
        }
    }
}

/// Which resources a connector produces a fact for: a provider (as in
/// `trigger.resources`, e.g. `kubernetes`) and its kinds (`*`: every kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Producer {
    pub provider: &'static str,
    pub kinds: &'static [&'static str],
}

impl Producer {
    /// Whether this producer covers `provider/kind`.
    pub fn covers(&self, provider: &str, kind: &str) -> bool {
        (self.provider == "*" || self.provider == provider)
            && self.kinds.iter().any(|k| *k == "*" || *k == kind)
    }
}

/// One catalogued fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactSpec {
    /// The dotted name; a name ending in `.*` covers every name below it.
    pub name: &'static str,
    pub ty: FactType,
    /// The investigation step that gathers it; `None`: always known
    /// (the alert, the resource as discovered, and its health).
    pub evidence: Option<Evidence>,
    pub producers: &'static [Producer],
    /// Where the value comes from, in the source system's own terms.
    pub source: &'static str,
}

impl FactSpec {
    /// Whether `name` is this fact (or below its `.*` prefix).
    pub fn names(&self, name: &str) -> bool {
        match self.name.strip_suffix(".*") {
            Some(prefix) => name
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1),
            None => self.name == name,
        }
    }

    /// Whether some producer covers `provider/kind`.
    pub fn produced_for(&self, provider: &str, kind: &str) -> bool {
        self.producers.iter().any(|p| p.covers(provider, kind))
    }
}

const ANY: &[Producer] = &[Producer {
    provider: "*",
    kinds: &["*"],
}];
const K8S_WORKLOAD_CHAIN: &[Producer] = &[Producer {
    provider: "kubernetes",
    kinds: &["pod", "deployment"],
}];
const K8S_POD: &[Producer] = &[Producer {
    provider: "kubernetes",
    kinds: &["pod"],
}];
const RESTARTS: &[Producer] = &[
    Producer {
        provider: "kubernetes",
        kinds: &["pod"],
    },
    Producer {
        provider: "linux",
        kinds: &["service"],
    },
];
const LINUX_HOST: &[Producer] = &[Producer {
    provider: "linux",
    kinds: &["host"],
}];
const LINUX_SERVICE: &[Producer] = &[Producer {
    provider: "linux",
    kinds: &["service"],
}];
const ECS_SERVICE: &[Producer] = &[Producer {
    provider: "aws",
    kinds: &["ecs_service"],
}];
/// What the `[prometheus]` queries are written for (`connectors::prometheus::queries`).
const PROM_POD: &[Producer] = K8S_POD;
const PROM_SERVICE: &[Producer] = &[
    Producer {
        provider: "kubernetes",
        kinds: &["deployment", "replicaset", "statefulset", "daemonset"],
    },
    Producer {
        provider: "linux",
        kinds: &["service"],
    },
];
const PROM_HOST: &[Producer] = &[
    Producer {
        provider: "kubernetes",
        kinds: &["node"],
    },
    Producer {
        provider: "linux",
        kinds: &["host"],
    },
];
const CREDENTIAL: &[Producer] = &[
    Producer {
        provider: "vault",
        kinds: &["credential"],
    },
    Producer {
        provider: "aws",
        kinds: &["credential"],
    },
];

const fn fact(
    name: &'static str,
    ty: FactType,
    evidence: Option<Evidence>,
    producers: &'static [Producer],
    source: &'static str,
) -> FactSpec {
    FactSpec {
        name,
        ty,
        evidence,
        producers,
        source,
    }
}

use Evidence::{Changes, Events, Logs, Metrics, Prometheus};
use FactType::{Bool, Number, Scalar, Text};

/// Every fact, in the order the README lists them.
pub const CATALOGUE: &[FactSpec] = &[
    fact("alert.name", Text, None, ANY, "the firing alert's name"),
    fact(
        "alert.severity",
        Text,
        None,
        ANY,
        "the firing alert's severity",
    ),
    fact(
        "alert.labels.*",
        Text,
        None,
        ANY,
        "the firing alert's labels",
    ),
    fact("resource.id", Text, None, ANY, "the resource as discovered"),
    fact(
        "resource.kind",
        Text,
        None,
        ANY,
        "the resource as discovered",
    ),
    fact(
        "resource.environment",
        Text,
        None,
        ANY,
        "the resource as discovered",
    ),
    fact(
        "resource.team",
        Text,
        None,
        ANY,
        "the resource as discovered",
    ),
    fact(
        "resource.labels.*",
        Text,
        None,
        ANY,
        "the resource's labels (Kubernetes labels, AWS tags)",
    ),
    fact(
        "resource.attributes.*",
        Scalar,
        None,
        ANY,
        "the resource's attributes as its connector reports them",
    ),
    fact(
        "health.status",
        Text,
        None,
        ANY,
        "the connector's live health judgement",
    ),
    fact(
        "health.reason",
        Text,
        None,
        ANY,
        "the connector's live health reason (e.g. OOMKilled, unit_failed)",
    ),
    fact(
        "health.message",
        Text,
        None,
        ANY,
        "the connector's live health message",
    ),
    fact(
        "health.last_termination_reason",
        Text,
        None,
        K8S_POD,
        "containerStatuses[].lastState.terminated.reason (OOMKilled when any container was; `none` when none terminated)",
    ),
    fact(
        "events.count",
        Number,
        Some(Events),
        ANY,
        "non-change events about the resource in the step's window",
    ),
    fact(
        "events.failed_scheduling",
        Number,
        Some(Events),
        K8S_WORKLOAD_CHAIN,
        "Kubernetes events with reason FailedScheduling in the window: the pod's own, or a deployment's pods'",
    ),
    fact(
        "events.image_pull_failures",
        Number,
        Some(Events),
        K8S_WORKLOAD_CHAIN,
        "kubelet events in the window saying an image cannot be pulled (Failed to pull image, Back-off pulling image, ErrImagePull): the pod's own, or a deployment's current pods'",
    ),
    fact(
        "events.restarts",
        Number,
        Some(Events),
        RESTARTS,
        "a pod's containers' restartCount summed; a systemd unit's NRestarts",
    ),
    fact(
        "changes.count",
        Number,
        Some(Changes),
        ANY,
        "change events about the resource and its owner in the step's window",
    ),
    fact(
        "changes.recent_deploy",
        Bool,
        Some(Changes),
        K8S_WORKLOAD_CHAIN,
        "the owning Deployment's newest ReplicaSet (highest deployment.kubernetes.io/revision) was created within the step's window",
    ),
    fact(
        "changes.minutes_since_deploy",
        Number,
        Some(Changes),
        K8S_WORKLOAD_CHAIN,
        "minutes since the newest ReplicaSet's creationTimestamp",
    ),
    fact(
        "changes.previous_revision_available",
        Bool,
        Some(Changes),
        K8S_WORKLOAD_CHAIN,
        "the Deployment still keeps a ReplicaSet of an older revision (what `kubectl rollout undo` needs)",
    ),
    fact(
        "changes.recent_config_change",
        Bool,
        Some(Changes),
        K8S_WORKLOAD_CHAIN,
        "a recent deploy whose containers' images equal the previous revision's (the pod template changed, not the image)",
    ),
    fact(
        "changes.recent_scale_up",
        Bool,
        Some(Changes),
        K8S_WORKLOAD_CHAIN,
        "the Deployment's ScalingReplicaSet event `Scaled up replica set … to N from M` (M > 0) in the window, with no new revision",
    ),
    fact(
        "changes.previous_replicas",
        Number,
        Some(Changes),
        K8S_WORKLOAD_CHAIN,
        "M of the earliest such scale-up in the window",
    ),
    fact(
        "metrics.replicas",
        Number,
        Some(Metrics),
        &[Producer {
            provider: "kubernetes",
            kinds: &["pod", "deployment", "replicaset", "statefulset"],
        }],
        "spec.replicas of the workload (a pod's: its Deployment's)",
    ),
    fact(
        "metrics.ready",
        Number,
        Some(Metrics),
        &[Producer {
            provider: "kubernetes",
            kinds: &["deployment"],
        }],
        "status.readyReplicas",
    ),
    fact(
        "metrics.restarts",
        Number,
        Some(Metrics),
        RESTARTS,
        "a pod's restartCount summed; a systemd unit's NRestarts",
    ),
    fact(
        "metrics.memory_limit_mib",
        Number,
        Some(Metrics),
        K8S_POD,
        "the first container's resources.limits.memory",
    ),
    fact(
        "metrics.memory_limit_proposed_mib",
        Number,
        Some(Metrics),
        K8S_POD,
        "the limit an OOM fix raises to: observed demand + 25% in 64 MiB steps, at least one step over the current limit (sizing)",
    ),
    fact(
        "metrics.memory_request_mib",
        Number,
        Some(Metrics),
        K8S_POD,
        "the containers' resources.requests.memory summed",
    ),
    fact(
        "metrics.cpu_request_millicores",
        Number,
        Some(Metrics),
        K8S_POD,
        "the containers' resources.requests.cpu summed",
    ),
    fact(
        "metrics.largest_node_allocatable_memory_mib",
        Number,
        Some(Metrics),
        K8S_POD,
        "the largest status.allocatable.memory among the cluster's schedulable nodes",
    ),
    fact(
        "metrics.largest_node_allocatable_cpu_millicores",
        Number,
        Some(Metrics),
        K8S_POD,
        "the largest status.allocatable.cpu among the cluster's schedulable nodes",
    ),
    fact(
        "metrics.status_checks_passed",
        Number,
        Some(Metrics),
        &[Producer {
            provider: "aws",
            kinds: &["ec2_instance"],
        }],
        "1 when EC2 instance and system status checks pass, else 0",
    ),
    fact(
        "metrics.desired_count",
        Number,
        Some(Metrics),
        ECS_SERVICE,
        "the ECS service's desiredCount",
    ),
    fact(
        "metrics.running_count",
        Number,
        Some(Metrics),
        ECS_SERVICE,
        "the ECS service's runningCount",
    ),
    fact(
        "metrics.cpus",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "/proc/cpuinfo",
    ),
    fact(
        "metrics.load1",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "/proc/loadavg",
    ),
    fact(
        "metrics.load5",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "/proc/loadavg",
    ),
    fact(
        "metrics.load15",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "/proc/loadavg",
    ),
    fact(
        "metrics.load_per_cpu",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "load1 / cpus",
    ),
    fact(
        "metrics.memory_usage_ratio",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "/proc/meminfo: 1 - MemAvailable / MemTotal",
    ),
    fact(
        "metrics.memory_available_mib",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "/proc/meminfo MemAvailable",
    ),
    fact(
        "metrics.swap_usage_ratio",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "/proc/meminfo swap",
    ),
    fact(
        "metrics.disk_usage_ratio",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "the fullest mount's used / size",
    ),
    fact(
        "metrics.inode_usage_ratio",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "the fullest mount's used / total inodes",
    ),
    fact(
        "metrics.uptime_secs",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "/proc/uptime",
    ),
    fact(
        "metrics.clock_skew_secs",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "the host's clock against the console's",
    ),
    fact(
        "metrics.failed_units",
        Number,
        Some(Metrics),
        LINUX_HOST,
        "systemd units in state failed",
    ),
    fact(
        "metrics.active",
        Number,
        Some(Metrics),
        LINUX_SERVICE,
        "1 when the unit is active, else 0",
    ),
    fact(
        "metrics.exit_status",
        Number,
        Some(Metrics),
        LINUX_SERVICE,
        "the unit's last ExecMainStatus",
    ),
    fact(
        "metrics.days_left",
        Number,
        Some(Metrics),
        CREDENTIAL,
        "days until the stored secret's expiry",
    ),
    fact(
        "metrics.age_days",
        Number,
        Some(Metrics),
        CREDENTIAL,
        "days since the secret's last rotation",
    ),
    fact(
        "metrics.lease_ttl_secs",
        Number,
        Some(Metrics),
        CREDENTIAL,
        "the secret's lease TTL",
    ),
    fact(
        "prometheus.memory_working_set_ratio",
        Number,
        Some(Prometheus),
        PROM_POD,
        "PromQL (cAdvisor): peak container_memory_working_set_bytes over the window / container_spec_memory_limit_bytes, the highest container",
    ),
    fact(
        "prometheus.cpu_throttle_ratio",
        Number,
        Some(Prometheus),
        PROM_POD,
        "PromQL (cAdvisor): increase of container_cpu_cfs_throttled_periods_total / of container_cpu_cfs_periods_total over the window",
    ),
    fact(
        "prometheus.restarts",
        Number,
        Some(Prometheus),
        PROM_POD,
        "PromQL (kube-state-metrics): increase of kube_pod_container_status_restarts_total over the window",
    ),
    fact(
        "prometheus.latency_p99_seconds",
        Number,
        Some(Prometheus),
        PROM_SERVICE,
        "PromQL: histogram_quantile(0.99) of http_request_duration_seconds_bucket{service} over the window",
    ),
    fact(
        "prometheus.error_ratio",
        Number,
        Some(Prometheus),
        PROM_SERVICE,
        "PromQL: rate of http_requests_total{service, code=~\"5..\"} / rate of all its requests over the window",
    ),
    fact(
        "prometheus.filesystem_free_ratio",
        Number,
        Some(Prometheus),
        PROM_HOST,
        "PromQL (node exporter): the lowest node_filesystem_avail_bytes / node_filesystem_size_bytes of the host's real filesystems",
    ),
    fact(
        "prometheus.load_per_cpu",
        Number,
        Some(Prometheus),
        PROM_HOST,
        "PromQL (node exporter): node_load1 / the host's CPUs",
    ),
    fact(
        "logs.lines",
        Number,
        Some(Logs),
        K8S_POD,
        "lines read of the previous (restarted) container's log, bounded and redacted",
    ),
    fact(
        "logs.config_error",
        Bool,
        Some(Logs),
        K8S_POD,
        "a line of the previous container's redacted log reports a configuration error (see `config_error_line`)",
    ),
    fact(
        "logs.grep_matches",
        Number,
        Some(Logs),
        K8S_POD,
        "log lines containing the logs step's `grep` text (known only when it has one)",
    ),
];

/// The catalogue as the Markdown table `playbooks/README.md` carries.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| fact | type | step | produced for | from |\n|---|---|---|---|---|\n");
    for f in CATALOGUE {
        let producers: Vec<String> = f
            .producers
            .iter()
            .map(|p| {
                if p.provider == "*" {
                    "any".to_string()
                } else {
                    format!("{}/{}", p.provider, p.kinds.join(","))
                }
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            f.name,
            f.ty.as_str(),
            f.evidence.map(|e| e.as_str()).unwrap_or("always"),
            producers.join("; "),
            f.source.replace('|', "\\|")
        ));
    }
    out
}

/// The catalogued fact `name` is, if any.
pub fn lookup(name: &str) -> Option<&'static FactSpec> {
    CATALOGUE.iter().find(|f| f.names(name))
}

/// The providers that may appear in `trigger.resources`.
pub const PROVIDERS: &[&str] = &["kubernetes", "aws", "linux", "vault"];

/// Whether a log line reports a configuration error: the wording of common
/// runtimes and frameworks when a configuration file or setting is missing
/// or invalid. A match proves only that the line says so.
pub fn config_error_line(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "config error",
        "configuration error",
        "invalid config",
        "invalid configuration",
        "failed to load config",
        "failed to load configuration",
        "failed to parse config",
        "error parsing config",
        "error loading config",
        "could not load config",
        "missing required config",
        "missing required environment variable",
        "config file not found",
        "configuration file not found",
        "no such file or directory: '/etc/",
    ]
    .iter()
    .any(|p| l.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_names_below_them_only() {
        assert_eq!(
            lookup("alert.labels.namespace").unwrap().name,
            "alert.labels.*"
        );
        assert!(lookup("alert.labels").is_none());
        assert!(lookup("alert.labels.").is_none());
        assert!(lookup("metrics.cpu_throttle_ratio").is_none());
        assert!(
            lookup("changes.recent_deploy")
                .unwrap()
                .produced_for("kubernetes", "pod")
        );
        assert!(
            !lookup("changes.recent_deploy")
                .unwrap()
                .produced_for("linux", "host")
        );
        assert!(
            lookup("events.count")
                .unwrap()
                .produced_for("aws", "ec2_instance")
        );
    }

    #[test]
    fn every_name_is_catalogued_once() {
        for (i, f) in CATALOGUE.iter().enumerate() {
            assert!(
                !CATALOGUE[..i].iter().any(|g| g.name == f.name),
                "{} twice",
                f.name
            );
            assert!(!f.producers.is_empty(), "{} has no producer", f.name);
        }
    }

    #[test]
    fn the_playbooks_readme_lists_the_catalogue_as_it_is() {
        let readme = include_str!("../../playbooks/README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "playbooks/README.md must carry the catalogue table exactly:\n{table}"
        );
    }

    #[test]
    fn config_errors_are_recognised_in_real_wording() {
        assert!(config_error_line(
            "[app] Error: failed to load config: yaml: line 3: mapping values are not allowed"
        ));
        assert!(config_error_line(
            "[api] FATAL Missing required environment variable DATABASE_URL"
        ));
        assert!(!config_error_line("[api] GET /config 200 3ms"));
        assert!(!config_error_line("[api] listening on :8080"));
    }
}
