//! Credentials (resources of kind `credential` with an `expires_at`
//! attribute) that have expired or expire within seven days.

use chrono::{DateTime, Duration, Utc};

use crate::event::{Resource, SecurityFinding, Severity};

/// How early an expiry becomes a finding.
const WARN_BEFORE: Duration = Duration::days(7);

/// The expiry finding for a credential, if it is due.
pub(super) fn expiry_finding(r: &Resource, now: DateTime<Utc>) -> Option<SecurityFinding> {
    if r.kind != "credential" {
        return None;
    }
    let expires = r
        .attributes
        .get("expires_at")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))?;
    let left = expires - now;
    if left > WARN_BEFORE {
        return None;
    }
    Some(SecurityFinding {
        id: format!("credential-expiry@{}", r.id),
        category: "credential".into(),
        severity: if left <= Duration::zero() {
            Severity::Critical
        } else {
            Severity::High
        },
        resource: r.id.clone(),
        title: format!("credential {} expires {}", r.name, expires.date_naive()),
        detail: format!(
            "{} day(s) left; rotate before expiry",
            left.num_days().max(0)
        ),
        expires_at: Some(expires),
        control: Some("SOC2:CC6.1".into()),
        open: true,
        vulnerability: None,
    })
}
