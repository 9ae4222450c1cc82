//! Nodes: readiness and pressure, judged by each condition's polarity.
//!
//! `Ready` and every other `…Ready` condition (node-problem-detector's
//! `KernelReady`, `ContainerRuntimeReady`) are good when `True`; pressure and
//! problem conditions (`DiskPressure`, `KernelDeadlock`, `ReadonlyFilesystem`)
//! are bad when `True`. A healthy condition is never reported.

use k8s_openapi::api::core::v1::Node;

use super::Finding;
use crate::event::HealthStatus;

/// Findings for one node.
pub fn analyze(n: &Node) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in n.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
        let positive = c.type_.ends_with("Ready");
        let bad = if positive {
            c.status != "True"
        } else {
            c.status == "True"
        };
        if !bad {
            continue;
        }
        let message = format!(
            "{}={}{}{}",
            c.type_,
            c.status,
            c.reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            c.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        let (status, reason, cause, confidence) = match c.type_.as_str() {
            "Ready" => (
                HealthStatus::Unhealthy,
                c.reason.clone().unwrap_or_else(|| "NodeNotReady".into()),
                "the node's kubelet is not ready (down, partitioned or out of resources)"
                    .to_string(),
                0.7,
            ),
            "MemoryPressure" | "DiskPressure" | "PIDPressure" => (
                HealthStatus::Degraded,
                c.type_.clone(),
                format!(
                    "the node is under {} and evicts pods",
                    pressure_word(&c.type_)
                ),
                0.6,
            ),
            other => (
                HealthStatus::Degraded,
                other.to_string(),
                format!("node problem: {other}"),
                0.4,
            ),
        };
        out.push(Finding::new(status, reason, message, cause, confidence));
    }
    out
}

fn pressure_word(t: &str) -> &'static str {
    match t {
        "MemoryPressure" => "memory pressure",
        "DiskPressure" => "disk pressure",
        _ => "PID pressure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::{health_of, parse};

    const NODE: &str = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a"},
      "status":{"conditions":[
        {"type":"KernelDeadlock","status":"False","reason":"KernelHasNoDeadlock"},
        {"type":"KernelReady","status":"True","reason":"KernelIsReady"},
        {"type":"MemoryPressure","status":"False","reason":"KubeletHasSufficientMemory"},
        {"type":"DiskPressure","status":"False","reason":"KubeletHasNoDiskPressure"},
        {"type":"PIDPressure","status":"False","reason":"KubeletHasSufficientPID"},
        {"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}]}}"#;

    #[test]
    fn healthy_conditions_raise_nothing() {
        assert!(analyze(&parse(NODE)).is_empty());
    }

    #[test]
    fn disk_pressure_and_not_ready() {
        let disk = NODE.replace(
            r#""DiskPressure","status":"False","reason":"KubeletHasNoDiskPressure""#,
            r#""DiskPressure","status":"True","reason":"KubeletHasDiskPressure""#,
        );
        assert_eq!(health_of(&analyze(&parse(&disk))).reason, "DiskPressure");
        let down = NODE.replace(
            r#""Ready","status":"True","reason":"KubeletReady""#,
            r#""Ready","status":"Unknown","reason":"NodeStatusUnknown""#,
        );
        let h = health_of(&analyze(&parse(&down)));
        assert_eq!(
            (h.status, h.reason.as_str()),
            (HealthStatus::Unhealthy, "NodeStatusUnknown")
        );
        let kernel = NODE.replace(
            r#""KernelReady","status":"True""#,
            r#""KernelReady","status":"False""#,
        );
        assert_eq!(health_of(&analyze(&parse(&kernel))).reason, "KernelReady");
    }
}
