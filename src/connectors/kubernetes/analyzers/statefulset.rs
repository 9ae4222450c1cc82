//! StatefulSets: replicas not ready, an update stuck part-way or unfinished.

use k8s_openapi::api::apps::v1::StatefulSet;

use super::rollout::{in_progress, not_observed};
use super::{Finding, replicas_short};
use crate::event::HealthStatus;

/// Findings for one stateful set, judged as `kubectl rollout status` does:
/// the latest generation observed, every replica ready and available, and
/// (for rolling updates) every replica at the update revision.
pub fn analyze(s: &StatefulSet) -> Vec<Finding> {
    let spec = s.spec.as_ref();
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &s.status else {
        return not_observed("stateful set", s.metadata.generation, None)
            .into_iter()
            .collect();
    };
    if let Some(f) = not_observed(
        "stateful set",
        s.metadata.generation,
        status.observed_generation,
    ) {
        return vec![f];
    }
    let mut out: Vec<Finding> =
        replicas_short("stateful set", status.ready_replicas.unwrap_or(0), desired)
            .into_iter()
            .collect();
    let updated = status.updated_replicas.unwrap_or(0);
    // A partitioned update only rolls the ordinals at or above the partition.
    let partition = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
        .clamp(0, desired);
    let on_delete = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete");
    let revisions = (&status.current_revision, &status.update_revision);
    if let (Some(cur), Some(upd)) = revisions
        && cur != upd
    {
        let f = if updated < desired - partition && !out.is_empty() {
            Finding::new(
                HealthStatus::Degraded,
                "RollingUpdateStuck",
                format!("{updated}/{desired} replicas on revision {upd}"),
                "the rolling update is stuck: an updated pod does not become ready",
                0.6,
            )
        } else if on_delete {
            in_progress(
                "stateful set",
                "OnDeleteUpdatePending",
                format!(
                    "{updated}/{desired} replicas on revision {upd}: the OnDelete strategy only updates a pod when it is deleted"
                ),
            )
        } else if partition > 0 && updated >= desired - partition {
            // A finished partitioned roll-out keeps two revisions by design.
            return out;
        } else {
            in_progress(
                "stateful set",
                "RolloutIncomplete",
                format!("{updated}/{desired} replicas on revision {upd} (current revision {cur})"),
            )
        };
        out.push(f);
    }
    if let Some(available) = status.available_replicas
        && available < desired
        && out.is_empty()
    {
        out.push(in_progress(
            "stateful set",
            "ReplicasUnavailable",
            format!("{available} of {desired} replicas available"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::parse;

    #[test]
    fn stuck_update_is_found_and_ready_set_is_healthy() {
        let stuck = r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","generation":2},
          "spec":{"replicas":3,"serviceName":"db","selector":{"matchLabels":{"a":"db"}},"template":{"spec":{"containers":[{"name":"db","image":"pg:16"}]}}},
          "status":{"observedGeneration":2,"replicas":3,"readyReplicas":2,"updatedReplicas":1,"currentRevision":"db-1","updateRevision":"db-2"}}"#;
        let f = analyze(&parse(stuck));
        assert!(f.iter().any(|f| f.reason == "RollingUpdateStuck"));
        let ok = stuck
            .replace("\"readyReplicas\":2", "\"readyReplicas\":3")
            .replace("\"updatedReplicas\":1", "\"updatedReplicas\":3")
            .replace("db-2", "db-1");
        assert!(analyze(&parse(&ok)).is_empty());
    }

    /// The last pod updated and ready, the others still on the old revision:
    /// every pod is ready, yet the update is not done.
    #[test]
    fn ready_pods_on_two_revisions_are_an_unfinished_update() {
        let json = r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","generation":2},
          "spec":{"replicas":3,"serviceName":"db","selector":{"matchLabels":{"a":"db"}},"template":{"spec":{"containers":[{"name":"db","image":"pg:16"}]}}},
          "status":{"observedGeneration":2,"replicas":3,"readyReplicas":3,"availableReplicas":3,"updatedReplicas":1,"currentReplicas":2,"currentRevision":"db-1","updateRevision":"db-2"}}"#;
        let f = analyze(&parse(json));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].reason, "RolloutIncomplete");
        assert!(f[0].message.contains("1/3") && f[0].message.contains("db-2"));
        let unobserved = json.replace("\"observedGeneration\":2", "\"observedGeneration\":1");
        assert_eq!(analyze(&parse(&unobserved))[0].reason, "RolloutNotObserved");
        let partitioned = json.replace(
            "\"serviceName\":\"db\"",
            "\"serviceName\":\"db\",\"updateStrategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"partition\":2}}",
        );
        assert!(analyze(&parse(&partitioned)).is_empty());
    }
}
