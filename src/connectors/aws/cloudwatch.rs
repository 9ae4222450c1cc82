//! EC2 CPU from CloudWatch: `CPUUtilization` of each running instance over a
//! window, per period, with one `GetMetricData` call for up to 500 instances
//! (paged with `NextToken`). The window's mean and p95 feed rightsizing and
//! the Fleet pane. No datapoints, or a refused call, leave an instance's usage
//! unknown with the reason — never zero.

use std::collections::HashMap;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime as SmithyTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode,
};
use chrono::{DateTime, Utc};

use super::client::{AwsFailure, FailureKind};
use crate::event::{StringMap, USAGE_UNKNOWN};

/// The most queries one `GetMetricData` call takes.
const MAX_QUERIES: usize = 500;

/// Attribute keys the usage is published under.
const CPU_MEAN: &str = "cpu_util_pct";
const CPU_P95: &str = "cpu_util_p95_pct";
const CPU_DATAPOINTS: &str = "cpu_util_datapoints";

/// How far back, and in which steps, CPU is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub secs: u64,
    pub period_secs: u32,
}

/// One instance's CPU over the window.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum CpuUsage {
    Known {
        mean_pct: f64,
        p95_pct: f64,
        datapoints: usize,
    },
    /// Why nothing can be said.
    Unknown(String),
}

impl CpuUsage {
    /// Whether `fresh` differs enough from this to be published instead:
    /// known ↔ unknown, another reason, or a mean or p95 that moved.
    fn moved_to(&self, fresh: &CpuUsage) -> bool {
        use crate::event::usage_moved;
        match (self, fresh) {
            (
                CpuUsage::Known {
                    mean_pct: m0,
                    p95_pct: p0,
                    ..
                },
                CpuUsage::Known {
                    mean_pct: m1,
                    p95_pct: p1,
                    ..
                },
            ) => usage_moved(*m0, *m1) || usage_moved(*p0, *p1),
            (a, b) => a != b,
        }
    }

    /// Writes the usage (or why it is unknown) into a resource's attributes.
    pub fn publish(&self, attributes: &mut StringMap) {
        match self {
            CpuUsage::Known {
                mean_pct,
                p95_pct,
                datapoints,
            } => {
                attributes.insert(CPU_MEAN.into(), format!("{mean_pct:.1}"));
                attributes.insert(CPU_P95.into(), format!("{p95_pct:.1}"));
                attributes.insert(CPU_DATAPOINTS.into(), datapoints.to_string());
            }
            CpuUsage::Unknown(why) => {
                attributes.insert(USAGE_UNKNOWN.into(), why.clone());
            }
        }
    }
}

/// Reads CPU for a connector, remembering the answers for the current
/// period: CloudWatch's figures only change when a period closes, and every
/// metric requested is billed, so a listing every few seconds asks again
/// only for instances it has not asked about in this period.
pub(super) struct CpuReader {
    client: Client,
    window: Window,
    /// The period end the answers are for, and the answers.
    cache: tokio::sync::Mutex<(i64, HashMap<String, CpuUsage>)>,
    /// What was last published per instance, kept through small wobbles.
    published: tokio::sync::Mutex<HashMap<String, CpuUsage>>,
}

impl CpuReader {
    pub fn new(client: Client, window: Window) -> Self {
        Self {
            client,
            window,
            cache: tokio::sync::Mutex::new((i64::MIN, HashMap::new())),
            published: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// CPU of each instance in `instances` (EC2 ids) over the window ending
    /// at the last period boundary before `now`. Every instance asked for is
    /// in the answer, known or not.
    pub async fn read(
        &self,
        instances: &[String],
        now: DateTime<Utc>,
    ) -> HashMap<String, CpuUsage> {
        let period = i64::from(self.window.period_secs.max(60));
        // Periods aligned to their own length, as CloudWatch stores them.
        let end = now.timestamp().div_euclid(period) * period;
        let mut cache = self.cache.lock().await;
        if cache.0 != end {
            *cache = (end, HashMap::new());
        }
        let missing: Vec<String> = instances
            .iter()
            .filter(|i| !cache.1.contains_key(*i))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let start = end - (self.window.secs as i64).max(period);
            let fresh = cpu(&self.client, &missing, self.window, start, end).await;
            cache.1.extend(fresh);
        }
        let mut published = self.published.lock().await;
        // Instances gone from the fleet are forgotten.
        published.retain(|i, _| instances.contains(i));
        let mut out = HashMap::new();
        for i in instances {
            let Some(fresh) = cache.1.get(i) else {
                continue;
            };
            let shown = match published.get(i) {
                Some(old) if !old.moved_to(fresh) => old.clone(),
                _ => {
                    published.insert(i.clone(), fresh.clone());
                    fresh.clone()
                }
            };
            out.insert(i.clone(), shown);
        }
        out
    }
}

/// CPU of each instance over `start..end` (epoch seconds, period-aligned).
async fn cpu(
    client: &Client,
    instances: &[String],
    window: Window,
    start: i64,
    end: i64,
) -> HashMap<String, CpuUsage> {
    let mut out = HashMap::new();
    for batch in instances.chunks(MAX_QUERIES) {
        match batch_values(client, batch, window.period_secs, start, end).await {
            Ok(mut values) => {
                for (i, instance) in batch.iter().enumerate() {
                    let usage = match values.remove(&i) {
                        Some(Ok(v)) => summarise(&v, window),
                        Some(Err(why)) => CpuUsage::Unknown(why),
                        None => summarise(&[], window),
                    };
                    out.insert(instance.clone(), usage);
                }
            }
            Err(f) => {
                let why = refused(&f);
                for instance in batch {
                    out.insert(instance.clone(), CpuUsage::Unknown(why.clone()));
                }
            }
        }
    }
    out
}

/// The sentence an instance's usage gets when CloudWatch refused the call.
fn refused(f: &AwsFailure) -> String {
    match f.kind {
        FailureKind::Denied => format!(
            "usage unknown: CloudWatch refused GetMetricData ({}); grant cloudwatch:GetMetricData",
            f.message
        ),
        FailureKind::Throttled => format!(
            "usage unknown: CloudWatch throttled GetMetricData ({})",
            f.message
        ),
        _ => format!(
            "usage unknown: CloudWatch GetMetricData failed ({})",
            f.message
        ),
    }
}

/// Period averages per query index (the batch position), all pages read.
async fn batch_values(
    client: &Client,
    batch: &[String],
    period_secs: u32,
    start: i64,
    end: i64,
) -> Result<HashMap<usize, Result<Vec<f64>, String>>, AwsFailure> {
    let queries: Vec<MetricDataQuery> = batch
        .iter()
        .enumerate()
        .map(|(i, instance)| query(i, instance, period_secs))
        .collect();
    let mut values: HashMap<usize, Result<Vec<f64>, String>> = HashMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(SmithyTime::from_secs(start))
            .end_time(SmithyTime::from_secs(end))
            .scan_by(ScanBy::TimestampAscending)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsFailure::of("GetMetricData", &e))?;
        for result in page.metric_data_results() {
            // Ids are `q<index>`: anything else was not asked for.
            let Some(i) = result
                .id()
                .and_then(|id| id.strip_prefix('q'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|i| *i < batch.len())
            else {
                continue;
            };
            let entry = values.entry(i).or_insert_with(|| Ok(Vec::new()));
            if result.status_code() == Some(&StatusCode::Forbidden) {
                *entry = Err(
                    "usage unknown: CloudWatch answered Forbidden for this instance's CPUUtilization"
                        .into(),
                );
                continue;
            }
            if let Ok(v) = entry {
                // CPUUtilization is a percentage: anything else is not a reading.
                v.extend(
                    result
                        .values()
                        .iter()
                        .copied()
                        .filter(|x| x.is_finite() && (0.0..=100.0).contains(x)),
                );
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(values);
        }
    }
}

fn query(i: usize, instance: &str, period_secs: u32) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .dimensions(
            Dimension::builder()
                .name("InstanceId")
                .value(instance)
                .build(),
        )
        .build();
    MetricDataQuery::builder()
        .id(format!("q{i}"))
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(period_secs as i32)
                .stat("Average")
                .build(),
        )
        .return_data(true)
        .build()
}

/// The window's mean and p95 of period averages; none at all is unknown.
fn summarise(values: &[f64], window: Window) -> CpuUsage {
    if values.is_empty() {
        return CpuUsage::Unknown(format!(
            "usage unknown: no CloudWatch CPUUtilization datapoints in the last {} min \
             (instance just started, or its metrics are not published)",
            window.secs / 60
        ));
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let p95 = crate::sizing::percentile(values, 95.0).unwrap_or(mean);
    CpuUsage::Known {
        mean_pct: mean,
        p95_pct: p95,
        datapoints: values.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Window = Window {
        secs: 3600,
        period_secs: 300,
    };

    #[test]
    fn the_window_is_summarised_by_mean_and_nearest_rank_p95() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(
            summarise(&v, HOUR),
            CpuUsage::Known {
                mean_pct: 10.5,
                p95_pct: 19.0,
                datapoints: 20
            }
        );
    }

    #[test]
    fn no_datapoints_is_unknown_never_zero() {
        let CpuUsage::Unknown(why) = summarise(&[], HOUR) else {
            panic!("no datapoints must be unknown");
        };
        assert!(why.contains("no CloudWatch CPUUtilization datapoints in the last 60 min"));
        let mut attrs = StringMap::new();
        CpuUsage::Unknown(why).publish(&mut attrs);
        assert!(!attrs.contains_key(CPU_MEAN));
        assert!(attrs[USAGE_UNKNOWN].starts_with("usage unknown:"));
    }

    #[test]
    fn a_wobble_is_not_a_new_figure() {
        let known = |mean_pct, p95_pct| CpuUsage::Known {
            mean_pct,
            p95_pct,
            datapoints: 12,
        };
        assert!(!known(40.0, 60.0).moved_to(&known(42.0, 63.0)));
        assert!(known(40.0, 60.0).moved_to(&known(40.0, 70.0)));
        assert!(known(40.0, 60.0).moved_to(&CpuUsage::Unknown("x".into())));
        assert!(!CpuUsage::Unknown("x".into()).moved_to(&CpuUsage::Unknown("x".into())));
    }

    #[test]
    fn a_refusal_names_the_permission_to_grant() {
        let f = AwsFailure {
            kind: FailureKind::Denied,
            message: "GetMetricData: AccessDenied: not authorized".into(),
        };
        let why = refused(&f);
        assert!(why.contains("grant cloudwatch:GetMetricData"), "{why}");
        assert!(why.contains("AccessDenied"), "{why}");
    }
}
