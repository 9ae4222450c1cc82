//! Installed packages (resource attributes `pkg:NAME` = version) matched
//! against advisories with Debian version semantics.

use std::cmp::Ordering;

use super::{Advisory, compare_versions};
use crate::event::{Resource, SecurityFinding};

/// One finding per advisory whose fixed version is above the installed one.
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
                    vulnerability: None,
                });
            }
        }
    }
    out
}
