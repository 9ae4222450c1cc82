//! Scenario files: a timed script of trouble for the demo fleet.
//!
//! A step changes attributes of the simulated world (what a real incident
//! would change), may add an infrastructure event, and may fire or resolve an
//! alert (what a monitoring system would send). Everything else — detection,
//! investigation, remediation — is the runtime's own work.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::world::World;
use crate::event::{Alert, AlertStatus, ResourceId, Severity};

/// The scenario shipped with the binary.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../assets/demo/scenario.toml");

/// A parsed scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Simulated seconds after which the scenario is over.
    pub duration_secs: u64,
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
}

/// One timed step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub at_secs: u64,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub set: Vec<SetAttrs>,
    #[serde(default)]
    pub event: Option<StepEvent>,
    #[serde(default)]
    pub alert: Option<StepAlert>,
}

/// Attribute changes on a resource or on every pod of a deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAttrs {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub pods_of: Option<String>,
    pub attrs: BTreeMap<String, String>,
}

/// An infrastructure event to record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepEvent {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub first_pod_of: Option<String>,
    pub kind: String,
    pub reason: String,
    pub message: String,
}

/// An alert to fire or resolve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepAlert {
    pub name: String,
    pub severity: Severity,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub first_pod_of: Option<String>,
    #[serde(default)]
    pub summary: String,
    #[serde(default = "firing")]
    pub status: AlertStatus,
}

fn firing() -> AlertStatus {
    AlertStatus::Firing
}

/// A scenario that could not be loaded, naming where.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: step {step} ({field}): {message}")]
    Reference {
        origin: String,
        step: usize,
        field: &'static str,
        message: String,
    },
    #[error("{origin}: cannot read: {message}")]
    Io { origin: String, message: String },
}

impl Scenario {
    /// Parses scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let mut scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        // Simulated time is added to real dates: keep it within a month so no
        // step can overflow a date, and every step inside the scenario.
        const LIMIT: u64 = 30 * 24 * 3600;
        if scenario.duration_secs > LIMIT {
            return Err(ScenarioError::Parse {
                origin: origin.to_string(),
                message: format!("duration_secs must be at most {LIMIT} (30 days)"),
            });
        }
        if let Some((i, step)) = scenario
            .steps
            .iter()
            .enumerate()
            .find(|(_, s)| s.at_secs > scenario.duration_secs)
        {
            return Err(ScenarioError::Reference {
                origin: origin.to_string(),
                step: i + 1,
                field: "at_secs",
                message: format!(
                    "{} is after the scenario's end (duration_secs = {})",
                    step.at_secs, scenario.duration_secs
                ),
            });
        }
        scenario.steps.sort_by_key(|s| s.at_secs);
        Ok(scenario)
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &origin)
    }

    /// Checks every resource reference against a world.
    pub fn check(&self, world: &World, origin: &str) -> Result<(), ScenarioError> {
        for (i, step) in self.steps.iter().enumerate() {
            let bad = |field: &'static str, message: String| ScenarioError::Reference {
                origin: origin.to_string(),
                step: i + 1,
                field,
                message,
            };
            for set in &step.set {
                match (&set.target, &set.pods_of) {
                    (Some(t), None) => {
                        resolve(world, Some(t), None).map_err(|m| bad("set.target", m))?;
                    }
                    (None, Some(d)) => {
                        if world.pods_of(&ResourceId::new(d.clone())).is_empty() {
                            return Err(bad("set.pods_of", format!("no pods belong to `{d}`")));
                        }
                    }
                    _ => {
                        return Err(bad(
                            "set",
                            "give exactly one of `target` or `pods_of`".into(),
                        ));
                    }
                }
            }
            if let Some(e) = &step.event {
                resolve(world, e.resource.as_ref(), e.first_pod_of.as_ref())
                    .map_err(|m| bad("event", m))?;
            }
            if let Some(a) = &step.alert {
                resolve(world, a.resource.as_ref(), a.first_pod_of.as_ref())
                    .map_err(|m| bad("alert", m))?;
            }
        }
        Ok(())
    }
}

/// Resolves a step's resource reference.
pub fn resolve(
    world: &World,
    resource: Option<&String>,
    first_pod_of: Option<&String>,
) -> Result<ResourceId, String> {
    match (resource, first_pod_of) {
        (Some(r), None) => {
            let id = ResourceId::new(r.clone());
            if world.resources.contains_key(&id) {
                Ok(id)
            } else {
                Err(format!("no resource `{r}` in the demo fleet"))
            }
        }
        (None, Some(d)) => world
            .pods_of(&ResourceId::new(d.clone()))
            .into_iter()
            .next()
            .ok_or_else(|| format!("no pods belong to `{d}`")),
        _ => Err("give exactly one of `resource` or `first_pod_of`".into()),
    }
}

/// Builds the alert a step fires.
pub fn alert_for(step: &StepAlert, resource: ResourceId) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert("alertname".into(), step.name.clone());
    Alert {
        fingerprint: format!("{}@{}", step.name, resource),
        name: step.name.clone(),
        severity: step.severity,
        resource,
        summary: step.summary.clone(),
        labels,
        status: step.status,
        source: "scenario".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn default_scenario_parses_and_references_exist() {
        let scenario = Scenario::parse(DEFAULT_SCENARIO, "default").unwrap();
        let world = super::super::fleet::generate(42, Utc::now());
        scenario.check(&world, "default").unwrap();
        assert!(scenario.steps.len() >= 6);
    }

    #[test]
    fn unknown_field_names_the_line() {
        let err = Scenario::parse("name = \"x\"\nduration_secs = 3\nbogus = 1\n", "s.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn missing_resource_names_the_step() {
        let text = "name = \"x\"\nduration_secs = 3\n[[step]]\nat_secs = 1\n[step.alert]\nname = \"A\"\nseverity = \"high\"\nresource = \"nope\"\n";
        let scenario = Scenario::parse(text, "s.toml").unwrap();
        let world = super::super::fleet::generate(1, Utc::now());
        let err = scenario.check(&world, "s.toml").unwrap_err().to_string();
        assert!(err.contains("step 1"), "{err}");
        assert!(err.contains("nope"), "{err}");
    }
}
