//! Alertmanager's webhook payload (version 4) turned into [`Alert`]s.
//!
//! Each alert of a notification becomes one alert for the runtime's intake:
//! `firing` opens or joins an incident, `resolved` lets it resolve. The
//! alert's `fingerprint` (Alertmanager's hash of its label set) is the dedup
//! key, so the repeats Alertmanager sends while an alert keeps firing join the
//! same incident instead of opening new ones.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::event::{Alert, AlertStatus, ResourceId, Severity};

/// Largest webhook body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// A webhook notification (only the fields used; others are ignored, as
/// Alertmanager adds fields within a version).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    version: String,
    alerts: Vec<AmAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmAlert {
    status: AmStatus,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    fingerprint: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AmStatus {
    Firing,
    Resolved,
}

/// Parses a webhook body; the error names the field at fault.
pub fn parse(body: &[u8]) -> Result<Vec<Alert>, String> {
    if body.len() > MAX_BODY {
        return Err(format!(
            "body of {} bytes exceeds the limit of {MAX_BODY} bytes",
            body.len()
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let n: Notification = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        format!("field `{path}`: {}", e.into_inner())
    })?;
    if n.version != "4" {
        return Err(format!(
            "field `version`: webhook payload version {:?} is not supported (expected \"4\")",
            n.version
        ));
    }
    n.alerts
        .into_iter()
        .enumerate()
        .map(|(i, a)| to_alert(i, a))
        .collect()
}

fn to_alert(index: usize, a: AmAlert) -> Result<Alert, String> {
    let name = a
        .labels
        .get("alertname")
        .filter(|n| !n.trim().is_empty())
        .cloned()
        .ok_or_else(|| format!("field `alerts[{index}].labels.alertname` is missing"))?;
    let severity = match a
        .labels
        .get("severity")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical" | "page" | "emergency") => Severity::Critical,
        Some("high" | "error" | "major") => Severity::High,
        Some("low" | "minor") => Severity::Low,
        Some("info" | "informational" | "none") => Severity::Info,
        _ => Severity::Medium,
    };
    let resource = resource_of(&a.labels);
    // Alertmanager always sends a fingerprint; fall back to the label set so a
    // hand-made payload still deduplicates.
    let fingerprint = if a.fingerprint.trim().is_empty() {
        let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("alertmanager:{}", labels.join(","))
    } else {
        format!("alertmanager:{}", a.fingerprint.trim())
    };
    // Annotations are templated from the workload's labels and values (a
    // log-based rule copies log lines): redacted before they are recorded.
    let summary = a
        .annotations
        .get("summary")
        .or_else(|| a.annotations.get("description"))
        .map(|s| crate::redact::line(s))
        .unwrap_or_default();
    Ok(Alert {
        name,
        severity,
        resource,
        fingerprint,
        summary,
        labels: a.labels,
        status: match a.status {
            AmStatus::Firing => AlertStatus::Firing,
            AmStatus::Resolved => AlertStatus::Resolved,
        },
        source: "alertmanager".into(),
    })
}

/// The resource an alert is about: an explicit `resource` label (a fleet id),
/// else the Kubernetes object its labels name, else its scrape target.
fn resource_of(labels: &BTreeMap<String, String>) -> ResourceId {
    let get = |k: &str| labels.get(k).filter(|v| !v.is_empty());
    if let Some(r) = get("resource") {
        return ResourceId::new(r.clone());
    }
    if let (Some(ns), Some(pod)) = (get("namespace"), get("pod")) {
        let cluster = get("cluster").map(String::as_str).unwrap_or("default");
        return ResourceId::new(format!("k8s/{cluster}/{ns}/pod/{pod}"));
    }
    match (get("job"), get("instance")) {
        (Some(job), Some(instance)) => ResourceId::new(format!("target/{job}/{instance}")),
        (None, Some(instance)) => ResourceId::new(format!("target/{instance}")),
        (Some(job), None) => ResourceId::new(format!("target/{job}")),
        (None, None) => ResourceId::new("alertmanager/unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "version": "4", "groupKey": "{}:{alertname=\"Down\"}", "truncatedAlerts": 0,
      "status": "firing", "receiver": "shieldops",
      "groupLabels": {"alertname": "Down"}, "commonLabels": {}, "commonAnnotations": {},
      "externalURL": "http://am", "alerts": [
        {"status": "firing", "labels": {"alertname": "Down", "severity": "critical",
          "job": "node", "instance": "db-1:9100"},
         "annotations": {"summary": "db-1 is down"},
         "startsAt": "2026-06-03T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prom", "fingerprint": "c0ffee"},
        {"status": "resolved", "labels": {"alertname": "Slow", "resource": "k8s/x/ns/pod/p"},
         "annotations": {}, "startsAt": "2026-06-03T10:00:00Z",
         "endsAt": "2026-06-03T10:05:00Z", "fingerprint": "beef"}
      ]}"#;

    #[test]
    fn summaries_are_redacted() {
        let payload = SAMPLE.replace(
            "db-1 is down",
            r"login failed: password=hunter2 \u001b]52;c;aGk=\u0007",
        );
        let a = &parse(payload.as_bytes()).unwrap()[0];
        assert_eq!(
            a.summary,
            r"login failed: password=[REDACTED] \x1b]52;c;aGk=\x07"
        );
    }

    #[test]
    fn parses_firing_and_resolved_alerts() {
        let alerts = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(alerts.len(), 2);
        let a = &alerts[0];
        assert_eq!(a.name, "Down");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.resource.as_str(), "target/node/db-1:9100");
        assert_eq!(a.fingerprint, "alertmanager:c0ffee");
        assert_eq!(a.summary, "db-1 is down");
        assert_eq!(a.source, "alertmanager");
        assert_eq!(alerts[1].status, AlertStatus::Resolved);
        assert_eq!(alerts[1].resource.as_str(), "k8s/x/ns/pod/p");
    }

    #[test]
    fn errors_name_the_field() {
        let e =
            parse(br#"{"version":"4","alerts":[{"status":"firing","labels":{}}]}"#).unwrap_err();
        assert!(e.contains("alerts[0].labels.alertname"), "{e}");
        let e = parse(br#"{"version":"4","alerts":[{"status":"weird","labels":{}}]}"#).unwrap_err();
        assert!(e.contains("alerts[0].status"), "{e}");
        let e = parse(br#"{"version":"3","alerts":[]}"#).unwrap_err();
        assert!(e.contains("version"), "{e}");
        assert!(parse(b"not json").is_err());
    }
}
