//! What the fleet costs per hour, from the price table and the resource model:
//! instances at their list price, Kubernetes nodes split between their pods
//! (see [`super::allocation`]) with the rest as the node's idle cost. Pure:
//! the same resources and prices always give the same figures.

use std::collections::BTreeMap;

use super::allocation::{self, Allocation, Node, Pod, UnitPrices};
use super::pricing::{PriceTable, region_of};
use crate::event::{Environment, Resource, ResourceId};

/// What one costed item costs per hour, and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct CostItem {
    pub resource: ResourceId,
    pub service: String,
    pub team: String,
    pub environment: Environment,
    pub usd_per_hour: f64,
}

/// The fleet's hourly cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetCost {
    /// One item per instance, per workload (its pods summed) and per node (its idle cost).
    pub items: Vec<CostItem>,
    /// Kubernetes allocation per cluster context.
    pub clusters: BTreeMap<String, Allocation>,
    /// Unit prices per node id, for rightsizing workloads on them.
    pub node_prices: BTreeMap<String, UnitPrices>,
    /// Resources that should be priced but could not be, with why.
    pub unpriced: Vec<(ResourceId, String)>,
}

fn num(r: &Resource, key: &str) -> Option<f64> {
    r.attributes
        .get(key)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// The workload a pod belongs to: its `owner` attribute, else itself.
pub fn owner_of(pod: &Resource) -> ResourceId {
    pod.attributes
        .get("owner")
        .map(|o| ResourceId::new(o.clone()))
        .unwrap_or_else(|| pod.id.clone())
}

/// The key nodes and pods are matched on: cluster context and node name.
fn node_key(r: &Resource, node: &str) -> String {
    let ctx = r
        .attributes
        .get("context")
        .map(String::as_str)
        .unwrap_or("");
    format!("{ctx}/{node}")
}

/// `data-pipeline-stg-1` → `data-pipeline`: an instance's service is its name
/// without the environment and index the fleet appends.
pub fn service_of(name: &str) -> String {
    let parts: Vec<&str> = name.split('-').collect();
    if parts.len() > 2 {
        parts[..parts.len() - 2].join("-")
    } else {
        name.to_string()
    }
}

/// The hourly list price of an instance or node from its type and region.
pub fn list_price(r: &Resource, prices: &PriceTable) -> Result<f64, String> {
    let itype = r
        .attributes
        .get("instance_type")
        .ok_or("no instance_type attribute")?;
    let region = region_of(&r.attributes).ok_or("no region or az attribute")?;
    prices
        .get(&region, itype)
        .map(|p| p.usd_per_hour)
        .ok_or_else(|| format!("{itype} in {region} is not in the price table"))
}

/// Costs the fleet (see the module comment).
pub fn cost_fleet(resources: &[Resource], prices: &PriceTable) -> FleetCost {
    let mut out = FleetCost::default();
    let mut nodes: BTreeMap<String, Vec<Node>> = BTreeMap::new();
    let mut node_ids: BTreeMap<String, &Resource> = BTreeMap::new();
    // Per cluster context: the pods and, at the same index, their resources.
    let mut pods: BTreeMap<String, (Vec<Pod>, Vec<&Resource>)> = BTreeMap::new();
    let mut workloads: BTreeMap<ResourceId, &Resource> = BTreeMap::new();
    for r in resources {
        let ctx = r.attributes.get("context").cloned().unwrap_or_default();
        match r.kind.as_str() {
            "ec2_instance" => {
                let running = matches!(
                    r.attributes.get("state").map(String::as_str),
                    Some("running" | "pending")
                );
                let usd = if running {
                    match list_price(r, prices) {
                        Ok(p) => p,
                        Err(e) => {
                            out.unpriced.push((r.id.clone(), e));
                            continue;
                        }
                    }
                } else {
                    0.0
                };
                out.items.push(item(r, service_of(&r.name), usd));
            }
            "node" => {
                let price = match list_price(r, prices) {
                    Ok(p) => p,
                    Err(e) => {
                        out.unpriced.push((r.id.clone(), e));
                        continue;
                    }
                };
                let (Some(cpu), Some(mem)) = (
                    num(r, "cpu_capacity_millicores"),
                    num(r, "memory_capacity_mib"),
                ) else {
                    out.unpriced
                        .push((r.id.clone(), "no cpu/memory capacity attributes".into()));
                    continue;
                };
                let key = node_key(r, &r.name);
                node_ids.insert(key.clone(), r);
                nodes.entry(ctx).or_default().push(Node {
                    name: key,
                    usd_per_hour: price,
                    cpu_millicores: cpu,
                    memory_mib: mem,
                });
            }
            "pod" => {
                let Some(node) = r.attributes.get("node") else {
                    continue;
                };
                let mem_request =
                    num(r, "memory_request_mib").or_else(|| num(r, "memory_limit_mib"));
                let pod = Pod {
                    id: r.id.to_string(),
                    node: node_key(r, node),
                    namespace: r.attributes.get("namespace").cloned().unwrap_or_default(),
                    team: r
                        .labels
                        .get("team")
                        .cloned()
                        .unwrap_or_else(|| r.team.clone()),
                    environment: r.environment.as_str().to_string(),
                    cpu_request_millicores: num(r, "cpu_request_millicores").unwrap_or(0.0),
                    cpu_usage_millicores: num(r, "cpu_usage_millicores").unwrap_or(0.0),
                    memory_request_mib: mem_request.unwrap_or(0.0),
                    memory_usage_mib: num(r, "memory_need_mib")
                        .or_else(|| num(r, "memory_usage_mib"))
                        .unwrap_or(0.0),
                };
                let cluster = pods.entry(ctx).or_default();
                cluster.0.push(pod);
                cluster.1.push(r);
            }
            "deployment" => {
                workloads.insert(r.id.clone(), r);
            }
            _ => {}
        }
    }
    for (ctx, cluster_nodes) in &nodes {
        for n in cluster_nodes {
            if let Some(r) = node_ids.get(&n.name) {
                out.node_prices.insert(r.id.to_string(), UnitPrices::of(n));
            }
        }
        let (cluster_pods, pod_resources) = pods
            .get(ctx)
            .map(|(p, r)| (p.as_slice(), r.as_slice()))
            .unwrap_or((&[], &[]));
        let a = allocation::allocate(cluster_nodes, cluster_pods);
        // Pods summed per owning workload (keyed by borrowed ids: no copy per pod).
        let mut per_owner: BTreeMap<&str, (f64, &Resource)> = BTreeMap::new();
        for (pod, usd) in pod_resources.iter().zip(&a.pods) {
            let owner = pod
                .attributes
                .get("owner")
                .map(String::as_str)
                .unwrap_or(pod.id.as_str());
            match per_owner.get_mut(owner) {
                Some(entry) => entry.0 += usd,
                None => {
                    let whose = workloads
                        .get(&ResourceId::new(owner))
                        .copied()
                        .unwrap_or(pod);
                    per_owner.insert(owner, (*usd, whose));
                }
            }
        }
        for (owner, (usd, r)) in per_owner {
            let mut it = item(r, r.name.clone(), usd);
            it.resource = ResourceId::new(owner);
            out.items.push(it);
        }
        for (node, idle) in &a.idle_by_node {
            if let Some(r) = node_ids.get(node) {
                out.items.push(item(r, "k8s idle".into(), *idle));
            }
        }
        out.clusters.insert(ctx.clone(), a);
    }
    out
}

fn item(r: &Resource, service: String, usd_per_hour: f64) -> CostItem {
    CostItem {
        resource: r.id.clone(),
        service,
        team: r.team.clone(),
        environment: r.environment,
        usd_per_hour,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ConnectorId, Health, Provider};

    fn res(id: &str, name: &str, kind: &str, attrs: &[(&str, &str)]) -> Resource {
        let mut labels = crate::event::StringMap::new();
        labels.insert("team".to_string(), "shop".to_string());
        Resource {
            id: ResourceId::new(id),
            name: name.into(),
            kind: kind.into(),
            provider: Provider::Kubernetes,
            connector: ConnectorId::new("t"),
            environment: Environment::Production,
            team: "shop".into(),
            labels,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            health: Health::healthy(),
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_small_cluster_and_an_instance_are_costed_by_hand() {
        let prices = PriceTable::embedded();
        let fleet = vec![
            // m5.xlarge in us-east-1: $0.192/h, 4 vCPU, 16 GiB.
            res(
                "node/a",
                "a",
                "node",
                &[
                    ("context", "c"),
                    ("instance_type", "m5.xlarge"),
                    ("region", "us-east-1"),
                    ("cpu_capacity_millicores", "4000"),
                    ("memory_capacity_mib", "16384"),
                ],
            ),
            res("dep/web", "web", "deployment", &[("context", "c")]),
            // Two replicas, each charged max(500m, 300m) CPU and max(1 GiB, 0.5 GiB) memory.
            res(
                "pod/web-1",
                "web-1",
                "pod",
                &[
                    ("context", "c"),
                    ("node", "a"),
                    ("owner", "dep/web"),
                    ("cpu_request_millicores", "500"),
                    ("cpu_usage_millicores", "300"),
                    ("memory_limit_mib", "1024"),
                    ("memory_need_mib", "512"),
                ],
            ),
            res(
                "pod/web-2",
                "web-2",
                "pod",
                &[
                    ("context", "c"),
                    ("node", "a"),
                    ("owner", "dep/web"),
                    ("cpu_request_millicores", "500"),
                    ("cpu_usage_millicores", "300"),
                    ("memory_limit_mib", "1024"),
                    ("memory_need_mib", "512"),
                ],
            ),
            res(
                "i-1",
                "batch-prod-0",
                "ec2_instance",
                &[
                    ("state", "running"),
                    ("instance_type", "c5.large"),
                    ("az", "us-east-1b"),
                ],
            ),
            res(
                "i-2",
                "odd-prod-0",
                "ec2_instance",
                &[
                    ("state", "running"),
                    ("instance_type", "z9.huge"),
                    ("az", "us-east-1b"),
                ],
            ),
        ];
        let cost = cost_fleet(&fleet, &prices);
        let weight = 4.0 * 0.031611 + 16.0 * 0.004237;
        let cpu_h = 0.031611 * 0.192 / weight;
        let gib_h = 0.004237 * 0.192 / weight;
        let web = 2.0 * (0.5 * cpu_h + 1.0 * gib_h);
        let get = |id: &str| {
            cost.items
                .iter()
                .find(|i| i.resource.as_str() == id)
                .unwrap()
                .clone()
        };
        assert!((get("dep/web").usd_per_hour - web).abs() < 1e-12);
        assert_eq!(get("dep/web").service, "web");
        assert!((get("node/a").usd_per_hour - (0.192 - web)).abs() < 1e-12);
        assert_eq!(get("node/a").service, "k8s idle");
        assert_eq!(get("i-1").usd_per_hour, 0.085);
        assert_eq!(get("i-1").service, "batch");
        assert_eq!(cost.unpriced.len(), 1);
        assert!(cost.unpriced[0].1.contains("z9.huge in us-east-1"));
        let total: f64 = cost.items.iter().map(|i| i.usd_per_hour).sum();
        assert!((total - (0.192 + 0.085)).abs() < 1e-12);
    }
}
