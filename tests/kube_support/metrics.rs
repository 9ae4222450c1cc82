//! The resource metrics API as metrics-server serves it through the
//! aggregator: `metrics.k8s.io/v1beta1` discovery, and list/get of
//! `PodMetrics` (all namespaces, one namespace, one pod) and `NodeMetrics`,
//! with quantities in the forms metrics-server writes (`12345678n`,
//! `131072Ki`). The failure shapes a console meets are served too: the group
//! not registered (404), registered but metrics-server down (503, the
//! aggregator's plain-text answer), and RBAC refusing the list (403 Status).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::{Reply, error, matches_selectors, reply, status_body};

/// Every metrics path starts so.
pub const PREFIX: &str = "/apis/metrics.k8s.io";
const GV: &str = "metrics.k8s.io/v1beta1";
/// When metrics-server took the samples, and over how long.
const TIMESTAMP: &str = "2026-01-07T10:00:00Z";
const WINDOW: &str = "15.012s";

/// How the double serves `metrics.k8s.io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsMode {
    /// metrics-server installed and answering.
    #[default]
    Served,
    /// No APIService for the group: it is absent from discovery; paths 404.
    NotServed,
    /// The APIService exists but metrics-server does not answer: 503.
    Unavailable,
    /// Served, but the caller may not list it: 403.
    Forbidden,
}

/// A container's name, CPU and memory quantities.
type Container = (String, String, String);

/// Stored samples.
#[derive(Debug, Default)]
pub struct Metrics {
    pub mode: MetricsMode,
    /// (namespace, name) → containers.
    pods: BTreeMap<(String, String), Vec<Container>>,
    /// name → (cpu, memory).
    nodes: BTreeMap<String, (String, String)>,
}

impl Metrics {
    pub fn set_pod(&mut self, ns: &str, name: &str, containers: &[(&str, &str, &str)]) {
        self.pods.insert(
            (ns.into(), name.into()),
            containers
                .iter()
                .map(|(c, cpu, mem)| (c.to_string(), cpu.to_string(), mem.to_string()))
                .collect(),
        );
    }

    pub fn set_node(&mut self, name: &str, cpu: &str, memory: &str) {
        self.nodes
            .insert(name.into(), (cpu.to_string(), memory.to_string()));
    }

    /// Adds the group to `/apis` unless it is not registered.
    pub fn add_group(&self, groups: &mut Value) {
        if self.mode == MetricsMode::NotServed {
            return;
        }
        let v = json!({"groupVersion": GV, "version": "v1beta1"});
        if let Some(list) = groups["groups"].as_array_mut() {
            list.push(
                json!({"name": "metrics.k8s.io", "versions": [v.clone()], "preferredVersion": v}),
            );
        }
    }

    pub fn handle(&self, path: &str, query: &HashMap<String, String>) -> Reply {
        let not_found = || error(404, "the server could not find the requested resource");
        match self.mode {
            MetricsMode::NotServed => return not_found(),
            // kube-aggregator's answer when the backing service is down.
            MetricsMode::Unavailable => {
                return (
                    503,
                    "text/plain; charset=utf-8",
                    b"service unavailable\n".to_vec(),
                );
            }
            _ => {}
        }
        let rest = path[PREFIX.len()..].trim_matches('/');
        let segs: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let group = json!({"kind": "APIGroup", "apiVersion": "v1", "name": "metrics.k8s.io",
            "versions": [{"groupVersion": GV, "version": "v1beta1"}],
            "preferredVersion": {"groupVersion": GV, "version": "v1beta1"}});
        let (kind, ns, name) = match segs.as_slice() {
            [] => return reply(200, &group),
            ["v1beta1"] => return reply(200, &resource_list()),
            ["v1beta1", "pods"] => ("pods", None, None),
            ["v1beta1", "namespaces", ns, "pods"] => ("pods", Some(*ns), None),
            ["v1beta1", "namespaces", ns, "pods", name] => ("pods", Some(*ns), Some(*name)),
            ["v1beta1", "nodes"] => ("nodes", None, None),
            ["v1beta1", "nodes", name] => ("nodes", None, Some(*name)),
            _ => return not_found(),
        };
        if self.mode == MetricsMode::Forbidden {
            let scope = match ns {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".into(),
            };
            let message = format!(
                "{kind}.metrics.k8s.io is forbidden: User \"system:serviceaccount:ops:shieldops\" \
                 cannot list resource \"{kind}\" in API group \"metrics.k8s.io\" {scope}"
            );
            let mut body = status_body(403, "Forbidden", &message);
            body["details"] = json!({"group": "metrics.k8s.io", "kind": kind});
            return reply(403, &body);
        }
        let items: Vec<Value> = if kind == "pods" {
            self.pods
                .iter()
                .filter(|((p_ns, p_name), _)| {
                    ns.is_none_or(|n| n == p_ns) && name.is_none_or(|n| n == p_name)
                })
                .map(|((p_ns, p_name), cs)| pod_metrics(p_ns, p_name, cs))
                .collect()
        } else {
            self.nodes
                .iter()
                .filter(|(n, _)| name.is_none_or(|want| want == n.as_str()))
                .map(|(n, (cpu, mem))| node_metrics(n, cpu, mem))
                .collect()
        };
        let items: Vec<Value> = items
            .into_iter()
            .filter(|o| matches_selectors(o, query))
            .collect();
        match name {
            Some(name) => match items.into_iter().next() {
                Some(mut one) => {
                    let k = if kind == "pods" {
                        "PodMetrics"
                    } else {
                        "NodeMetrics"
                    };
                    one["kind"] = json!(k);
                    one["apiVersion"] = json!(GV);
                    reply(200, &one)
                }
                None => error(404, &format!("{kind}.metrics.k8s.io \"{name}\" not found")),
            },
            None => {
                let k = if kind == "pods" {
                    "PodMetricsList"
                } else {
                    "NodeMetricsList"
                };
                reply(
                    200,
                    &json!({"kind": k, "apiVersion": GV,
                    "metadata": {"resourceVersion": ""}, "items": items}),
                )
            }
        }
    }
}

fn resource_list() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV, "resources": [
        {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
    ]})
}

fn pod_metrics(ns: &str, name: &str, containers: &[Container]) -> Value {
    let cs: Vec<Value> = containers
        .iter()
        .map(|(c, cpu, mem)| json!({"name": c, "usage": {"cpu": cpu, "memory": mem}}))
        .collect();
    json!({"metadata": {"name": name, "namespace": ns, "creationTimestamp": TIMESTAMP},
        "timestamp": TIMESTAMP, "window": WINDOW, "containers": cs})
}

fn node_metrics(name: &str, cpu: &str, memory: &str) -> Value {
    json!({"metadata": {"name": name, "creationTimestamp": TIMESTAMP,
            "labels": {"kubernetes.io/hostname": name}},
        "timestamp": TIMESTAMP, "window": WINDOW, "usage": {"cpu": cpu, "memory": memory}})
}
