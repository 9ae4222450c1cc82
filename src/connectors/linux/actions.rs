//! Actions on a host and how they are undone.
//!
//! - `restart_service`, `stop_service`, `start_service`: the snapshot is the
//!   unit's active and enabled state; restore starts or stops it (and enables
//!   or disables it) until it matches again.
//! - `clean_disk`: files matching the action's globs and older than its age
//!   are *moved* into a quarantine batch on their own filesystem (a rename,
//!   never a copy); the snapshot names the batch; restore moves every file of
//!   the batch back; batches older than the retention are purged.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::guardrails;
use super::services::{self, Unit};
use super::transport::{Output, Transport, TransportError};
use crate::connectors::ConnectorError;
use crate::event::{Action, ActionOutcome};

/// Name of the quarantine directory at a mount point's root.
pub const MOUNT_QUARANTINE: &str = ".shieldops-quarantine";

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
    /// The quarantine batch a clean_disk after this snapshot uses.
    pub batch: String,
}

fn backend(e: TransportError) -> ConnectorError {
    ConnectorError::Backend(e.to_string())
}

async fn run_checked(
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

/// A quarantine batch name: its creation time, then a random suffix.
pub fn new_batch(now: DateTime<Utc>) -> String {
    format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    )
}

fn batch_time(batch: &str) -> Option<DateTime<Utc>> {
    let stamp = batch.split('-').next()?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

fn valid_batch(batch: &str) -> bool {
    batch_time(batch).is_some()
        && batch.len() < 64
        && batch.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Shell that prints every quarantine root that may hold batches.
fn quarantine_roots(qdir: &str) -> String {
    format!(
        "{{ echo {q}; awk '{{print $2}}' /proc/self/mounts | sed 's:/*$::' | sed 's:$:/{MOUNT_QUARANTINE}:'; }} | sort -u",
        q = quote(qdir)
    )
}

/// Moves the files matching the action's globs into quarantine batch `batch`.
pub async fn clean_disk(
    t: &dyn Transport,
    action: &Action,
    qdir: &str,
    batch: &str,
) -> Result<ActionOutcome, ConnectorError> {
    let bad = |param: &str, reason: String| ConnectorError::BadParam {
        action: action.name.clone(),
        param: param.into(),
        reason,
    };
    if let Some(refused) = guardrails::check(action) {
        return Err(bad("globs", refused));
    }
    let globs = action.params.get("globs").ok_or_else(|| {
        bad(
            "globs",
            "missing: comma-separated absolute globs such as /var/log/*.gz".into(),
        )
    })?;
    let hours: u64 = match action.params.get("older_than_hours") {
        None => 24,
        Some(h) => h.trim().parse().map_err(|_| {
            bad(
                "older_than_hours",
                format!("`{h}` is not a whole number of hours"),
            )
        })?,
    };
    if !valid_batch(batch) {
        return Err(bad(
            "batch",
            format!("`{batch}` is not a quarantine batch name"),
        ));
    }
    let mut script = format!(
        "qdir={q}; mkdir -p \"$qdir\" 2>/dev/null; qdev=$(stat -c %d \"$qdir\" 2>/dev/null || echo none)\n",
        q = quote(qdir)
    );
    let mut any = false;
    for glob in globs.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        let (dir, pattern) = guardrails::check_clean_glob(glob).map_err(|e| bad("globs", e))?;
        any = true;
        script.push_str(&format!(
            "[ -d {dir} ] && find {dir} -maxdepth 1 -type f -name {pat} -mmin +{mins} -print | while IFS= read -r f; do \
               if [ \"$(stat -c %d -- \"$f\")\" = \"$qdev\" ]; then q=\"$qdir\"; else m=$(stat -c %m -- \"$f\"); q=\"${{m%/}}/{MOUNT_QUARANTINE}\"; fi; \
               dst=\"$q/{batch}/files$f\"; size=$(stat -c %s -- \"$f\"); \
               if mkdir -p -- \"$(dirname -- \"$dst\")\" && mv -n -- \"$f\" \"$dst\" && [ ! -e \"$f\" ]; then echo \"MOVED $size $f\"; else echo \"FAILED $f\"; fi; \
             done\n",
            dir = quote(dir),
            pat = quote(pattern),
            mins = hours * 60,
        ));
    }
    if !any {
        return Err(bad("globs", "no glob given".into()));
    }
    let out = run_checked(t, &script, "clean_disk").await?;
    let mut freed: u64 = 0;
    let mut moved = 0;
    let mut steps = Vec::new();
    let mut failed = Vec::new();
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix("MOVED ") {
            let (size, path) = rest.split_once(' ').unwrap_or(("0", rest));
            freed += size.parse::<u64>().unwrap_or(0);
            moved += 1;
            steps.push(format!("quarantined {path}"));
        } else if let Some(path) = line.strip_prefix("FAILED ") {
            failed.push(path.to_string());
            steps.push(format!("could not quarantine {path}"));
        }
    }
    Ok(ActionOutcome {
        success: failed.is_empty(),
        message: format!(
            "moved {moved} file(s), {} MiB, into quarantine batch {batch} on {}{}",
            freed / (1 << 20),
            t.host(),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; {} could not be moved", failed.len())
            }
        ),
        steps,
    })
}

/// Moves every file of quarantine batch `batch` back where it was. A file
/// whose original path is taken again is left in quarantine and reported.
pub async fn restore_batch(
    t: &dyn Transport,
    qdir: &str,
    batch: &str,
) -> Result<(Vec<String>, Vec<String>), ConnectorError> {
    if !valid_batch(batch) {
        return Err(ConnectorError::Backend(format!(
            "`{batch}` is not a quarantine batch name"
        )));
    }
    let script = format!(
        "{roots} | while IFS= read -r q; do d=\"$q/{batch}\"; [ -d \"$d/files\" ] || continue; \
           (cd \"$d/files\" && find . -type f -print) | while IFS= read -r f; do \
             rel=\"${{f#./}}\"; dst=\"/$rel\"; \
             if [ -e \"$dst\" ]; then echo \"CONFLICT $dst\"; \
             elif mkdir -p -- \"$(dirname -- \"$dst\")\" && mv -n -- \"$d/files/$rel\" \"$dst\"; then echo \"RESTORED $dst\"; \
             else echo \"CONFLICT $dst\"; fi; \
           done; \
           find \"$d\" -depth -type d -empty -delete 2>/dev/null; \
         done; true",
        roots = quarantine_roots(qdir)
    );
    let out = run_checked(t, &script, "restore from quarantine").await?;
    let mut restored = Vec::new();
    let mut conflicts = Vec::new();
    for line in out.stdout.lines() {
        if let Some(p) = line.strip_prefix("RESTORED ") {
            restored.push(p.to_string());
        } else if let Some(p) = line.strip_prefix("CONFLICT ") {
            conflicts.push(p.to_string());
        }
    }
    Ok((restored, conflicts))
}

/// Deletes quarantine batches created before `now - retention`; returns their names.
pub async fn purge_quarantine(
    t: &dyn Transport,
    qdir: &str,
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> Result<Vec<String>, ConnectorError> {
    let listing = run_checked(
        t,
        &format!(
            "{} | while IFS= read -r q; do [ -d \"$q\" ] && for b in \"$q\"/*; do [ -d \"$b\" ] && echo \"$b\"; done; done; true",
            quarantine_roots(qdir)
        ),
        "list quarantine",
    )
    .await?;
    let mut expired = Vec::new();
    for path in listing.stdout.lines() {
        let Some((_, name)) = path.rsplit_once('/') else {
            continue;
        };
        if valid_batch(name) && batch_time(name).is_some_and(|t| t + retention < now) {
            expired.push(path.to_string());
        }
    }
    if !expired.is_empty() {
        let quoted: Vec<String> = expired.iter().map(|p| quote(p)).collect();
        run_checked(
            t,
            &format!("rm -rf -- {}", quoted.join(" ")),
            "purge quarantine",
        )
        .await?;
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::linux::transport::LocalTransport;
    use crate::event::ResourceId;
    use std::time::Duration;

    fn local() -> LocalTransport {
        LocalTransport::new("test-host", Duration::from_secs(20))
    }

    fn age(path: &std::path::Path, hours: u64) {
        let t = std::time::SystemTime::now() - Duration::from_secs(hours * 3600);
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(t).unwrap();
    }

    #[tokio::test]
    async fn clean_disk_moves_old_matching_files_and_restore_puts_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let q = dir.path().join("quarantine");
        std::fs::create_dir_all(&logs).unwrap();
        for (name, hours) in [
            ("app.log.1.gz", 48),
            ("app.log.2.gz", 72),
            ("fresh.gz", 1),
            ("app.log", 48),
        ] {
            std::fs::write(logs.join(name), name.repeat(100)).unwrap();
            age(&logs.join(name), hours);
        }
        let glob = format!("{}/*.gz", logs.display());
        let action = Action::new("clean_disk", ResourceId::new("linux/local/x"))
            .with("globs", glob)
            .with("older_than_hours", "24");
        let t = local();
        let batch = new_batch(Utc::now());
        let out = clean_disk(&t, &action, q.to_str().unwrap(), &batch)
            .await
            .unwrap();
        assert!(out.success, "{out:?}");
        assert!(
            out.message.starts_with("moved 2 file(s)"),
            "{}",
            out.message
        );
        assert!(!logs.join("app.log.1.gz").exists());
        assert!(!logs.join("app.log.2.gz").exists());
        assert!(logs.join("fresh.gz").exists(), "younger than the age: kept");
        assert!(logs.join("app.log").exists(), "not matching: kept");
        let quarantined = q
            .join(&batch)
            .join("files")
            .join(logs.strip_prefix("/").unwrap())
            .join("app.log.1.gz");
        assert!(
            quarantined.exists(),
            "moved into the batch, same filesystem"
        );

        let (restored, conflicts) = restore_batch(&t, q.to_str().unwrap(), &batch)
            .await
            .unwrap();
        assert_eq!(restored.len(), 2, "{restored:?}");
        assert!(conflicts.is_empty());
        assert_eq!(
            std::fs::read_to_string(logs.join("app.log.1.gz")).unwrap(),
            "app.log.1.gz".repeat(100)
        );
        assert!(!q.join(&batch).exists(), "an emptied batch is removed");
    }

    #[tokio::test]
    async fn restore_never_overwrites_a_file_that_came_back() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("q");
        let f = dir.path().join("old.gz");
        std::fs::write(&f, "old").unwrap();
        age(&f, 30);
        let action = Action::new("clean_disk", ResourceId::new("x"))
            .with("globs", format!("{}/*.gz", dir.path().display()));
        let t = local();
        let batch = new_batch(Utc::now());
        clean_disk(&t, &action, q.to_str().unwrap(), &batch)
            .await
            .unwrap();
        std::fs::write(&f, "new").unwrap();
        let (restored, conflicts) = restore_batch(&t, q.to_str().unwrap(), &batch)
            .await
            .unwrap();
        assert!(restored.is_empty());
        assert_eq!(conflicts, vec![f.display().to_string()]);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
    }

    #[tokio::test]
    async fn batches_past_retention_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("q");
        let f = dir.path().join("a.gz");
        std::fs::write(&f, "x").unwrap();
        age(&f, 30);
        let t = local();
        let then = Utc::now() - chrono::Duration::hours(100);
        let old = new_batch(then);
        let action = Action::new("clean_disk", ResourceId::new("x"))
            .with("globs", format!("{}/*.gz", dir.path().display()));
        clean_disk(&t, &action, q.to_str().unwrap(), &old)
            .await
            .unwrap();
        std::fs::create_dir_all(q.join(new_batch(Utc::now()))).unwrap();
        let purged = purge_quarantine(
            &t,
            q.to_str().unwrap(),
            Utc::now(),
            chrono::Duration::hours(72),
        )
        .await
        .unwrap();
        assert_eq!(purged, vec![q.join(&old).display().to_string()]);
        assert!(!q.join(&old).exists());
        assert_eq!(
            std::fs::read_dir(&q).unwrap().count(),
            1,
            "the young batch stays"
        );
    }

    #[tokio::test]
    async fn dangerous_globs_are_refused_before_anything_runs() {
        let action = Action::new("clean_disk", ResourceId::new("x")).with("globs", "/etc/*.conf");
        let e = clean_disk(&local(), &action, "/tmp/q", &new_batch(Utc::now()))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("protected"), "{e}");
    }
}
