//! CPE 2.3 match criteria from NVD configurations, and whether an installed
//! version falls inside a criterion's version range.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::super::compare_versions;

/// One vulnerable `cpeMatch` entry: a product and the versions it covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpeRange {
    pub vendor: String,
    pub product: String,
    /// The exact version named in the criteria; None for `*` or `-` (any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_including: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_excluding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_including: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_excluding: Option<String>,
}

/// Splits a CPE 2.3 formatted string into its components (a `\` escapes
/// the next character, so `\:` stays inside a component).
fn components(criteria: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(13);
    let mut current = String::new();
    let mut chars = criteria.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ':' => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out
}

impl CpeRange {
    /// The range a `cpe:2.3:…` criterion and its version bounds describe.
    pub fn parse(criteria: &str, bounds: [Option<String>; 4]) -> Result<CpeRange, String> {
        let parts = components(criteria);
        if parts.len() != 13 || parts[0] != "cpe" || parts[1] != "2.3" {
            return Err(format!(
                "`{criteria}` is not a CPE 2.3 name (cpe:2.3: followed by 11 components)"
            ));
        }
        if !matches!(parts[2].as_str(), "a" | "o" | "h") {
            return Err(format!("`{criteria}`: part must be a, o or h"));
        }
        let [
            start_including,
            start_excluding,
            end_including,
            end_excluding,
        ] = bounds;
        let version = match parts[5].as_str() {
            "*" | "-" | "" => None,
            v => Some(v.to_string()),
        };
        Ok(CpeRange {
            vendor: parts[3].to_lowercase(),
            product: parts[4].to_lowercase(),
            version,
            start_including,
            start_excluding,
            end_including,
            end_excluding,
        })
    }

    /// Whether `upstream` (an upstream version, without Debian epoch or
    /// revision) is inside this range, compared with dpkg ordering.
    pub fn contains(&self, upstream: &str) -> bool {
        let bounded = self.start_including.is_some()
            || self.start_excluding.is_some()
            || self.end_including.is_some()
            || self.end_excluding.is_some();
        if !bounded {
            return match &self.version {
                Some(v) => compare_versions(upstream, v) == Ordering::Equal,
                None => true,
            };
        }
        let cmp = |bound: &Option<String>| bound.as_deref().map(|b| compare_versions(upstream, b));
        cmp(&self.start_including).is_none_or(|o| o != Ordering::Less)
            && cmp(&self.start_excluding).is_none_or(|o| o == Ordering::Greater)
            && cmp(&self.end_including).is_none_or(|o| o != Ordering::Greater)
            && cmp(&self.end_excluding).is_none_or(|o| o == Ordering::Less)
    }

    /// The range in words (`openssl:openssl >= 3.0.0, < 3.0.14`).
    pub fn describe(&self) -> String {
        let mut bounds = Vec::new();
        if let Some(v) = &self.start_including {
            bounds.push(format!(">= {v}"));
        }
        if let Some(v) = &self.start_excluding {
            bounds.push(format!("> {v}"));
        }
        if let Some(v) = &self.end_including {
            bounds.push(format!("<= {v}"));
        }
        if let Some(v) = &self.end_excluding {
            bounds.push(format!("< {v}"));
        }
        if bounds.is_empty() {
            bounds.push(match &self.version {
                Some(v) => format!("= {v}"),
                None => "all versions".into(),
            });
        }
        format!("{}:{} {}", self.vendor, self.product, bounds.join(", "))
    }
}

/// The upstream part of a Debian version: no epoch, no Debian revision
/// (`1:9.2p1-2+deb12u3` → `9.2p1`), as NVD ranges name upstream releases.
pub fn upstream_version(debian: &str) -> &str {
    let v = debian.trim();
    let v = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => v,
    };
    v.rsplit_once('-').map_or(v, |(u, _)| u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(criteria: &str, bounds: [Option<&str>; 4]) -> CpeRange {
        CpeRange::parse(criteria, bounds.map(|b| b.map(String::from))).unwrap()
    }

    #[test]
    fn criteria_components_and_escapes() {
        let r = range(
            "cpe:2.3:a:haxx:curl:7.88.1:*:*:*:*:*:*:*",
            [None, None, None, None],
        );
        assert_eq!((r.vendor.as_str(), r.product.as_str()), ("haxx", "curl"));
        assert_eq!(r.version.as_deref(), Some("7.88.1"));
        let r = range(
            r"cpe:2.3:a:acme:we\:ird:*:*:*:*:*:*:*:*",
            [None, None, None, None],
        );
        assert_eq!(r.product, "we:ird");
        assert!(r.version.is_none());
        assert!(CpeRange::parse("cpe:/a:openssl:openssl:1.0", Default::default()).is_err());
        assert!(CpeRange::parse("cpe:2.3:x:a:b:*:*:*:*:*:*:*:*", Default::default()).is_err());
    }

    #[test]
    fn version_bounds() {
        let r = range(
            "cpe:2.3:a:openssl:openssl:*:*:*:*:*:*:*:*",
            [Some("3.0.0"), None, None, Some("3.0.14")],
        );
        assert!(r.contains("3.0.0"));
        assert!(r.contains("3.0.13"));
        assert!(!r.contains("3.0.14"));
        assert!(!r.contains("2.9.9"));
        let r = range(
            "cpe:2.3:a:x:y:*:*:*:*:*:*:*:*",
            [None, Some("1.0"), Some("1.2"), None],
        );
        assert!(!r.contains("1.0"));
        assert!(r.contains("1.1"));
        assert!(r.contains("1.2"));
        assert!(!r.contains("1.2.1"));
        let exact = range("cpe:2.3:a:x:y:2.4:*:*:*:*:*:*:*", [None, None, None, None]);
        assert!(exact.contains("2.4"));
        assert!(!exact.contains("2.4.1"));
        let any = range("cpe:2.3:a:x:y:*:*:*:*:*:*:*:*", [None, None, None, None]);
        assert!(any.contains("0.1"));
    }

    #[test]
    fn upstream_part_of_debian_versions() {
        assert_eq!(upstream_version("1:9.2p1-2+deb12u3"), "9.2p1");
        assert_eq!(upstream_version("3.0.15-1~deb12u1"), "3.0.15");
        assert_eq!(upstream_version("2.38.1"), "2.38.1");
        assert_eq!(upstream_version("1.2-3-4"), "1.2-3");
    }
}
