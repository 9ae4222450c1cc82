//! Rollouts of Deployments, StatefulSets and DaemonSets: what `kubectl
//! rollout status` waits for, plus the pods of the new revision.
//!
//! A change to a pod template is done only when the controller has observed
//! the new generation, every replica runs the new template and is available,
//! and no pod of the new revision crash-loops or restarts. The old revision's
//! pods staying ready proves nothing: during a stuck rolling update they are
//! exactly what keeps the ready count up.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::Finding;
use crate::event::HealthStatus;

/// The controller has not yet observed the object's newest generation.
pub(crate) fn not_observed(
    kind: &str,
    generation: Option<i64>,
    observed: Option<i64>,
) -> Option<Finding> {
    let Some(generation) = generation else {
        // Every object the API server stores has a generation: one without it
        // was not read from a real server, and nothing can be said of its rollout.
        return Some(Finding::new(
            HealthStatus::Unknown,
            "GenerationUnknown",
            "the object carries no metadata.generation",
            format!("the {kind}'s rollout state cannot be judged"),
            0.2,
        ));
    };
    let observed = observed.unwrap_or(0);
    (observed < generation).then(|| {
        Finding::new(
            HealthStatus::Degraded,
            "RolloutNotObserved",
            format!("the controller has observed generation {observed} of {generation}"),
            format!("the {kind} controller has not yet acted on the latest change"),
            0.3,
        )
    })
}

/// A rollout still in progress (degraded, not failed: it may finish).
pub(crate) fn in_progress(kind: &str, reason: &str, message: String) -> Finding {
    Finding::new(
        HealthStatus::Degraded,
        reason,
        message,
        format!("the {kind}'s rolling update has not finished"),
        0.4,
    )
}

/// How far before the recorded change a restart still counts: the console's
/// clock and the kubelet's may differ, and a restart wrongly counted only
/// costs a restore, while one wrongly ignored keeps a broken change.
const CLOCK_SKEW_SECS: i64 = 60;

/// Findings for the pods of a workload's newest revision (`revision` names it
/// in messages): a container crash-looping or exited with an error, a failed
/// pod, and, when `since` (the time of the change) is known, any restart after
/// it. Pods of older revisions are not passed here.
pub fn new_revision_pods(
    revision: &str,
    pods: &[Pod],
    since: Option<DateTime<Utc>>,
) -> Vec<Finding> {
    let since = since.map(|t| t - chrono::Duration::seconds(CLOCK_SKEW_SECS));
    let mut out = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let Some(status) = &pod.status else { continue };
        if status.phase.as_deref() == Some("Failed") {
            out.push(crashed(
                revision,
                name,
                format!(
                    "phase Failed ({})",
                    status.reason.as_deref().unwrap_or("no reason")
                ),
            ));
            continue;
        }
        let created = pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| super::super::fleet::jiff_to_chrono(t.0));
        for cs in status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
        {
            if let Some(what) = failing(cs) {
                out.push(crashed(revision, name, what));
            } else if let Some(since) = since
                && restarted_since(cs, created, since)
            {
                out.push(Finding::new(
                    HealthStatus::Unhealthy,
                    "NewRevisionRestarted",
                    format!(
                        "pod {name} of revision {revision}: container {} restarted {} time(s) since the change{}",
                        cs.name,
                        cs.restart_count,
                        last_termination(cs)
                    ),
                    "the new pod template's containers do not stay up",
                    0.7,
                ));
            }
        }
    }
    out
}

fn crashed(revision: &str, pod: &str, what: String) -> Finding {
    Finding::new(
        HealthStatus::Unhealthy,
        "NewRevisionFailing",
        format!("pod {pod} of revision {revision}: {what}"),
        "the new pod template's pods fail while the old revision's pods keep serving",
        0.8,
    )
}

/// What is wrong with a container now (crash loop, error exit), if anything.
fn failing(cs: &ContainerStatus) -> Option<String> {
    let state = cs.state.as_ref()?;
    if let Some(w) = &state.waiting {
        let reason = w.reason.as_deref().unwrap_or_default();
        if matches!(
            reason,
            "CrashLoopBackOff"
                | "ImagePullBackOff"
                | "ErrImagePull"
                | "InvalidImageName"
                | "CreateContainerConfigError"
                | "CreateContainerError"
                | "RunContainerError"
        ) {
            return Some(format!(
                "container {} {reason}, {} restart(s){}",
                cs.name,
                cs.restart_count,
                last_termination(cs)
            ));
        }
    }
    if let Some(t) = &state.terminated
        && t.exit_code != 0
    {
        return Some(format!(
            "container {} terminated: {}, exit code {}",
            cs.name,
            t.reason.as_deref().unwrap_or("Error"),
            t.exit_code
        ));
    }
    None
}

/// Whether a container restarted after `since`. The last termination's end
/// time says when; a pod created after `since` restarted within the window
/// whenever it restarted at all; with neither time known a restart counts.
fn restarted_since(
    cs: &ContainerStatus,
    created: Option<DateTime<Utc>>,
    since: DateTime<Utc>,
) -> bool {
    if cs.restart_count == 0 {
        return false;
    }
    if created.is_some_and(|c| c >= since) {
        return true;
    }
    let finished = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.as_ref())
        .map(|t| super::super::fleet::jiff_to_chrono(t.0));
    match finished {
        Some(f) => f >= since,
        None => true,
    }
}

fn last_termination(cs: &ContainerStatus) -> String {
    cs.last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| {
            format!(
                " (last terminated: {}, exit code {})",
                t.reason.as_deref().unwrap_or("Error"),
                t.exit_code
            )
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::parse;

    fn pod(created: &str, statuses: &str) -> Pod {
        parse(&format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"web-6c9-x","creationTimestamp":"{created}"}},
              "status":{{"phase":"Running","containerStatuses":[{statuses}]}}}}"#
        ))
    }

    const CRASH: &str = r#"{"name":"app","image":"web:2","imageID":"","ready":false,"restartCount":4,
        "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 40s"}},
        "lastState":{"terminated":{"exitCode":1,"reason":"Error","finishedAt":"2026-06-03T10:02:00Z"}}}"#;
    const UP_AFTER_RESTART: &str = r#"{"name":"app","image":"web:2","imageID":"","ready":true,"restartCount":1,
        "state":{"running":{"startedAt":"2026-06-03T10:02:10Z"}},
        "lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled","finishedAt":"2026-06-03T10:02:00Z"}}}"#;

    fn at(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_crash_looping_new_pod_fails_with_its_last_termination() {
        let f = new_revision_pods("web-6c9", &[pod("2026-06-03T10:01:00Z", CRASH)], None);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, "NewRevisionFailing");
        assert_eq!(f[0].status, HealthStatus::Unhealthy);
        assert!(f[0].message.contains("CrashLoopBackOff") && f[0].message.contains("exit code 1"));
    }

    #[test]
    fn a_restart_counts_only_within_the_window() {
        // Created before the change, restarted after it: counts.
        let p = pod("2026-06-03T09:00:00Z", UP_AFTER_RESTART);
        let f = new_revision_pods(
            "web-6c9",
            std::slice::from_ref(&p),
            at("2026-06-03T10:00:00Z"),
        );
        assert_eq!(f[0].reason, "NewRevisionRestarted", "{f:?}");
        assert!(f[0].message.contains("OOMKilled"));
        // The same restart an hour before the change: not this change's doing.
        assert!(
            new_revision_pods(
                "web-6c9",
                std::slice::from_ref(&p),
                at("2026-06-03T11:05:00Z")
            )
            .is_empty()
        );
        // Without a window (plain health) a pod that is up again is not judged on old restarts.
        assert!(new_revision_pods("web-6c9", &[p], None).is_empty());
        // A pod created after the change restarted within the window, whatever its times say.
        let late = pod(
            "2026-06-03T11:00:00Z",
            &UP_AFTER_RESTART.replace(",\"finishedAt\":\"2026-06-03T10:02:00Z\"", ""),
        );
        assert_eq!(
            new_revision_pods("web-6c9", &[late], at("2026-06-03T10:30:00Z"))[0].reason,
            "NewRevisionRestarted"
        );
    }

    #[test]
    fn a_restart_of_unknown_time_counts() {
        let no_time = UP_AFTER_RESTART.replace(",\"finishedAt\":\"2026-06-03T10:02:00Z\"", "");
        let f = new_revision_pods(
            "r",
            &[pod("2026-06-03T09:00:00Z", &no_time)],
            at("2026-06-03T10:00:00Z"),
        );
        assert_eq!(f[0].reason, "NewRevisionRestarted");
    }

    #[test]
    fn generation_not_observed_and_unknown() {
        assert_eq!(
            not_observed("deployment", Some(3), Some(2)).unwrap().reason,
            "RolloutNotObserved"
        );
        assert_eq!(
            not_observed("deployment", Some(3), None).unwrap().reason,
            "RolloutNotObserved"
        );
        assert!(not_observed("deployment", Some(3), Some(3)).is_none());
        assert_eq!(
            not_observed("deployment", None, Some(3)).unwrap().status,
            HealthStatus::Unknown
        );
    }
}
