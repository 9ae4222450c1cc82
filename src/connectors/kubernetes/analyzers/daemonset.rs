//! DaemonSets: unavailable, misscheduled or not yet updated daemon pods.

use k8s_openapi::api::apps::v1::DaemonSet;

use super::Finding;
use super::rollout::{in_progress, not_observed};
use crate::event::HealthStatus;

/// Findings for one daemon set: the latest generation observed, every
/// scheduled daemon pod updated and available (`kubectl rollout status`).
pub fn analyze(d: &DaemonSet) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(s) = &d.status else {
        out.extend(not_observed("daemon set", d.metadata.generation, None));
        return out;
    };
    if let Some(f) = not_observed("daemon set", d.metadata.generation, s.observed_generation) {
        out.push(f);
        return out;
    }
    let unavailable = s.number_unavailable.unwrap_or(0);
    if unavailable > 0 {
        let status = if s.number_ready == 0 && s.desired_number_scheduled > 0 {
            HealthStatus::Unhealthy
        } else {
            HealthStatus::Degraded
        };
        out.push(Finding::new(
            status,
            "DaemonPodsUnavailable",
            format!(
                "{unavailable} of {} daemon pods unavailable",
                s.desired_number_scheduled
            ),
            "daemon pods fail on some nodes",
            0.5,
        ));
    }
    let desired = s.desired_number_scheduled;
    let updated = s.updated_number_scheduled.unwrap_or(0);
    let available = s.number_available.unwrap_or(0);
    if updated < desired {
        out.push(in_progress(
            "daemon set",
            "RolloutIncomplete",
            format!("{updated}/{desired} daemon pods updated to the latest pod template"),
        ));
    }
    if available < desired && unavailable == 0 {
        out.push(in_progress(
            "daemon set",
            "DaemonPodsUnavailable",
            format!("{available} of {desired} daemon pods available"),
        ));
    }
    if s.number_misscheduled > 0 {
        out.push(Finding::new(
            HealthStatus::Degraded,
            "Misscheduled",
            format!(
                "{} daemon pods run where they should not",
                s.number_misscheduled
            ),
            "node labels or taints changed under the daemon set",
            0.4,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::parse;

    #[test]
    fn unavailable_daemon_pods() {
        let json = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"fluentd","generation":4},
          "spec":{"selector":{"matchLabels":{"a":"f"}},"template":{"spec":{"containers":[{"name":"f","image":"f"}]}}},
          "status":{"observedGeneration":4,"currentNumberScheduled":3,"desiredNumberScheduled":3,"numberMisscheduled":0,"numberReady":2,"numberAvailable":2,"numberUnavailable":1,"updatedNumberScheduled":3}}"#;
        let f = analyze(&parse(json));
        assert_eq!(f[0].reason, "DaemonPodsUnavailable");
        assert_eq!(f[0].status, HealthStatus::Degraded);
        let ok = json.replace(
            "\"numberReady\":2,\"numberAvailable\":2,\"numberUnavailable\":1",
            "\"numberReady\":3,\"numberAvailable\":3",
        );
        assert!(analyze(&parse(&ok)).is_empty());
    }

    #[test]
    fn a_daemon_set_part_way_through_its_update_is_not_healthy() {
        let json = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"fluentd","generation":5},
          "spec":{"selector":{"matchLabels":{"a":"f"}},"template":{"spec":{"containers":[{"name":"f","image":"f:2"}]}}},
          "status":{"observedGeneration":5,"currentNumberScheduled":3,"desiredNumberScheduled":3,"numberMisscheduled":0,"numberReady":3,"numberAvailable":3,"updatedNumberScheduled":1}}"#;
        let f = analyze(&parse(json));
        assert_eq!(f[0].reason, "RolloutIncomplete");
        assert!(f[0].message.contains("1/3"));
        let unobserved = json.replace("\"observedGeneration\":5", "\"observedGeneration\":4");
        assert_eq!(analyze(&parse(&unobserved))[0].reason, "RolloutNotObserved");
        let done = json.replace(
            "\"updatedNumberScheduled\":1",
            "\"updatedNumberScheduled\":3",
        );
        assert!(analyze(&parse(&done)).is_empty());
    }
}
