//! The PromQL an investigation runs, per kind of resource, in one place.
//! Each query gives one number, recorded as evidence and as the playbook fact
//! `prometheus.<name>` (catalogued in `crate::playbook::catalogue`). A site
//! may replace a query's text in `[prometheus.queries.<kind>]`, never add
//! names: a playbook can only decide on facts the catalogue knows.
//!
//! Placeholders: `{namespace}`, `{pod}`, `{service}`, `{host}` come from the
//! resource (escaped, see [`super::promql`]); `{window}` is the playbook
//! step's look-back window (`60m`).

use std::collections::BTreeMap;

use crate::event::{Provider, Resource};

/// A kind of resource the queries are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// A Kubernetes pod (cAdvisor and kube-state-metrics series).
    Pod,
    /// A service answering requests (a Deployment, a systemd service).
    Service,
    /// A machine (node exporter series).
    Host,
}

/// The kinds' names in `[prometheus.queries.<kind>]`.
pub const KINDS: &[&str] = &["pod", "service", "host"];

impl QueryKind {
    /// The name in config.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryKind::Pod => "pod",
            QueryKind::Service => "service",
            QueryKind::Host => "host",
        }
    }

    /// The placeholders a query of this kind may use.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            QueryKind::Pod => &["namespace", "pod", "window"],
            QueryKind::Service => &["namespace", "service", "window"],
            QueryKind::Host => &["host", "window"],
        }
    }

    /// The kind of `resource`, and its placeholder values (without `window`).
    pub fn of(resource: &Resource) -> Option<(QueryKind, BTreeMap<&'static str, String>)> {
        let attr = |k: &str| resource.attributes.get(k).cloned().unwrap_or_default();
        match (resource.provider, resource.kind.as_str()) {
            (Provider::Kubernetes, "pod") => Some((
                QueryKind::Pod,
                [
                    ("namespace", attr("namespace")),
                    ("pod", resource.name.clone()),
                ]
                .into(),
            )),
            (Provider::Kubernetes, "deployment" | "replicaset" | "statefulset" | "daemonset") => {
                Some((
                    QueryKind::Service,
                    [
                        ("namespace", attr("namespace")),
                        ("service", resource.name.clone()),
                    ]
                    .into(),
                ))
            }
            (Provider::Linux, "service") => {
                // The unit as systemd names it (`nginx.service` → `nginx`).
                let unit = resource
                    .attributes
                    .get("unit")
                    .map(String::as_str)
                    .unwrap_or(resource.name.as_str());
                let unit = unit.strip_suffix(".service").unwrap_or(unit);
                Some((
                    QueryKind::Service,
                    [("namespace", String::new()), ("service", unit.to_string())].into(),
                ))
            }
            (Provider::Linux, "host") | (Provider::Kubernetes, "node") => {
                Some((QueryKind::Host, [("host", resource.name.clone())].into()))
            }
            _ => None,
        }
    }
}

/// One default query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuerySpec {
    pub kind: QueryKind,
    /// The fact is `prometheus.<name>`.
    pub name: &'static str,
    pub promql: &'static str,
    /// What the number means, for the evidence line.
    pub meaning: &'static str,
}

/// Every default query.
pub const DEFAULTS: &[QuerySpec] = &[
    QuerySpec {
        kind: QueryKind::Pod,
        name: "memory_working_set_ratio",
        promql: concat!(
            r#"max(max_over_time(container_memory_working_set_bytes{namespace="{namespace}",pod="{pod}",container!="",container!="POD"}[{window}])"#,
            r#" / on(namespace, pod, container) (container_spec_memory_limit_bytes{namespace="{namespace}",pod="{pod}",container!="",container!="POD"} > 0))"#
        ),
        meaning: "peak working-set memory of a container against its limit",
    },
    QuerySpec {
        kind: QueryKind::Pod,
        name: "cpu_throttle_ratio",
        promql: concat!(
            r#"sum(increase(container_cpu_cfs_throttled_periods_total{namespace="{namespace}",pod="{pod}",container!=""}[{window}]))"#,
            r#" / sum(increase(container_cpu_cfs_periods_total{namespace="{namespace}",pod="{pod}",container!=""}[{window}]))"#
        ),
        meaning: "share of CFS periods in which the pod's containers were throttled",
    },
    QuerySpec {
        kind: QueryKind::Pod,
        name: "restarts",
        promql: r#"sum(increase(kube_pod_container_status_restarts_total{namespace="{namespace}",pod="{pod}"}[{window}]))"#,
        meaning: "container restarts in the window (kube-state-metrics)",
    },
    QuerySpec {
        kind: QueryKind::Service,
        name: "latency_p99_seconds",
        promql: r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{namespace}",service="{service}"}[{window}])))"#,
        meaning: "99th percentile request latency in seconds",
    },
    QuerySpec {
        kind: QueryKind::Service,
        name: "error_ratio",
        // No 5xx series at all is no error (0); no request at all is unknown.
        promql: concat!(
            r#"(sum(rate(http_requests_total{namespace="{namespace}",service="{service}",code=~"5.."}[{window}])) or vector(0))"#,
            r#" / sum(rate(http_requests_total{namespace="{namespace}",service="{service}"}[{window}]))"#
        ),
        meaning: "share of requests answered with a 5xx status",
    },
    QuerySpec {
        kind: QueryKind::Host,
        name: "filesystem_free_ratio",
        promql: concat!(
            r#"min(node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.*"}"#,
            r#" / (node_filesystem_size_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.*"} > 0)"#,
            r#" * on(instance) group_left() node_uname_info{nodename="{host}"})"#
        ),
        meaning: "free space of the host's fullest filesystem (node exporter)",
    },
    QuerySpec {
        kind: QueryKind::Host,
        name: "load_per_cpu",
        promql: concat!(
            r#"max(node_load1 / on(instance) count by (instance) (node_cpu_seconds_total{mode="idle"})"#,
            r#" * on(instance) group_left() node_uname_info{nodename="{host}"})"#
        ),
        meaning: "1-minute load average per CPU (node exporter)",
    },
];

/// The default queries of a kind named in config.
pub fn defaults(kind: &str) -> Option<Vec<&'static QuerySpec>> {
    KINDS.contains(&kind).then(|| {
        DEFAULTS
            .iter()
            .filter(|q| q.kind.as_str() == kind)
            .collect()
    })
}

/// One query to run: its name, its meaning and its text with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub name: &'static str,
    pub meaning: &'static str,
    pub template: String,
}

/// The queries for `kind`, with the site's overrides applied.
pub fn plan(
    kind: QueryKind,
    overrides: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<Planned> {
    let site = overrides.get(kind.as_str());
    DEFAULTS
        .iter()
        .filter(|q| q.kind == kind)
        .map(|q| Planned {
            name: q.name,
            meaning: q.meaning,
            template: site
                .and_then(|s| s.get(q.name))
                .cloned()
                .unwrap_or_else(|| q.promql.to_string()),
        })
        .collect()
}

/// `60m`, `90s`: a PromQL duration for a look-back window.
pub fn duration(window: chrono::Duration) -> String {
    let secs = window.num_seconds().max(1);
    if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_balanced_and_uses_only_its_kinds_placeholders() {
        for q in DEFAULTS {
            super::super::promql::check(q.promql).unwrap_or_else(|e| panic!("{}: {e}", q.name));
            for p in super::super::promql::placeholders(q.promql) {
                assert!(
                    q.kind.placeholders().contains(&p.as_str()),
                    "{}: {p}",
                    q.name
                );
            }
        }
        assert!(
            DEFAULTS
                .iter()
                .filter(|q| q.kind == QueryKind::Pod)
                .all(|q| q.promql.contains(r#"namespace="{namespace}",pod="{pod}""#))
        );
    }

    #[test]
    fn placeholders_come_from_the_resource_as_its_connector_lists_it() {
        let mut r = Resource {
            id: crate::event::ResourceId::new("linux/[::1]/service/nginx.service"),
            name: "[::1]:nginx.service".into(),
            kind: "service".into(),
            provider: Provider::Linux,
            connector: crate::event::ConnectorId::new("linux"),
            environment: crate::event::Environment::Production,
            team: "web".into(),
            labels: Default::default(),
            attributes: [("unit".to_string(), "nginx.service".to_string())].into(),
            health: crate::event::Health::healthy(),
            created_at: chrono::Utc::now(),
        };
        let (kind, values) = QueryKind::of(&r).unwrap();
        assert_eq!(kind, QueryKind::Service);
        assert_eq!(values["service"], "nginx");
        assert_eq!(values["namespace"], "");
        r.provider = Provider::Kubernetes;
        r.kind = "pod".into();
        r.name = "web-1".into();
        r.attributes = [("namespace".to_string(), "shop".to_string())].into();
        let (kind, values) = QueryKind::of(&r).unwrap();
        assert_eq!(kind, QueryKind::Pod);
        assert_eq!(
            (values["namespace"].as_str(), values["pod"].as_str()),
            ("shop", "web-1")
        );
        r.provider = Provider::Aws;
        r.kind = "ec2_instance".into();
        assert!(QueryKind::of(&r).is_none());
    }

    #[test]
    fn overrides_replace_by_name() {
        let o: BTreeMap<String, BTreeMap<String, String>> = [(
            "pod".to_string(),
            [("restarts".to_string(), "x".to_string())].into(),
        )]
        .into();
        let p = plan(QueryKind::Pod, &o);
        assert_eq!(
            p.iter().find(|q| q.name == "restarts").unwrap().template,
            "x"
        );
        assert!(
            p.iter()
                .find(|q| q.name == "cpu_throttle_ratio")
                .unwrap()
                .template
                .contains("cfs")
        );
        assert_eq!(duration(chrono::Duration::minutes(60)), "60m");
        assert_eq!(duration(chrono::Duration::seconds(90)), "90s");
    }
}
