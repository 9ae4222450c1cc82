//! Cost: samples what each resource costs per hour from the connectors'
//! billing facts, flags a resource only when it departs from its own history
//! (median and MAD), and recommends rightsizing idle instances with savings
//! computed once per resource.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::AgentContext;
use crate::connectors::Scope;
use crate::event::{Action, EventKind, Resource, ResourceId};
use crate::state::State;

const ACTOR: &str = "agent:cost";
/// Samples kept per resource for the baseline.
const HISTORY: usize = 24;
/// Samples needed before a resource can be called anomalous.
const MIN_HISTORY: usize = 4;
/// Cluster memory price used to cost Kubernetes workloads, cents per GiB-hour.
const CENTS_PER_GIB_HOUR: f64 = 0.6;
/// Hours in an average month, for monthly savings.
const HOURS_PER_MONTH: u64 = 730;
/// CPU utilisation below which an instance counts as idle, percent.
const IDLE_CPU_PCT: f64 = 5.0;
/// Utilisation a rightsized instance is sized for, percent.
const TARGET_CPU_PCT: f64 = 40.0;

/// The cost agent's memory.
pub struct CostAgent {
    history: BTreeMap<ResourceId, VecDeque<u64>>,
    anomalous: BTreeSet<ResourceId>,
    recommended: BTreeSet<String>,
}

impl CostAgent {
    /// Starts from the samples and recommendations the log already holds.
    pub fn new(state: &State) -> Self {
        Self {
            history: state
                .cost
                .resources
                .iter()
                .map(|(id, e)| (id.clone(), e.history.clone()))
                .collect(),
            anomalous: BTreeSet::new(),
            recommended: state.cost.recommendations.keys().cloned().collect(),
        }
    }

    /// Takes one sample of every costed resource; returns events recorded.
    pub async fn sample(&mut self, ctx: &AgentContext) -> usize {
        let mut drafts = Vec::new();
        for connector in ctx.registry.all() {
            let resources = match connector.list_resources(&Scope::default()).await {
                Ok(r) => r,
                Err(e) => {
                    ctx.report_error("cost", format!("{}: {e}", connector.id()))
                        .await;
                    continue;
                }
            };
            for r in &resources {
                let Some((service, cents)) = hourly_cost(r) else {
                    continue;
                };
                let history = self.history.entry(r.id.clone()).or_default();
                let baseline: Vec<u64> = history.iter().copied().collect();
                let changed = history.back() != Some(&cents);
                history.push_back(cents);
                while history.len() > HISTORY {
                    history.pop_front();
                }
                if changed {
                    drafts.push(EventKind::CostSample {
                        resource: r.id.clone(),
                        service: service.clone(),
                        team: r.team.clone(),
                        environment: r.environment,
                        cents,
                        window_hours: 1,
                    });
                }
                match anomaly(&baseline, cents) {
                    Some(expected) if !self.anomalous.contains(&r.id) => {
                        self.anomalous.insert(r.id.clone());
                        drafts.push(EventKind::CostAnomaly {
                            resource: r.id.clone(),
                            service: service.clone(),
                            expected_cents: expected,
                            actual_cents: cents,
                            window: format!("last {} samples", baseline.len()),
                        });
                    }
                    None => {
                        self.anomalous.remove(&r.id);
                    }
                    _ => {}
                }
                if let Some((title, savings, action)) = rightsizing(r) {
                    let key = format!("{}|{title}", r.id);
                    if self.recommended.insert(key) {
                        drafts.push(EventKind::CostRecommendation {
                            resource: r.id.clone(),
                            title,
                            monthly_savings_cents: savings,
                            action: Some(action),
                        });
                    }
                }
            }
        }
        let n = drafts.len();
        if let Err(e) = ctx.record_many(ACTOR, drafts).await {
            tracing::error!("cost agent could not record: {e}");
        }
        n
    }
}

/// The hourly cost of a resource in cents, with the service it belongs to.
fn hourly_cost(r: &Resource) -> Option<(String, u64)> {
    let num = |k: &str| r.attributes.get(k).and_then(|v| v.parse::<f64>().ok());
    match r.kind.as_str() {
        "ec2_instance" => {
            let running = matches!(
                r.attributes.get("state").map(String::as_str),
                Some("running" | "pending")
            );
            let cents = if running {
                num("hourly_cost_cents")? as u64
            } else {
                0
            };
            Some((service_of(&r.name), cents))
        }
        "deployment" => {
            let replicas = num("replicas")?;
            let mib = num("memory_limit_mib")?;
            let cents = (replicas * mib / 1024.0 * CENTS_PER_GIB_HOUR).ceil() as u64;
            Some((r.name.clone(), cents))
        }
        _ => None,
    }
}

/// `data-pipeline-stg-1` → `data-pipeline`.
fn service_of(name: &str) -> String {
    let parts: Vec<&str> = name.split('-').collect();
    if parts.len() > 2 {
        parts[..parts.len() - 2].join("-")
    } else {
        name.to_string()
    }
}

/// The expected value if `x` departs from the baseline, else `None`.
/// Baseline = median; spread = MAD scaled to a standard deviation. A value is
/// anomalous when it exceeds the median by four spreads and by half the median
/// (so a flat series with tiny noise never alerts on a tiny bump).
pub fn anomaly(baseline: &[u64], x: u64) -> Option<u64> {
    if baseline.len() < MIN_HISTORY {
        return None;
    }
    let median = median(baseline);
    let deviations: Vec<u64> = baseline.iter().map(|v| v.abs_diff(median)).collect();
    let mad = median_f(&deviations) * 1.4826;
    let threshold = median as f64 + (4.0 * mad).max(median as f64 * 0.5).max(5.0);
    (x as f64 > threshold).then_some(median)
}

fn median(v: &[u64]) -> u64 {
    median_f(v).round() as u64
}

fn median_f(v: &[u64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2] as f64
    } else {
        (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0
    }
}

/// vCPUs of the instance types the offline price table knows.
fn vcpus(instance_type: &str) -> Option<u32> {
    let size = instance_type.split('.').nth(1)?;
    Some(match size {
        "small" => 2,
        "large" => 2,
        "xlarge" => 4,
        "2xlarge" => 8,
        "4xlarge" => 16,
        "8xlarge" => 32,
        _ => return None,
    })
}

/// For an idle instance: the smallest type of its family that runs its load at
/// the target utilisation, and the monthly saving.
fn rightsizing(r: &Resource) -> Option<(String, u64, Action)> {
    if r.kind != "ec2_instance" || r.attributes.get("state").map(String::as_str) != Some("running")
    {
        return None;
    }
    let cpu: f64 = r.attributes.get("cpu_util_pct")?.parse().ok()?;
    if cpu >= IDLE_CPU_PCT {
        return None;
    }
    let current = r.attributes.get("instance_type")?;
    let family = current.split('.').next()?;
    let used_vcpus = cpu / 100.0 * vcpus(current)? as f64;
    let needed = (used_vcpus / (TARGET_CPU_PCT / 100.0)).ceil().max(1.0) as u32;
    let target = ["large", "xlarge", "2xlarge", "4xlarge", "8xlarge"]
        .iter()
        .map(|s| format!("{family}.{s}"))
        .find(|t| vcpus(t).is_some_and(|v| v >= needed))?;
    let now_cents = crate::connectors::sim::hourly_cents(current);
    let then_cents = crate::connectors::sim::hourly_cents(&target);
    if then_cents >= now_cents {
        return None;
    }
    Some((
        format!(
            "Rightsize {} from {current} to {target} ({cpu:.0}% CPU)",
            r.name
        ),
        (now_cents - then_cents) * HOURS_PER_MONTH,
        Action::new("resize_instance", r.id.clone()).with("instance_type", target),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_series_raises_nothing() {
        assert_eq!(anomaly(&[19, 19, 19, 19, 19, 19], 19), None);
    }

    #[test]
    fn noise_within_the_band_raises_nothing() {
        assert_eq!(anomaly(&[100, 104, 97, 101, 99, 103], 112), None);
    }

    #[test]
    fn a_real_step_change_raises_one() {
        assert_eq!(anomaly(&[19, 19, 20, 19, 18, 19], 154), Some(19));
    }

    #[test]
    fn too_little_history_raises_nothing() {
        assert_eq!(anomaly(&[19, 19], 154), None);
    }

    #[test]
    fn service_names_drop_env_and_index() {
        assert_eq!(service_of("data-pipeline-stg-1"), "data-pipeline");
    }
}
