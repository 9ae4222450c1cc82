//! Actions on a host and how they are undone.
//!
//! - `restart_service`, `stop_service`, `start_service`: the snapshot is the
//!   unit's active and enabled state; restore starts or stops it (and enables
//!   or disables it) until it matches again.
//! - `clean_disk`: files matching the action's globs and older than its age
//!   are *moved* (renamed, never copied) into the quarantine batch the host
//!   snapshot made; restore moves back exactly the files the batch records
//!   (see [`super::quarantine`]); batches older than the retention are purged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::services::{self, Unit};
use super::transport::{Output, Transport, TransportError};
use crate::connectors::ConnectorError;
use crate::event::ActionOutcome;

/// The service actions this connector runs, as systemctl verbs.
pub fn service_verb(action: &str) -> Option<&'static str> {
    match action {
        "restart_service" => Some("restart"),
        "stop_service" => Some("stop"),
        "start_service" => Some("start"),
        _ => None,
    }
}

/// Quotes a word for POSIX `sh`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What a snapshot records about units: unit → (active state, enabled state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitStates(pub BTreeMap<String, (String, String)>);

/// The connector-specific part of a Linux snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotData {
    /// The host's alias or name.
    pub host: String,
    /// Unit states to return to.
    #[serde(default)]
    pub units: UnitStates,
    /// The quarantine batch a clean_disk after this snapshot uses (host
    /// snapshots only: a service snapshot never touches the quarantine).
    #[serde(default)]
    pub batch: Option<String>,
    /// The quarantine directory the batch lies in.
    #[serde(default)]
    pub quarantine_dir: Option<String>,
}

fn backend(e: TransportError) -> ConnectorError {
    ConnectorError::Backend(e.to_string())
}

pub(super) async fn run_checked(
    t: &dyn Transport,
    script: &str,
    what: &str,
) -> Result<Output, ConnectorError> {
    let out = t.run(script).await.map_err(backend)?;
    if !out.ok() {
        return Err(ConnectorError::Backend(format!(
            "{}: {what} failed (exit {}): {}",
            t.host(),
            out.code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "signal".into()),
            out.stderr.trim()
        )));
    }
    Ok(out)
}

/// Current active/enabled state of `units`.
pub async fn unit_states(
    t: &dyn Transport,
    units: &[String],
) -> Result<UnitStates, ConnectorError> {
    if units.is_empty() {
        return Ok(UnitStates::default());
    }
    let names: Vec<String> = units.iter().map(|u| quote(u)).collect();
    let out = run_checked(
        t,
        &format!(
            "systemctl show --no-pager -p Id,ActiveState,SubState,UnitFileState,LoadState -- {}",
            names.join(" ")
        ),
        "systemctl show",
    )
    .await?;
    Ok(UnitStates(
        services::parse_show(&out.stdout)
            .into_iter()
            .map(|u: Unit| (u.id, (u.active, u.enabled)))
            .collect(),
    ))
}

/// Runs `systemctl VERB UNIT` and reports the state it left.
pub async fn service_action(
    t: &dyn Transport,
    verb: &str,
    unit: &str,
) -> Result<ActionOutcome, ConnectorError> {
    let out = t
        .run(&format!("systemctl {verb} -- {}", quote(unit)))
        .await
        .map_err(backend)?;
    let after = unit_states(t, &[unit.to_string()]).await?;
    let state = after
        .0
        .get(unit)
        .map(|(a, e)| format!("{a}, {e}"))
        .unwrap_or_else(|| "unknown".into());
    let mut steps = vec![format!("systemctl {verb} {unit} on {}", t.host())];
    if !out.stderr.trim().is_empty() {
        steps.push(crate::redact::text(out.stderr.trim()));
    }
    steps.push(format!("{unit} is now {state}"));
    Ok(ActionOutcome {
        success: out.ok(),
        message: if out.ok() {
            format!("{verb} {unit} on {}: now {state}", t.host())
        } else {
            format!(
                "{verb} {unit} on {} failed (exit {}): now {state}",
                t.host(),
                out.code.unwrap_or(-1)
            )
        },
        steps,
    })
}

/// Returns units to the states the snapshot recorded.
pub async fn restore_units(
    t: &dyn Transport,
    want: &UnitStates,
) -> Result<Vec<String>, ConnectorError> {
    let names: Vec<String> = want.0.keys().cloned().collect();
    let now = unit_states(t, &names).await?;
    let mut steps = Vec::new();
    for (unit, (active, enabled)) in &want.0 {
        let Some((cur_active, cur_enabled)) = now.0.get(unit) else {
            steps.push(format!("{unit}: no longer known to systemd; left alone"));
            continue;
        };
        let was_running = matches!(active.as_str(), "active" | "activating" | "reloading");
        let is_running = matches!(cur_active.as_str(), "active" | "activating" | "reloading");
        if enabled != cur_enabled && matches!(enabled.as_str(), "enabled" | "disabled") {
            let verb = if enabled == "enabled" {
                "enable"
            } else {
                "disable"
            };
            run_checked(t, &format!("systemctl {verb} -- {}", quote(unit)), verb).await?;
            steps.push(format!("systemctl {verb} {unit}"));
        }
        if was_running && !is_running {
            run_checked(t, &format!("systemctl start -- {}", quote(unit)), "start").await?;
            steps.push(format!("systemctl start {unit} (was {active})"));
        } else if !was_running && is_running {
            run_checked(t, &format!("systemctl stop -- {}", quote(unit)), "stop").await?;
            steps.push(format!("systemctl stop {unit} (was {active})"));
        }
    }
    Ok(steps)
}
