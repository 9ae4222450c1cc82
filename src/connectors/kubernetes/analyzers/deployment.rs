//! Deployments: stalled or unfinished rollouts, unavailable replicas.

use k8s_openapi::api::apps::v1::Deployment;

use super::rollout::{in_progress, not_observed};
use super::{Finding, replicas_short};
use crate::event::HealthStatus;

/// Findings for one deployment: its conditions, then (as `kubectl rollout
/// status` judges it) whether the latest generation is observed and rolled
/// out to every replica.
pub fn analyze(d: &Deployment) -> Vec<Finding> {
    let mut out = Vec::new();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &d.status else {
        out.extend(not_observed("deployment", d.metadata.generation, None));
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
    if !out.is_empty() {
        return out;
    }
    if let Some(f) = not_observed(
        "deployment",
        d.metadata.generation,
        status.observed_generation,
    ) {
        // The status describes an older generation: nothing in it speaks
        // of the latest change.
        out.push(f);
        return out;
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if d.spec.as_ref().and_then(|s| s.paused) == Some(true) {
        out.push(in_progress(
            "deployment",
            "RolloutPaused",
            format!("the rollout is paused with {updated}/{desired} replicas updated"),
        ));
    }
    if updated < desired {
        out.push(in_progress(
            "deployment",
            "RolloutIncomplete",
            format!("{updated}/{desired} replicas updated to the latest pod template"),
        ));
    }
    if total > updated {
        out.push(in_progress(
            "deployment",
            "OldReplicasRemain",
            format!(
                "{} replica(s) of older revisions still run",
                total - updated
            ),
        ));
    }
    if available < updated || available < desired {
        out.push(in_progress(
            "deployment",
            "UpdatedReplicasUnavailable",
            format!("{available} of {desired} replicas available"),
        ));
    }
    let ready = status.ready_replicas.unwrap_or(0);
    match replicas_short("deployment", ready, desired) {
        // No replica ready at all is worse than a rollout in progress.
        Some(f) if f.status == HealthStatus::Unhealthy || out.is_empty() => out.insert(0, f),
        _ => {}
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
        let ok = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","generation":1},
          "spec":{"replicas":2,"selector":{"matchLabels":{"a":"b"}},"template":{"spec":{"containers":[{"name":"a","image":"a"}]}}},
          "status":{"observedGeneration":1,"replicas":2,"readyReplicas":2,"updatedReplicas":2,"availableReplicas":2,"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable"},
            {"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}]}}"#;
        assert!(analyze(&parse(ok)).is_empty());
        let short = ok
            .replace("\"readyReplicas\":2", "\"readyReplicas\":1")
            .replace("\"availableReplicas\":2", "\"availableReplicas\":1");
        assert_eq!(
            health_of(&analyze(&parse(&short))).status,
            HealthStatus::Degraded
        );
    }

    /// The rollout the issue describes: the new ReplicaSet's pod crash-loops
    /// while the old ReplicaSet's pods stay ready, the Progressing condition is
    /// still True (the deadline is 600 s away). Ready replicas alone say healthy.
    #[test]
    fn a_stuck_rollout_with_ready_old_pods_is_not_healthy() {
        let json = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","generation":2},
          "spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"spec":{"containers":[{"name":"app","image":"web:2"}]}}},
          "status":{"observedGeneration":2,"replicas":4,"updatedReplicas":1,"readyReplicas":3,"availableReplicas":3,"unavailableReplicas":1,
            "conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable"},
              {"type":"Progressing","status":"True","reason":"ReplicaSetUpdated","message":"ReplicaSet \"web-6c9\" is progressing."}]}}"#;
        let f = analyze(&parse(json));
        let reasons: Vec<&str> = f.iter().map(|f| f.reason.as_str()).collect();
        assert_eq!(reasons, ["RolloutIncomplete", "OldReplicasRemain"], "{f:?}");
        assert_eq!(health_of(&f).status, HealthStatus::Degraded);
        assert!(f[0].message.contains("1/3"));
    }

    #[test]
    fn an_unobserved_generation_is_not_healthy_even_with_a_perfect_old_status() {
        let json = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","generation":3},
          "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"spec":{"containers":[{"name":"app","image":"web:2"}]}}},
          "status":{"observedGeneration":2,"replicas":2,"updatedReplicas":2,"readyReplicas":2,"availableReplicas":2}}"#;
        let h = health_of(&analyze(&parse(json)));
        assert_eq!(h.reason, "RolloutNotObserved");
        assert!(h.message.contains("generation 2 of 3"));
        let fresh = json.replace(",\"status\":{\"observedGeneration\":2,\"replicas\":2,\"updatedReplicas\":2,\"readyReplicas\":2,\"availableReplicas\":2}", "");
        assert_eq!(
            health_of(&analyze(&parse(&fresh))).reason,
            "RolloutNotObserved"
        );
    }

    #[test]
    fn old_replicas_pending_termination_and_unavailable_updated_ones() {
        let json = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","generation":2},
          "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"spec":{"containers":[{"name":"app","image":"web:2"}]}}},
          "status":{"observedGeneration":2,"replicas":2,"updatedReplicas":2,"readyReplicas":2,"availableReplicas":1}}"#;
        assert_eq!(
            health_of(&analyze(&parse(json))).reason,
            "UpdatedReplicasUnavailable"
        );
        let old = json
            .replace(
                "\"replicas\":2,\"updatedReplicas\"",
                "\"replicas\":3,\"updatedReplicas\"",
            )
            .replace("\"availableReplicas\":1", "\"availableReplicas\":2");
        assert_eq!(
            health_of(&analyze(&parse(&old))).reason,
            "OldReplicasRemain"
        );
    }
}
