//! Offline price tables: on-demand hourly prices per region and instance type.
//!
//! The table shipped in `assets/pricing/ec2-on-demand.csv` is embedded in the
//! binary so air-gapped sites have prices with no network; a site with
//! negotiated prices points `[cost] price_table` at its own file in the same
//! format. Format (CSV, UTF-8):
//!
//! ```text
//! # source: where the prices come from        (required comment)
//! # date: YYYY-MM-DD the prices were taken     (required comment)
//! region,instance_type,vcpu,memory_gib,usd_per_hour
//! us-east-1,m5.large,2,8,0.096
//! ```
//!
//! Other `#` lines are comments. Every error names the file and line.

use std::collections::BTreeMap;
use std::path::Path;

/// The table embedded in the binary.
const EMBEDDED: &str = include_str!("../../../assets/pricing/ec2-on-demand.csv");
/// The name errors use for the embedded table.
const EMBEDDED_NAME: &str = "assets/pricing/ec2-on-demand.csv (embedded)";
const HEADER: &str = "region,instance_type,vcpu,memory_gib,usd_per_hour";

/// A malformed price table.
#[derive(Debug, thiserror::Error)]
pub enum PriceTableError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
}

/// The price and size of one instance type in one region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstancePrice {
    pub vcpu: u32,
    pub memory_gib: f64,
    pub usd_per_hour: f64,
}

/// Hourly prices by region and instance type, with where they come from.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    /// The `# source:` line.
    pub source: String,
    /// The `# date:` line.
    pub date: chrono::NaiveDate,
    prices: BTreeMap<(String, String), InstancePrice>,
}

impl PriceTable {
    /// The table shipped with the binary.
    pub fn embedded() -> Self {
        // The embedded file is checked by a unit test, so this cannot fail at run time.
        Self::parse(EMBEDDED, EMBEDDED_NAME).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The table at `path`, or the embedded one when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, PriceTableError> {
        match path {
            None => Ok(Self::embedded()),
            Some(p) => {
                let file = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|source| PriceTableError::Read {
                    file: file.clone(),
                    source,
                })?;
                Self::parse(&text, &file)
            }
        }
    }

    /// Parses a table; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, PriceTableError> {
        let invalid = |line: usize, message: String| PriceTableError::Invalid {
            file: file.to_string(),
            line,
            message,
        };
        let mut source = None;
        let mut date = None;
        let mut header_seen = false;
        let mut prices = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let comment = comment.trim();
                if let Some(s) = comment.strip_prefix("source:") {
                    source = Some(s.trim().to_string());
                } else if let Some(d) = comment.strip_prefix("date:") {
                    let d = d.trim();
                    date = Some(
                        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|e| {
                            invalid(n, format!("date `{d}`: {e} (want YYYY-MM-DD)"))
                        })?,
                    );
                }
                continue;
            }
            if !header_seen {
                if line != HEADER {
                    return Err(invalid(n, format!("expected the header `{HEADER}`")));
                }
                header_seen = true;
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [region, itype, vcpu, mem, usd] = fields[..] else {
                return Err(invalid(
                    n,
                    format!("expected 5 fields ({HEADER}), found {}", fields.len()),
                ));
            };
            if region.is_empty() || itype.is_empty() {
                return Err(invalid(
                    n,
                    "region and instance_type must not be empty".into(),
                ));
            }
            let vcpu: u32 =
                vcpu.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                    invalid(n, format!("vcpu `{vcpu}` is not a positive integer"))
                })?;
            let positive = |name: &str, v: &str| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .ok_or_else(|| invalid(n, format!("{name} `{v}` is not a positive number")))
            };
            let memory_gib = positive("memory_gib", mem)?;
            let usd_per_hour = positive("usd_per_hour", usd)?;
            let key = (region.to_string(), itype.to_string());
            if prices.contains_key(&key) {
                return Err(invalid(n, format!("{itype} in {region} is listed twice")));
            }
            prices.insert(
                key,
                InstancePrice {
                    vcpu,
                    memory_gib,
                    usd_per_hour,
                },
            );
        }
        let end = text.lines().count().max(1);
        if !header_seen {
            return Err(invalid(end, format!("no header `{HEADER}`")));
        }
        Ok(Self {
            source: source.ok_or_else(|| invalid(1, "missing `# source: …` line".into()))?,
            date: date.ok_or_else(|| invalid(1, "missing `# date: YYYY-MM-DD` line".into()))?,
            prices,
        })
    }

    /// The price of `instance_type` in `region`.
    pub fn get(&self, region: &str, instance_type: &str) -> Option<InstancePrice> {
        self.prices
            .get(&(region.to_string(), instance_type.to_string()))
            .copied()
    }

    /// Instance types of `family` (`m5`) in `region`, cheapest first.
    pub fn family(&self, region: &str, family: &str) -> Vec<(String, InstancePrice)> {
        let mut out: Vec<(String, InstancePrice)> = self
            .prices
            .iter()
            .filter(|((r, t), _)| r == region && t.split('.').next() == Some(family))
            .map(|((_, t), p)| (t.clone(), *p))
            .collect();
        out.sort_by(|a, b| a.1.usd_per_hour.total_cmp(&b.1.usd_per_hour));
        out
    }

    /// Number of prices in the table.
    pub fn len(&self) -> usize {
        self.prices.len()
    }

    /// Whether the table has no prices.
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

/// The region of a resource: its `region` attribute, else its availability zone minus the letter.
pub fn region_of(attributes: &crate::event::StringMap) -> Option<String> {
    if let Some(r) = attributes.get("region") {
        return Some(r.clone());
    }
    // `az` in the demo and on Kubernetes nodes; `availability_zone` on EC2 instances.
    let az = attributes
        .get("az")
        .or_else(|| attributes.get("availability_zone"))?;
    let trimmed = az.trim_end_matches(|c: char| c.is_ascii_lowercase());
    (trimmed.len() < az.len() && !trimmed.is_empty()).then(|| trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_parses_and_states_its_source_and_date() {
        let t = PriceTable::parse(EMBEDDED, EMBEDDED_NAME).unwrap();
        assert!(t.source.contains("aws.amazon.com"));
        assert!(t.len() >= 40);
        let p = t.get("us-east-1", "m5.xlarge").unwrap();
        assert_eq!((p.vcpu, p.memory_gib, p.usd_per_hour), (4, 16.0, 0.192));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let text = "# source: site contract\n# date: 2025-01-01\nregion,instance_type,vcpu,memory_gib,usd_per_hour\nus-east-1,m5.large,2,8,cheap\n";
        let e = PriceTable::parse(text, "prices.csv")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "prices.csv:4: usd_per_hour `cheap` is not a positive number"
        );
        let e = PriceTable::parse(
            "# date: 2025-01-01\nregion,instance_type,vcpu,memory_gib,usd_per_hour\n",
            "p.csv",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing `# source"), "{e}");
        let e = PriceTable::parse("# source: x\n# date: 2025-01-01\nregion,type\n", "p.csv")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.csv:3: expected the header"), "{e}");
        let dup = "# source: x\n# date: 2025-01-01\nregion,instance_type,vcpu,memory_gib,usd_per_hour\na,b.c,1,1,1\na,b.c,1,1,2\n";
        assert!(
            PriceTable::parse(dup, "d.csv")
                .unwrap_err()
                .to_string()
                .starts_with("d.csv:5:")
        );
    }

    #[test]
    fn a_site_table_overrides_the_embedded_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("negotiated.csv");
        std::fs::write(
            &path,
            "# source: ACME enterprise agreement\n# date: 2025-03-01\nregion,instance_type,vcpu,memory_gib,usd_per_hour\nus-east-1,m5.xlarge,4,16,0.15\n",
        )
        .unwrap();
        let t = PriceTable::load(Some(&path)).unwrap();
        assert_eq!(t.get("us-east-1", "m5.xlarge").unwrap().usd_per_hour, 0.15);
        assert_eq!(t.get("us-east-1", "m5.large"), None);
    }

    #[test]
    fn families_are_listed_cheapest_first_and_regions_come_from_zones() {
        let t = PriceTable::embedded();
        let names: Vec<String> = t
            .family("us-east-1", "m5")
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(
            names,
            [
                "m5.large",
                "m5.xlarge",
                "m5.2xlarge",
                "m5.4xlarge",
                "m5.8xlarge"
            ]
        );
        let mut attrs = crate::event::StringMap::new();
        attrs.insert("az".to_string(), "eu-west-1b".to_string());
        assert_eq!(region_of(&attrs).as_deref(), Some("eu-west-1"));
        // What the EC2 connector reports.
        let mut attrs = crate::event::StringMap::new();
        attrs.insert("availability_zone".to_string(), "us-east-1a".to_string());
        assert_eq!(region_of(&attrs).as_deref(), Some("us-east-1"));
    }
}
