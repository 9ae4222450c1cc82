//! Installed packages (resource attributes `pkg:NAME` = version, and
//! `pkgsrc:NAME` = the source package where dpkg names one) matched against
//! advisories with Debian version semantics: the offline vulnerability
//! database when it holds data, else the embedded demo sample.
//!
//! Debian hosts (`os.version_codename`) are matched through the source
//! package against the tracker's advisories for their release; software the
//! tracker does not know at all, and hosts of releases it does not cover,
//! are matched against NVD CPE ranges by product name on the upstream
//! version. CPE matching ignores back-ported fixes, so it errs towards
//! reporting.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::vulndb::cpe::upstream_version;
use super::vulndb::debian::DebianStatus;
use super::vulndb::{self, Index, SourceMeta, VulnDb, VulnDbError};
use super::{Advisory, compare_versions};
use crate::event::{
    EventKind, Resource, SecurityFinding, Severity, VulnSource, VulnerabilityMatch,
};

/// How long a scan waits for an import that holds the database.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Where the database is and how old its data may be.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnDbSettings {
    pub dir: PathBuf,
    pub max_age_days: u32,
}

/// Why a package on a resource matched one advisory.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnMatch {
    pub cve: Arc<str>,
    /// The source package (Debian) or the installed package (CPE).
    pub package: String,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    /// `debian:bookworm` or `nvd`.
    pub source: String,
    /// Debian urgency, when the match came from the tracker.
    pub urgency: Option<String>,
    pub reason: String,
}

/// An installed source package: its version and the binaries built from it.
struct Installed<'a> {
    version: &'a str,
    binaries: Vec<(&'a str, &'a str)>,
}

/// `pkgsrc:` values are dpkg's `Source:` field: `name` or `name (version)`.
fn parse_source(value: &str) -> (&str, Option<&str>) {
    match value.split_once('(') {
        Some((name, version)) => (name.trim(), Some(version.trim_end_matches(')').trim())),
        None => (value.trim(), None),
    }
}

/// Installed packages grouped by source package.
fn installed_by_source(r: &Resource) -> BTreeMap<&str, Installed<'_>> {
    let mut out: BTreeMap<&str, Installed<'_>> = BTreeMap::new();
    for (key, version) in &r.attributes {
        let Some(binary) = key.strip_prefix("pkg:") else {
            continue;
        };
        let (source, source_version) = r
            .attributes
            .get(&format!("pkgsrc:{binary}"))
            .map(|s| parse_source(s))
            .unwrap_or((binary, None));
        let source_version = source_version.unwrap_or(version);
        let entry = out.entry(source).or_insert(Installed {
            version: source_version,
            binaries: Vec::new(),
        });
        // Binaries of one source at different versions (a partial upgrade):
        // the oldest decides.
        if compare_versions(source_version, entry.version) == Ordering::Less {
            entry.version = source_version;
        }
        entry.binaries.push((binary, version));
    }
    out
}

/// Every advisory that applies to the packages installed on `r`.
pub fn match_resource(index: &Index, r: &Resource) -> Vec<VulnMatch> {
    let release = r
        .attributes
        .get("os.version_codename")
        .map(String::as_str)
        .filter(|c| !c.is_empty() && *c != "unknown" && index.has_release(c));
    let mut out = Vec::new();
    for (source, installed) in installed_by_source(r) {
        let binaries = || {
            installed
                .binaries
                .iter()
                .map(|(b, _)| *b)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(release) = release
            && index.tracked_by_debian(source)
        {
            for e in index.debian(release, source) {
                let (fixed, why) = match e.status {
                    DebianStatus::Resolved => match &e.fixed_version {
                        Some(f) if f != "0" => {
                            if compare_versions(installed.version, f) != Ordering::Less {
                                continue;
                            }
                            (
                                Some(f.clone()),
                                format!(
                                    "installed {source} {} < fixed {f} in debian {release}",
                                    installed.version
                                ),
                            )
                        }
                        // `0`: never affected; no version: resolved without one.
                        _ => continue,
                    },
                    DebianStatus::Open => (
                        None,
                        format!(
                            "debian {release}: open, no fix yet; installed {source} {}",
                            installed.version
                        ),
                    ),
                    DebianStatus::Undetermined => (
                        None,
                        format!(
                            "debian {release}: not yet determined whether affected; installed {source} {}",
                            installed.version
                        ),
                    ),
                };
                out.push(VulnMatch {
                    cve: e.cve.clone(),
                    package: source.to_string(),
                    installed_version: installed.version.to_string(),
                    fixed_version: fixed,
                    source: format!("debian:{release}"),
                    urgency: Some(e.urgency.clone()),
                    reason: format!("{why} (binaries: {})", binaries()),
                });
            }
            continue;
        }
        // No distribution advisory covers this software: CPE ranges by
        // product name, on the upstream version.
        for (binary, version) in &installed.binaries {
            let upstream = upstream_version(version);
            for e in index.cpe(&binary.to_lowercase()) {
                if !e.range.contains(upstream) {
                    continue;
                }
                let covered = if release.is_some() {
                    format!("the Debian tracker does not know {source}")
                } else {
                    "no distribution advisories for this host's release".to_string()
                };
                out.push(VulnMatch {
                    cve: e.cve.clone(),
                    package: binary.to_string(),
                    installed_version: version.to_string(),
                    fixed_version: e.range.end_excluding.clone(),
                    source: "nvd".into(),
                    urgency: None,
                    reason: format!(
                        "nvd cpe {} contains upstream {upstream} of installed {binary} {version}; {covered}",
                        e.range.describe()
                    ),
                });
            }
        }
    }
    out
}

/// Severity from a Debian urgency, when NVD has no CVSS score.
fn urgency_severity(urgency: &str) -> Severity {
    match urgency.trim_end_matches('*').trim() {
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        "unimportant" => Severity::Info,
        // Not yet assigned, end-of-life, anything new: unknown is not minor.
        _ => Severity::Medium,
    }
}

/// The finding for one match, with CVSS and description from the database.
fn finding(m: &VulnMatch, r: &Resource, db: &VulnDb) -> Result<SecurityFinding, VulnDbError> {
    let nvd = db.nvd(&m.cve)?;
    let description = match m.source.strip_prefix("debian:") {
        Some(_) => db
            .debian(&m.package, &m.cve)?
            .map(|d| d.description)
            .filter(|d| !d.is_empty()),
        None => None,
    }
    .or_else(|| nvd.as_ref().map(|n| n.description.clone()))
    .unwrap_or_default();
    let cvss = nvd.and_then(|n| n.cvss);
    let severity = match (&cvss, &m.urgency) {
        (Some(c), _) => c.severity,
        (None, Some(u)) => urgency_severity(u),
        (None, None) => Severity::Medium,
    };
    Ok(SecurityFinding {
        id: format!("{}:{}@{}", m.cve, m.package, r.id),
        category: "cve".into(),
        severity,
        resource: r.id.clone(),
        title: format!("{} in {}", m.cve, m.package),
        detail: if description.is_empty() {
            m.reason.clone()
        } else {
            format!("{description} — {}", m.reason)
        },
        expires_at: None,
        control: None,
        open: true,
        vulnerability: Some(VulnerabilityMatch {
            cve: m.cve.to_string(),
            cvss_score: cvss.as_ref().map(|c| c.score),
            cvss_vector: cvss.map(|c| c.vector),
            package: m.package.clone(),
            installed_version: m.installed_version.clone(),
            fixed_version: m.fixed_version.clone(),
            source: m.source.clone(),
            reason: m.reason.clone(),
        }),
    })
}

/// What one scan learned about packages.
pub(super) struct CveScan {
    /// None when the database could not be read: nothing may be closed.
    pub findings: Option<Vec<SecurityFinding>>,
    /// A `vuln_db_status` to record (at start, and when it changed).
    pub status: Option<EventKind>,
    pub error: Option<String>,
}

/// The package side of the security agent: the embedded sample, the
/// database's index (rebuilt when an import changed the database) and the
/// freshness last reported.
pub(super) struct CveScanner {
    advisories: Vec<Advisory>,
    settings: Option<VulnDbSettings>,
    index: Option<Arc<Index>>,
    reported: Option<(Vec<VulnSource>, bool)>,
}

enum DbRead {
    /// The database holds no advisories (or does not exist yet).
    Empty(Vec<SourceMeta>),
    Matched(Vec<SourceMeta>, Arc<Index>, Vec<SecurityFinding>),
}

impl CveScanner {
    pub(super) fn new(advisories: Vec<Advisory>, settings: Option<VulnDbSettings>) -> Self {
        Self {
            advisories,
            settings,
            index: None,
            reported: None,
        }
    }

    /// Matches `resources`; opens the database only for the moment of the scan.
    pub(super) async fn scan(
        &mut self,
        resources: std::sync::Arc<Vec<Resource>>,
        now: DateTime<Utc>,
    ) -> CveScan {
        let Some(settings) = self.settings.clone() else {
            return CveScan {
                findings: Some(self.embedded(&resources)),
                status: None,
                error: None,
            };
        };
        let cached = self.index.clone();
        let read = tokio::task::spawn_blocking(move || {
            read_db(&settings, cached, &resources).map(|r| (r, resources))
        })
        .await
        .unwrap_or_else(|e| {
            Err(VulnDbError::Storage {
                dir: PathBuf::new(),
                message: format!("the matching task failed: {e}"),
            })
        });
        let max_age = self.settings.as_ref().map_or(7, |s| s.max_age_days);
        let (sources, findings, resources) = match read {
            Ok((DbRead::Empty(sources), resources)) => (sources, None, resources),
            Ok((DbRead::Matched(sources, index, findings), resources)) => {
                self.index = Some(index);
                (sources, Some(findings), resources)
            }
            Err(e) => {
                return CveScan {
                    findings: None,
                    status: None,
                    error: Some(e.to_string()),
                };
            }
        };
        let (view, stale) = vulndb::freshness(&sources, max_age, now);
        let status = (self.reported.as_ref() != Some(&(view.clone(), stale))).then(|| {
            self.reported = Some((view.clone(), stale));
            EventKind::VulnDbStatus {
                sources: view,
                max_age_days: max_age,
                stale,
            }
        });
        CveScan {
            findings: Some(findings.unwrap_or_else(|| self.embedded(&resources))),
            status,
            error: None,
        }
    }

    fn embedded(&self, resources: &[Resource]) -> Vec<SecurityFinding> {
        resources
            .iter()
            .flat_map(|r| package_findings(&self.advisories, r))
            .collect()
    }
}

/// Opens the database, refreshes the index if an import changed it, and
/// matches every resource.
fn read_db(
    settings: &VulnDbSettings,
    cached: Option<Arc<Index>>,
    resources: &[Resource],
) -> Result<DbRead, VulnDbError> {
    let db = match VulnDb::open(&settings.dir, false, LOCK_WAIT) {
        Ok(db) => db,
        Err(VulnDbError::Missing { .. }) => return Ok(DbRead::Empty(Vec::new())),
        Err(e) => return Err(e),
    };
    let sources = db.sources()?;
    let generation = db.generation()?;
    let index = match cached {
        Some(i) if i.generation() == generation => i,
        _ => Arc::new(db.load_index()?),
    };
    if index.is_empty() {
        return Ok(DbRead::Empty(sources));
    }
    let mut findings = Vec::new();
    for r in resources {
        for m in match_resource(&index, r) {
            findings.push(finding(&m, r, &db)?);
        }
    }
    Ok(DbRead::Matched(sources, index, findings))
}

/// One finding per embedded advisory whose fixed version is above the installed one.
pub(super) fn package_findings(advisories: &[Advisory], r: &Resource) -> Vec<SecurityFinding> {
    let mut out = Vec::new();
    for (key, installed) in &r.attributes {
        let Some(package) = key.strip_prefix("pkg:") else {
            continue;
        };
        for adv in advisories.iter().filter(|a| a.package == package) {
            if compare_versions(installed, &adv.fixed_version) == Ordering::Less {
                out.push(SecurityFinding {
                    id: format!("{}@{}", adv.cve, r.id),
                    category: "cve".into(),
                    severity: adv.severity,
                    resource: r.id.clone(),
                    title: format!("{} in {package}", adv.cve),
                    detail: format!(
                        "{} — installed {installed}, fixed in {} (CVSS {:.1})",
                        adv.title, adv.fixed_version, adv.cvss
                    ),
                    expires_at: None,
                    control: None,
                    open: true,
                    vulnerability: Some(VulnerabilityMatch {
                        cve: adv.cve.clone(),
                        cvss_score: Some(adv.cvss),
                        cvss_vector: None,
                        package: package.to_string(),
                        installed_version: installed.clone(),
                        fixed_version: Some(adv.fixed_version.clone()),
                        source: "embedded sample".into(),
                        reason: format!(
                            "installed {installed} < fixed {} (embedded demo advisories)",
                            adv.fixed_version
                        ),
                    }),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::security::vulndb::debian::{DebianRecord, DebianRelease};
    use crate::event::{ConnectorId, Environment, Health, Provider, ResourceId};

    fn host(attrs: &[(&str, &str)]) -> Resource {
        Resource {
            id: ResourceId::new("linux/ssh/h"),
            name: "h".into(),
            kind: "host".into(),
            provider: Provider::Linux,
            connector: ConnectorId::new("linux:ssh"),
            environment: Environment::Production,
            team: "ops".into(),
            labels: Default::default(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            health: Health::healthy(),
            created_at: Utc::now(),
        }
    }

    fn index() -> Index {
        let mut index = Index::new(1);
        index.add_debian(&DebianRecord {
            package: "openssl".into(),
            cve: "CVE-2024-1".into(),
            description: String::new(),
            scope: None,
            releases: [(
                "bookworm".to_string(),
                DebianRelease {
                    status: DebianStatus::Resolved,
                    fixed_version: Some("3.0.14-1~deb12u1".into()),
                    urgency: "low".into(),
                },
            )]
            .into(),
        });
        index.finish();
        index
    }

    #[test]
    fn source_field_with_and_without_version() {
        assert_eq!(parse_source("openssl"), ("openssl", None));
        assert_eq!(parse_source("bash (5.2.15-2)"), ("bash", Some("5.2.15-2")));
    }

    #[test]
    fn binaries_match_through_their_source_and_the_oldest_decides() {
        let index = index();
        // libssl3 upgraded, openssl not (a partial upgrade): still vulnerable.
        let r = host(&[
            ("os.version_codename", "bookworm"),
            ("pkg:libssl3", "3.0.14-1~deb12u1"),
            ("pkgsrc:libssl3", "openssl"),
            ("pkg:openssl", "3.0.13-1~deb12u1"),
        ]);
        let m = match_resource(&index, &r);
        assert_eq!(m.len(), 1, "{m:#?}");
        assert_eq!(m[0].package, "openssl");
        assert_eq!(m[0].installed_version, "3.0.13-1~deb12u1");
        assert!(m[0].reason.contains("libssl3, openssl"), "{}", m[0].reason);
        // Both upgraded: nothing.
        let r = host(&[
            ("os.version_codename", "bookworm"),
            ("pkg:libssl3", "3.0.14-1~deb12u1"),
            ("pkgsrc:libssl3", "openssl"),
        ]);
        assert!(match_resource(&index, &r).is_empty());
        // Another release's advisories do not apply.
        let r = host(&[
            ("os.version_codename", "trixie"),
            ("pkg:libssl3", "3.0.1-1"),
            ("pkgsrc:libssl3", "openssl"),
        ]);
        assert!(match_resource(&index, &r).is_empty());
    }
}
