//! The in-memory index a scan matches against: Debian advisories by release
//! and source package, NVD CPE ranges by product name. Built once per
//! database generation, so a scan never walks every record per package.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::cpe::CpeRange;
use super::debian::{DebianRecord, DebianStatus};
use super::nvd::NvdRecord;

/// One Debian advisory for one release.
#[derive(Debug, Clone, PartialEq)]
pub struct DebianEntry {
    pub cve: Arc<str>,
    pub status: DebianStatus,
    pub fixed_version: Option<String>,
    pub urgency: String,
}

/// One vulnerable CPE range of a CVE.
#[derive(Debug, Clone, PartialEq)]
pub struct CpeEntry {
    pub cve: Arc<str>,
    pub range: CpeRange,
}

/// Advisories indexed for matching.
#[derive(Debug, Default)]
pub struct Index {
    generation: u64,
    /// release → source package → advisories.
    debian: HashMap<String, HashMap<String, Vec<DebianEntry>>>,
    /// Source packages the Debian tracker knows in any release: those are
    /// covered by the distribution and never matched by CPE.
    debian_packages: HashSet<String>,
    /// CPE product (lower case) → ranges.
    cpe: HashMap<String, Vec<CpeEntry>>,
    debian_records: usize,
    nvd_records: usize,
}

impl Index {
    /// An empty index of database generation `generation`.
    pub fn new(generation: u64) -> Index {
        Index {
            generation,
            ..Default::default()
        }
    }

    /// The database generation this index was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// True when no advisory at all is held.
    pub fn is_empty(&self) -> bool {
        self.debian_records == 0 && self.nvd_records == 0
    }

    /// Adds a Debian record under each of its releases.
    pub fn add_debian(&mut self, record: &DebianRecord) {
        self.debian_records += 1;
        let cve: Arc<str> = Arc::from(record.cve.as_str());
        if !self.debian_packages.contains(&record.package) {
            self.debian_packages.insert(record.package.clone());
        }
        for (release, state) in &record.releases {
            let by_package = self.debian.entry(release.clone()).or_default();
            let entries = match by_package.get_mut(&record.package) {
                Some(e) => e,
                None => by_package.entry(record.package.clone()).or_default(),
            };
            entries.push(DebianEntry {
                cve: cve.clone(),
                status: state.status,
                fixed_version: state.fixed_version.clone(),
                urgency: state.urgency.clone(),
            });
        }
    }

    /// Adds an NVD record's CPE ranges.
    pub fn add_nvd(&mut self, record: &NvdRecord) {
        self.nvd_records += 1;
        if record.ranges.is_empty() {
            return;
        }
        let cve: Arc<str> = Arc::from(record.id.as_str());
        for range in &record.ranges {
            let entries = match self.cpe.get_mut(&range.product) {
                Some(e) => e,
                None => self.cpe.entry(range.product.clone()).or_default(),
            };
            entries.push(CpeEntry {
                cve: cve.clone(),
                range: range.clone(),
            });
        }
    }

    /// Orders every list by CVE so findings come out in a stable order.
    pub fn finish(&mut self) {
        for by_package in self.debian.values_mut() {
            for entries in by_package.values_mut() {
                entries.sort_by(|a, b| a.cve.cmp(&b.cve));
            }
        }
        for entries in self.cpe.values_mut() {
            entries.sort_by(|a, b| a.cve.cmp(&b.cve));
        }
    }

    /// Whether the Debian data covers `release` (`bookworm`) at all.
    pub fn has_release(&self, release: &str) -> bool {
        self.debian.contains_key(release)
    }

    /// The advisories of source `package` in `release`.
    pub fn debian(&self, release: &str, package: &str) -> &[DebianEntry] {
        self.debian
            .get(release)
            .and_then(|p| p.get(package))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether the Debian tracker knows source `package` in any release.
    pub fn tracked_by_debian(&self, package: &str) -> bool {
        self.debian_packages.contains(package)
    }

    /// The CPE ranges naming `product`.
    pub fn cpe(&self, product: &str) -> &[CpeEntry] {
        self.cpe.get(product).map_or(&[], Vec::as_slice)
    }
}
