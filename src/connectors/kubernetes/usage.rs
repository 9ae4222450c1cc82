//! Pod and node CPU and memory use from the resource metrics API
//! (`metrics.k8s.io/v1beta1`, served by metrics-server; what `kubectl top`
//! reads), polled — the API has no watch — and written onto the fleet's pods
//! and nodes as `cpu_usage_millicores` and `memory_usage_mib`. When the API is
//! not served (404), not answering (503) or not permitted (403), every pod's
//! and node's usage is unknown with that reason (`usage_unknown`): never zero.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::api::ListParams;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::fleet::FleetCache;
use super::{ids, quantity};
use crate::event::{ResourceId, StringMap};

/// How often usage is read (metrics-server's own resolution is 15–60 s).
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Attribute keys the usage poller owns on pods and nodes.
pub const CPU: &str = "cpu_usage_millicores";
pub const MEMORY: &str = "memory_usage_mib";
pub const UNKNOWN: &str = crate::event::USAGE_UNKNOWN;
/// Every key above: kept when a watch replaces the object, cleared before each write.
pub const KEYS: [&str; 3] = [CPU, MEMORY, UNKNOWN];

const PODS: &str = "/apis/metrics.k8s.io/v1beta1/pods";
const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";

#[derive(Debug, Deserialize)]
struct MetricsList<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    name: String,
    #[serde(default)]
    namespace: String,
}

/// `PodMetrics`: usage per container over the sampling window.
#[derive(Debug, Deserialize)]
struct PodMetrics {
    metadata: Meta,
    #[serde(default)]
    containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Deserialize)]
struct ContainerMetrics {
    #[serde(default)]
    usage: HashMap<String, String>,
}

/// `NodeMetrics`: the node's usage over the sampling window.
#[derive(Debug, Deserialize)]
struct NodeMetrics {
    metadata: Meta,
    #[serde(default)]
    usage: HashMap<String, String>,
}

/// One object's usage, or why it is unknown.
#[derive(Debug, Clone, PartialEq)]
pub enum Usage {
    Known {
        cpu_millicores: f64,
        memory_mib: f64,
    },
    Unknown(String),
}

impl Usage {
    /// The attributes this usage is written as, given the ones written
    /// before: a figure that moved by less than a tenth (or less than one
    /// unit) keeps its old text, so a pod's usage wobbling from minute to
    /// minute does not become an event per pod per minute in the log.
    pub fn attributes(&self, before: &StringMap) -> Vec<(&'static str, String)> {
        match self {
            Usage::Known {
                cpu_millicores,
                memory_mib,
            } => [(CPU, *cpu_millicores), (MEMORY, *memory_mib)]
                .into_iter()
                .map(|(key, v)| match before.get(key) {
                    Some(old) if !moved(old, v) => (key, old.clone()),
                    _ => (key, amount(v)),
                })
                .collect(),
            Usage::Unknown(why) => vec![(UNKNOWN, why.clone())],
        }
    }
}

/// Whether `new` moved from the published figure `old` (see [`crate::event::usage_moved`]).
fn moved(old: &str, new: f64) -> bool {
    old.parse::<f64>()
        .map_or(true, |o| crate::event::usage_moved(o, new))
}

/// To a tenth, without a trailing `.0`.
fn amount(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// CPU and memory summed from a usage map; a missing or malformed quantity is unknown.
fn usage_of<'a>(maps: impl Iterator<Item = &'a HashMap<String, String>>) -> Usage {
    let (mut cpu, mut mem) = (0.0, 0.0);
    let mut any = false;
    for m in maps {
        any = true;
        let (Some(c), Some(b)) = (
            m.get("cpu").and_then(|q| quantity::millicores(q)),
            m.get("memory").and_then(|q| quantity::mib(q)),
        ) else {
            return Usage::Unknown(
                "usage unknown: metrics.k8s.io reported a missing or malformed cpu/memory quantity"
                    .into(),
            );
        };
        cpu += c;
        mem += b;
    }
    if !any {
        return Usage::Unknown("usage unknown: metrics.k8s.io reported no containers".into());
    }
    Usage::Known {
        cpu_millicores: cpu,
        memory_mib: mem,
    }
}

/// Why a failed metrics request leaves usage unknown, and what to do.
pub fn reason(what: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => match s.code {
            404 => "usage unknown: metrics.k8s.io not served (404); install metrics-server".into(),
            503 => format!(
                "usage unknown: metrics.k8s.io unavailable (503): metrics-server is not answering ({})",
                first_line(&s.message)
            ),
            401 | 403 => format!(
                "usage unknown: no permission to list {what}.metrics.k8s.io ({}); grant get/list \
                 on pods.metrics.k8s.io and nodes.metrics.k8s.io",
                s.code
            ),
            code => format!(
                "usage unknown: metrics.k8s.io {what} failed ({code}: {})",
                first_line(&s.message)
            ),
        },
        other => format!(
            "usage unknown: metrics.k8s.io {what} failed ({})",
            first_line(&other.to_string())
        ),
    }
}

fn first_line(s: &str) -> String {
    crate::redact::line(s.lines().next().unwrap_or_default())
        .chars()
        .take(200)
        .collect()
}

async fn list<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
) -> Result<Vec<T>, kube::Error> {
    let request = kube::core::Request::new(path)
        .list(&ListParams::default())
        .map_err(kube::Error::BuildRequest)?;
    Ok(client.request::<MetricsList<T>>(request).await?.items)
}

/// Reads pod and node usage once and writes it onto the cache's pods and nodes.
pub async fn refresh(client: &Client, cache: &FleetCache) {
    let _turn = cache.usage_turn.lock().await;
    let pods: Result<HashMap<ResourceId, Usage>, String> = list::<PodMetrics>(client, PODS)
        .await
        .map(|items| {
            items
                .iter()
                .map(|m| {
                    let id = ids::id(
                        &cache.context,
                        &m.metadata.namespace,
                        "pod",
                        &m.metadata.name,
                    );
                    (id, usage_of(m.containers.iter().map(|c| &c.usage)))
                })
                .collect()
        })
        .map_err(|e| reason("pods", &e));
    let nodes: Result<HashMap<ResourceId, Usage>, String> = list::<NodeMetrics>(client, NODES)
        .await
        .map(|items| {
            items
                .iter()
                .map(|m| {
                    let id = ids::id(&cache.context, "", "node", &m.metadata.name);
                    (id, usage_of(std::iter::once(&m.usage)))
                })
                .collect()
        })
        .map_err(|e| reason("nodes", &e));
    for (kind, found) in [("pod", pods), ("node", nodes)] {
        cache.set_usage(kind, |r| {
            // Only a running pod uses anything; a finished or pending one has no usage to know.
            if kind == "pod" && r.attributes.get("phase").map(String::as_str) != Some("Running") {
                return None;
            }
            Some(match &found {
                Err(why) => Usage::Unknown(why.clone()),
                Ok(map) => map.get(&r.id).cloned().unwrap_or_else(|| {
                    Usage::Unknown(format!(
                        "usage unknown: metrics.k8s.io has no sample for this {kind} yet"
                    ))
                }),
            })
        });
    }
}

/// Reads usage once the first lists are in (or after a while without
/// them), then every [`INTERVAL`] until cancelled.
pub fn spawn_poller(client: Client, cache: Arc<FleetCache>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let synced = async {
            loop {
                let notified = cache.synced_notify.notified();
                if cache.is_synced() {
                    return;
                }
                notified.await;
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = synced => {}
            _ = tokio::time::sleep(INTERVAL) => {}
        }
        loop {
            refresh(&client, &cache).await;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(cpu: &str, mem: &str) -> HashMap<String, String> {
        [("cpu", cpu), ("memory", mem)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn containers_are_summed_from_real_metrics_server_quantities() {
        let a = map("12345678n", "131072Ki");
        let b = map("250m", "0.5Gi");
        assert_eq!(
            usage_of([&a, &b].into_iter()),
            Usage::Known {
                cpu_millicores: 12.345678 + 250.0,
                memory_mib: 128.0 + 512.0
            }
        );
        let attrs = usage_of([&a, &b].into_iter()).attributes(&StringMap::new());
        assert_eq!(attrs, vec![(CPU, "262.3".into()), (MEMORY, "640".into())]);
    }

    #[test]
    fn a_wobble_keeps_the_old_figure_and_a_move_replaces_it() {
        let mut before = StringMap::new();
        before.insert(CPU.into(), "200".into());
        before.insert(MEMORY.into(), "512".into());
        let wobble = Usage::Known {
            cpu_millicores: 215.0,
            memory_mib: 530.0,
        };
        assert_eq!(
            wobble.attributes(&before),
            vec![(CPU, "200".into()), (MEMORY, "512".into())]
        );
        let moved = Usage::Known {
            cpu_millicores: 260.0,
            memory_mib: 530.0,
        };
        assert_eq!(
            moved.attributes(&before),
            vec![(CPU, "260".into()), (MEMORY, "512".into())]
        );
        // Small figures move by more than one unit before they count.
        before.insert(CPU.into(), "2".into());
        let small = Usage::Known {
            cpu_millicores: 2.8,
            memory_mib: 512.0,
        };
        assert_eq!(small.attributes(&before)[0], (CPU, "2".into()));
    }

    #[test]
    fn a_malformed_or_missing_quantity_is_unknown_not_zero() {
        let bad = map("lots", "1Gi");
        assert!(matches!(usage_of([&bad].into_iter()), Usage::Unknown(_)));
        let none: HashMap<String, String> = HashMap::new();
        assert!(matches!(usage_of([&none].into_iter()), Usage::Unknown(_)));
        assert!(matches!(usage_of(std::iter::empty()), Usage::Unknown(_)));
    }

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "Failure")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn each_failure_says_why_and_what_to_do() {
        assert_eq!(
            reason(
                "pods",
                &api(404, "the server could not find the requested resource")
            ),
            "usage unknown: metrics.k8s.io not served (404); install metrics-server"
        );
        assert!(reason("pods", &api(503, "service unavailable")).contains("unavailable (503)"));
        let denied = reason("pods", &api(403, "pods.metrics.k8s.io is forbidden"));
        assert!(
            denied.contains("no permission to list pods.metrics.k8s.io (403)"),
            "{denied}"
        );
        assert!(denied.contains("grant get/list"), "{denied}");
    }
}
