//! The playbook library: embedded defaults plus the user's directory, and
//! `shieldops playbook validate`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Playbook, PlaybookError};
use crate::event::Alert;

/// The default playbooks compiled into the binary: (file name, YAML).
pub const EMBEDDED_PLAYBOOKS: &[(&str, &str)] = &[
    (
        "credential-expiring.yaml",
        include_str!("../../playbooks/credential-expiring.yaml"),
    ),
    (
        "cost-idle-instance.yaml",
        include_str!("../../playbooks/cost-idle-instance.yaml"),
    ),
    (
        "cost-rightsizing.yaml",
        include_str!("../../playbooks/cost-rightsizing.yaml"),
    ),
    (
        "cpu-throttling.yaml",
        include_str!("../../playbooks/cpu-throttling.yaml"),
    ),
    (
        "deployment-rollout-failed.yaml",
        include_str!("../../playbooks/deployment-rollout-failed.yaml"),
    ),
    (
        "ec2-cpu-saturated.yaml",
        include_str!("../../playbooks/ec2-cpu-saturated.yaml"),
    ),
    (
        "ec2-status-check-failed.yaml",
        include_str!("../../playbooks/ec2-status-check-failed.yaml"),
    ),
    (
        "ecs-service-saturated.yaml",
        include_str!("../../playbooks/ecs-service-saturated.yaml"),
    ),
    (
        "ecs-service-unhealthy.yaml",
        include_str!("../../playbooks/ecs-service-unhealthy.yaml"),
    ),
    (
        "high-latency.yaml",
        include_str!("../../playbooks/high-latency.yaml"),
    ),
    (
        "host-disk-full.yaml",
        include_str!("../../playbooks/host-disk-full.yaml"),
    ),
    (
        "oom-kill.yaml",
        include_str!("../../playbooks/oom-kill.yaml"),
    ),
    (
        "pod-crash-loop.yaml",
        include_str!("../../playbooks/pod-crash-loop.yaml"),
    ),
    (
        "pods-pending.yaml",
        include_str!("../../playbooks/pods-pending.yaml"),
    ),
    (
        "service-down.yaml",
        include_str!("../../playbooks/service-down.yaml"),
    ),
    (
        "systemd-unit-failed.yaml",
        include_str!("../../playbooks/systemd-unit-failed.yaml"),
    ),
];

/// Validated playbooks, ordered for matching.
#[derive(Debug, Clone, Default)]
pub struct Library {
    playbooks: Vec<Playbook>,
}

impl Library {
    /// The embedded defaults, overridden by name and extended by `user_dir`.
    /// Any invalid playbook fails the whole load with its file and line.
    pub fn load(user_dir: Option<&Path>) -> Result<Self, PlaybookError> {
        let mut playbooks = Vec::new();
        for (file, text) in EMBEDDED_PLAYBOOKS {
            playbooks.push(Playbook::parse(
                &format!("embedded:playbooks/{file}"),
                text,
            )?);
        }
        let mut library = Self { playbooks };
        if let Some(dir) = user_dir {
            // The user's directory is validated as a whole (including
            // duplicate names) before it replaces anything.
            let user = Self::from_dir(dir)?;
            for playbook in user.playbooks {
                library.playbooks.retain(|p| p.name != playbook.name);
                library.playbooks.push(playbook);
            }
        }
        library.check_unique()?;
        library.sort();
        Ok(library)
    }

    /// Only the playbooks in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, PlaybookError> {
        let playbooks = yaml_files(dir)?
            .iter()
            .map(|p| parse_file(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut library = Self { playbooks };
        library.check_unique()?;
        library.sort();
        Ok(library)
    }

    /// A library of already validated playbooks.
    pub fn from_playbooks(playbooks: Vec<Playbook>) -> Result<Self, PlaybookError> {
        let mut library = Self { playbooks };
        library.check_unique()?;
        library.sort();
        Ok(library)
    }

    /// The playbook for a firing alert: highest priority first, then the one
    /// with more label matchers (more specific), then by name.
    pub fn matching(&self, alert: &Alert) -> Option<&Playbook> {
        self.playbooks.iter().find(|p| p.trigger.matches(alert))
    }

    /// [`Library::matching`] among the playbooks written for the alert's
    /// resource (its provider and kind, as `trigger.resources` names them).
    pub fn matching_resource(
        &self,
        alert: &Alert,
        provider: crate::event::Provider,
        kind: &str,
    ) -> Option<&Playbook> {
        self.playbooks
            .iter()
            .find(|p| p.trigger.matches(alert) && p.trigger.applies_to(provider, kind))
    }

    /// A playbook by name.
    pub fn get(&self, name: &str) -> Option<&Playbook> {
        self.playbooks.iter().find(|p| p.name == name)
    }

    /// Every playbook, in matching order.
    pub fn iter(&self) -> impl Iterator<Item = &Playbook> {
        self.playbooks.iter()
    }

    /// How many playbooks are loaded.
    pub fn len(&self) -> usize {
        self.playbooks.len()
    }

    /// Whether the library is empty.
    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty()
    }

    fn sort(&mut self) {
        self.playbooks.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(b.trigger.labels.len().cmp(&a.trigger.labels.len()))
                .then(a.name.cmp(&b.name))
        });
    }

    fn check_unique(&self) -> Result<(), PlaybookError> {
        for (i, p) in self.playbooks.iter().enumerate() {
            if let Some(other) = self.playbooks[..i].iter().find(|o| o.name == p.name) {
                return Err(PlaybookError::Invalid {
                    file: p.source.clone(),
                    line: 1,
                    column: 1,
                    message: format!(
                        "playbook name `{}` is also used by {}",
                        p.name, other.source
                    ),
                });
            }
        }
        Ok(())
    }
}

fn parse_file(path: &Path) -> Result<Playbook, PlaybookError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlaybookError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Playbook::parse(&path.display().to_string(), &text)
}

/// `*.yaml` and `*.yml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, PlaybookError> {
    let io = |source| PlaybookError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && (ext == "yaml" || ext == "yml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Validates every playbook in `dir`, printing `ok` or the error (file:line:column)
/// for each file. Returns 0 when all are valid, 1 otherwise, 2 when there are none.
pub fn playbook_validate(dir: &Path, out: &mut dyn Write) -> anyhow::Result<i32> {
    let files = yaml_files(dir)?;
    if files.is_empty() {
        writeln!(out, "no playbooks (*.yaml, *.yml) in {}", dir.display())?;
        return Ok(2);
    }
    let mut valid: Vec<Playbook> = Vec::new();
    let mut errors = 0;
    for path in &files {
        match parse_file(path) {
            Ok(p) => {
                if let Some(other) = valid.iter().find(|o| o.name == p.name) {
                    errors += 1;
                    writeln!(
                        out,
                        "error  {}:1:1: playbook name `{}` is also used by {}",
                        path.display(),
                        p.name,
                        other.source
                    )?;
                    continue;
                }
                if p.trigger.alerts.is_empty() {
                    writeln!(
                        out,
                        "ok     {}  ({}: plan only, no alert triggers it)",
                        path.display(),
                        p.name
                    )?;
                } else {
                    let kinds: Vec<String> =
                        p.trigger.resources.iter().map(|r| r.to_string()).collect();
                    writeln!(
                        out,
                        "ok     {}  ({}: {} alert(s) on {}, actions: {})",
                        path.display(),
                        p.name,
                        p.trigger.alerts.len(),
                        if kinds.is_empty() {
                            "any resource (no trigger.resources: facts checked against every connector)".to_string()
                        } else {
                            kinds.join(", ")
                        },
                        p.action_names().join(", ")
                    )?;
                }
                valid.push(p);
            }
            Err(e) => {
                errors += 1;
                writeln!(out, "error  {e}")?;
            }
        }
    }
    writeln!(out, "{} valid, {} invalid", valid.len(), errors)?;
    Ok(if errors == 0 { 0 } else { 1 })
}
