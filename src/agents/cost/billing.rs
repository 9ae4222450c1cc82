//! Billing: daily cost lines from a bill (a cloud provider's cost API, a
//! billing export), and what the cost agent reads from them: per-service
//! departures from their own daily history, and team budgets' burn rates.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};

use super::anomaly::{Baseline, Departure};

pub use crate::connectors::BillingLine;

/// A source of billing lines (e.g. a provider's cost API through its connector).
#[async_trait]
pub trait BillingSource: Send + Sync {
    /// A name for errors and the pane.
    fn name(&self) -> String;
    /// Lines for the days `from..=to`.
    async fn lines(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<BillingLine>, String>;
}

/// AWS Cost Explorer, read with the AWS connector's credentials.
#[async_trait]
impl BillingSource for crate::connectors::aws::CostExplorer {
    fn name(&self) -> String {
        "AWS Cost Explorer".into()
    }

    async fn lines(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<BillingLine>, String> {
        // Cost Explorer's end date is exclusive; ours is inclusive.
        let end = to.succ_opt().unwrap_or(to);
        match self.daily_costs(from, end).await {
            Ok(Some(lines)) => Ok(lines),
            // Absent, not fatal: the agent falls back to estimating from the fleet.
            Ok(None) => Err("no permission to read Cost Explorer (ce:GetCostAndUsage)".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A service whose latest day departs from its own daily history.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDeparture {
    pub service: String,
    pub day: NaiveDate,
    /// In cents.
    pub departure: Departure,
    /// The days the baseline covered.
    pub from: NaiveDate,
}

/// Per service, whether the most recent billed day departs from the days before.
/// Amounts in another currency than `currency` are left out (never converted).
pub fn service_departures(lines: &[BillingLine], currency: &str) -> Vec<ServiceDeparture> {
    let mut daily: BTreeMap<&str, BTreeMap<NaiveDate, f64>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.currency == currency) {
        *daily
            .entry(l.service.as_str())
            .or_default()
            .entry(l.day)
            .or_default() += l.amount;
    }
    let mut out = Vec::new();
    for (service, days) in daily {
        let mut baseline = Baseline::default();
        let mut found = None;
        let first = days.keys().next().copied();
        for (day, amount) in &days {
            // Only the newest day can start a departure worth reporting now.
            found = baseline
                .observe((amount * 100.0).round().max(0.0) as u64)
                .map(|d| (*day, d));
        }
        if let (Some((day, departure)), Some(from)) = (found, first) {
            out.push(ServiceDeparture {
                service: service.to_string(),
                day,
                departure,
                from,
            });
        }
    }
    out
}

/// A team's monthly budget and how fast it is being spent.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetBurn {
    pub team: String,
    /// Cents.
    pub budget_cents: u64,
    /// Spent so far this month, cents.
    pub spent_cents: u64,
    /// The spend at this pace by the end of the month, cents.
    pub projected_cents: u64,
    /// Spent fraction of the budget over elapsed fraction of the month (1.0 = on budget).
    pub burn_rate: f64,
}

/// Burn rate per budgeted team from month-to-date lines up to and including `today`:
/// `(spent / budget) / (days elapsed / days in month)`.
pub fn budget_burn(
    lines: &[BillingLine],
    budgets_usd: &BTreeMap<String, f64>,
    today: NaiveDate,
    currency: &str,
) -> Vec<BudgetBurn> {
    let month_start = today.with_day(1).unwrap_or(today);
    let days_in_month = days_in_month(today) as f64;
    let elapsed = today.day() as f64;
    let mut spent: BTreeMap<&str, f64> = BTreeMap::new();
    for l in lines {
        if l.currency != currency || l.day < month_start || l.day > today {
            continue;
        }
        if let Some(team) = &l.team {
            *spent.entry(team.as_str()).or_default() += l.amount;
        }
    }
    budgets_usd
        .iter()
        .filter(|(_, b)| **b > 0.0)
        .map(|(team, budget)| {
            let s = spent.get(team.as_str()).copied().unwrap_or(0.0);
            let projected = s / elapsed * days_in_month;
            BudgetBurn {
                team: team.clone(),
                budget_cents: cents(*budget),
                spent_cents: cents(s),
                projected_cents: cents(projected),
                burn_rate: (s / budget) / (elapsed / days_in_month),
            }
        })
        .collect()
}

fn cents(usd: f64) -> u64 {
    (usd * 100.0).round().max(0.0) as u64
}

fn days_in_month(d: NaiveDate) -> u32 {
    let (y, m) = (d.year(), d.month());
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).map_or(30, |l| l.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(day: u32, service: &str, team: &str, amount: f64) -> BillingLine {
        BillingLine {
            day: NaiveDate::from_ymd_opt(2026, 6, day).unwrap(),
            service: service.into(),
            team: Some(team.into()),
            amount,
            currency: "USD".into(),
        }
    }

    #[test]
    fn a_service_whose_last_day_jumps_is_reported_once_with_its_window() {
        let mut lines: Vec<BillingLine> = (1..=10)
            .map(|d| line(d, "AmazonEC2", "data", 120.0 + (d % 3) as f64))
            .collect();
        lines.push(line(11, "AmazonEC2", "data", 480.0));
        lines.extend((1..=11).map(|d| line(d, "AmazonS3", "data", 10.0)));
        let found = service_departures(&lines, "USD");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].service, "AmazonEC2");
        assert_eq!(found[0].day, NaiveDate::from_ymd_opt(2026, 6, 11).unwrap());
        assert_eq!(found[0].departure.expected, 12100);
        assert_eq!(found[0].departure.actual, 48000);
        assert_eq!(found[0].departure.window, 10);
    }

    #[test]
    fn burn_rate_is_spent_share_over_elapsed_share() {
        // June has 30 days; on the 10th a third of the month has passed.
        // data spent 10 × $50 = $500 of $1000: half the budget in a third of the month.
        let lines: Vec<BillingLine> = (1..=10)
            .map(|d| line(d, "AmazonEC2", "data", 50.0))
            .collect();
        let mut budgets = BTreeMap::new();
        budgets.insert("data".to_string(), 1000.0);
        budgets.insert("search".to_string(), 200.0);
        let today = NaiveDate::from_ymd_opt(2026, 6, 10).unwrap();
        let burn = budget_burn(&lines, &budgets, today, "USD");
        assert_eq!(burn.len(), 2);
        assert_eq!(burn[0].team, "data");
        assert_eq!(burn[0].spent_cents, 50_000);
        assert_eq!(burn[0].projected_cents, 150_000);
        assert!((burn[0].burn_rate - 1.5).abs() < 1e-9);
        assert_eq!(burn[1].spent_cents, 0);
        assert_eq!(burn[1].burn_rate, 0.0);
    }
}
