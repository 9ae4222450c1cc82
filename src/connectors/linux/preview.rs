//! What a Linux action would change, read from the host before approval: the
//! unit's state for a service action; for a disk clean-up, the files that
//! would be moved to quarantine now, with their count and sizes (a dry run of
//! the same selection the clean-up makes).

use super::actions::{quote, service_verb, unit_states};
use super::guardrails;
use super::transport::Transport;
use crate::connectors::{ConnectorError, Result, check_params, preview_of};
use crate::event::{Action, Change, Preview};

/// Files listed by name in a clean-up preview; the rest are counted.
const LISTED_FILES: usize = 10;

/// The parameters `action` takes on a host (`on_unit`: on a service resource,
/// which names its unit itself); `None` when the connector does not do it.
pub fn takes(action: &str, on_unit: bool) -> Option<&'static [&'static str]> {
    if service_verb(action).is_some() {
        return Some(if on_unit { &[] } else { &["service"] });
    }
    (action == "clean_disk" && !on_unit).then_some(&["globs", "older_than_hours"][..])
}

/// Refuses what the connector does not do and any parameter it would ignore.
pub fn check(action: &Action, on_unit: bool) -> Result<()> {
    let takes = takes(&action.name, on_unit).ok_or_else(|| ConnectorError::Unsupported {
        action: action.name.clone(),
        resource: action.target.clone(),
    })?;
    check_params(action, takes)
}

/// What a clean-up selects: `(directory, file-name pattern)` pairs and the
/// age in hours a file must exceed.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanSpec<'a> {
    pub globs: Vec<(&'a str, &'a str)>,
    pub hours: u64,
}

/// Reads and checks the parameters of a `clean_disk` action.
pub fn clean_spec(action: &Action) -> Result<CleanSpec<'_>> {
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
    let globs = globs
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| guardrails::check_clean_glob(g).map_err(|e| bad("globs", e)))
        .collect::<Result<Vec<_>>>()?;
    if globs.is_empty() {
        return Err(bad("globs", "no glob given".into()));
    }
    Ok(CleanSpec { globs, hours })
}

/// The `find` that selects what a clean-up moves, for one glob.
pub fn find_command(dir: &str, pattern: &str, hours: u64) -> String {
    format!(
        "find -P {dir} -maxdepth 1 -type f -name {pat} -mmin +{mins}",
        dir = quote(dir),
        pat = quote(pattern),
        mins = hours.saturating_mul(60)
    )
}

/// `12.3 MiB`, `840 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A file name as shown to an approver: control characters (a terminal
/// escape in a name an unprivileged user chose) become `?`.
fn shown(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The files a clean-up would move now: `(size, path)`, from a dry run of
/// the same selection. Names are NUL-separated, so no file name can pose as
/// another line.
pub async fn clean_candidates(
    t: &dyn Transport,
    spec: &CleanSpec<'_>,
) -> Result<Vec<(u64, String)>> {
    let mut script = String::new();
    for (dir, pattern) in &spec.globs {
        script.push_str(&format!(
            "[ -d {d} ] && {find} -printf '%s %p\\0'\n",
            d = quote(dir),
            find = find_command(dir, pattern, spec.hours)
        ));
    }
    script.push_str("true\n");
    let out = t
        .run(&script)
        .await
        .map_err(|e| ConnectorError::Backend(e.to_string()))?;
    if !out.ok() {
        return Err(ConnectorError::Backend(format!(
            "{}: listing the files to clean failed: {}",
            t.host(),
            out.stderr.trim()
        )));
    }
    Ok(parse_candidates(&out.stdout))
}

/// Parses `SIZE PATH\0` records.
pub fn parse_candidates(text: &str) -> Vec<(u64, String)> {
    text.split('\0')
        .filter_map(|rec| {
            let (n, path) = rec.trim_start_matches('\n').split_once(' ')?;
            Some((n.parse().ok()?, path.to_string()))
        })
        .collect()
}

/// The preview of a clean-up that would move `files` on `host`.
pub fn clean_preview(
    action: &Action,
    host: &str,
    spec: &CleanSpec<'_>,
    files: &[(u64, String)],
) -> Preview {
    let total: u64 = files.iter().map(|f| f.0).sum();
    let globs: Vec<String> = spec.globs.iter().map(|(d, p)| format!("{d}/{p}")).collect();
    let mut p = preview_of(
        action,
        format!("host {host}"),
        vec![Change::new(
            format!(
                "files matching {} older than {}h",
                globs.join(", "),
                spec.hours
            ),
            format!("{} file(s), {}", files.len(), size(total)),
            "moved to quarantine (restorable)",
        )],
    );
    let mut largest: Vec<&(u64, String)> = files.iter().collect();
    largest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (n, path) in largest.iter().take(LISTED_FILES) {
        p.notes.push(format!("{} {}", size(*n), shown(path)));
    }
    if files.len() > LISTED_FILES {
        p.notes
            .push(format!("… and {} more", files.len() - LISTED_FILES));
    }
    p
}

/// The preview of a service action on `unit`, from its live state.
pub async fn service_preview(
    t: &dyn Transport,
    action: &Action,
    verb: &str,
    unit: &str,
) -> Result<Preview> {
    let states = unit_states(t, &[unit.to_string()]).await?;
    let (active, enabled) =
        states
            .0
            .get(unit)
            .cloned()
            .ok_or_else(|| ConnectorError::BadParam {
                action: action.name.clone(),
                param: "service".into(),
                reason: format!("{} has no unit {unit}", t.host()),
            })?;
    let new = match verb {
        "restart" => "restarted (active)",
        "stop" => "inactive",
        _ => "active",
    };
    Ok(preview_of(
        action,
        format!("host {}", t.host()),
        vec![Change::new(
            format!("service {unit}"),
            format!("{active}, {enabled}"),
            format!("{new}, {enabled}"),
        )],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ResourceId;

    fn clean(globs: &str) -> Action {
        Action::new("clean_disk", ResourceId::new("linux/web-1")).with("globs", globs)
    }

    #[test]
    fn a_clean_up_preview_counts_sizes_and_lists_the_largest_files() {
        let action = clean("/var/log/app/*.gz").with("older_than_hours", "48");
        let spec = clean_spec(&action).unwrap();
        assert_eq!(
            spec,
            CleanSpec {
                globs: vec![("/var/log/app", "*.gz")],
                hours: 48
            }
        );
        let text = [
            "1048576 /var/log/app/a.gz",
            "524288 /var/log/app/b.gz",
            "100 /var/log/app/evil\u{1b}[2J.gz",
            "",
        ]
        .join("\0");
        let files = parse_candidates(&text);
        assert_eq!(files.len(), 3);
        let p = clean_preview(&action, "web-1", &spec, &files);
        assert_eq!(
            p.lines(),
            [
                "files matching /var/log/app/*.gz older than 48h: 3 file(s), 1.5 MiB → moved to quarantine (restorable)"
            ]
        );
        assert_eq!(p.notes[0], "1.0 MiB /var/log/app/a.gz");
        assert_eq!(
            p.notes[2], "100 B /var/log/app/evil?[2J.gz",
            "no terminal escape reaches the screen"
        );
    }

    #[test]
    fn a_newline_in_a_file_name_cannot_pose_as_another_file() {
        let files = parse_candidates("5 /var/log/x\n999999 /etc/passwd.gz\0");
        assert_eq!(
            files,
            vec![(5, "/var/log/x\n999999 /etc/passwd.gz".to_string())]
        );
    }

    #[test]
    fn ignored_and_bad_parameters_are_refused_by_name() {
        let err = check(&clean("/var/log/*.gz").with("targets", "images"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`targets`") && err.contains("ignored"),
            "{err}"
        );
        // On a service resource the unit is the resource: a `service` parameter would be ignored.
        let restart = Action::new("restart_service", ResourceId::new("x")).with("service", "nginx");
        assert!(check(&restart, false).is_ok());
        let err = check(&restart, true).unwrap_err().to_string();
        assert!(err.contains("`service`"), "{err}");
        // Outside the clean-up roots: refused before any dry run (the
        // connector checks the roots first, as `execute` does).
        let roots: Vec<String> = guardrails::DEFAULT_CLEAN_ROOTS
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert!(guardrails::check_with_roots(&clean("/etc/*.conf"), &roots).is_some());
        let err = clean_spec(&clean("/var/log/*.gz").with("older_than_hours", "soon"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("older_than_hours"), "{err}");
    }
}
