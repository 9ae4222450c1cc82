//! ReplicaSets: creation failures and missing replicas.

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::{Finding, replicas_short};
use crate::event::HealthStatus;

/// Findings for one replica set.
pub fn analyze(rs: &ReplicaSet) -> Vec<Finding> {
    let mut out = Vec::new();
    let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &rs.status else {
        return out;
    };
    for c in status.conditions.iter().flatten() {
        if c.type_ == "ReplicaFailure" && c.status == "True" {
            out.push(Finding::new(
                HealthStatus::Unhealthy,
                c.reason.clone().unwrap_or_else(|| "ReplicaFailure".into()),
                c.message.clone().unwrap_or_default(),
                "pods cannot be created (quota, admission or a missing service account)",
                0.7,
            ));
        }
    }
    if out.is_empty() {
        out.extend(replicas_short(
            "replica set",
            status.ready_replicas.unwrap_or(0),
            desired,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::{health_of, parse};

    #[test]
    fn quota_failure_is_named() {
        let json = r#"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web-5d8"},
          "spec":{"replicas":2,"selector":{"matchLabels":{"a":"b"}}},
          "status":{"replicas":0,"conditions":[{"type":"ReplicaFailure","status":"True","reason":"FailedCreate",
            "message":"pods \"web-5d8-x\" is forbidden: exceeded quota: compute"}]}}"#;
        let h = health_of(&analyze(&parse(json)));
        assert_eq!(h.reason, "FailedCreate");
        assert!(h.message.contains("exceeded quota"));
    }

    #[test]
    fn old_replica_set_scaled_to_zero_is_healthy() {
        let json = r#"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web-1"},
          "spec":{"replicas":0,"selector":{"matchLabels":{"a":"b"}}},"status":{"replicas":0}}"#;
        assert!(analyze(&parse(json)).is_empty());
    }
}
