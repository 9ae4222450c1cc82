//! The `[aws]` configuration section: which profiles and regions become
//! connector instances, how often they poll, and how actions wait.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[aws]`: every profile × region pair is a separate connector (its own fleet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Profiles from `~/.aws/config`; empty = the default credential chain
    /// (environment, `AWS_PROFILE`, SSO cache, instance metadata).
    pub profiles: Vec<String>,
    /// Regions to watch; empty = each profile's own region.
    pub regions: Vec<String>,
    /// Another endpoint for every AWS service (an emulator, a private
    /// gateway); unset = `AWS_ENDPOINT_URL` or AWS's own endpoints.
    pub endpoint_url: Option<String>,
    /// Seconds between polls of one connector.
    pub poll_interval_secs: u64,
    /// Up to this many seconds added at random to each interval, so many
    /// consoles (or many regions) do not poll in lockstep.
    pub poll_jitter_secs: u64,
    /// The longest back-off after repeated throttling or failures.
    pub max_backoff_secs: u64,
    /// Attempts per API call (the SDK's standard retry with its own back-off).
    pub max_attempts: u32,
    /// The tag that names a resource's owning team.
    pub team_tag: String,
    /// The tag that names a resource's environment.
    pub environment_tag: String,
    /// Whether ECS clusters and services are part of the fleet.
    pub ecs: bool,
    /// Whether CloudTrail `LookupEvents` is asked for evidence.
    pub cloudtrail: bool,
    /// Whether EC2 CPU is read from CloudWatch (`GetMetricData`) for rightsizing.
    pub cloudwatch: bool,
    /// How far back CPU is read, seconds (the mean and p95 are over this window).
    pub cpu_window_secs: u64,
    /// The CloudWatch period CPU is averaged over, seconds (300 = basic monitoring).
    pub cpu_period_secs: u32,
    /// How long an action waits for the state it asked for.
    pub action_timeout_secs: u64,
    /// How often an action re-reads the state while it waits.
    pub action_poll_interval_ms: u64,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            profiles: Vec::new(),
            regions: Vec::new(),
            endpoint_url: None,
            poll_interval_secs: 60,
            poll_jitter_secs: 10,
            max_backoff_secs: 900,
            max_attempts: 3,
            team_tag: "team".into(),
            environment_tag: "environment".into(),
            ecs: true,
            cloudtrail: true,
            cloudwatch: true,
            cpu_window_secs: 3600,
            cpu_period_secs: 300,
            action_timeout_secs: 600,
            action_poll_interval_ms: 5_000,
        }
    }
}

impl AwsConfig {
    /// Checks values serde cannot: returns the offending key and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        const WEEK: u64 = 7 * 24 * 3600;
        if !(1..=WEEK).contains(&self.poll_interval_secs) {
            return Err(("poll_interval_secs", "must be between 1 and 604800".into()));
        }
        if self.poll_jitter_secs > self.poll_interval_secs {
            return Err((
                "poll_jitter_secs",
                "must not exceed poll_interval_secs".into(),
            ));
        }
        if self.max_backoff_secs < self.poll_interval_secs || self.max_backoff_secs > WEEK {
            return Err((
                "max_backoff_secs",
                "must be at least poll_interval_secs and at most 604800".into(),
            ));
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err(("max_attempts", "must be between 1 and 10".into()));
        }
        if !(1..=24 * 3600).contains(&self.action_timeout_secs) {
            return Err(("action_timeout_secs", "must be between 1 and 86400".into()));
        }
        if !(10..=600_000).contains(&self.action_poll_interval_ms) {
            return Err((
                "action_poll_interval_ms",
                "must be between 10 and 600000".into(),
            ));
        }
        if self.cpu_period_secs < 60 || !self.cpu_period_secs.is_multiple_of(60) {
            return Err((
                "cpu_period_secs",
                "must be a multiple of 60 (CloudWatch keeps EC2 metrics per minute)".into(),
            ));
        }
        let period = u64::from(self.cpu_period_secs);
        if self.cpu_window_secs < period
            || self.cpu_window_secs > 15 * 24 * 3600
            || !self.cpu_window_secs.is_multiple_of(period)
        {
            return Err((
                "cpu_window_secs",
                "must be a multiple of cpu_period_secs and at most 1296000 (15 days)".into(),
            ));
        }
        for (key, list) in [("profiles", &self.profiles), ("regions", &self.regions)] {
            if let Some(bad) = list.iter().find(|s| !valid_name(s)) {
                return Err((key, format!("`{bad}` is not a valid name")));
            }
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(("endpoint_url", format!("`{url}` is not an http(s) URL")));
        }
        for (key, tag) in [
            ("team_tag", &self.team_tag),
            ("environment_tag", &self.environment_tag),
        ] {
            if tag.trim().is_empty() {
                return Err((key, "must not be empty".into()));
            }
        }
        Ok(())
    }

    pub(super) fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs)
    }
    pub(super) fn poll_jitter(&self) -> Duration {
        Duration::from_secs(self.poll_jitter_secs)
    }
    pub(super) fn max_backoff(&self) -> Duration {
        Duration::from_secs(self.max_backoff_secs)
    }
}

/// Profile and region names: letters, digits and `-_.@+`, as AWS allows.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(AwsConfig::default().validate(), Ok(()));
    }

    #[test]
    fn jitter_longer_than_interval_is_rejected() {
        let c = AwsConfig {
            poll_interval_secs: 10,
            poll_jitter_secs: 11,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "poll_jitter_secs");
    }

    #[test]
    fn a_cpu_window_must_hold_whole_periods() {
        let c = AwsConfig {
            cpu_period_secs: 90,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "cpu_period_secs");
        let c = AwsConfig {
            cpu_window_secs: 3700,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "cpu_window_secs");
    }

    #[test]
    fn bad_region_name_is_rejected() {
        let c = AwsConfig {
            regions: vec!["eu west 1".into()],
            ..Default::default()
        };
        let (key, why) = c.validate().unwrap_err();
        assert_eq!(key, "regions");
        assert!(why.contains("eu west 1"), "{why}");
    }
}
