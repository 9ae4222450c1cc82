//! Rule-based analyzers, one module per kind. Each reads a real object (and,
//! where the question needs it, a related one) and returns findings; the
//! worst finding is the object's health, and every finding becomes a ranked
//! hypothesis in an investigation.
//!
//! Conditions are judged on their type, status and reason together: a
//! condition is only a problem when its polarity says so (`Ready=False`,
//! `DiskPressure=True`), never merely because it is present.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod hpa;
pub mod ingress;
pub mod job;
pub mod node;
pub mod pod;
pub mod pvc;
pub mod replicaset;
pub mod rollout;
pub mod service;
pub mod statefulset;

use crate::event::{Health, HealthStatus};

/// Something wrong with an object, with its likely cause.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Degraded or unhealthy.
    pub status: HealthStatus,
    /// Machine-readable reason (`CrashLoopBackOff`, `DiskPressure`, …).
    pub reason: String,
    /// What was seen, e.g. `container app: last terminated OOMKilled, exit code 137`.
    pub message: String,
    /// The likely cause, phrased as a hypothesis.
    pub cause: String,
    /// 0.0 ..= 1.0: how strongly the object alone supports the cause.
    pub confidence: f64,
    /// The action that would address it, if one of ours does.
    pub action: Option<Suggested>,
}

/// An action a finding suggests; `on_owner` when it targets the owning workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggested {
    pub name: &'static str,
    pub params: Vec<(String, String)>,
    pub on_owner: bool,
}

impl Finding {
    pub(crate) fn new(
        status: HealthStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
        cause: impl Into<String>,
        confidence: f64,
    ) -> Self {
        Self {
            status,
            reason: reason.into(),
            message: message.into(),
            cause: cause.into(),
            confidence,
            action: None,
        }
    }

    pub(crate) fn suggest(
        mut self,
        name: &'static str,
        params: &[(&str, String)],
        on_owner: bool,
    ) -> Self {
        self.action = Some(Suggested {
            name,
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            on_owner,
        });
        self
    }
}

/// The health the findings amount to: the worst one, or healthy.
pub fn health_of(findings: &[Finding]) -> Health {
    findings
        .iter()
        .max_by_key(|f| match f.status {
            HealthStatus::Unhealthy => 3,
            HealthStatus::Degraded => 2,
            HealthStatus::Unknown => 1,
            HealthStatus::Healthy => 0,
        })
        // Status messages can carry a container's own words (a failed
        // command line): redacted before they become an event.
        .map(|f| Health::new(f.status, f.reason.clone(), crate::redact::line(&f.message)))
        .unwrap_or_else(Health::healthy)
}

/// Ready/desired replica check shared by the workload analyzers.
pub(crate) fn replicas_short(kind: &str, ready: i32, desired: i32) -> Option<Finding> {
    if desired > 0 && ready < desired {
        let status = if ready == 0 {
            HealthStatus::Unhealthy
        } else {
            HealthStatus::Degraded
        };
        Some(Finding::new(
            status,
            "ReplicasNotReady",
            format!("{ready}/{desired} replicas ready"),
            format!("{kind} pods are not becoming ready"),
            0.4,
        ))
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).expect("fixture is a valid object")
}
