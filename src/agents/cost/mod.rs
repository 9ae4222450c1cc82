//! Cost: what the fleet costs (price tables, Kubernetes allocation), which
//! resources and services depart from their own history, how fast each team
//! burns its budget, and what could be saved — each saving counted once.
//!
//! Figures are recorded as events (`cost_sample`, `cost_anomaly`,
//! `cost_budget_burn`, `cost_recommendation`); the Cost pane shows them.

pub mod allocation;
pub mod anomaly;
pub mod billing;
pub mod fleet;
pub mod pricing;
pub mod rightsizing;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::AgentContext;
use crate::connectors::Scope;
use crate::event::{EventKind, Resource, ResourceId, USAGE_UNKNOWN};
use crate::state::State;
use anomaly::Baseline;
use billing::{BillingLine, BillingSource};
use pricing::PriceTable;
use rightsizing::{PodUsage, Recommendation};

const ACTOR: &str = "agent:cost";
/// Usage samples kept per resource for rightsizing.
const USAGE_HISTORY: usize = 48;
/// Days of billing history read for per-service baselines.
const BILLING_DAYS: i64 = 30;

/// `[cost]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// A price table in the documented CSV format, replacing the embedded one.
    pub price_table: Option<PathBuf>,
    /// The currency budgets and billing lines are in; others are left out.
    pub currency: String,
    /// Monthly budget per team, in `currency`.
    pub budgets: BTreeMap<String, f64>,
    /// Burn rate at which a budget alert is raised (1.0 = on pace to spend it all).
    pub burn_alert: f64,
}

impl Default for CostConfig {
    fn default() -> Self {
        Self {
            price_table: None,
            currency: "USD".into(),
            budgets: BTreeMap::new(),
            burn_alert: 1.0,
        }
    }
}

impl CostConfig {
    /// The settings the agent runs with; a bad price table or budget is an error naming it.
    pub fn settings(&self) -> Result<CostSettings, String> {
        let prices = PriceTable::load(self.price_table.as_deref()).map_err(|e| e.to_string())?;
        for (team, b) in &self.budgets {
            if !b.is_finite() || *b <= 0.0 {
                return Err(format!("cost.budgets.{team}: {b} is not a positive amount"));
            }
        }
        if !self.burn_alert.is_finite() || self.burn_alert <= 0.0 {
            return Err(format!(
                "cost.burn_alert: {} is not positive",
                self.burn_alert
            ));
        }
        Ok(CostSettings {
            prices: Arc::new(prices),
            currency: self.currency.clone(),
            budgets: self.budgets.clone(),
            burn_alert: self.burn_alert,
            billing: None,
        })
    }
}

/// What the cost agent runs with.
#[derive(Clone)]
pub struct CostSettings {
    pub prices: Arc<PriceTable>,
    pub currency: String,
    pub budgets: BTreeMap<String, f64>,
    pub burn_alert: f64,
    /// A bill to read; without one, month-to-date spend is estimated from the fleet.
    pub billing: Option<Arc<dyn BillingSource>>,
}

impl Default for CostSettings {
    fn default() -> Self {
        CostConfig::default()
            .settings()
            .unwrap_or_else(|e| panic!("the embedded price table is checked by tests: {e}"))
    }
}

/// The cost agent's memory.
pub struct CostAgent {
    settings: CostSettings,
    /// Daily cost baselines per resource and per service (`service:NAME`).
    baselines: BTreeMap<ResourceId, Baseline>,
    /// The last recorded daily cost per resource (a sample is recorded on change).
    last_cents: BTreeMap<ResourceId, u64>,
    /// CPU percent samples per instance, with the type they were taken on.
    instance_cpu: BTreeMap<ResourceId, (String, VecDeque<f64>)>,
    /// CPU millicore samples and peak memory per pod.
    pod_usage: BTreeMap<ResourceId, (VecDeque<f64>, f64)>,
    /// Per resource, the title of the recommendation in force.
    recommended: BTreeMap<ResourceId, String>,
    /// Teams last reported over their burn alert, and the burn last recorded.
    burn: BTreeMap<String, f64>,
    /// Services whose billed departure was already reported (service, day).
    billed_departures: BTreeSet<(String, NaiveDate)>,
    /// At the last assessment: why each resource whose usage is unknown is.
    unknown_usage: Vec<String>,
}

impl CostAgent {
    /// Starts from the samples and recommendations the log already holds.
    pub fn new(state: &State, settings: CostSettings) -> Self {
        Self {
            settings,
            baselines: state
                .cost
                .resources
                .iter()
                .map(|(id, e)| {
                    (
                        id.clone(),
                        Baseline::from_history(e.history.iter().copied()),
                    )
                })
                .collect(),
            last_cents: state
                .cost
                .resources
                .iter()
                .map(|(id, e)| (id.clone(), e.latest()))
                .collect(),
            instance_cpu: BTreeMap::new(),
            pod_usage: BTreeMap::new(),
            recommended: state
                .cost
                .recommendations
                .iter()
                .map(|(id, r)| (id.clone(), r.title.clone()))
                .collect(),
            burn: state
                .cost
                .budgets
                .iter()
                .map(|(t, b)| (t.clone(), b.burn_rate))
                .collect(),
            billed_departures: BTreeSet::new(),
            unknown_usage: Vec::new(),
        }
    }

    /// Why rightsizing is silent for some resources at the last assessment:
    /// `usage unknown for N resource(s): <reason>` (the commonest reason first).
    pub fn usage_status(&self) -> Option<String> {
        crate::event::usage_unknown_summary(self.unknown_usage.iter().map(String::as_str))
    }

    /// Takes one sample of the fleet; returns events recorded.
    pub async fn sample(&mut self, ctx: &AgentContext) -> usize {
        let mut resources = Vec::new();
        for connector in ctx.registry.all() {
            match connector.list_resources(&Scope::default()).await {
                Ok(r) => resources.extend(r),
                Err(e) => {
                    ctx.report_error("cost", format!("{}: {e}", connector.id()))
                        .await;
                }
            }
        }
        let today = ctx.clock.now().date_naive();
        let billed = match &self.settings.billing {
            Some(source) => {
                let from = today - chrono::Duration::days(BILLING_DAYS);
                match source.lines(from, today).await {
                    Ok(lines) => Some(lines),
                    Err(e) => {
                        ctx.report_error("cost", format!("billing {}: {e}", source.name()))
                            .await;
                        None
                    }
                }
            }
            None => None,
        };
        let drafts = self.assess(&resources, billed.as_deref(), today);
        let n = drafts.len();
        if let Err(e) = ctx.record_many(ACTOR, drafts).await {
            tracing::error!("cost agent could not record: {e}");
        }
        n
    }

    /// One assessment of the fleet (and the bill, if any): the events to record.
    pub fn assess(
        &mut self,
        resources: &[Resource],
        billed: Option<&[BillingLine]>,
        today: NaiveDate,
    ) -> Vec<EventKind> {
        let mut drafts = Vec::new();
        let costed = fleet::cost_fleet(resources, &self.settings.prices);
        for (id, why) in &costed.unpriced {
            tracing::debug!(resource = %id, "not priced: {why}");
        }
        let mut per_service: BTreeMap<String, u64> = BTreeMap::new();
        for item in &costed.items {
            let cents = daily_cents(item.usd_per_hour);
            *per_service.entry(item.service.clone()).or_default() += cents;
            if self.last_cents.insert(item.resource.clone(), cents) != Some(cents) {
                drafts.push(EventKind::CostSample {
                    resource: item.resource.clone(),
                    service: item.service.clone(),
                    team: item.team.clone(),
                    environment: item.environment,
                    cents,
                    window_hours: 24,
                });
            }
            let baseline = self.baselines.entry(item.resource.clone()).or_default();
            if let Some(d) = baseline.observe(cents) {
                drafts.push(EventKind::CostAnomaly {
                    resource: item.resource.clone(),
                    service: item.service.clone(),
                    expected_cents: d.expected,
                    actual_cents: d.actual,
                    window: format!("daily rate vs median of the last {} samples", d.window),
                });
            }
        }
        for (service, cents) in per_service {
            let id = ResourceId::new(format!("service:{service}"));
            if let Some(d) = self.baselines.entry(id.clone()).or_default().observe(cents) {
                drafts.push(EventKind::CostAnomaly {
                    resource: id,
                    service,
                    expected_cents: d.expected,
                    actual_cents: d.actual,
                    window: format!(
                        "service daily rate vs median of the last {} samples",
                        d.window
                    ),
                });
            }
        }
        if let Some(lines) = billed {
            for s in billing::service_departures(lines, &self.settings.currency) {
                if self.billed_departures.insert((s.service.clone(), s.day)) {
                    drafts.push(EventKind::CostAnomaly {
                        resource: ResourceId::new(format!("billing:{}", s.service)),
                        service: s.service,
                        expected_cents: s.departure.expected,
                        actual_cents: s.departure.actual,
                        window: format!("billed {} vs median of {}..", s.day, s.from),
                    });
                }
            }
        }
        drafts.extend(self.budgets(&costed.items, billed, today));
        drafts.extend(self.recommendations(resources, &costed));
        drafts
    }

    fn budgets(
        &mut self,
        items: &[fleet::CostItem],
        billed: Option<&[BillingLine]>,
        today: NaiveDate,
    ) -> Vec<EventKind> {
        if self.settings.budgets.is_empty() {
            return Vec::new();
        }
        let (lines, basis) = match billed {
            Some(l) => (l.to_vec(), "billed month to date"),
            None => (
                estimated_month(items, today, &self.settings.currency),
                "estimated: the fleet's current daily cost for each day of the month so far",
            ),
        };
        let mut out = Vec::new();
        for b in billing::budget_burn(
            &lines,
            &self.settings.budgets,
            today,
            &self.settings.currency,
        ) {
            let rate = (b.burn_rate * 100.0).round() / 100.0;
            let before = self.burn.get(&b.team).copied();
            let alert = self.settings.burn_alert;
            let crossed = before.is_none_or(|p| (p >= alert) != (rate >= alert));
            let moved = before.is_none_or(|p| (p - rate).abs() >= 0.05);
            if crossed || moved {
                self.burn.insert(b.team.clone(), rate);
                out.push(EventKind::CostBudgetBurn {
                    team: b.team,
                    budget_cents: b.budget_cents,
                    spent_cents: b.spent_cents,
                    projected_cents: b.projected_cents,
                    burn_rate: rate,
                    alert: rate >= alert,
                    basis: basis.to_string(),
                });
            }
        }
        out
    }

    fn recommendations(
        &mut self,
        resources: &[Resource],
        costed: &fleet::FleetCost,
    ) -> Vec<EventKind> {
        let mut found: BTreeMap<ResourceId, Recommendation> = BTreeMap::new();
        self.unknown_usage.clear();
        // Workloads with a pod whose usage is unknown: nothing is said of them.
        let mut unknown_owners: BTreeSet<ResourceId> = BTreeSet::new();
        // Resources with enough history to say whether a recommendation still
        // holds (after a restart the histories start empty again).
        let mut judged: BTreeSet<ResourceId> = BTreeSet::new();
        let mut pods_of: BTreeMap<ResourceId, Vec<PodUsage>> = BTreeMap::new();
        let by_id: BTreeMap<&ResourceId, &Resource> =
            resources.iter().map(|r| (&r.id, r)).collect();
        let context = |r: &Resource| r.attributes.get("context").cloned().unwrap_or_default();
        let nodes: BTreeMap<(String, String), String> = resources
            .iter()
            .filter(|n| n.kind == "node")
            .map(|n| ((context(n), n.name.clone()), n.id.to_string()))
            .collect();
        for r in resources {
            let num = |k: &str| {
                r.attributes
                    .get(k)
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|v| v.is_finite() && *v >= 0.0)
            };
            // A connector that could not measure says why; no figure stands in for it.
            if let Some(why) = r.attributes.get(USAGE_UNKNOWN).filter(|w| !w.is_empty()) {
                self.unknown_usage.push(why.clone());
                if r.kind == "pod" {
                    unknown_owners.insert(fleet::owner_of(r));
                }
                continue;
            }
            match r.kind.as_str() {
                "ec2_instance" => {
                    // The window's p95 when the connector read a window (CloudWatch), else the figure.
                    let (Some(cpu), Some(itype)) = (
                        num("cpu_util_p95_pct").or_else(|| num("cpu_util_pct")),
                        r.attributes.get("instance_type"),
                    ) else {
                        continue;
                    };
                    let entry = self
                        .instance_cpu
                        .entry(r.id.clone())
                        .or_insert_with(|| (itype.clone(), VecDeque::new()));
                    // Utilisation measured on another type says nothing about this one.
                    if entry.0 != *itype {
                        *entry = (itype.clone(), VecDeque::new());
                    }
                    push(&mut entry.1, cpu);
                    let samples: Vec<f64> = entry.1.iter().copied().collect();
                    if samples.len() >= rightsizing::MIN_SAMPLES {
                        judged.insert(r.id.clone());
                    }
                    if let Some(rec) = rightsizing::for_instance(r, &samples, &self.settings.prices)
                    {
                        found.insert(r.id.clone(), rec);
                    }
                }
                "pod" => {
                    // Both CPU and memory use must be known: a missing memory
                    // figure is not a pod using none.
                    let (Some(cpu), Some(mem), Some(node)) = (
                        num("cpu_usage_millicores"),
                        num("memory_need_mib").or_else(|| num("memory_usage_mib")),
                        r.attributes.get("node"),
                    ) else {
                        continue;
                    };
                    let usage = self
                        .pod_usage
                        .entry(r.id.clone())
                        .or_insert_with(|| (VecDeque::new(), 0.0));
                    push(&mut usage.0, cpu);
                    usage.1 = usage.1.max(mem);
                    let Some(unit) = nodes
                        .get(&(context(r), node.clone()))
                        .and_then(|n| costed.node_prices.get(n).copied())
                    else {
                        continue;
                    };
                    let owner = fleet::owner_of(r);
                    if !by_id.contains_key(&owner) {
                        continue;
                    }
                    pods_of.entry(owner).or_default().push(PodUsage {
                        cpu_request_millicores: num("cpu_request_millicores").unwrap_or(0.0),
                        memory_request_mib: num("memory_request_mib")
                            .or_else(|| num("memory_limit_mib"))
                            .unwrap_or(0.0),
                        cpu_samples: usage.0.iter().copied().collect(),
                        memory_max_mib: usage.1,
                        unit,
                    });
                }
                _ => {}
            }
        }
        for (owner, pods) in pods_of {
            if unknown_owners.contains(&owner) {
                continue;
            }
            if pods
                .iter()
                .all(|p| p.cpu_samples.len() >= rightsizing::MIN_SAMPLES)
            {
                judged.insert(owner.clone());
            }
            if let Some(r) = by_id.get(&owner)
                && let Some(rec) = rightsizing::for_workload(r, &pods)
            {
                found.insert(owner, rec);
            }
        }
        let mut out = Vec::new();
        for (id, rec) in &found {
            if self.recommended.get(id) != Some(&rec.title) {
                self.recommended.insert(id.clone(), rec.title.clone());
                out.push(EventKind::CostRecommendation {
                    resource: id.clone(),
                    title: rec.title.clone(),
                    monthly_savings_cents: rec.monthly_savings_cents,
                    action: Some(rec.action.clone()),
                });
            }
        }
        // A recommendation that no longer holds, or whose resource is gone, is
        // withdrawn, so its saving stops counting.
        let stale: Vec<ResourceId> = self
            .recommended
            .keys()
            .filter(|id| {
                !found.contains_key(*id) && (judged.contains(*id) || !by_id.contains_key(id))
            })
            .cloned()
            .collect();
        for id in stale {
            if let Some(title) = self.recommended.remove(&id) {
                out.push(EventKind::CostRecommendation {
                    resource: id,
                    title: format!("withdrawn: {title}"),
                    monthly_savings_cents: 0,
                    action: None,
                });
            }
        }
        out
    }
}

fn push(v: &mut VecDeque<f64>, x: f64) {
    v.push_back(x);
    while v.len() > USAGE_HISTORY {
        v.pop_front();
    }
}

/// A day's cost in cents at an hourly rate.
pub fn daily_cents(usd_per_hour: f64) -> u64 {
    (usd_per_hour * 24.0 * 100.0).round().max(0.0) as u64
}

/// Month-to-date lines assuming today's fleet cost held since the 1st.
fn estimated_month(
    items: &[fleet::CostItem],
    today: NaiveDate,
    currency: &str,
) -> Vec<BillingLine> {
    let mut per_team: BTreeMap<&str, f64> = BTreeMap::new();
    for i in items {
        *per_team.entry(i.team.as_str()).or_default() += i.usd_per_hour * 24.0;
    }
    let mut out = Vec::new();
    for d in 1..=today.day() {
        let Some(day) = today.with_day(d) else {
            continue;
        };
        for (team, usd) in &per_team {
            out.push(BillingLine {
                day,
                service: "fleet estimate".into(),
                team: Some(team.to_string()),
                amount: *usd,
                currency: currency.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, ConnectorId, Environment, Health, Provider};

    fn instance(itype: &str, cpu: &str) -> Resource {
        Resource {
            id: ResourceId::new("aws/i-1"),
            name: "pipe-stg-1".into(),
            kind: "ec2_instance".into(),
            provider: Provider::Aws,
            connector: ConnectorId::new("t"),
            environment: Environment::Staging,
            team: "data".into(),
            labels: Default::default(),
            attributes: [
                ("state", "running"),
                ("instance_type", itype),
                ("az", "us-east-1a"),
                ("cpu_util_pct", cpu),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            health: Health::healthy(),
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 3).unwrap()
    }

    fn kinds(events: &[EventKind], name: &str) -> usize {
        events.iter().filter(|e| e.name() == name).count()
    }

    #[test]
    fn a_hand_resize_raises_one_anomaly_per_resource_and_service_and_samples_only_on_change() {
        let mut agent = CostAgent::new(&State::new(), CostSettings::default());
        let mut all = Vec::new();
        for _ in 0..5 {
            all.extend(agent.assess(&[instance("m5.xlarge", "30")], None, today()));
        }
        // One sample (the cost did not change), no anomaly.
        assert_eq!(kinds(&all, "cost_sample"), 1);
        assert_eq!(kinds(&all, "cost_anomaly"), 0);
        let mut after = Vec::new();
        for _ in 0..5 {
            after.extend(agent.assess(&[instance("m5.8xlarge", "30")], None, today()));
        }
        assert_eq!(kinds(&after, "cost_sample"), 1);
        let anomalies: Vec<_> = after
            .iter()
            .filter_map(|e| match e {
                EventKind::CostAnomaly {
                    resource,
                    expected_cents,
                    actual_cents,
                    ..
                } => Some((resource.as_str(), *expected_cents, *actual_cents)),
                _ => None,
            })
            .collect();
        // $0.192/h = 461 cents a day; $1.536/h = 3,686.
        assert_eq!(
            anomalies,
            [("aws/i-1", 461, 3686), ("service:pipe", 461, 3686)]
        );
    }

    #[test]
    fn one_recommendation_per_resource_withdrawn_when_it_no_longer_holds() {
        let mut agent = CostAgent::new(&State::new(), CostSettings::default());
        let mut recs = Vec::new();
        for _ in 0..3 {
            recs.extend(agent.assess(&[instance("m5.8xlarge", "3")], None, today()));
        }
        let made: Vec<_> = recs
            .iter()
            .filter_map(|e| match e {
                EventKind::CostRecommendation {
                    monthly_savings_cents,
                    action,
                    ..
                } => Some((*monthly_savings_cents, action.clone())),
                _ => None,
            })
            .collect();
        // 3% of 32 vCPU at 60% needs 2 vCPU: m5.large, saving (1.536 − 0.096) × 730.
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].0, 105_120);
        assert_eq!(
            made[0].1.as_ref().unwrap().params["instance_type"],
            "m5.large"
        );
        // Busy now: the percentile rises with the new samples until nothing smaller fits.
        let mut later = Vec::new();
        for _ in 0..6 {
            later.extend(agent.assess(&[instance("m5.8xlarge", "90")], None, today()));
        }
        let withdrawn: Vec<_> = later
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    EventKind::CostRecommendation {
                        monthly_savings_cents: 0,
                        action: None,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(withdrawn.len(), 1);
    }

    fn recommendations(events: &[EventKind]) -> Vec<(String, Option<Action>)> {
        events
            .iter()
            .filter_map(|e| match e {
                EventKind::CostRecommendation { title, action, .. } => {
                    Some((title.clone(), action.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn unknown_usage_is_never_a_recommendation_and_the_status_says_why() {
        let mut agent = CostAgent::new(&State::new(), CostSettings::default());
        let mut unknown = instance("m5.8xlarge", "3");
        unknown.attributes.remove("cpu_util_pct");
        unknown.attributes.insert(
            USAGE_UNKNOWN.into(),
            "usage unknown: CloudWatch refused GetMetricData (AccessDenied)".into(),
        );
        let mut out = Vec::new();
        for _ in 0..5 {
            out.extend(agent.assess(std::slice::from_ref(&unknown), None, today()));
        }
        assert!(recommendations(&out).is_empty(), "{out:?}");
        // Still priced: cost does not depend on usage.
        assert_eq!(kinds(&out, "cost_sample"), 1);
        assert_eq!(
            agent.usage_status().as_deref(),
            Some(
                "usage unknown for 1 resource(s): CloudWatch refused GetMetricData (AccessDenied)"
            )
        );
        // Known again: three samples give a recommendation and the status clears.
        let mut out = Vec::new();
        for _ in 0..3 {
            out.extend(agent.assess(&[instance("m5.8xlarge", "3")], None, today()));
        }
        assert_eq!(recommendations(&out).len(), 1);
        assert_eq!(agent.usage_status(), None);
        // Unknown again: the recommendation made from known usage is neither
        // remade nor withdrawn on the strength of a missing figure.
        let out = agent.assess(std::slice::from_ref(&unknown), None, today());
        assert!(recommendations(&out).is_empty(), "{out:?}");
    }

    fn kube(id: &str, kind: &str, attrs: &[(&str, &str)]) -> Resource {
        let mut r = instance("m5.xlarge", "0");
        r.id = ResourceId::new(id);
        r.name = id.rsplit('/').next().unwrap().to_string();
        r.kind = kind.into();
        r.provider = Provider::Kubernetes;
        r.attributes = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        r
    }

    /// A priced node, its deployment and two pods requesting 2 CPUs and 4 GiB
    /// each; `usage` gives each pod's (cpu, memory) use, `None` for unknown.
    fn cluster(usage: [Option<(&str, Option<&str>)>; 2]) -> Vec<Resource> {
        let mut fleet = vec![
            kube(
                "node/a",
                "node",
                &[
                    ("context", "c"),
                    ("instance_type", "m5.xlarge"),
                    ("region", "us-east-1"),
                    ("cpu_capacity_millicores", "4000"),
                    ("memory_capacity_mib", "16384"),
                ],
            ),
            kube("dep/web", "deployment", &[("context", "c")]),
        ];
        for (i, u) in usage.iter().enumerate() {
            let mut attrs = vec![
                ("context", "c"),
                ("node", "a"),
                ("owner", "dep/web"),
                ("cpu_request_millicores", "2000"),
                ("memory_request_mib", "4096"),
            ];
            match u {
                Some((cpu, mem)) => {
                    attrs.push(("cpu_usage_millicores", cpu));
                    if let Some(mem) = mem {
                        attrs.push(("memory_usage_mib", mem));
                    }
                }
                None => attrs.push((
                    USAGE_UNKNOWN,
                    "usage unknown: metrics.k8s.io not served (404)",
                )),
            }
            fleet.push(kube(&format!("pod/web-{i}"), "pod", &attrs));
        }
        fleet
    }

    fn workload_recommendations(fleet: &[Resource]) -> Vec<(String, Option<Action>)> {
        let mut agent = CostAgent::new(&State::new(), CostSettings::default());
        let mut out = Vec::new();
        for _ in 0..4 {
            out.extend(agent.assess(fleet, None, today()));
        }
        recommendations(&out)
    }

    #[test]
    fn a_workload_is_rightsized_only_when_every_pod_reports_cpu_and_memory() {
        let known = workload_recommendations(&cluster([
            Some(("180", Some("256"))),
            Some(("210", Some("256"))),
        ]));
        assert_eq!(known.len(), 1, "{known:?}");
        let action = known[0].1.as_ref().unwrap();
        assert_eq!(action.params["cpu_request_millicores"], "210");
        assert_eq!(action.params["memory_request_mib"], "320");
        // One pod's usage unknown: nothing is said of the workload.
        let one_unknown = workload_recommendations(&cluster([Some(("180", Some("256"))), None]));
        assert!(one_unknown.is_empty(), "{one_unknown:?}");
        // CPU known but no memory figure: not a pod using no memory.
        let no_memory =
            workload_recommendations(&cluster([Some(("180", None)), Some(("210", None))]));
        assert!(no_memory.is_empty(), "{no_memory:?}");
    }

    #[test]
    fn after_a_restart_recommendations_are_not_withdrawn_before_history_returns() {
        let mut state = State::new();
        let mut agent = CostAgent::new(&state, CostSettings::default());
        let mut seq = 0;
        for _ in 0..3 {
            for kind in agent.assess(&[instance("m5.8xlarge", "3")], None, today()) {
                seq += 1;
                state.apply(&crate::event::Event {
                    seq,
                    at: chrono::DateTime::UNIX_EPOCH,
                    actor: ACTOR.into(),
                    kind,
                    prev_hash: crate::event::ChainHash::GENESIS,
                    hash: crate::event::ChainHash::GENESIS,
                });
            }
        }
        assert_eq!(state.cost.recommendations.len(), 1);
        let mut restarted = CostAgent::new(&state, CostSettings::default());
        let first = restarted.assess(&[instance("m5.8xlarge", "3")], None, today());
        assert_eq!(kinds(&first, "cost_recommendation"), 0, "{first:?}");
    }
}
