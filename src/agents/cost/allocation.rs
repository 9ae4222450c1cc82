//! Kubernetes cost allocation in the OpenCost manner, as a pure function.
//!
//! Each node's hourly price is split into a CPU-hour and a GiB-hour price in
//! the proportion of OpenCost's default relative prices (a vCPU-hour costs
//! about 7.46 GiB-hours), so a node's CPUs and memory at those unit prices add
//! up to exactly the node's price. A workload is charged
//! `max(request, usage)` of each resource at its node's unit prices; what no
//! workload is charged for is the node's idle cost. Totals are grouped by
//! namespace, team label and environment.

use std::collections::{BTreeMap, HashMap};

/// OpenCost's default on-demand CPU price, USD per vCPU-hour.
const OPENCOST_CPU_HOUR: f64 = 0.031611;
/// OpenCost's default on-demand RAM price, USD per GiB-hour.
const OPENCOST_GIB_HOUR: f64 = 0.004237;

/// A node: its hourly price and capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub usd_per_hour: f64,
    pub cpu_millicores: f64,
    pub memory_mib: f64,
}

/// A pod: where it runs, what it asks for and what it uses, and who owns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    pub id: String,
    pub node: String,
    pub namespace: String,
    pub team: String,
    pub environment: String,
    pub cpu_request_millicores: f64,
    pub cpu_usage_millicores: f64,
    pub memory_request_mib: f64,
    pub memory_usage_mib: f64,
}

/// A node's unit prices, USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitPrices {
    pub cpu_hour: f64,
    pub gib_hour: f64,
}

impl UnitPrices {
    /// Splits a node's price into CPU-hour and GiB-hour prices (see the module comment).
    pub fn of(node: &Node) -> Self {
        let cpus = node.cpu_millicores / 1000.0;
        let gib = node.memory_mib / 1024.0;
        let weight = cpus * OPENCOST_CPU_HOUR + gib * OPENCOST_GIB_HOUR;
        if weight <= 0.0 {
            return Self {
                cpu_hour: 0.0,
                gib_hour: 0.0,
            };
        }
        let scale = node.usd_per_hour / weight;
        Self {
            cpu_hour: OPENCOST_CPU_HOUR * scale,
            gib_hour: OPENCOST_GIB_HOUR * scale,
        }
    }
}

/// Hourly costs, USD, by grouping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocation {
    /// Per pod, in the order the pods were given (0 for an unplaced pod).
    pub pods: Vec<f64>,
    pub by_namespace: BTreeMap<String, f64>,
    pub by_team: BTreeMap<String, f64>,
    pub by_environment: BTreeMap<String, f64>,
    /// Node price minus what its pods are charged, never below zero.
    pub idle_by_node: BTreeMap<String, f64>,
    /// Sum of node prices.
    pub nodes_total: f64,
    /// Pods on a node that is not in the node list (not charged; listed so they are seen).
    pub unplaced: Vec<String>,
}

impl Allocation {
    /// Sum of idle cost over nodes.
    pub fn idle_total(&self) -> f64 {
        self.idle_by_node.values().sum()
    }
}

/// Adds `v` to `key`'s total, allocating the key only the first time.
fn add(map: &mut BTreeMap<String, f64>, key: &str, v: f64) {
    match map.get_mut(key) {
        Some(total) => *total += v,
        None => {
            map.insert(key.to_string(), v);
        }
    }
}

/// Allocates node costs to pods (see the module comment).
pub fn allocate(nodes: &[Node], pods: &[Pod]) -> Allocation {
    let mut out = Allocation {
        pods: Vec::with_capacity(pods.len()),
        ..Allocation::default()
    };
    let mut by_node: HashMap<&str, (UnitPrices, f64)> = HashMap::with_capacity(nodes.len());
    for n in nodes {
        out.nodes_total += n.usd_per_hour;
        by_node.insert(n.name.as_str(), (UnitPrices::of(n), 0.0));
    }
    for p in pods {
        let Some((unit, charged)) = by_node.get_mut(p.node.as_str()) else {
            out.unplaced.push(p.id.clone());
            out.pods.push(0.0);
            continue;
        };
        let cpu = p.cpu_request_millicores.max(p.cpu_usage_millicores) / 1000.0;
        let gib = p.memory_request_mib.max(p.memory_usage_mib) / 1024.0;
        let cost = cpu * unit.cpu_hour + gib * unit.gib_hour;
        *charged += cost;
        out.pods.push(cost);
        add(&mut out.by_namespace, &p.namespace, cost);
        add(&mut out.by_team, &p.team, cost);
        add(&mut out.by_environment, &p.environment, cost);
    }
    for n in nodes {
        let charged = by_node.get(n.name.as_str()).map_or(0.0, |x| x.1);
        out.idle_by_node
            .insert(n.name.clone(), (n.usd_per_hour - charged).max(0.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(id: &str, node: &str, ns: &str, cpu: (f64, f64), mem: (f64, f64)) -> Pod {
        Pod {
            id: id.into(),
            node: node.into(),
            namespace: ns.into(),
            team: format!("team-{ns}"),
            environment: "production".into(),
            cpu_request_millicores: cpu.0,
            cpu_usage_millicores: cpu.1,
            memory_request_mib: mem.0,
            memory_usage_mib: mem.1,
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn unit_prices_add_back_up_to_the_node_price() {
        // 4 vCPU, 16 GiB at $0.192/h. Weight = 4×0.031611 + 16×0.004237 = 0.194236,
        // scale = 0.192 / 0.194236; CPU-hour = 0.031611 × scale, GiB-hour = 0.004237 × scale.
        let n = Node {
            name: "n".into(),
            usd_per_hour: 0.192,
            cpu_millicores: 4000.0,
            memory_mib: 16384.0,
        };
        let u = UnitPrices::of(&n);
        let scale = 0.192 / 0.194236;
        close(u.cpu_hour, 0.031611 * scale);
        close(u.gib_hour, 0.004237 * scale);
        close(4.0 * u.cpu_hour + 16.0 * u.gib_hour, 0.192);
    }

    #[test]
    fn a_fixed_fleet_is_allocated_as_computed_by_hand() {
        // A made-up node whose split is easy to follow: 2 vCPU and 8 GiB at $0.10/h.
        // Weight = 2×0.031611 + 8×0.004237 = 0.063222 + 0.033896 = 0.097118.
        let node = Node {
            name: "a".into(),
            usd_per_hour: 0.10,
            cpu_millicores: 2000.0,
            memory_mib: 8192.0,
        };
        let cpu_h = 0.031611 * 0.10 / 0.097118;
        let gib_h = 0.004237 * 0.10 / 0.097118;
        let pods = [
            // Request above usage: charged the request, 0.5 vCPU and 1 GiB.
            pod("web", "a", "shop", (500.0, 200.0), (1024.0, 512.0)),
            // Usage above request: charged the usage, 1 vCPU and 3 GiB.
            pod("batch", "a", "data", (250.0, 1000.0), (2048.0, 3072.0)),
            // On a node that is not listed: not charged, reported.
            pod("ghost", "gone", "data", (100.0, 100.0), (100.0, 100.0)),
        ];
        let a = allocate(std::slice::from_ref(&node), &pods);
        let web = 0.5 * cpu_h + 1.0 * gib_h;
        let batch = 1.0 * cpu_h + 3.0 * gib_h;
        close(a.pods[0], web);
        close(a.pods[1], batch);
        close(a.pods[2], 0.0);
        close(a.by_namespace["shop"], web);
        close(a.by_team["team-data"], batch);
        close(a.by_environment["production"], web + batch);
        // Idle: the remaining 0.5 vCPU and 4 GiB.
        close(a.idle_by_node["a"], 0.5 * cpu_h + 4.0 * gib_h);
        close(a.idle_total() + web + batch, 0.10);
        assert_eq!(a.unplaced, ["ghost"]);
    }

    #[test]
    fn an_overcommitted_node_has_no_negative_idle() {
        let node = Node {
            name: "a".into(),
            usd_per_hour: 0.10,
            cpu_millicores: 1000.0,
            memory_mib: 1024.0,
        };
        let a = allocate(
            &[node],
            &[pod("p", "a", "x", (2000.0, 2000.0), (2048.0, 2048.0))],
        );
        // Twice the node's capacity is charged twice the node's price.
        close(a.pods[0], 0.20);
        close(a.idle_by_node["a"], 0.0);
    }
}
