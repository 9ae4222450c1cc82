//! Recommendations: idle instances, instance rightsizing and workload request
//! rightsizing. Each rule proposes a change with its monthly saving; a
//! resource gets at most one recommendation (the best), so savings are never
//! counted twice across rules.

use super::allocation::UnitPrices;
use super::fleet::list_price;
use super::pricing::{PriceTable, region_of};
use crate::event::{Action, Resource};

/// Hours in an average month (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;
/// Usage samples needed before anything is recommended.
pub const MIN_SAMPLES: usize = 3;
/// CPU percentile an instance or a request is sized for.
pub const CPU_PERCENTILE: f64 = 95.0;
/// An instance whose CPU percentile stays under this is idle, percent.
pub const IDLE_CPU_PCT: f64 = 2.0;
/// Utilisation a rightsized instance should run at, percent.
pub const TARGET_CPU_PCT: f64 = 60.0;
/// Fewest vCPUs a rightsized instance keeps.
pub const MIN_VCPUS: u32 = 2;
/// Memory margin over the observed maximum.
pub const MEMORY_MARGIN: f64 = 0.2;
/// Lowest CPU request recommended, millicores.
pub const CPU_FLOOR_MILLICORES: f64 = 50.0;
/// Lowest memory request recommended, MiB.
pub const MEMORY_FLOOR_MIB: f64 = 64.0;
/// Savings below this are not worth an operator's time, cents a month.
pub const MIN_SAVINGS_CENTS: u64 = 100;

/// A proposed change and what it saves.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub title: String,
    pub monthly_savings_cents: u64,
    pub action: Action,
}

pub use crate::sizing::percentile;

fn monthly_cents(usd_per_hour: f64) -> u64 {
    (usd_per_hour * HOURS_PER_MONTH * 100.0).round().max(0.0) as u64
}

/// The best recommendation for a running instance given its CPU history (percent).
pub fn for_instance(r: &Resource, cpu_pct: &[f64], prices: &PriceTable) -> Option<Recommendation> {
    if r.attributes.get("state").map(String::as_str) != Some("running")
        || cpu_pct.len() < MIN_SAMPLES
    {
        return None;
    }
    let p = percentile(cpu_pct, CPU_PERCENTILE)?;
    let now_usd = list_price(r, prices).ok()?;
    let current = r.attributes.get("instance_type")?;
    let region = region_of(&r.attributes)?;
    let now = prices.get(&region, current)?;
    let mut candidates = Vec::new();
    if p < IDLE_CPU_PCT {
        candidates.push(Recommendation {
            title: format!(
                "Stop idle {} ({current}, p95 CPU {p:.1}% over {} samples)",
                r.name,
                cpu_pct.len()
            ),
            monthly_savings_cents: monthly_cents(now_usd),
            action: Action::new("stop_instance", r.id.clone()),
        });
    }
    let used_vcpus = p / 100.0 * now.vcpu as f64;
    let needed = ((used_vcpus / (TARGET_CPU_PCT / 100.0)).ceil() as u32).max(MIN_VCPUS);
    let family = current.split('.').next()?;
    if let Some((target, price)) = prices
        .family(&region, family)
        .into_iter()
        .find(|(_, t)| t.vcpu >= needed)
        && price.usd_per_hour < now_usd
    {
        candidates.push(Recommendation {
            title: format!(
                "Rightsize {} from {current} to {target} (p95 CPU {p:.0}% of {} vCPU)",
                r.name, now.vcpu
            ),
            monthly_savings_cents: monthly_cents(now_usd - price.usd_per_hour),
            action: Action::new("resize_instance", r.id.clone())
                .with("instance_type", target.clone())
                .with("from_instance_type", current.clone()),
        });
    }
    best(candidates)
}

/// A pod of a workload, as the rightsizing rule sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodUsage {
    pub cpu_request_millicores: f64,
    pub memory_request_mib: f64,
    /// CPU usage samples, millicores.
    pub cpu_samples: Vec<f64>,
    /// Highest memory use seen, MiB.
    pub memory_max_mib: f64,
    /// Unit prices of the node it runs on.
    pub unit: UnitPrices,
}

/// Requests for a workload: CPU at the 95th percentile of its pods' usage,
/// memory at the highest use plus a margin, never below the floors; with the
/// monthly saving at the allocation's own charge of `max(request, usage)`.
pub fn for_workload(r: &Resource, pods: &[PodUsage]) -> Option<Recommendation> {
    let samples: Vec<f64> = pods
        .iter()
        .flat_map(|p| p.cpu_samples.iter().copied())
        .collect();
    if pods.is_empty() || samples.len() < MIN_SAMPLES * pods.len() {
        return None;
    }
    let p95 = percentile(&samples, CPU_PERCENTILE)?;
    let mem_max = pods.iter().map(|p| p.memory_max_mib).fold(0.0, f64::max);
    let cpu = ((p95 / 10.0).ceil() * 10.0).max(CPU_FLOOR_MILLICORES);
    let mem = ((mem_max * (1.0 + MEMORY_MARGIN) / 16.0).ceil() * 16.0).max(MEMORY_FLOOR_MIB);
    let mut saving = 0.0;
    for p in pods {
        let cpu_use = p.cpu_samples.iter().copied().fold(0.0, f64::max);
        let before = p.cpu_request_millicores.max(cpu_use) / 1000.0 * p.unit.cpu_hour
            + p.memory_request_mib.max(p.memory_max_mib) / 1024.0 * p.unit.gib_hour;
        let after = cpu.max(cpu_use) / 1000.0 * p.unit.cpu_hour
            + mem.max(p.memory_max_mib) / 1024.0 * p.unit.gib_hour;
        saving += before - after;
    }
    let cents = monthly_cents(saving);
    if saving <= 0.0 || cents < MIN_SAVINGS_CENTS {
        return None;
    }
    let first = &pods[0];
    Some(Recommendation {
        title: format!(
            "Rightsize {} requests: CPU {:.0}m→{cpu:.0}m, memory {:.0}Mi→{mem:.0}Mi (p95 CPU {p95:.0}m, max memory {mem_max:.0}Mi)",
            r.name, first.cpu_request_millicores, first.memory_request_mib
        ),
        monthly_savings_cents: cents,
        // The action sets exactly what the title shows: the two requests.
        // Limits are not shown, so they are left as they are.
        action: Action::new("set_resources", r.id.clone())
            .with("cpu_request_millicores", format!("{cpu:.0}"))
            .with("memory_request_mib", format!("{mem:.0}")),
    })
}

/// The candidate that saves most (ties: the first).
pub fn best(candidates: Vec<Recommendation>) -> Option<Recommendation> {
    candidates.into_iter().fold(None, |acc, c| match acc {
        Some(a) if a.monthly_savings_cents >= c.monthly_savings_cents => Some(a),
        _ => Some(c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ConnectorId, Environment, Health, Provider, ResourceId};

    fn instance(itype: &str) -> Resource {
        Resource {
            id: ResourceId::new("i-1"),
            name: "pipe-prod-0".into(),
            kind: "ec2_instance".into(),
            provider: Provider::Aws,
            connector: ConnectorId::new("t"),
            environment: Environment::Production,
            team: "data".into(),
            labels: Default::default(),
            attributes: [
                ("state", "running"),
                ("instance_type", itype),
                ("az", "us-east-1a"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            health: Health::healthy(),
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn nearest_rank_percentile() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&s, 95.0), Some(19.0));
        assert_eq!(percentile(&s, 100.0), Some(20.0));
        assert_eq!(percentile(&[], 95.0), None);
    }

    #[test]
    fn an_oversized_instance_is_rightsized_within_its_family() {
        // m5.8xlarge, 32 vCPU, p95 10% = 3.2 vCPU used; at 60% that needs 6 vCPU → m5.2xlarge (8).
        // Saving (1.536 − 0.384) × 730 = $840.96.
        let r = instance("m5.8xlarge");
        let rec = for_instance(&r, &[8.0, 10.0, 9.0, 10.0], &PriceTable::embedded()).unwrap();
        assert_eq!(rec.action.name, "resize_instance");
        assert_eq!(rec.action.params["instance_type"], "m5.2xlarge");
        assert_eq!(rec.monthly_savings_cents, 84_096);
    }

    #[test]
    fn an_idle_instance_is_stopped_rather_than_resized_and_counted_once() {
        // p95 1% of 4 vCPU: both rules apply; stopping saves the whole $0.192 × 730 = $140.16.
        let r = instance("m5.xlarge");
        let rec = for_instance(&r, &[1.0, 0.5, 1.0], &PriceTable::embedded()).unwrap();
        assert_eq!(rec.action.name, "stop_instance");
        assert_eq!(rec.monthly_savings_cents, 14_016);
    }

    #[test]
    fn the_smallest_size_is_the_floor_and_too_little_history_says_nothing() {
        let prices = PriceTable::embedded();
        assert_eq!(
            for_instance(&instance("m5.large"), &[30.0, 30.0, 30.0], &prices),
            None
        );
        assert_eq!(
            for_instance(&instance("m5.8xlarge"), &[3.0, 3.0], &prices),
            None
        );
    }

    #[test]
    fn workload_requests_follow_usage_with_floors() {
        let unit = UnitPrices {
            cpu_hour: 0.04,
            gib_hour: 0.005,
        };
        let pod = |cpu: &[f64], mem: f64| PodUsage {
            cpu_request_millicores: 1000.0,
            memory_request_mib: 2048.0,
            cpu_samples: cpu.to_vec(),
            memory_max_mib: mem,
            unit,
        };
        let mut r = instance("x");
        r.name = "etl".into();
        let pods = [
            pod(&[200.0, 240.0, 210.0], 1000.0),
            pod(&[190.0, 205.0, 230.0], 900.0),
        ];
        let rec = for_workload(&r, &pods).unwrap();
        // p95 of the six samples is 240m; memory 1000 × 1.2 = 1200Mi (a multiple of 16).
        assert_eq!(rec.action.params["cpu_request_millicores"], "240");
        assert_eq!(rec.action.params["memory_request_mib"], "1200");
        // Only what the title shows: no limit is touched.
        assert_eq!(
            rec.action.params.keys().collect::<Vec<_>>(),
            ["cpu_request_millicores", "memory_request_mib"]
        );
        assert!(
            rec.title.contains("CPU 1000m→240m, memory 2048Mi→1200Mi"),
            "{}",
            rec.title
        );
        // Per pod: CPU 1000m→240m saves 0.76 × 0.04; memory 2048→1200Mi saves 848/1024 × 0.005.
        let per_pod = 0.76 * 0.04 + 848.0 / 1024.0 * 0.005;
        assert_eq!(
            rec.monthly_savings_cents,
            (2.0 * per_pod * 730.0 * 100.0_f64).round() as u64
        );
        let tiny = [pod(&[1.0, 1.0, 1.0], 10.0)];
        let rec = for_workload(&r, &tiny).unwrap();
        assert_eq!(rec.action.params["cpu_request_millicores"], "50");
        assert_eq!(rec.action.params["memory_request_mib"], "64");
    }
}
