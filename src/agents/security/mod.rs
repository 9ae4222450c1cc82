//! Security: matches installed packages against offline advisories with
//! Debian version semantics, and watches credential expiry. Findings are
//! recorded only when new or changed; a finding no longer seen is closed.

mod compliance;
mod config;
mod credentials;
mod cve;
mod version;
pub mod vulndb;

use std::collections::BTreeMap;

use serde::Deserialize;

use super::AgentContext;
use crate::connectors::Scope;
use crate::event::{EventKind, SecurityFinding, Severity};
use crate::state::State;
pub use config::SecurityConfig;
pub use cve::{VulnDbSettings, VulnMatch, match_resource};
pub use version::compare as compare_versions;

const ACTOR: &str = "agent:security";

/// The advisory sample embedded in the binary.
pub const DEFAULT_ADVISORIES: &str = include_str!("../../../assets/security/advisories.json");

/// One advisory: a package is vulnerable below `fixed_version`.
#[derive(Debug, Clone, Deserialize)]
pub struct Advisory {
    pub cve: String,
    pub package: String,
    pub fixed_version: String,
    pub severity: Severity,
    pub cvss: f64,
    pub title: String,
}

#[derive(Deserialize)]
struct AdvisoryFile {
    advisories: Vec<Advisory>,
}

/// Parses an advisory file.
pub fn parse_advisories(text: &str) -> Result<Vec<Advisory>, serde_json::Error> {
    Ok(serde_json::from_str::<AdvisoryFile>(text)?.advisories)
}

/// The security agent's memory of what it has already recorded.
pub struct SecurityAgent {
    cve: cve::CveScanner,
    recorded: BTreeMap<String, SecurityFinding>,
    /// Compliance controls, evaluated by the policy gate each scan when one is given.
    compliance: Option<compliance::Compliance>,
}

impl SecurityAgent {
    /// Starts from the findings the log already holds.
    pub fn new(advisories: Vec<Advisory>, state: &State) -> Self {
        Self::with_vulndb(advisories, None, state)
    }

    /// Matches packages against the vulnerability database in `vulndb`
    /// (the embedded `advisories` only while it holds no data).
    pub fn with_vulndb(
        advisories: Vec<Advisory>,
        vulndb: Option<VulnDbSettings>,
        state: &State,
    ) -> Self {
        Self {
            cve: cve::CveScanner::new(advisories, vulndb),
            recorded: state
                .security
                .findings
                .iter()
                .map(|(k, v)| (k.clone(), v.finding.clone()))
                .collect(),
            compliance: None,
        }
    }

    /// Also evaluates the compliance controls with `policy` each scan.
    pub fn with_compliance(
        mut self,
        policy: std::sync::Arc<dyn crate::runtime::policy::PolicyGate>,
        state: &State,
    ) -> Self {
        self.compliance = Some(compliance::Compliance::new(policy, state));
        self
    }

    /// Scans every connector's resources once; returns how many findings changed.
    pub async fn scan(&mut self, ctx: &AgentContext) -> usize {
        let now = ctx.clock.now();
        let mut current: BTreeMap<String, SecurityFinding> = BTreeMap::new();
        // A connector that did not answer tells nothing about its findings:
        // close findings only after a scan in which every connector answered.
        let mut all_answered = true;
        let mut resources = Vec::new();
        for connector in ctx.registry.all() {
            match connector.list_resources(&Scope::default()).await {
                Ok(listed) => {
                    for r in &listed {
                        if let Some(f) = credentials::expiry_finding(r, now) {
                            current.insert(f.id.clone(), f);
                        }
                    }
                    resources.extend(listed);
                }
                Err(e) => {
                    all_answered = false;
                    ctx.report_error("security", format!("{}: {e}", connector.id()))
                        .await
                }
            }
        }
        // Shared: the package matcher reads them on a blocking thread, then
        // the compliance checks read them too.
        let resources = std::sync::Arc::new(resources);
        let packages = self.cve.scan(resources.clone(), now).await;
        if let Some(status) = packages.status {
            let _ = ctx.record(ACTOR, status).await;
        }
        if let Some(e) = packages.error {
            // Unreadable advisories tell nothing: keep every finding open.
            all_answered = false;
            ctx.report_error("security", format!("vulnerability database: {e}"))
                .await;
        }
        for f in packages.findings.into_iter().flatten() {
            current.insert(f.id.clone(), f);
        }
        let mut changed = Vec::new();
        for (id, finding) in &current {
            if self.recorded.get(id) != Some(finding) {
                changed.push(finding.clone());
            }
        }
        for (id, old) in &self.recorded {
            if all_answered && old.open && !current.contains_key(id) {
                let mut closed = old.clone();
                closed.open = false;
                changed.push(closed);
            }
        }
        for f in &changed {
            if ctx
                .record(ACTOR, EventKind::SecurityFinding { finding: f.clone() })
                .await
                .is_ok()
            {
                self.recorded.insert(f.id.clone(), f.clone());
            }
        }
        if let Some(compliance) = &mut self.compliance {
            compliance
                .evaluate(ctx, &resources, &self.recorded, all_answered)
                .await;
        }
        changed.len()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::event::Resource;

    #[test]
    fn embedded_advisories_parse() {
        let advisories = parse_advisories(DEFAULT_ADVISORIES).unwrap();
        assert!(advisories.iter().any(|a| a.cve == "CVE-2024-6387"));
    }

    #[test]
    fn only_versions_below_the_fix_are_findings() {
        let advisories = parse_advisories(DEFAULT_ADVISORIES).unwrap();
        let mut r = Resource {
            id: crate::event::ResourceId::new("linux/h"),
            name: "h".into(),
            kind: "host".into(),
            provider: crate::event::Provider::Linux,
            connector: crate::event::ConnectorId::new("sim:linux/demo"),
            environment: crate::event::Environment::Production,
            team: "t".into(),
            labels: Default::default(),
            attributes: Default::default(),
            health: crate::event::Health::healthy(),
            created_at: Utc::now(),
        };
        r.attributes
            .insert("pkg:openssh-server".into(), "1:9.2p1-2+deb12u3".into());
        assert!(cve::package_findings(&advisories, &r).is_empty());
        r.attributes
            .insert("pkg:openssh-server".into(), "1:9.2p1-2+deb12u2".into());
        let f = cve::package_findings(&advisories, &r);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "CVE-2024-6387@linux/h");
        assert_eq!(f[0].severity, Severity::Critical);
    }
}
