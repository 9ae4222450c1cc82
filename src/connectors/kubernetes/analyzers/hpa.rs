//! HorizontalPodAutoscalers: metrics that cannot be read, or scaling held at
//! the maximum. An HPA resting at its minimum is the normal quiet state and is
//! not reported.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use super::Finding;
use crate::event::HealthStatus;

/// Findings for one autoscaler.
pub fn analyze(h: &HorizontalPodAutoscaler) -> Vec<Finding> {
    let mut out = Vec::new();
    let max = h.spec.as_ref().map(|s| s.max_replicas).unwrap_or(0);
    for c in h.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
        let reason = c.reason.clone().unwrap_or_default();
        match (c.type_.as_str(), c.status.as_str(), reason.as_str()) {
            ("ScalingActive", "False", r) if r != "ScalingDisabled" => out.push(Finding::new(
                HealthStatus::Degraded,
                reason.clone(),
                c.message.clone().unwrap_or_default(),
                "the autoscaler cannot read its metrics (metrics server or adapter)",
                0.5,
            )),
            ("AbleToScale", "False", _) => out.push(Finding::new(
                HealthStatus::Degraded,
                reason.clone(),
                c.message.clone().unwrap_or_default(),
                "the autoscaler cannot change its target's scale",
                0.5,
            )),
            ("ScalingLimited", "True", "TooManyReplicas") => out.push(
                Finding::new(
                    HealthStatus::Degraded,
                    "AtMaxReplicas",
                    format!(
                        "held at maxReplicas {max}: {}",
                        c.message.clone().unwrap_or_default()
                    ),
                    "demand exceeds the autoscaler's maximum",
                    0.5,
                )
                .suggest(
                    "scale",
                    &[("replicas", (max + max / 2).max(max + 1).to_string())],
                    false,
                ),
            ),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::parse;

    const HPA: &str = r#"{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"web"},
      "spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"minReplicas":2,"maxReplicas":10},
      "status":{"currentReplicas":2,"desiredReplicas":2,"conditions":[
        {"type":"AbleToScale","status":"True","reason":"ReadyForNewScale"},
        {"type":"ScalingActive","status":"True","reason":"ValidMetricFound"},
        {"type":"ScalingLimited","status":"True","reason":"TooFewReplicas","message":"the desired replica count is less than the minimum replica count"}]}}"#;

    #[test]
    fn at_minimum_is_quiet() {
        assert!(analyze(&parse(HPA)).is_empty());
    }

    #[test]
    fn at_maximum_and_missing_metrics_are_found() {
        let max = HPA.replace("TooFewReplicas", "TooManyReplicas");
        assert_eq!(analyze(&parse(&max))[0].reason, "AtMaxReplicas");
        let metrics = HPA.replace(
            r#""ScalingActive","status":"True","reason":"ValidMetricFound""#,
            r#""ScalingActive","status":"False","reason":"FailedGetResourceMetric""#,
        );
        assert_eq!(
            analyze(&parse(&metrics))[0].reason,
            "FailedGetResourceMetric"
        );
    }
}
