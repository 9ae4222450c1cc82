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
    // A lease ends with its engine's credential: it is renewed or reissued, not rotated.
    let remedy = if r.attributes.contains_key("lease_ttl_secs") {
        "renew the lease or issue a new credential before it ends"
    } else {
        "rotate before expiry"
    };
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
        detail: format!("{} day(s) left; {remedy}", left.num_days().max(0)),
        expires_at: Some(expires),
        control: Some("SOC2:CC6.1".into()),
        open: true,
        vulnerability: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ConnectorId, Environment, Health, Provider, ResourceId};

    fn credential(attrs: &[(&str, &str)]) -> Resource {
        Resource {
            id: ResourceId::new("vault/secret/secret/app/db"),
            name: "secret/app/db".into(),
            kind: "credential".into(),
            provider: Provider::Vault,
            connector: ConnectorId::new("credentials:vault"),
            environment: Environment::Production,
            team: "t".into(),
            labels: Default::default(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            health: Health::healthy(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn expiry_within_a_week_is_high_and_past_expiry_critical() {
        let now = at("2026-06-03T10:00:00Z");
        let r = credential(&[("expires_at", "2026-06-20T00:00:00Z")]);
        assert!(expiry_finding(&r, now).is_none());
        let r = credential(&[("expires_at", "2026-06-06T00:00:00Z")]);
        let f = expiry_finding(&r, now).unwrap();
        assert_eq!(f.severity, Severity::High);
        assert!(f.detail.contains("rotate"), "{}", f.detail);
        let r = credential(&[("expires_at", "2026-06-01T00:00:00Z")]);
        assert_eq!(
            expiry_finding(&r, now).unwrap().severity,
            Severity::Critical
        );
        // No expiry, or an unreadable one, is no finding (never a guess).
        assert!(expiry_finding(&credential(&[]), now).is_none());
        assert!(expiry_finding(&credential(&[("expires_at", "unknown")]), now).is_none());
    }

    #[test]
    fn an_expiring_lease_is_renewed_not_rotated() {
        let now = at("2026-06-03T10:00:00Z");
        let r = credential(&[
            ("expires_at", "2026-06-04T00:00:00Z"),
            ("lease_ttl_secs", "50400"),
        ]);
        let f = expiry_finding(&r, now).unwrap();
        assert!(f.detail.contains("renew the lease"), "{}", f.detail);
    }
}
