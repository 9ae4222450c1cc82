//! CronJobs: the last scheduled run did not succeed.

use k8s_openapi::api::batch::v1::CronJob;

use super::Finding;
use crate::event::HealthStatus;

/// Findings for one cron job.
pub fn analyze(c: &CronJob) -> Vec<Finding> {
    let mut out = Vec::new();
    let suspended = c.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);
    let Some(status) = &c.status else {
        return out;
    };
    let running = status.active.as_ref().is_some_and(|a| !a.is_empty());
    if let Some(scheduled) = &status.last_schedule_time
        && !running
        && !suspended
    {
        let succeeded_after = status
            .last_successful_time
            .as_ref()
            .is_some_and(|s| s.0 >= scheduled.0);
        if !succeeded_after {
            out.push(Finding::new(
                HealthStatus::Degraded,
                "LastRunFailed",
                format!(
                    "last scheduled {}, last success {}",
                    scheduled.0,
                    status
                        .last_successful_time
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .unwrap_or_else(|| "never".into())
                ),
                "the cron job's latest run failed",
                0.5,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::parse;

    #[test]
    fn failed_last_run_is_found() {
        let json = r#"{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"backup"},
          "spec":{"schedule":"0 * * * *","jobTemplate":{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"b"}],"restartPolicy":"OnFailure"}}}}},
          "status":{"lastScheduleTime":"2026-06-03T10:00:00Z","lastSuccessfulTime":"2026-06-03T09:00:05Z"}}"#;
        assert_eq!(analyze(&parse(json))[0].reason, "LastRunFailed");
        let ok = json.replace("09:00:05", "10:00:05");
        assert!(analyze(&parse(&ok)).is_empty());
    }
}
