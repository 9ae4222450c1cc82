//! What an action would change in the simulated world, read from the live
//! attributes before approval, and which parameters each action takes (one
//! table, read by the preview and by execution alike).

use super::world::World;
use crate::connectors::{ConnectorError, Result, check_params, check_stated, preview_of};
use crate::event::{Action, Change, Preview};

/// The resource fields `set_resources` can set: parameter and label.
pub const RESOURCE_FIELDS: [(&str, &str); 4] = [
    ("cpu_request_millicores", "CPU request"),
    ("memory_request_mib", "memory request"),
    ("cpu_limit_millicores", "CPU limit"),
    ("memory_limit_mib", "memory limit"),
];

/// Parts of a node's disk `clean_disk` knows how to clean.
pub const CLEAN_TARGETS: [&str; 2] = ["images", "logs"];

/// The parameters `action` takes on a resource of `kind`; `None` when the
/// world does not do that action to that kind.
pub fn takes(action: &str, kind: &str) -> Option<&'static [&'static str]> {
    Some(match (action, kind) {
        ("set_resources", "deployment") => &[
            "cpu_request_millicores",
            "memory_request_mib",
            "cpu_limit_millicores",
            "memory_limit_mib",
        ],
        ("rollout_restart" | "rollback_deployment", "deployment") => &[],
        ("scale", "deployment") => &["replicas", "current_replicas"],
        ("restart_pod", "pod") => &[],
        ("cordon_node" | "uncordon_node", "node") => &[],
        ("clean_disk", "node" | "host") => &["targets", "min_free_ratio"],
        ("reboot_instance", "ec2_instance" | "host") => &[],
        ("stop_instance" | "start_instance", "ec2_instance") => &[],
        ("resize_instance", "ec2_instance") => &["instance_type", "from_instance_type"],
        ("restart_service", "host") => &["service"],
        ("rotate_credential", "credential") => &[],
        _ => return None,
    })
}

fn bad(action: &Action, param: &str, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::BadParam {
        action: action.name.clone(),
        param: param.to_string(),
        reason: reason.into(),
    }
}

fn number(action: &Action, param: &str) -> Result<Option<u64>> {
    action
        .params
        .get(param)
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| bad(action, param, format!("`{v}` is not a whole number")))
        })
        .transpose()
}

/// The parts of a node's disk `clean_disk` cleans (all when not given).
pub fn clean_targets(action: &Action) -> Result<Vec<&'static str>> {
    let Some(given) = action.params.get("targets") else {
        return Ok(CLEAN_TARGETS.to_vec());
    };
    let mut out = Vec::new();
    for t in given.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let known = CLEAN_TARGETS.iter().find(|k| **k == t).ok_or_else(|| {
            bad(
                action,
                "targets",
                format!("`{t}` is not one of {}", CLEAN_TARGETS.join(", ")),
            )
        })?;
        out.push(*known);
    }
    if out.is_empty() {
        return Err(bad(action, "targets", "names nothing to clean"));
    }
    Ok(out)
}

/// The share of free disk space `clean_disk` must leave, when given.
pub fn min_free_ratio(action: &Action) -> Result<Option<f64>> {
    action
        .params
        .get("min_free_ratio")
        .map(|v| match v.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
            _ => Err(bad(
                action,
                "min_free_ratio",
                format!("`{v}` is not between 0 and 1"),
            )),
        })
        .transpose()
}

/// Disk use after cleaning `targets` (each frees its share of what is reclaimable).
pub fn disk_after(used_pct: f64, reclaimable_pct: f64, targets: &[&str]) -> f64 {
    let share = targets.len() as f64 / CLEAN_TARGETS.len() as f64;
    (used_pct - reclaimable_pct * share).max(5.0)
}

fn or_unset(v: Option<&str>) -> String {
    v.filter(|v| !v.is_empty()).unwrap_or("unset").to_string()
}

impl World {
    /// What `action` would change, read from the world as it is now.
    pub fn preview(&self, action: &Action) -> Result<Preview> {
        let r = self
            .get(&action.target)
            .map_err(|_| ConnectorError::NotFound(action.target.clone()))?;
        let kind = r.resource.kind.as_str();
        let params = takes(&action.name, kind).ok_or_else(|| ConnectorError::Unsupported {
            action: action.name.clone(),
            resource: action.target.clone(),
        })?;
        check_params(action, params)?;
        let object = format!("{kind} {}", r.resource.name);
        let mut notes = Vec::new();
        let changes = match action.name.as_str() {
            "set_resources" => {
                let mut changes = Vec::new();
                for (param, label) in RESOURCE_FIELDS {
                    if let Some(v) = number(action, param)? {
                        let unit = if param.ends_with("_mib") { "Mi" } else { "m" };
                        let current = r
                            .attr(param)
                            .map(|c| format!("{c}{unit}"))
                            .unwrap_or_else(|| "unset".into());
                        changes.push(Change::new(label, current, format!("{v}{unit}")));
                    }
                }
                if changes.is_empty() {
                    return Err(bad(
                        action,
                        "params",
                        format!(
                            "give at least one of {}",
                            RESOURCE_FIELDS.map(|f| f.0).join(", ")
                        ),
                    ));
                }
                let pods = self.pods_of(&action.target);
                notes.push(format!("replaces {} pod(s) one by one", pods.len()));
                changes
            }
            "rollout_restart" => {
                let pods = self.pods_of(&action.target);
                vec![Change::new(
                    "pods",
                    format!("{} running", pods.len()),
                    format!("{} recreated", pods.len()),
                )]
            }
            "rollback_deployment" => {
                let previous = r.attr("previous_image").unwrap_or_default();
                if previous.is_empty() {
                    return Err(bad(
                        action,
                        "previous_image",
                        "the deployment has no previous revision",
                    ));
                }
                let revision = r.num("revision") as u64;
                vec![
                    Change::new("image", or_unset(r.attr("image")), previous),
                    Change::new("revision", revision.to_string(), (revision + 1).to_string()),
                ]
            }
            "scale" => {
                let replicas = number(action, "replicas")?
                    .ok_or_else(|| bad(action, "replicas", "required"))?;
                let live = or_unset(r.attr("replicas"));
                check_stated(action, "current_replicas", &live)?;
                vec![Change::new("replicas", live, replicas.to_string())]
            }
            "restart_pod" => vec![Change::new(
                "pod",
                format!("running, {} restart(s)", r.num("restarts")),
                "deleted; its controller recreates it",
            )],
            "cordon_node" | "uncordon_node" => {
                let cordoned = r.attr("cordoned") == Some("true");
                let label = |c: bool| if c { "cordoned" } else { "schedulable" };
                vec![Change::new(
                    "scheduling",
                    label(cordoned),
                    label(action.name == "cordon_node"),
                )]
            }
            "clean_disk" => {
                let targets = clean_targets(action)?;
                let min_free = min_free_ratio(action)?;
                let used = r.num("disk_used_pct");
                let after = disk_after(used, r.num("reclaimable_pct"), &targets);
                notes.push(format!(
                    "moves {} to quarantine (restorable)",
                    targets.join(" and ")
                ));
                if let Some(min) = min_free {
                    notes.push(format!(
                        "fails unless at least {:.0}% is free afterwards",
                        min * 100.0
                    ));
                }
                vec![Change::new(
                    "disk used",
                    format!("{used:.0}%"),
                    format!("{after:.0}%"),
                )]
            }
            "reboot_instance" => vec![Change::new(
                "state",
                or_unset(r.attr("state")),
                "rebooted (back to running)",
            )],
            "stop_instance" => vec![Change::new("state", or_unset(r.attr("state")), "stopped")],
            "start_instance" => vec![Change::new("state", or_unset(r.attr("state")), "running")],
            "resize_instance" => {
                let new_type = action
                    .params
                    .get("instance_type")
                    .ok_or_else(|| bad(action, "instance_type", "required"))?;
                let live = or_unset(r.attr("instance_type"));
                check_stated(action, "from_instance_type", &live)?;
                notes.push("the instance is stopped and started to change its type".into());
                vec![Change::new("instance type", live, new_type.clone())]
            }
            "restart_service" => {
                let unit = action
                    .params
                    .get("service")
                    .ok_or_else(|| bad(action, "service", "required"))?;
                let state = r.attr(&format!("service:{unit}")).ok_or_else(|| {
                    bad(action, "service", format!("no unit `{unit}` on the host"))
                })?;
                vec![Change::new(
                    format!("service {unit}"),
                    state.to_string(),
                    "restarted (active)",
                )]
            }
            "rotate_credential" => {
                let version = r.num("version") as u64;
                vec![
                    Change::new("version", version.to_string(), (version + 1).to_string()),
                    Change::new("expires", or_unset(r.attr("expires_at")), "in 90 days"),
                ]
            }
            _ => {
                return Err(ConnectorError::NoPreview {
                    action: action.name.clone(),
                    resource: action.target.clone(),
                });
            }
        };
        let mut preview = preview_of(action, object, changes);
        preview.notes.extend(notes);
        Ok(preview)
    }
}
