//! PersistentVolumeClaims: pending (no volume provisioned) or lost.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use super::Finding;
use crate::event::HealthStatus;

/// Findings for one claim.
pub fn analyze(p: &PersistentVolumeClaim) -> Vec<Finding> {
    let phase = p
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    let class = p
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_else(|| "(default)".into());
    match phase {
        "Bound" => Vec::new(),
        "Lost" => vec![Finding::new(
            HealthStatus::Unhealthy,
            "ClaimLost",
            "the bound volume no longer exists",
            "the persistent volume behind the claim was deleted",
            0.7,
        )],
        _ => vec![Finding::new(
            HealthStatus::Degraded,
            "ClaimPending",
            format!("claim not bound (storage class {class})"),
            format!("no volume can be provisioned for storage class {class}"),
            0.5,
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::parse;

    #[test]
    fn pending_and_bound() {
        let pending = r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},
          "spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"fast","resources":{"requests":{"storage":"10Gi"}}},
          "status":{"phase":"Pending"}}"#;
        let f = analyze(&parse(pending));
        assert_eq!(f[0].reason, "ClaimPending");
        assert!(f[0].message.contains("fast"));
        assert!(analyze(&parse(&pending.replace("Pending", "Bound"))).is_empty());
    }
}
