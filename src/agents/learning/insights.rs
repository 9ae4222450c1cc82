//! Insights from the tally: each with a topic (what it is about), a sentence
//! that states its evidence, and the figures behind it. Every figure is a
//! count, a mean or a ratio of counts from the log, so an operator can check
//! it by hand; percentages come from counts and cannot exceed 100.

use std::collections::BTreeMap;

use super::tally::Tally;
use crate::event::RemediationOutcome;

/// Incidents of a type needed before a trend is stated.
pub const MIN_FOR_TREND: usize = 4;
/// Judged hypotheses needed before a confidence threshold is recommended.
pub const MIN_VERDICTS: usize = 5;
/// Precision a recommended confidence threshold must have reached.
pub const TARGET_PRECISION: f64 = 0.9;
/// Validations needed before a validation timeout is recommended.
pub const MIN_VALIDATIONS: usize = 5;

/// One insight.
#[derive(Debug, Clone, PartialEq)]
pub struct Insight {
    pub topic: String,
    pub insight: String,
    pub metrics: BTreeMap<String, f64>,
}

fn insight(topic: String, text: String, metrics: &[(&str, f64)]) -> Insight {
    Insight {
        topic,
        insight: text,
        metrics: metrics
            .iter()
            .map(|(k, v)| (k.to_string(), round2(*v)))
            .collect(),
    }
}

/// Every insight the tally supports, in topic order.
pub fn insights(t: &Tally) -> Vec<Insight> {
    let mut out = Vec::new();
    out.extend(mttr(t));
    out.extend(playbooks(t));
    out.extend(hypotheses(t));
    out.extend(recurring(t));
    out.extend(confidence_threshold(t));
    out.extend(validation_timeout(t));
    out.sort_by(|a, b| a.topic.cmp(&b.topic));
    out
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Mean time to resolve per alert, and its trend: the mean of the later half
/// of incidents (by opening time) minus the mean of the earlier half.
fn mttr(t: &Tally) -> Vec<Insight> {
    let mut by_alert: BTreeMap<&str, Vec<(chrono::DateTime<chrono::Utc>, f64)>> = BTreeMap::new();
    for i in t.incidents.values() {
        if let Some(r) = i.resolved_at {
            let minutes = ((r - i.opened_at).num_milliseconds() as f64 / 60_000.0).max(0.0);
            by_alert
                .entry(i.alert.as_str())
                .or_default()
                .push((i.opened_at, minutes));
        }
    }
    let mut out = Vec::new();
    for (alert, mut samples) in by_alert {
        samples.sort_by_key(|s| s.0);
        let minutes: Vec<f64> = samples.iter().map(|s| s.1).collect();
        let n = minutes.len();
        let avg = mean(&minutes);
        let mut metrics = vec![("mttr_minutes", avg), ("incidents", n as f64)];
        let mut text = format!(
            "{alert}: mean time to resolve {avg:.1} min over {n} incident{}",
            if n == 1 { "" } else { "s" }
        );
        if n >= MIN_FOR_TREND {
            let half = n / 2;
            let early = mean(&minutes[..half]);
            let late = mean(&minutes[n - half..]);
            let trend = late - early;
            metrics.push(("trend_minutes", trend));
            text.push_str(&format!(
                "; {} {:.1} min (last {half}: {late:.1}, first {half}: {early:.1})",
                if trend <= 0.0 {
                    "improving by"
                } else {
                    "worsening by"
                },
                trend.abs()
            ));
        }
        out.push(insight(format!("mttr:{alert}"), text, &metrics));
    }
    out
}

/// Per playbook (or bare action): success rate among remediations that ran,
/// restores, and mean time from execution to a finished validation.
fn playbooks(t: &Tally) -> Vec<Insight> {
    #[derive(Default)]
    struct Acc {
        ran: u32,
        succeeded: u32,
        restores: u32,
        not_run: u32,
        validation_secs: Vec<f64>,
    }
    let mut by_key: BTreeMap<String, Acc> = BTreeMap::new();
    for r in t.remediations.values() {
        let Some(outcome) = r.outcome else { continue };
        let acc = by_key.entry(r.key()).or_default();
        if r.executed_at.is_none() {
            acc.not_run += 1;
            continue;
        }
        acc.ran += 1;
        if outcome == RemediationOutcome::Succeeded {
            acc.succeeded += 1;
        }
        if r.restored {
            acc.restores += 1;
        }
        if let (Some(x), Some((v, _))) = (r.executed_at, r.validated) {
            acc.validation_secs
                .push(((v - x).num_milliseconds() as f64 / 1000.0).max(0.0));
        }
    }
    let mut out = Vec::new();
    for (key, a) in by_key {
        let topic = key.replacen(' ', ":", 1);
        if a.ran == 0 {
            out.push(insight(
                topic,
                format!(
                    "{key}: proposed {} time(s), never ran (denied, expired or aborted)",
                    a.not_run
                ),
                &[("runs", 0.0), ("not_run", a.not_run as f64)],
            ));
            continue;
        }
        let rate = a.succeeded as f64 / a.ran as f64;
        let mut metrics = vec![
            ("runs", a.ran as f64),
            ("succeeded", a.succeeded as f64),
            ("success_rate", rate),
            ("restores", a.restores as f64),
            ("not_run", a.not_run as f64),
        ];
        let mut text = format!(
            "{key}: {} of {} succeeded ({:.0}%), {} restored",
            a.succeeded,
            a.ran,
            rate * 100.0,
            a.restores
        );
        if !a.validation_secs.is_empty() {
            let ttv = mean(&a.validation_secs);
            metrics.push(("validation_secs", ttv));
            text.push_str(&format!(", validated in {ttv:.0} s on average"));
        }
        out.push(insight(topic, text, &metrics));
    }
    out
}

/// Judged hypotheses: (confidence, rank, confirmed).
fn verdicts(t: &Tally) -> Vec<(f64, usize, bool)> {
    t.feedback
        .iter()
        .filter_map(|((inv, title), confirmed)| {
            let ranking = t.rankings.get(inv)?;
            let rank = ranking.iter().position(|(h, _)| h == title)?;
            Some((ranking[rank].1, rank, *confirmed))
        })
        .collect()
}

/// Hypothesis accuracy from operators' verdicts, overall and for the top-ranked.
fn hypotheses(t: &Tally) -> Vec<Insight> {
    let v = verdicts(t);
    if v.is_empty() {
        return Vec::new();
    }
    let confirmed = v.iter().filter(|x| x.2).count();
    let top: Vec<_> = v.iter().filter(|x| x.1 == 0).collect();
    let top_confirmed = top.iter().filter(|x| x.2).count();
    let accuracy = confirmed as f64 / v.len() as f64;
    let mut metrics = vec![
        ("verdicts", v.len() as f64),
        ("confirmed", confirmed as f64),
        ("accuracy", accuracy),
        ("top_verdicts", top.len() as f64),
    ];
    let mut text = format!(
        "hypotheses: {confirmed} of {} judged were confirmed ({:.0}%)",
        v.len(),
        accuracy * 100.0
    );
    if !top.is_empty() {
        let top_accuracy = top_confirmed as f64 / top.len() as f64;
        metrics.push(("top_accuracy", top_accuracy));
        text.push_str(&format!(
            "; the top-ranked one {top_confirmed} of {} ({:.0}%)",
            top.len(),
            top_accuracy * 100.0
        ));
    }
    vec![insight("hypotheses:accuracy".into(), text, &metrics)]
}

/// Incidents whose fingerprint came back.
fn recurring(t: &Tally) -> Vec<Insight> {
    let mut by_fp: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for i in t.incidents.values() {
        by_fp
            .entry(i.fingerprint.as_str())
            .or_insert((0, &i.alert))
            .0 += 1;
    }
    by_fp
        .into_iter()
        .filter(|(_, (n, _))| *n >= 2)
        .map(|(fp, (n, alert))| {
            insight(
                format!("recurring:{fp}"),
                format!("{alert} on {fp} has opened {n} incidents: consider a lasting fix"),
                &[("occurrences", n as f64)],
            )
        })
        .collect()
}

/// The lowest confidence at which judged hypotheses were right at least
/// [`TARGET_PRECISION`] of the time (as a percentage, 1–100), as a threshold
/// for proposing remediations automatically.
fn confidence_threshold(t: &Tally) -> Option<Insight> {
    let mut v = verdicts(t);
    if v.len() < MIN_VERDICTS {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Walk up the confidences keeping the counts at or above the current one.
    let mut judged = v.len();
    let mut right = v.iter().filter(|x| x.2).count();
    for x in &v {
        if judged < 3 {
            break;
        }
        let precision = right as f64 / judged as f64;
        if precision >= TARGET_PRECISION {
            let pct = (x.0 * 100.0).round().clamp(1.0, 100.0);
            return Some(insight(
                "threshold:auto_propose_confidence".into(),
                format!(
                    "propose automatically from {pct:.0}% confidence: of the {judged} judged hypotheses at or above it, {right} were confirmed ({:.0}%)",
                    precision * 100.0
                ),
                &[
                    ("recommended_pct", pct),
                    ("judged", judged as f64),
                    ("confirmed", right as f64),
                    ("precision", precision),
                ],
            ));
        }
        judged -= 1;
        right -= x.2 as usize;
    }
    None
}

/// A validation timeout that covers the observed validations with room:
/// 1.5 × their 95th percentile, in whole ten seconds, within 30 s–1 h.
fn validation_timeout(t: &Tally) -> Option<Insight> {
    let mut secs: Vec<f64> = t
        .remediations
        .values()
        .filter_map(|r| match (r.executed_at, r.validated) {
            (Some(x), Some((v, true))) => {
                Some(((v - x).num_milliseconds() as f64 / 1000.0).max(0.0))
            }
            _ => None,
        })
        .collect();
    if secs.len() < MIN_VALIDATIONS {
        return None;
    }
    secs.sort_by(f64::total_cmp);
    let rank = ((0.95 * secs.len() as f64).ceil() as usize).clamp(1, secs.len());
    let p95 = secs[rank - 1];
    let recommended = ((p95 * 1.5 / 10.0).ceil() * 10.0).clamp(30.0, 3600.0);
    Some(insight(
        "threshold:validation_timeout_secs".into(),
        format!(
            "validation timeout {recommended:.0} s: 1.5 × the 95th percentile ({p95:.0} s) of {} passed validations, within 30 s–1 h",
            secs.len()
        ),
        &[
            ("recommended_secs", recommended),
            ("p95_secs", p95),
            ("validations", secs.len() as f64),
        ],
    ))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
