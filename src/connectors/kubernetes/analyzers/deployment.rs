//! Deployments: stalled rollouts, unavailable replicas.

use k8s_openapi::api::apps::v1::Deployment;

use super::{Finding, replicas_short};
use crate::event::HealthStatus;

/// Findings for one deployment.
pub fn analyze(d: &Deployment) -> Vec<Finding> {
    let mut out = Vec::new();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &d.status else {
        return out;
    };
    for c in status.conditions.iter().flatten() {
        match (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()) {
            ("Progressing", "False", reason) => out.push(
                Finding::new(
                    HealthStatus::Unhealthy,
                    reason.unwrap_or("ProgressDeadlineExceeded"),
                    c.message.clone().unwrap_or_default(),
                    "the latest rollout does not progress: its new pods fail",
                    0.7,
                )
                .suggest("rollback_deployment", &[], false),
            ),
            ("ReplicaFailure", "True", reason) => out.push(Finding::new(
                HealthStatus::Unhealthy,
                reason.unwrap_or("ReplicaFailure"),
                c.message.clone().unwrap_or_default(),
                "pods cannot be created (quota or admission refused them)",
                0.6,
            )),
            _ => {}
        }
    }
    if out.is_empty() {
        let ready = status.ready_replicas.unwrap_or(0);
        out.extend(replicas_short("deployment", ready, desired));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::{health_of, parse};

    #[test]
    fn stalled_rollout_suggests_rollback() {
        let json = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"checkout","namespace":"payments"},
          "spec":{"replicas":3,"selector":{"matchLabels":{"app":"checkout"}},"template":{"metadata":{"labels":{"app":"checkout"}},"spec":{"containers":[{"name":"app","image":"checkout:1.5.0"}]}}},
          "status":{"replicas":4,"readyReplicas":2,"updatedReplicas":1,"conditions":[
            {"type":"Available","status":"True","reason":"MinimumReplicasAvailable"},
            {"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"ReplicaSet \"checkout-5b8\" has timed out progressing."}]}}"#;
        let f = analyze(&parse(json));
        assert_eq!(health_of(&f).reason, "ProgressDeadlineExceeded");
        assert_eq!(
            f[0].action.as_ref().map(|a| a.name),
            Some("rollback_deployment")
        );
    }

    #[test]
    fn available_deployment_is_healthy_and_short_one_is_degraded() {
        let ok = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
          "spec":{"replicas":2,"selector":{"matchLabels":{"a":"b"}},"template":{"spec":{"containers":[{"name":"a","image":"a"}]}}},
          "status":{"replicas":2,"readyReplicas":2,"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable"},
            {"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}]}}"#;
        assert!(analyze(&parse(ok)).is_empty());
        let short = ok.replace("\"readyReplicas\":2", "\"readyReplicas\":1");
        assert_eq!(
            health_of(&analyze(&parse(&short))).status,
            HealthStatus::Degraded
        );
    }
}
