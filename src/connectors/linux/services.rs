//! Services through systemd: unit state from `systemctl show` (key=value
//! blocks), journal lines from `journalctl -o json` (one object per line),
//! with secrets redacted (by [`crate::redact`]) before a line leaves this module. Where systemd is
//! not running the host says so; journal reading falls back to `/var/log`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use crate::event::{Health, HealthStatus};

/// The unit properties a poll asks for.
pub const SHOW_PROPERTIES: &str = "Id,Description,LoadState,ActiveState,SubState,Result,UnitFileState,ExecMainStatus,ExecMainCode,NRestarts,MainPID,ActiveEnterTimestamp";

/// One service unit as `systemctl show` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub id: String,
    pub description: String,
    pub load: String,
    pub active: String,
    pub sub: String,
    pub result: String,
    pub enabled: String,
    pub exit_status: Option<i32>,
    pub restarts: u32,
}

impl Unit {
    /// Whether the unit is worth showing: loaded, and enabled, running or failed.
    pub fn interesting(&self) -> bool {
        self.load == "loaded"
            && (self.enabled == "enabled" || self.active != "inactive" || self.result != "success")
    }

    /// Health with the reason systemd gives.
    pub fn health(&self) -> Health {
        let detail = || {
            let mut parts = vec![format!("{} ({})", self.active, self.sub)];
            if self.result != "success" && !self.result.is_empty() {
                parts.push(format!("result {}", self.result));
            }
            if let Some(code) = self.exit_status.filter(|c| *c != 0) {
                parts.push(format!("exit code {code}"));
            }
            if self.restarts > 0 {
                parts.push(format!("restarted {} time(s)", self.restarts));
            }
            parts.join(", ")
        };
        match self.active.as_str() {
            "active" => Health::healthy(),
            "failed" => Health::new(HealthStatus::Unhealthy, "unit_failed", detail()),
            "activating" | "deactivating" | "reloading" => {
                Health::new(HealthStatus::Degraded, "unit_transitioning", detail())
            }
            "inactive" if self.enabled == "enabled" => {
                Health::new(HealthStatus::Degraded, "unit_inactive", detail())
            }
            "inactive" => Health::new(HealthStatus::Healthy, "unit_inactive", detail()),
            _ => Health::new(HealthStatus::Unknown, "unit_state_unknown", detail()),
        }
    }
}

/// Parses `systemctl show -p … UNIT…` output: blocks of `Key=Value` lines
/// separated by blank lines, one block per unit.
pub fn parse_show(text: &str) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut block: BTreeMap<&str, &str> = BTreeMap::new();
    let flush = |block: &mut BTreeMap<&str, &str>, units: &mut Vec<Unit>| {
        if let Some(id) = block.get("Id").filter(|id| !id.is_empty()) {
            let get = |k: &str| block.get(k).copied().unwrap_or_default().to_string();
            units.push(Unit {
                id: id.to_string(),
                description: get("Description"),
                load: get("LoadState"),
                active: get("ActiveState"),
                sub: get("SubState"),
                result: get("Result"),
                enabled: get("UnitFileState"),
                exit_status: block.get("ExecMainStatus").and_then(|s| s.parse().ok()),
                restarts: block
                    .get("NRestarts")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            });
        }
        block.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut block, &mut units);
        } else if let Some((k, v)) = line.split_once('=') {
            block.insert(k, v);
        }
    }
    flush(&mut block, &mut units);
    units
}

/// What `systemctl is-system-running` says about the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manager {
    /// systemd runs (`running`, `degraded`, `starting`, …).
    Running(String),
    /// No service manager is running (not booted with systemd, or no systemctl).
    Absent(String),
}

/// Every state `systemctl is-system-running` can print.
pub const MANAGER_STATES: &[&str] = &[
    "initializing",
    "starting",
    "running",
    "degraded",
    "maintenance",
    "stopping",
    "offline",
    "unknown",
];

/// Classifies the answer of `systemctl is-system-running` (exit code and output).
pub fn parse_manager(code: Option<i32>, stdout: &str, stderr: &str) -> Manager {
    let state = stdout.trim();
    match state {
        "running" | "degraded" | "starting" | "initializing" | "maintenance" | "stopping" => {
            Manager::Running(state.to_string())
        }
        _ if code == Some(127) => Manager::Absent("systemctl is not installed".into()),
        "offline" | "" => Manager::Absent(
            stderr
                .lines()
                .next()
                .filter(|l| !l.trim().is_empty())
                .unwrap_or("systemd is not running as the init system")
                .trim()
                .to_string(),
        ),
        other => Manager::Absent(format!("service manager state `{other}`")),
    }
}

/// One journal line, redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalLine {
    pub at: DateTime<Utc>,
    /// syslog priority 0 (emerg) … 7 (debug).
    pub priority: u8,
    pub unit: String,
    pub message: String,
}

/// Parses `journalctl -o json` output (one JSON object per line). Lines that
/// are not journal objects are skipped and counted in the second value.
pub fn parse_journal_json(text: &str) -> (Vec<JournalLine>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    // A key block logged line by line is one unit's consecutive entries.
    let mut streams: BTreeMap<String, crate::redact::Stream> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(line)
        else {
            skipped += 1;
            continue;
        };
        let field = |k: &str| -> Option<String> {
            match o.get(k)? {
                serde_json::Value::String(s) => Some(s.clone()),
                // Non-UTF-8 or binary fields come as arrays of bytes.
                serde_json::Value::Array(bytes) => Some(
                    String::from_utf8_lossy(
                        &bytes
                            .iter()
                            .filter_map(|b| b.as_u64().map(|b| b as u8))
                            .collect::<Vec<u8>>(),
                    )
                    .into_owned(),
                ),
                _ => None,
            }
        };
        let Some(at) = field("__REALTIME_TIMESTAMP")
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|us| Utc.timestamp_micros(us).single())
        else {
            skipped += 1;
            continue;
        };
        let unit = field("_SYSTEMD_UNIT")
            .or_else(|| field("SYSLOG_IDENTIFIER"))
            .unwrap_or_default();
        let message = streams
            .entry(unit.clone())
            .or_default()
            .line(&field("MESSAGE").unwrap_or_default());
        out.push(JournalLine {
            at,
            priority: field("PRIORITY").and_then(|p| p.parse().ok()).unwrap_or(6),
            unit,
            message,
        });
    }
    (out, skipped)
}

/// A unit name safe to pass to systemctl: `name.service` style, no shell or option characters.
pub fn valid_unit(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-:\\".contains(c))
}

/// `nginx` → `nginx.service`; names with a unit suffix stay as they are.
pub fn unit_name(name: &str) -> String {
    if name.contains('.') {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `systemctl show -p … nginx.service ssh.service cron.service`
    /// on a Debian 12 host with nginx failing its config test.
    const SHOW: &str = include_str!("fixtures/systemctl-show.txt");
    /// Captured from `journalctl -u nginx.service -o json -n 5` on the same host.
    const JOURNAL: &str = include_str!("fixtures/journalctl-nginx.json");

    #[test]
    fn real_systemctl_show_output_parses() {
        let units = parse_show(SHOW);
        assert_eq!(units.len(), 3);
        let nginx = &units[0];
        assert_eq!(nginx.id, "nginx.service");
        assert_eq!(nginx.active, "failed");
        assert_eq!(nginx.exit_status, Some(1));
        let h = nginx.health();
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.reason, "unit_failed");
        assert!(h.message.contains("result exit-code"), "{}", h.message);
        assert!(h.message.contains("exit code 1"), "{}", h.message);
        assert!(h.message.contains("restarted 5 time(s)"), "{}", h.message);
        assert_eq!(units[1].health(), Health::healthy());
        assert!(units.iter().all(Unit::interesting));
    }

    #[test]
    fn real_journal_json_parses_and_is_redacted() {
        let (lines, skipped) = parse_journal_json(JOURNAL);
        assert_eq!(skipped, 0);
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0].unit, "nginx.service");
        assert_eq!(lines[0].at.timestamp(), 1_764_095_822);
        assert!(lines.iter().any(|l| l.priority == 3));
        let all: String = lines.iter().map(|l| l.message.as_str()).collect();
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains("[REDACTED]"), "{all}");
        // A message stored as bytes (non-UTF-8) still comes through.
        assert!(lines.iter().any(|l| l.message.contains("binary")));
    }

    /// The shapes that passed the old journal redactor: JSON keys, suffixed
    /// names, a key block logged one line per entry.
    #[test]
    fn journal_messages_pass_the_one_redactor_with_state_per_unit() {
        let entry = |unit: &str, n: u64, msg: &str| {
            serde_json::json!({"__REALTIME_TIMESTAMP": (1_764_095_822_000_000 + n).to_string(),
                "PRIORITY": "6", "_SYSTEMD_UNIT": unit, "MESSAGE": msg})
            .to_string()
        };
        let text = [
            entry("app.service", 1, r#"{"password":"hunter2","user":"app"}"#),
            entry("app.service", 2, "DB_PASS=pa55 SECRET_KEY=k3y"),
            entry("app.service", 3, "-----BEGIN PRIVATE KEY-----"),
            entry("cron.service", 4, "(root) CMD (backup)"),
            entry("app.service", 5, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
            entry("app.service", 6, "-----END PRIVATE KEY-----"),
            entry("app.service", 7, "\u{1b}]52;c;aGk=\u{7} listening"),
        ]
        .join("\n");
        let (lines, skipped) = parse_journal_json(&text);
        assert_eq!(skipped, 0);
        let all: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        for secret in ["hunter2", "pa55", "k3y", "MIIEvQ", "\u{1b}"] {
            assert!(
                all.iter().all(|m| !m.contains(secret)),
                "{secret}: {all:#?}"
            );
        }
        assert_eq!(
            all[3], "(root) CMD (backup)",
            "another unit's line is its own"
        );
        assert!(all[6].starts_with(r"\x1b]52"), "{}", all[6]);
    }

    #[test]
    fn no_systemd_is_stated_not_failed() {
        let m = parse_manager(
            Some(1),
            "offline\n",
            "System has not been booted with systemd as init system (PID 1). Can't operate.\n",
        );
        assert!(matches!(&m, Manager::Absent(why) if why.contains("not been booted")));
        assert_eq!(
            parse_manager(Some(1), "degraded\n", ""),
            Manager::Running("degraded".into())
        );
        assert!(matches!(
            parse_manager(Some(127), "", "sh: systemctl: not found"),
            Manager::Absent(_)
        ));
    }

    #[test]
    fn unit_names_are_checked() {
        assert!(valid_unit("nginx.service"));
        assert!(valid_unit("getty@tty1.service"));
        assert!(!valid_unit("nginx; rm -rf /"));
        assert!(!valid_unit("--now"));
        assert!(!valid_unit("$(reboot)"));
        assert_eq!(unit_name("nginx"), "nginx.service");
    }
}
