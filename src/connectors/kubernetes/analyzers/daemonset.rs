//! DaemonSets: unavailable or misscheduled daemon pods.

use k8s_openapi::api::apps::v1::DaemonSet;

use super::Finding;
use crate::event::HealthStatus;

/// Findings for one daemon set.
pub fn analyze(d: &DaemonSet) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(s) = &d.status else {
        return out;
    };
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
        let json = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"fluentd"},
          "spec":{"selector":{"matchLabels":{"a":"f"}},"template":{"spec":{"containers":[{"name":"f","image":"f"}]}}},
          "status":{"currentNumberScheduled":3,"desiredNumberScheduled":3,"numberMisscheduled":0,"numberReady":2,"numberUnavailable":1}}"#;
        let f = analyze(&parse(json));
        assert_eq!(f[0].reason, "DaemonPodsUnavailable");
        assert_eq!(f[0].status, HealthStatus::Degraded);
        let ok = json.replace(
            "\"numberReady\":2,\"numberUnavailable\":1",
            "\"numberReady\":3",
        );
        assert!(analyze(&parse(&ok)).is_empty());
    }
}
