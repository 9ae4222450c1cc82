//! The offline vulnerability database: importing a generated 100,000-record
//! NVD API 2.0 page and a 100,000-record Debian tracker dump (read, parse,
//! one atomic sled batch, flush), loading the matching index from the
//! database, and matching 2,000 installed packages against 100,000
//! advisories.
//!
//! Run: `cargo bench --bench vulndb`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, Throughput};
use shieldops::agents::security::match_resource;
use shieldops::agents::security::vulndb::{self, VulnDb};
use shieldops::event::{ConnectorId, Environment, Health, Provider, Resource, ResourceId};

const RECORDS: usize = 100_000;
const INSTALLED: usize = 2_000;

/// An NVD API 2.0 page of `n` records shaped like real ones (two CVSS v3.1
/// metrics, two CPE matches, references, a Spanish description).
fn nvd_page(n: usize) -> String {
    let mut s = String::with_capacity(n * 1_400);
    s.push_str(r#"{"resultsPerPage":"#);
    let _ = write!(
        s,
        r#"{n},"startIndex":0,"totalResults":{n},"format":"NVD_CVE","version":"2.0","timestamp":"2026-11-20T08:00:00.000","vulnerabilities":["#
    );
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            r#"{{"cve":{{"id":"CVE-2025-{i:06}","sourceIdentifier":"cve@mitre.org","published":"2025-03-01T10:15:00.000","lastModified":"2025-06-01T12:00:00.000","vulnStatus":"Analyzed","cveTags":[],
"descriptions":[{{"lang":"en","value":"A heap-based buffer overflow in the parser of product-{p} before {maj}.{min}.1 allows remote attackers to execute arbitrary code via a crafted request."}},{{"lang":"es","value":"Un desbordamiento de búfer en product-{p}."}}],
"metrics":{{"cvssMetricV31":[{{"source":"nvd@nist.gov","type":"Primary","cvssData":{{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":9.8,"baseSeverity":"CRITICAL","attackVector":"NETWORK","attackComplexity":"LOW","privilegesRequired":"NONE","userInteraction":"NONE","scope":"UNCHANGED","confidentialityImpact":"HIGH","integrityImpact":"HIGH","availabilityImpact":"HIGH"}},"exploitabilityScore":3.9,"impactScore":5.9}},
{{"source":"cve@mitre.org","type":"Secondary","cvssData":{{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":8.1,"baseSeverity":"HIGH"}},"exploitabilityScore":2.2,"impactScore":5.9}}]}},
"weaknesses":[{{"source":"nvd@nist.gov","type":"Primary","description":[{{"lang":"en","value":"CWE-787"}}]}}],
"configurations":[{{"nodes":[{{"operator":"OR","negate":false,"cpeMatch":[{{"vulnerable":true,"criteria":"cpe:2.3:a:vendor-{p}:product-{p}:*:*:*:*:*:*:*:*","versionStartIncluding":"{maj}.0","versionEndExcluding":"{maj}.{min}.1","matchCriteriaId":"7E1B7B1C-2B3A-4C55-9A0B-{i:012}"}},{{"vulnerable":false,"criteria":"cpe:2.3:o:debian:debian_linux:12.0:*:*:*:*:*:*:*","matchCriteriaId":"B9B6F3A0-1A7E-4E0F-A2C4-000000000012"}}]}}]}}],
"references":[{{"url":"https://example.org/advisories/{i}","source":"cve@mitre.org","tags":["Vendor Advisory"]}}]}}}}"#,
            p = i % 20_000,
            maj = 1 + i % 5,
            min = i % 17,
        );
    }
    s.push_str("]}");
    s
}

/// The Debian tracker dump: `n` records, five CVEs per source package, in
/// bookworm (resolved, open or undetermined) and bullseye.
fn debian_dump(n: usize) -> String {
    let mut s = String::with_capacity(n * 420);
    s.push('{');
    for p in 0..n / 5 {
        if p > 0 {
            s.push(',');
        }
        let _ = write!(s, r#""src-{p}":{{"#);
        for k in 0..5 {
            if k > 0 {
                s.push(',');
            }
            let i = p * 5 + k;
            let bookworm = match k {
                0 | 1 => format!(
                    r#"{{"status":"resolved","repositories":{{"bookworm":"1.{k}-1"}},"fixed_version":"1.{k}-{}+deb12u1","urgency":"medium"}}"#,
                    1 + k % 2
                ),
                2 | 3 => r#"{"status":"open","repositories":{"bookworm":"1.2-1"},"urgency":"unimportant"}"#.into(),
                _ => r#"{"status":"undetermined","repositories":{"bookworm":"1.2-1"},"urgency":"not yet assigned"}"#.into(),
            };
            let _ = write!(
                s,
                r#""CVE-2024-{i:06}":{{"description":"flaw {i} in src-{p}","scope":"remote","debianbug":{i},"releases":{{"bookworm":{bookworm},"bullseye":{{"status":"resolved","repositories":{{"bullseye":"1.0-1"}},"fixed_version":"0","urgency":"not yet assigned"}}}}}}"#
            );
        }
        s.push('}');
    }
    s.push('}');
    s
}

/// A host with 2,000 binary packages from 1,000 source packages.
fn host() -> Resource {
    let mut attributes = shieldops::event::StringMap::new();
    attributes.insert("os.version_codename".to_string(), "bookworm".to_string());
    for i in 0..INSTALLED {
        attributes.insert(format!("pkg:bin-{i}"), "1.1-2+b1".to_string());
        attributes.insert(format!("pkgsrc:bin-{i}"), format!("src-{} (1.1-2)", i / 2));
    }
    Resource {
        id: ResourceId::new("linux/ssh/bench"),
        name: "bench".into(),
        kind: "host".into(),
        provider: Provider::Linux,
        connector: ConnectorId::new("linux:ssh"),
        environment: Environment::Production,
        team: "ops".into(),
        labels: Default::default(),
        attributes,
        health: Health::healthy(),
        created_at: Utc::now(),
    }
}

fn import(file: &Path, db_dir: &Path) -> u64 {
    let feed = vulndb::read_feed(file, None).unwrap();
    let db = VulnDb::open(db_dir, true, Duration::from_secs(5)).unwrap();
    db.import(vec![feed], Utc::now()).unwrap()[0].read
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let nvd_file = dir.path().join("nvd.json");
    let debian_file = dir.path().join("debian.json");
    std::fs::write(&nvd_file, nvd_page(RECORDS)).unwrap();
    std::fs::write(&debian_file, debian_dump(RECORDS)).unwrap();
    for (name, file) in [("NVD 2.0", &nvd_file), ("Debian tracker", &debian_file)] {
        let size = std::fs::metadata(file).unwrap().len();
        println!(
            "{name} file: {RECORDS} records, {:.1} MB",
            size as f64 / 1e6
        );
    }

    let mut group = c.benchmark_group("import");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, file) in [
        ("nvd 100k records", &nvd_file),
        ("debian 100k records", &debian_file),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let db = tempfile::tempdir().unwrap();
                    let started = Instant::now();
                    assert_eq!(import(file, &db.path().join("vulndb")), RECORDS as u64);
                    total += started.elapsed();
                }
                total
            })
        });
    }
    group.finish();

    // Re-importing the same file: every record compared, none rewritten.
    let db_dir = dir.path().join("vulndb");
    import(&nvd_file, &db_dir);
    import(&debian_file, &db_dir);
    let mut group = c.benchmark_group("reimport");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("nvd 100k records, unchanged", |b| {
        b.iter(|| import(&nvd_file, &db_dir))
    });
    group.finish();

    let db = VulnDb::open(&db_dir, false, Duration::from_secs(5)).unwrap();
    c.bench_function("load index (100k debian + 100k nvd records)", |b| {
        b.iter(|| black_box(db.load_index().unwrap()))
    });
    let index = db.load_index().unwrap();
    let host = host();
    let matches = match_resource(&index, &host);
    println!(
        "{} matches for {INSTALLED} installed packages against {} advisories",
        matches.len(),
        2 * RECORDS
    );
    c.bench_function(
        "match 2,000 installed packages against 100k advisories",
        |b| b.iter(|| black_box(match_resource(&index, &host))),
    );
    c.final_summary();
}
