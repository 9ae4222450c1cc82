//! Jobs: failed (backoff limit, deadline) versus complete.

use k8s_openapi::api::batch::v1::Job;

use super::Finding;
use crate::event::HealthStatus;

/// Findings for one job.
pub fn analyze(j: &Job) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in j.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
        if c.type_ == "Failed" && c.status == "True" {
            let reason = c.reason.clone().unwrap_or_else(|| "Failed".into());
            let cause = match reason.as_str() {
                "DeadlineExceeded" => "the job ran past its active deadline",
                _ => "the job's pods keep failing (see their logs)",
            };
            out.push(Finding::new(
                HealthStatus::Unhealthy,
                reason,
                c.message.clone().unwrap_or_default(),
                cause,
                0.6,
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
    fn backoff_limit_is_a_failure_and_complete_is_not() {
        let failed = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"migrate"},
          "spec":{"template":{"spec":{"containers":[{"name":"m","image":"m"}],"restartPolicy":"Never"}}},
          "status":{"failed":7,"conditions":[{"type":"FailureTarget","status":"True","reason":"BackoffLimitExceeded"},
            {"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}}"#;
        assert_eq!(analyze(&parse(failed))[0].reason, "BackoffLimitExceeded");
        let done = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"migrate"},
          "spec":{"template":{"spec":{"containers":[{"name":"m","image":"m"}],"restartPolicy":"Never"}}},
          "status":{"succeeded":1,"conditions":[{"type":"SuccessCriteriaMet","status":"True"},{"type":"Complete","status":"True"}]}}"#;
        assert!(analyze(&parse(done)).is_empty());
    }
}
