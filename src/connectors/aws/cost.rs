//! Cost Explorer as a billing source: daily `GetCostAndUsage` grouped by
//! service and by the team tag. Without permission the source is absent
//! (`Ok(None)`), never an error that stops anything.

use std::collections::HashMap;

use aws_sdk_costexplorer::Client;
use aws_sdk_costexplorer::types::{
    DateInterval, Granularity, GroupDefinition, GroupDefinitionType, MetricValue,
};
use chrono::NaiveDate;

use super::client::{self, AwsFailure, FailureKind, Target};
use crate::connectors::{ConnectorError, Result};

/// The metric asked for: what was billed, before credits and discounts are spread.
const METRIC: &str = "UnblendedCost";

pub use crate::connectors::BillingLine;

/// Cost Explorer for one profile (Cost Explorer is global: one per account).
pub struct CostExplorer {
    client: Client,
    team_tag: String,
}

impl CostExplorer {
    /// Builds the source from the same profile and credential chain as the fleet.
    pub async fn connect(
        profile: Option<&str>,
        config: &super::AwsConfig,
        files: Option<&super::ProfileFiles>,
    ) -> CostExplorer {
        let target = Target {
            profile: profile.map(str::to_string),
            // Cost Explorer answers in us-east-1 whatever the fleet's regions.
            region: Some("us-east-1".into()),
        };
        let sdk = client::load(&target, config, files).await;
        CostExplorer {
            client: Client::new(&sdk),
            team_tag: config.team_tag.clone(),
        }
    }

    /// Daily costs from `from` (inclusive) to `to` (exclusive), every page.
    /// `Ok(None)`: no permission to read Cost Explorer, so the source is absent.
    pub async fn daily_costs(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<Vec<BillingLine>>> {
        if to <= from {
            return Err(ConnectorError::BadParam {
                action: "daily_costs".into(),
                param: "to".into(),
                reason: format!("{to} is not after {from}"),
            });
        }
        let period = DateInterval::builder()
            .start(from.format("%Y-%m-%d").to_string())
            .end(to.format("%Y-%m-%d").to_string())
            .build()
            .map_err(|e| ConnectorError::Backend(format!("GetCostAndUsage: {e}")))?;
        let mut lines = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let result = self
                .client
                .get_cost_and_usage()
                .time_period(period.clone())
                .granularity(Granularity::Daily)
                .metrics(METRIC)
                .group_by(
                    GroupDefinition::builder()
                        .r#type(GroupDefinitionType::Dimension)
                        .key("SERVICE")
                        .build(),
                )
                .group_by(
                    GroupDefinition::builder()
                        .r#type(GroupDefinitionType::Tag)
                        .key(&self.team_tag)
                        .build(),
                )
                .set_next_page_token(token.take())
                .send()
                .await;
            let page = match result {
                Ok(page) => page,
                Err(e) => {
                    let failure = AwsFailure::of("GetCostAndUsage", &e);
                    if failure.kind == FailureKind::Denied {
                        tracing::info!("Cost Explorer is absent: {}", failure.message);
                        return Ok(None);
                    }
                    return Err(failure.into());
                }
            };
            for by_time in page.results_by_time() {
                let start = by_time.time_period().map(|p| p.start()).unwrap_or_default();
                let day = NaiveDate::parse_from_str(start, "%Y-%m-%d").map_err(|e| {
                    ConnectorError::Backend(format!(
                        "GetCostAndUsage: ResultsByTime.TimePeriod.Start `{start}` is not a date: {e}"
                    ))
                })?;
                for group in by_time.groups() {
                    if let Some(line) = line(day, group.keys(), group.metrics(), &self.team_tag)? {
                        lines.push(line);
                    }
                }
            }
            match page.next_page_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(Some(lines))
    }
}

/// One group of a day: keys are `[service, "<tag>$<value>"]`; an empty tag
/// value means untagged spend.
fn line(
    day: NaiveDate,
    keys: &[String],
    metrics: Option<&HashMap<String, MetricValue>>,
    team_tag: &str,
) -> Result<Option<BillingLine>> {
    let Some(metric) = metrics.and_then(|m| m.get(METRIC)) else {
        return Ok(None);
    };
    let service = keys.first().cloned().unwrap_or_default();
    let team = keys
        .get(1)
        .and_then(|k| {
            k.strip_prefix(team_tag)
                .and_then(|r| r.strip_prefix('$'))
                .or(k.split_once('$').map(|(_, v)| v))
        })
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let raw = metric.amount().unwrap_or("");
    let amount: f64 = raw
        .parse()
        .ok()
        .filter(|a: &f64| a.is_finite())
        .ok_or_else(|| {
            ConnectorError::Backend(format!(
                "GetCostAndUsage: Groups[{}].Metrics.{METRIC}.Amount `{raw}` is not a number",
                keys.join(",")
            ))
        })?;
    Ok(Some(BillingLine {
        day,
        service,
        team,
        amount,
        currency: metric.unit().unwrap_or("USD").to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(amount: &str) -> HashMap<String, MetricValue> {
        HashMap::from([(
            METRIC.to_string(),
            MetricValue::builder().amount(amount).unit("USD").build(),
        )])
    }

    #[test]
    fn team_comes_from_the_tag_key() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let keys = vec!["Amazon EC2".to_string(), "team$payments".to_string()];
        let l = line(day, &keys, Some(&metrics("12.5")), "team")
            .unwrap()
            .unwrap();
        assert_eq!(l.team.as_deref(), Some("payments"));
        assert_eq!(l.amount, 12.5);
        let untagged = vec!["Amazon EC2".to_string(), "team$".to_string()];
        let l = line(day, &untagged, Some(&metrics("1")), "team")
            .unwrap()
            .unwrap();
        assert_eq!(l.team, None);
    }

    #[test]
    fn a_bad_amount_names_the_field() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let keys = vec!["Amazon EC2".to_string(), "team$a".to_string()];
        let e = line(day, &keys, Some(&metrics("lots")), "team")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Amount") && e.contains("lots"), "{e}");
    }
}
