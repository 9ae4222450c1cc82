//! Pods: crash loops (with the last termination's reason and exit code),
//! OOM kills, image pulls, scheduling, readiness.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::Finding;
use crate::event::HealthStatus;

/// Findings for one pod.
pub fn analyze(pod: &Pod) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(status) = &pod.status else {
        return out;
    };
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    if phase == "Succeeded" {
        return out;
    }
    if phase == "Failed" {
        let reason = status.reason.clone().unwrap_or_else(|| "Failed".into());
        let message = status.message.clone().unwrap_or_default();
        let cause = if reason == "Evicted" {
            "the pod was evicted by its node (resource pressure)"
        } else {
            "the pod failed"
        };
        out.push(Finding::new(
            HealthStatus::Unhealthy,
            reason,
            message,
            cause,
            0.5,
        ));
    }
    for cs in status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
    {
        out.extend(container(cs));
    }
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled" && c.status == "False" {
            let reason = c.reason.clone().unwrap_or_else(|| "Unschedulable".into());
            out.push(Finding::new(
                HealthStatus::Unhealthy,
                reason,
                c.message.clone().unwrap_or_default(),
                "the scheduler cannot place the pod on any node",
                0.7,
            ));
        }
    }
    if out.is_empty() && phase == "Pending" {
        out.push(Finding::new(
            HealthStatus::Degraded,
            "Pending",
            "the pod has not started yet",
            "the pod is still starting",
            0.2,
        ));
    }
    if out.is_empty() && phase == "Running" {
        let not_ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready" && c.status != "True");
        if let Some(c) = not_ready {
            out.push(Finding::new(
                HealthStatus::Degraded,
                c.reason.clone().unwrap_or_else(|| "NotReady".into()),
                c.message.clone().unwrap_or_default(),
                "a container fails its readiness probe",
                0.3,
            ));
        }
    }
    out
}

fn container(cs: &ContainerStatus) -> Option<Finding> {
    let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
    let terminated_now = cs.state.as_ref().and_then(|s| s.terminated.as_ref());
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let name = &cs.name;
    match waiting.and_then(|w| w.reason.as_deref()) {
        Some("CrashLoopBackOff") => {
            let (last_reason, code) = last
                .map(|t| {
                    (
                        t.reason.clone().unwrap_or_else(|| "Error".into()),
                        t.exit_code,
                    )
                })
                .unwrap_or_else(|| ("unknown".into(), 0));
            let message = format!(
                "container {name}: last terminated: {last_reason}, exit code {code}, {} restarts",
                cs.restart_count
            );
            let f = if last_reason == "OOMKilled" {
                Finding::new(
                    HealthStatus::Unhealthy,
                    "CrashLoopBackOff",
                    message,
                    format!("container {name} exceeds its memory limit (OOMKilled)"),
                    0.85,
                )
                .suggest("set_resources", &[("container", name.clone())], true)
            } else {
                Finding::new(
                    HealthStatus::Unhealthy,
                    "CrashLoopBackOff",
                    message,
                    format!("container {name} exits at start-up ({last_reason}, exit code {code})"),
                    0.6,
                )
                .suggest("rollback_deployment", &[], true)
            };
            Some(f)
        }
        Some(r @ ("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName")) => Some(
            Finding::new(
                HealthStatus::Unhealthy,
                "ImagePullBackOff",
                format!(
                    "container {name}: {r}: {}",
                    waiting.and_then(|w| w.message.clone()).unwrap_or_default()
                ),
                format!(
                    "the image of container {name} cannot be pulled (wrong tag or registry access)"
                ),
                0.8,
            )
            .suggest("rollback_deployment", &[], true),
        ),
        Some(r @ ("CreateContainerConfigError" | "CreateContainerError" | "RunContainerError")) => {
            Some(Finding::new(
                HealthStatus::Unhealthy,
                r,
                format!(
                    "container {name}: {}",
                    waiting.and_then(|w| w.message.clone()).unwrap_or_default()
                ),
                format!("container {name} is misconfigured (missing secret or config map?)"),
                0.7,
            ))
        }
        _ => match terminated_now {
            Some(t) if t.reason.as_deref() == Some("OOMKilled") => Some(
                Finding::new(
                    HealthStatus::Unhealthy,
                    "OOMKilled",
                    format!("container {name}: OOMKilled, exit code {}", t.exit_code),
                    format!("container {name} exceeds its memory limit (OOMKilled)"),
                    0.85,
                )
                .suggest("set_resources", &[("container", name.clone())], true),
            ),
            Some(t) if t.exit_code != 0 => Some(Finding::new(
                HealthStatus::Unhealthy,
                t.reason.clone().unwrap_or_else(|| "Error".into()),
                format!("container {name}: exited with code {}", t.exit_code),
                format!("container {name} exits with an error"),
                0.5,
            )),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::{health_of, parse};

    const CRASH_OOM: &str = r#"{
      "apiVersion": "v1", "kind": "Pod",
      "metadata": {"name": "checkout-7d9f-abcde", "namespace": "payments"},
      "spec": {"containers": [{"name": "app", "image": "checkout:1.4.2"}]},
      "status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [{"name": "app", "image": "checkout:1.4.2", "imageID": "", "ready": false,
          "restartCount": 7,
          "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
          "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2026-06-03T10:00:00Z", "finishedAt": "2026-06-03T10:01:00Z"}}}]}
    }"#;

    #[test]
    fn crash_loop_names_last_termination_and_exit_code() {
        let f = analyze(&parse(CRASH_OOM));
        let h = health_of(&f);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.reason, "CrashLoopBackOff");
        assert!(
            h.message.contains("OOMKilled") && h.message.contains("137"),
            "{}",
            h.message
        );
        assert_eq!(f[0].action.as_ref().map(|a| a.name), Some("set_resources"));
    }

    #[test]
    fn crash_loop_with_plain_error_suggests_rollback() {
        let json = CRASH_OOM
            .replace("\"OOMKilled\"", "\"Error\"")
            .replace("137", "1");
        let f = analyze(&parse(&json));
        assert!(f[0].message.contains("Error, exit code 1"));
        assert_eq!(
            f[0].action.as_ref().map(|a| a.name),
            Some("rollback_deployment")
        );
    }

    #[test]
    fn image_pull_backoff() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
          "status":{"phase":"Pending","containerStatuses":[{"name":"web","image":"web:nope","imageID":"","ready":false,"restartCount":0,
            "state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image \"web:nope\""}}}]}}"#;
        let h = health_of(&analyze(&parse(json)));
        assert_eq!(h.reason, "ImagePullBackOff");
        assert!(h.message.contains("web:nope"));
    }

    #[test]
    fn unschedulable_carries_the_scheduler_message() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
          "status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable",
            "message":"0/3 nodes are available: 3 Insufficient memory."}]}}"#;
        let h = health_of(&analyze(&parse(json)));
        assert_eq!(h.reason, "Unschedulable");
        assert_eq!(h.message, "0/3 nodes are available: 3 Insufficient memory.");
    }

    #[test]
    fn running_ready_pod_and_completed_pod_are_healthy() {
        let ready = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
          "status":{"phase":"Running","conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"True"}],
            "containerStatuses":[{"name":"a","image":"a","imageID":"","ready":true,"restartCount":0,"state":{"running":{}}}]}}"#;
        assert!(analyze(&parse(ready)).is_empty());
        let done = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"status":{"phase":"Succeeded",
            "containerStatuses":[{"name":"a","image":"a","imageID":"","ready":false,"restartCount":0,"state":{"terminated":{"exitCode":0,"reason":"Completed"}}}]}}"#;
        assert!(analyze(&parse(done)).is_empty());
    }
}
