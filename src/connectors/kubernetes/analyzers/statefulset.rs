//! StatefulSets: replicas not ready, an update stuck part-way.

use k8s_openapi::api::apps::v1::StatefulSet;

use super::{Finding, replicas_short};
use crate::event::HealthStatus;

/// Findings for one stateful set.
pub fn analyze(s: &StatefulSet) -> Vec<Finding> {
    let desired = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &s.status else {
        return Vec::new();
    };
    let mut out: Vec<Finding> =
        replicas_short("stateful set", status.ready_replicas.unwrap_or(0), desired)
            .into_iter()
            .collect();
    if let (Some(cur), Some(upd)) = (&status.current_revision, &status.update_revision)
        && cur != upd
        && status.updated_replicas.unwrap_or(0) < desired
        && !out.is_empty()
    {
        out.push(Finding::new(
            HealthStatus::Degraded,
            "RollingUpdateStuck",
            format!(
                "{}/{desired} replicas on revision {upd}",
                status.updated_replicas.unwrap_or(0)
            ),
            "the rolling update is stuck: an updated pod does not become ready",
            0.6,
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
        let stuck = r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db"},
          "spec":{"replicas":3,"serviceName":"db","selector":{"matchLabels":{"a":"db"}},"template":{"spec":{"containers":[{"name":"db","image":"pg:16"}]}}},
          "status":{"replicas":3,"readyReplicas":2,"updatedReplicas":1,"currentRevision":"db-1","updateRevision":"db-2"}}"#;
        let f = analyze(&parse(stuck));
        assert!(f.iter().any(|f| f.reason == "RollingUpdateStuck"));
        let ok = stuck
            .replace("\"readyReplicas\":2", "\"readyReplicas\":3")
            .replace("\"updatedReplicas\":1", "\"updatedReplicas\":3")
            .replace("db-2", "db-1");
        assert!(analyze(&parse(&ok)).is_empty());
    }
}
