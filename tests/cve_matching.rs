//! Matching this machine's real dpkg status database (through the real
//! Linux connector) against the fixture advisories in tests/vulndb_fixtures,
//! with `dpkg --compare-versions` and `dpkg-query` as the oracle; and the
//! security agent recording findings and the database's freshness.

mod runtime_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use runtime_support::{Driven, shipped_policy};
use shieldops::agents::security::VulnDbSettings;
use shieldops::agents::security::match_resource;
use shieldops::agents::security::vulndb::{self, VulnDb};
use shieldops::clock::ManualClock;
use shieldops::connectors::linux::{LinuxConfig, LinuxConnector};
use shieldops::connectors::{InfraConnector, Registry, Result as CResult, Scope, TimeWindow};
use shieldops::event::{
    Action, ActionOutcome, ConnectorId, EventKind, Health, InfraEvent, Provider, Resource,
    ResourceId, Severity, Snapshot,
};
use shieldops::runtime::RuntimeOptions;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vulndb_fixtures")
        .join(name)
}

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

/// Imports the NVD page and the Debian dump (its file time set to `debian_at`).
fn import_fixtures(data: &Path, debian_at: DateTime<Utc>, now: DateTime<Utc>) -> PathBuf {
    let copy = data.join("debian-tracker.json");
    std::fs::create_dir_all(data).unwrap();
    std::fs::copy(fixture("debian-tracker.json"), &copy).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_modified(debian_at.into())
        .unwrap();
    let feeds = vec![
        vulndb::read_feed(&fixture("nvd-page.json"), None).unwrap(),
        vulndb::read_feed(&copy, None).unwrap(),
    ];
    let dir = vulndb::db_dir(data);
    let db = VulnDb::open(&dir, true, Duration::from_secs(5)).unwrap();
    db.import(feeds, now).unwrap();
    dir
}

/// This machine as the Linux connector sees it, with its release codename.
async fn this_host() -> Resource {
    let clock: shieldops::clock::SharedClock = Arc::new(ManualClock::new(Utc::now()));
    let connector = LinuxConnector::from_config(&LinuxConfig::default(), clock)
        .unwrap()
        .remove(0);
    let mut host = connector
        .list_resources(&Scope::default())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == "host")
        .expect("the local host resource");
    // The connector reports the codename from /etc/os-release; read it the
    // same way where this build's connector does not yet.
    if !host.attributes.contains_key("os.version_codename") {
        host.attributes
            .insert("os.version_codename".into(), codename());
    }
    host
}

fn codename() -> String {
    std::fs::read_to_string("/etc/os-release")
        .expect("this test needs a Debian system (/etc/os-release)")
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .expect("VERSION_CODENAME in /etc/os-release")
}

/// Installed source packages → their (lowest) source version, from dpkg-query.
fn installed_sources() -> BTreeMap<String, String> {
    let out = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${db:Status-Abbrev}\t${source:Package}\t${source:Version}\n",
        ])
        .output()
        .expect("dpkg-query runs (this test reads the real dpkg database)");
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 3 || !f[0].starts_with("ii") {
            continue;
        }
        match sources.get(f[1]) {
            Some(v) if !dpkg_lt(f[2], v) => {}
            _ => {
                sources.insert(f[1].to_string(), f[2].to_string());
            }
        }
    }
    sources
}

fn dpkg_lt(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "lt", b])
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn this_machines_packages_match_the_fixture_advisories() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = import_fixtures(dir.path(), Utc::now(), Utc::now());
    let db = VulnDb::open(&db_dir, false, Duration::from_secs(5)).unwrap();
    let index = db.load_index().unwrap();
    let host = this_host().await;
    let release = codename();
    let matches = match_resource(&index, &host);

    // The oracle: dpkg's own view of what is installed and how versions order.
    let installed = installed_sources();
    let tracker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("debian-tracker.json")).unwrap()).unwrap();
    let mut expected = BTreeSet::new();
    for (source, issues) in tracker.as_object().unwrap() {
        let Some(version) = installed.get(source) else {
            continue;
        };
        for (cve, issue) in issues.as_object().unwrap() {
            let Some(r) = issue["releases"].get(&release) else {
                continue;
            };
            let affected = match r["status"].as_str().unwrap() {
                "resolved" => {
                    let fixed = r["fixed_version"].as_str().unwrap();
                    fixed != "0" && dpkg_lt(version, fixed)
                }
                _ => true,
            };
            if affected {
                expected.insert((cve.clone(), source.clone()));
            }
        }
    }
    let from_debian: BTreeSet<(String, String)> = matches
        .iter()
        .filter(|m| m.source == format!("debian:{release}"))
        .map(|m| (m.cve.to_string(), m.package.clone()))
        .collect();
    assert_eq!(from_debian, expected, "matches: {matches:#?}");
    // On any Debian 12 system these hold (glibc and coreutils are essential).
    for must in [
        ("CVE-2099-0002", "glibc"),
        ("CVE-2010-4756", "glibc"),
        ("CVE-2016-2781", "coreutils"),
    ] {
        assert!(
            from_debian.contains(&(must.0.to_string(), must.1.to_string())),
            "{must:?} missing from {from_debian:?}"
        );
    }
    // Found through the source package: libc6 is a binary of glibc.
    let glibc = matches.iter().find(|m| &*m.cve == "CVE-2099-0002").unwrap();
    assert_eq!(glibc.installed_version, installed["glibc"]);
    assert_eq!(glibc.fixed_version.as_deref(), Some("2.36-9+deb12u9999"));
    assert!(glibc.reason.contains("libc6"), "{}", glibc.reason);
    let open = matches.iter().find(|m| &*m.cve == "CVE-2010-4756").unwrap();
    assert_eq!(open.fixed_version, None, "open advisories have no fix");
    assert!(
        !from_debian.iter().any(|(c, _)| c == "CVE-2022-1664"),
        "fixed version 0: never affected"
    );

    // gzip has no Debian fixture advisory: NVD CPE ranges on the upstream version.
    let gzip = host.attributes["pkg:gzip"].clone();
    let upstream = gzip.rsplit_once('-').map_or(gzip.as_str(), |(u, _)| u);
    let cpe: BTreeSet<&str> = matches
        .iter()
        .filter(|m| m.source == "nvd")
        .map(|m| &*m.cve)
        .collect();
    assert!(cpe.contains("CVE-2099-0001"), "{matches:#?}");
    assert_eq!(cpe.contains("CVE-2022-1271"), dpkg_lt(upstream, "1.12"));
    // Software the tracker covers is never matched by CPE (openssl, glibc, zlib).
    assert!(
        !matches.iter().any(|m| m.source == "nvd"
            && ["openssl", "libssl3", "libc6", "zlib1g"].contains(&m.package.as_str())),
        "{matches:#?}"
    );
}

/// The real Linux connector, with the release codename filled in from
/// /etc/os-release where this build's connector does not report it yet
/// (everything else is passed through untouched).
struct WithCodename(LinuxConnector);

#[async_trait::async_trait]
impl InfraConnector for WithCodename {
    fn id(&self) -> &ConnectorId {
        self.0.id()
    }
    fn provider(&self) -> Provider {
        self.0.provider()
    }
    async fn list_resources(&self, scope: &Scope) -> CResult<Vec<Resource>> {
        let mut out = self.0.list_resources(scope).await?;
        for r in out.iter_mut().filter(|r| r.kind == "host") {
            if !r.attributes.contains_key("os.version_codename") {
                r.attributes
                    .insert("os.version_codename".into(), codename());
            }
        }
        Ok(out)
    }
    async fn health(&self, id: &ResourceId) -> CResult<Health> {
        self.0.health(id).await
    }
    async fn events(&self, id: &ResourceId, window: TimeWindow) -> CResult<Vec<InfraEvent>> {
        self.0.events(id, window).await
    }
    async fn metrics(&self, id: &ResourceId) -> CResult<BTreeMap<String, f64>> {
        self.0.metrics(id).await
    }
    async fn snapshot(&self, id: &ResourceId) -> CResult<Snapshot> {
        self.0.snapshot(id).await
    }
    async fn execute(&self, action: &Action) -> CResult<ActionOutcome> {
        self.0.execute(action).await
    }
    async fn restore(&self, snapshot: &Snapshot) -> CResult<ActionOutcome> {
        self.0.restore(snapshot).await
    }
}

#[tokio::test]
async fn the_security_agent_records_findings_and_freshness() {
    let dir = tempfile::tempdir().unwrap();
    let start = at("2026-11-25T09:00:00Z");
    let db_dir = import_fixtures(dir.path(), at("2026-11-24T12:00:00Z"), start);
    let clock = ManualClock::new(start);
    let mut registry = Registry::new();
    let real: shieldops::clock::SharedClock = Arc::new(ManualClock::new(start));
    for c in LinuxConnector::from_config(&LinuxConfig::default(), real).unwrap() {
        registry.add(Arc::new(WithCodename(c)));
    }
    let options = RuntimeOptions {
        vulndb: Some(VulnDbSettings {
            dir: db_dir,
            max_age_days: 7,
        }),
        ..Default::default()
    };
    let has_openssl = installed_sources().contains_key("openssl");
    let driven = Driven::start(clock.clone(), registry, shipped_policy(), None, options)
        .settling(Duration::from_millis(200));
    let state = driven
        .until("the first vulnerability scan", |s| {
            // Findings are recorded one by one: wait for the last of them.
            let has = |p: &str| s.security.findings.keys().any(|k| k.starts_with(p));
            s.security.vulndb.is_some()
                && has("CVE-2099-0001:gzip@")
                && has("CVE-2099-0002:glibc@")
                && has("CVE-2016-2781:coreutils@")
                && (!has_openssl || has("CVE-2099-0004:openssl@"))
        })
        .await;
    let view = state.security.vulndb.clone().unwrap();
    assert!(!view.stale, "{view:?}");
    assert_eq!(view.max_age_days, 7);
    let names: BTreeSet<&str> = view.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["debian", "nvd"]));

    let finding = |cve: &str| {
        state
            .security
            .findings
            .values()
            .map(|t| &t.finding)
            .find(|f| f.vulnerability.as_ref().is_some_and(|v| v.cve == cve))
            .unwrap_or_else(|| {
                panic!(
                    "no finding for {cve}: {:#?}",
                    state.security.findings.keys()
                )
            })
            .clone()
    };
    // Debian advisory without an NVD record: severity from the urgency.
    let glibc = finding("CVE-2099-0002");
    let v = glibc.vulnerability.as_ref().unwrap();
    assert_eq!(glibc.category, "cve");
    assert_eq!(glibc.severity, Severity::Medium);
    assert_eq!(v.package, "glibc");
    assert_eq!(v.fixed_version.as_deref(), Some("2.36-9+deb12u9999"));
    assert_eq!(v.source, format!("debian:{}", codename()));
    assert_eq!(v.cvss_score, None);
    assert!(
        glibc.id.starts_with("CVE-2099-0002:glibc@linux/local/"),
        "{}",
        glibc.id
    );
    // NVD supplies CVSS and the vector where it has the CVE.
    if has_openssl {
        let t = state
            .security
            .findings
            .values()
            .find(|t| t.finding.id.starts_with("CVE-2099-0004:openssl@"))
            .unwrap();
        let v = t.finding.vulnerability.as_ref().unwrap();
        assert_eq!(v.cvss_score, Some(7.5));
        assert_eq!(
            v.cvss_vector.as_deref(),
            Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H")
        );
        assert_eq!(t.finding.severity, Severity::High);
    }
    let gzip = finding("CVE-2099-0001");
    assert_eq!(gzip.vulnerability.unwrap().source, "nvd");

    // Days pass: the NVD page (2026-11-20) outgrows the 7-day limit and the
    // agent says so on its next scan.
    clock.advance(Duration::from_secs(3 * 24 * 3600));
    let state = driven
        .until("the data turning stale", |s| {
            s.security.vulndb.as_ref().is_some_and(|v| v.stale)
        })
        .await;
    // Recorded at start and again when the staleness changed, not every scan.
    let statuses: Vec<bool> = driven
        .log
        .scan(1)
        .filter_map(|e| match e.unwrap().kind {
            EventKind::VulnDbStatus { stale, .. } => Some(stale),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![false, true]);
    // Stale data still yields its findings: the warning is added, nothing hidden.
    assert!(
        state
            .security
            .findings
            .values()
            .any(|t| t.finding.open && t.finding.id.starts_with("CVE-2099-0002:glibc@"))
    );
    driven.stop().await;
}
