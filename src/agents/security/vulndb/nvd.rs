//! NVD API 2.0 CVE pages (`https://services.nvd.nist.gov/rest/json/cves/2.0`):
//! each `vulnerabilities[].cve` record keeps its id, English description,
//! CVSS v3.1 (the `Primary` metric when there is one) and the vulnerable
//! CPE match ranges of its configurations.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cpe::CpeRange;
use super::{VulnDbError, parse_json};
use crate::event::Severity;

/// Descriptions longer than this are cut (findings show a line, not an essay).
const DESCRIPTION_CHARS: usize = 600;

/// One CVE as the database keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NvdRecord {
    pub id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<Cvss>,
    /// Vulnerable CPE ranges (configurations' platform conditions are not kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<CpeRange>,
}

/// A CVSS v3.1 base score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cvss {
    pub score: f64,
    /// `CVSS:3.1/AV:N/AC:L/…`
    pub vector: String,
    pub severity: Severity,
}

/// What one NVD file holds.
#[derive(Debug)]
pub struct NvdImport {
    /// When NVD produced the page (its `timestamp`), if it says.
    pub as_of: Option<DateTime<Utc>>,
    pub records: Vec<NvdRecord>,
    /// CVEs NVD marks `Rejected`: removed from the database.
    pub rejected: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    format: String,
    version: String,
    #[serde(default)]
    timestamp: Option<String>,
    vulnerabilities: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    cve: RawCve,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCve {
    id: String,
    #[serde(default)]
    vuln_status: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    #[serde(default)]
    descriptions: Vec<LangString>,
    #[serde(default)]
    metrics: Metrics,
    #[serde(default)]
    configurations: Vec<Configuration>,
}

#[derive(Deserialize)]
struct LangString {
    lang: String,
    value: String,
}

#[derive(Deserialize, Default)]
struct Metrics {
    #[serde(default, rename = "cvssMetricV31")]
    v31: Vec<MetricV31>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricV31 {
    #[serde(rename = "type")]
    kind: String,
    cvss_data: CvssData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CvssData {
    vector_string: String,
    base_score: f64,
    base_severity: String,
}

#[derive(Deserialize)]
struct Configuration {
    #[serde(default)]
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    #[serde(default)]
    cpe_match: Vec<CpeMatch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CpeMatch {
    vulnerable: bool,
    criteria: String,
    #[serde(default)]
    version_start_including: Option<String>,
    #[serde(default)]
    version_start_excluding: Option<String>,
    #[serde(default)]
    version_end_including: Option<String>,
    #[serde(default)]
    version_end_excluding: Option<String>,
}

/// Parses one NVD API 2.0 page; errors name `file` and the line or record.
pub fn parse(bytes: &[u8], file: &str) -> Result<NvdImport, VulnDbError> {
    let page: Page = parse_json(bytes, file)?;
    let invalid = |at: String, message: String| VulnDbError::Invalid {
        file: file.to_string(),
        at,
        message,
    };
    if page.format != "NVD_CVE" || !page.version.starts_with("2.") {
        return Err(invalid(
            "format".into(),
            format!(
                "expected an NVD API 2.0 CVE page (format NVD_CVE, version 2.x), found format {:?} version {:?}",
                page.format, page.version
            ),
        ));
    }
    let as_of = match &page.timestamp {
        Some(t) => Some(parse_time(t).ok_or_else(|| {
            invalid("timestamp".into(), format!("`{t}` is not an ISO 8601 time"))
        })?),
        None => None,
    };
    let mut records = Vec::with_capacity(page.vulnerabilities.len());
    let mut rejected = Vec::new();
    for (i, item) in page.vulnerabilities.into_iter().enumerate() {
        let cve = item.cve;
        let at = |field: &str| format!("vulnerabilities[{i}].cve{field} ({})", cve.id);
        if !is_cve_id(&cve.id) {
            return Err(invalid(
                format!("vulnerabilities[{i}].cve.id"),
                format!("`{}` is not a CVE id (CVE-YYYY-NNNN)", cve.id),
            ));
        }
        if cve.vuln_status.as_deref() == Some("Rejected") {
            rejected.push(cve.id);
            continue;
        }
        let primary = cve
            .metrics
            .v31
            .iter()
            .find(|m| m.kind == "Primary")
            .or_else(|| cve.metrics.v31.first());
        let cvss = match primary {
            Some(m) => {
                let d = &m.cvss_data;
                if !(0.0..=10.0).contains(&d.base_score) {
                    return Err(invalid(
                        at(".metrics.cvssMetricV31.cvssData.baseScore"),
                        format!("{} is outside 0–10", d.base_score),
                    ));
                }
                if !d.vector_string.starts_with("CVSS:3.") {
                    return Err(invalid(
                        at(".metrics.cvssMetricV31.cvssData.vectorString"),
                        format!("`{}` is not a CVSS v3 vector", d.vector_string),
                    ));
                }
                Some(Cvss {
                    score: d.base_score,
                    vector: d.vector_string.clone(),
                    severity: severity(&d.base_severity).ok_or_else(|| {
                        invalid(
                            at(".metrics.cvssMetricV31.cvssData.baseSeverity"),
                            format!("unknown severity `{}`", d.base_severity),
                        )
                    })?,
                })
            }
            None => None,
        };
        let mut ranges = Vec::new();
        for (j, config) in cve.configurations.iter().enumerate() {
            for (k, node) in config.nodes.iter().enumerate() {
                for (l, m) in node.cpe_match.iter().enumerate() {
                    if !m.vulnerable {
                        continue;
                    }
                    let range = CpeRange::parse(
                        &m.criteria,
                        [
                            m.version_start_including.clone(),
                            m.version_start_excluding.clone(),
                            m.version_end_including.clone(),
                            m.version_end_excluding.clone(),
                        ],
                    )
                    .map_err(|e| {
                        invalid(
                            at(&format!(".configurations[{j}].nodes[{k}].cpeMatch[{l}]")),
                            e,
                        )
                    })?;
                    ranges.push(range);
                }
            }
        }
        let description = cve
            .descriptions
            .iter()
            .find(|d| d.lang == "en")
            .or_else(|| cve.descriptions.first())
            .map(|d| cut(d.value.trim(), DESCRIPTION_CHARS))
            .unwrap_or_default();
        records.push(NvdRecord {
            id: cve.id,
            description,
            last_modified: cve.last_modified,
            cvss,
            ranges,
        });
    }
    Ok(NvdImport {
        as_of,
        records,
        rejected,
    })
}

/// NVD writes times without a zone (`2024-07-01T13:15:06.467`); they are UTC.
fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

fn is_cve_id(id: &str) -> bool {
    let mut parts = id.splitn(3, '-');
    parts.next() == Some("CVE")
        && parts
            .next()
            .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
        && parts
            .next()
            .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

fn severity(s: &str) -> Option<Severity> {
    Some(match s {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        "NONE" => Severity::Info,
        _ => return None,
    })
}

pub(super) fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(vulns: &str) -> String {
        format!(
            r#"{{"resultsPerPage":1,"startIndex":0,"totalResults":1,"format":"NVD_CVE","version":"2.0","timestamp":"2026-11-20T08:00:00.000","vulnerabilities":[{vulns}]}}"#
        )
    }

    #[test]
    fn primary_v31_metric_is_preferred() {
        let text = page(
            r#"{"cve":{"id":"CVE-2024-0001","vulnStatus":"Analyzed","descriptions":[{"lang":"es","value":"x"},{"lang":"en","value":" A bug. "}],
            "metrics":{"cvssMetricV31":[
              {"source":"cna@example","type":"Secondary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:L","baseScore":3.3,"baseSeverity":"LOW"}},
              {"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":9.8,"baseSeverity":"CRITICAL"}}]},
            "configurations":[{"nodes":[{"operator":"OR","negate":false,"cpeMatch":[
              {"vulnerable":true,"criteria":"cpe:2.3:a:acme:widget:*:*:*:*:*:*:*:*","versionEndExcluding":"2.0","matchCriteriaId":"X"},
              {"vulnerable":false,"criteria":"cpe:2.3:o:debian:debian_linux:12.0:*:*:*:*:*:*:*","matchCriteriaId":"Y"}]}]}]}}"#,
        );
        let import = parse(text.as_bytes(), "page.json").unwrap();
        assert_eq!(
            import.as_of.unwrap().to_rfc3339(),
            "2026-11-20T08:00:00+00:00"
        );
        let r = &import.records[0];
        assert_eq!(r.description, "A bug.");
        let cvss = r.cvss.as_ref().unwrap();
        assert_eq!(cvss.score, 9.8);
        assert_eq!(cvss.severity, Severity::Critical);
        assert_eq!(r.ranges.len(), 1);
        assert_eq!(r.ranges[0].end_excluding.as_deref(), Some("2.0"));
    }

    #[test]
    fn rejected_records_and_bad_values() {
        let text = page(r#"{"cve":{"id":"CVE-2024-0002","vulnStatus":"Rejected"}}"#);
        let import = parse(text.as_bytes(), "p.json").unwrap();
        assert!(import.records.is_empty());
        assert_eq!(import.rejected, vec!["CVE-2024-0002".to_string()]);

        let text = page(r#"{"cve":{"id":"GHSA-1234"}}"#);
        let e = parse(text.as_bytes(), "p.json").unwrap_err().to_string();
        assert!(
            e.contains("p.json") && e.contains("vulnerabilities[0].cve.id"),
            "{e}"
        );

        let text = page(
            r#"{"cve":{"id":"CVE-2024-0003","configurations":[{"nodes":[{"cpeMatch":[{"vulnerable":true,"criteria":"cpe:/a:x"}]}]}]}}"#,
        );
        let e = parse(text.as_bytes(), "p.json").unwrap_err().to_string();
        assert!(e.contains("configurations[0].nodes[0].cpeMatch[0]"), "{e}");
        assert!(e.contains("CVE-2024-0003"), "{e}");

        let e = parse(
            br#"{"format":"OSV","version":"1","vulnerabilities":[]}"#,
            "p.json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("NVD API 2.0"), "{e}");
    }
}
