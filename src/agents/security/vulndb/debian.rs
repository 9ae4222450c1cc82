//! The Debian Security Tracker's JSON dump
//! (`https://security-tracker.debian.org/tracker/data/json`): per source
//! package, per CVE, per release: status, fixed version and urgency.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::nvd::cut;
use super::{VulnDbError, parse_json};

/// Debian descriptions are one line; longer ones are cut.
const DESCRIPTION_CHARS: usize = 300;

/// One CVE in one source package, across releases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DebianRecord {
    /// The source package (`openssl`), not a binary package (`libssl3`).
    pub package: String,
    /// `CVE-…`, or the tracker's `TEMP-…` id for an issue without a CVE yet.
    pub cve: String,
    #[serde(default)]
    pub description: String,
    /// `local` or `remote`, when the tracker knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Release codename (`bookworm`) → its state there.
    pub releases: BTreeMap<String, DebianRelease>,
}

/// A CVE's state in one Debian release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DebianRelease {
    pub status: DebianStatus,
    /// The first fixed source version; `0` means the release was never affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    /// `unimportant`, `low`, `medium`, `high`, `not yet assigned`, `end-of-life`.
    #[serde(default)]
    pub urgency: String,
}

/// The tracker's status of a CVE in a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebianStatus {
    /// Fixed in `fixed_version` (or never affected when that is `0`).
    Resolved,
    /// Affected, no fix yet.
    Open,
    /// Not yet known whether the release is affected.
    Undetermined,
}

/// What one tracker file holds.
#[derive(Debug)]
pub struct DebianImport {
    pub records: Vec<DebianRecord>,
}

#[derive(Deserialize)]
struct RawIssue {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    releases: HashMap<String, RawRelease>,
}

#[derive(Deserialize)]
struct RawRelease {
    status: DebianStatus,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
}

/// Parses a tracker dump; errors name `file` and the line or package.
pub fn parse(bytes: &[u8], file: &str) -> Result<DebianImport, VulnDbError> {
    let raw: HashMap<String, HashMap<String, RawIssue>> = parse_json(bytes, file)?;
    let invalid = |at: String, message: String| VulnDbError::Invalid {
        file: file.to_string(),
        at,
        message,
    };
    let mut records = Vec::new();
    for (package, issues) in raw {
        if package.is_empty() || package.contains(['/', ' ']) {
            return Err(invalid(
                format!("{package:?}"),
                "is not a Debian source package name".into(),
            ));
        }
        for (cve, issue) in issues {
            if !(cve.starts_with("CVE-") || cve.starts_with("TEMP-")) {
                return Err(invalid(
                    format!("{package}.{cve}"),
                    "expected a CVE-… or TEMP-… id as the key".into(),
                ));
            }
            let releases = issue
                .releases
                .into_iter()
                .map(|(name, r)| {
                    (
                        name,
                        DebianRelease {
                            status: r.status,
                            fixed_version: r.fixed_version.filter(|v| !v.trim().is_empty()),
                            urgency: r.urgency.unwrap_or_default(),
                        },
                    )
                })
                .collect();
            records.push(DebianRecord {
                package: package.clone(),
                cve,
                description: issue
                    .description
                    .map(|d| cut(d.trim(), DESCRIPTION_CHARS))
                    .unwrap_or_default(),
                scope: issue.scope,
                releases,
            });
        }
    }
    records.sort_by(|a, b| (&a.package, &a.cve).cmp(&(&b.package, &b.cve)));
    Ok(DebianImport { records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_shape_parses() {
        let text = r#"{"openssl": {"CVE-2024-5535": {"description": "SSL_select_next_proto buffer overread", "scope": "remote", "debianbug": 1074487,
            "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "3.0.15-1~deb12u1"}, "fixed_version": "3.0.14-1~deb12u1", "urgency": "not yet assigned"},
                         "sid": {"status": "resolved", "repositories": {"sid": "3.3.2-1"}, "fixed_version": "3.3.1-6", "urgency": "not yet assigned"}}},
            "TEMP-0000000-ABCDEF": {"description": "x", "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "3.0.15-1~deb12u1"}, "urgency": "unimportant", "nodsa": "Minor issue", "nodsa_reason": ""}}}}}"#;
        let import = parse(text.as_bytes(), "json").unwrap();
        assert_eq!(import.records.len(), 2);
        let r = &import.records[0];
        assert_eq!(
            (r.package.as_str(), r.cve.as_str()),
            ("openssl", "CVE-2024-5535")
        );
        assert_eq!(r.releases["bookworm"].status, DebianStatus::Resolved);
        assert_eq!(
            r.releases["bookworm"].fixed_version.as_deref(),
            Some("3.0.14-1~deb12u1")
        );
        assert_eq!(
            import.records[1].releases["bookworm"].status,
            DebianStatus::Open
        );
    }

    #[test]
    fn unknown_status_names_the_place() {
        let text = "{\"zlib\": {\"CVE-2023-1\": {\"releases\": {\"bookworm\":\n {\"status\": \"fixed\"}}}}}";
        let e = parse(text.as_bytes(), "tracker.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tracker.json"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(
            e.contains("zlib.CVE-2023-1.releases.bookworm.status"),
            "{e}"
        );
    }
}
