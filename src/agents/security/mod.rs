//! Security: matches installed packages against offline advisories with
//! Debian version semantics, and watches credential expiry. Findings are
//! recorded only when new or changed; a finding no longer seen is closed.

mod compliance;
mod credentials;
mod cve;
mod version;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::AgentContext;
use crate::connectors::Scope;
use crate::event::{EventKind, Resource, SecurityFinding, Severity};
use crate::state::State;
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
    advisories: Vec<Advisory>,
    recorded: BTreeMap<String, SecurityFinding>,
    /// Compliance controls, evaluated by the policy gate each scan when one is given.
    compliance: Option<compliance::Compliance>,
}

impl SecurityAgent {
    /// Starts from the findings the log already holds.
    pub fn new(advisories: Vec<Advisory>, state: &State) -> Self {
        Self {
            advisories,
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
        let mut inventory = Vec::new();
        for connector in ctx.registry.all() {
            match connector.list_resources(&Scope::default()).await {
                Ok(resources) => {
                    for r in &resources {
                        for f in self.findings_for(r, now) {
                            current.insert(f.id.clone(), f);
                        }
                    }
                    inventory.extend(resources);
                }
                Err(e) => {
                    all_answered = false;
                    ctx.report_error("security", format!("{}: {e}", connector.id()))
                        .await
                }
            }
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
                .evaluate(ctx, &inventory, &self.recorded, all_answered)
                .await;
        }
        changed.len()
    }

    fn findings_for(&self, r: &Resource, now: DateTime<Utc>) -> Vec<SecurityFinding> {
        let mut out = cve::package_findings(&self.advisories, r);
        out.extend(credentials::expiry_finding(r, now));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_advisories_parse() {
        let advisories = parse_advisories(DEFAULT_ADVISORIES).unwrap();
        assert!(advisories.iter().any(|a| a.cve == "CVE-2024-6387"));
    }

    #[test]
    fn only_versions_below_the_fix_are_findings() {
        let agent =
            SecurityAgent::new(parse_advisories(DEFAULT_ADVISORIES).unwrap(), &State::new());
        let world = crate::connectors::sim::World::default();
        drop(world);
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
        assert!(agent.findings_for(&r, Utc::now()).is_empty());
        r.attributes
            .insert("pkg:openssh-server".into(), "1:9.2p1-2+deb12u2".into());
        let f = agent.findings_for(&r, Utc::now());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "CVE-2024-6387@linux/h");
        assert_eq!(f[0].severity, Severity::Critical);
    }
}
