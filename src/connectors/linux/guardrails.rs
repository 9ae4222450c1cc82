//! Guardrails: actions whose parameters carry something destructive — wiping
//! the root, making a filesystem, raw writes to block devices, fork bombs —
//! are refused outright, before the policy gate sees them and again before a
//! connector runs anything. No approval can unlock them: they are never a
//! remediation.
//!
//! clean_disk is confined by an allow-list, never a deny-list: each glob's
//! directory must be spelled canonically (refused otherwise, not rewritten)
//! and lie under a configured clean-up root. The connector then checks on the
//! host that the directory has no symbolic link along its path.

use std::sync::LazyLock;

use regex::Regex;

use crate::event::Action;

/// Directories clean_disk may touch by default (and everything below them);
/// `[linux] clean_roots` replaces the list.
pub const DEFAULT_CLEAN_ROOTS: &[&str] = &["/var/log", "/var/tmp", "/tmp"];

/// At most this many globs in one clean_disk.
const MAX_GLOBS: usize = 16;

/// Bounds of clean_disk's `older_than_hours` (ten years at most, so the
/// minutes handed to `find -mmin` can never overflow).
pub const OLDER_THAN_HOURS: std::ops::RangeInclusive<u64> = 1..=87_600;

static DANGEROUS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"\brm\s+(?:-[a-zA-Z]*\s+|--[a-z-]+\s+)*(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)\b[^;&|]*\s(?:/|/\*|~|\$HOME|/\s*\.\.?)(?:\s|$|;|&|\|)",
            "recursive removal of the root or home directory",
        ),
        (r"--no-preserve-root", "rm --no-preserve-root"),
        (r"\bmkfs(?:\.[a-z0-9]+)?\b", "making a filesystem (mkfs)"),
        (r"\bmke2fs\b|\bmkswap\b|\bwipefs\b", "formatting a device"),
        (r"\bdd\b[^;&|]*\bif=", "raw copy with dd"),
        (r":\s*\(\s*\)\s*\{[^}]*:\s*\|\s*:[^}]*\}", "fork bomb"),
        (
            r"\b(\w+)\s*\(\s*\)\s*\{[^}]*\b(\w+)\s*\|\s*(\w+)\s*&",
            "fork bomb",
        ),
        (
            r">{1,2}\s*/dev/(?:sd[a-z]|nvme\d|vd[a-z]|xvd[a-z]|hd[a-z]|mmcblk\d|md\d|dm-\d|mapper/|disk/)",
            "writing to a block device",
        ),
        (
            r"\bof=/dev/(?:sd[a-z]|nvme\d|vd[a-z]|xvd[a-z]|hd[a-z]|mmcblk\d|md\d|dm-\d|mapper/|disk/)",
            "writing to a block device",
        ),
        (r"\b(?:shred|blkdiscard)\s+[^;&|]*/dev/", "destroying a block device"),
        (r"\bchmod\s+(?:-[a-zA-Z]+\s+)*[0-7]*7{2,}\s+/(?:\s|$)", "chmod of the root"),
        (r"\bchown\s+-[a-zA-Z]*R[a-zA-Z]*\s+\S+\s+/(?:\s|$)", "recursive chown of the root"),
        (r">\s*/etc/(?:passwd|shadow|sudoers)\b", "overwriting account files"),
        (r"\b(?:halt|poweroff|shutdown)\b", "powering the host off"),
        (r"\bcrontab\s+-r\b", "removing crontabs"),
    ]
    .into_iter()
    .map(|(re, why)| (Regex::new(re).expect("guardrail patterns are valid"), why))
    .collect()
});

/// Why an action is refused, or `None` when it passes the guardrails that
/// need no configuration (the policy gate's pre-check). The connector adds the
/// configured clean-up roots with [`check_with_roots`].
pub fn check(action: &Action) -> Option<String> {
    for (key, value) in &action.params {
        if let Some(why) = dangerous_command(value) {
            return Some(format!(
                "guardrail: `{}` parameter `{key}` contains {why}: `{}`",
                action.name,
                shorten(value)
            ));
        }
    }
    // A host clean-up names its globs (and age); those are checked for every
    // target. A Kubernetes node's clean-up names what to clean instead
    // (`targets`), and the Linux connector refuses a clean-up without globs
    // (see `check_with_roots`).
    let host_form = ["globs", "older_than_hours"]
        .iter()
        .any(|k| action.params.contains_key(*k));
    if action.name == "clean_disk"
        && host_form
        && let Err(why) = clean_request(action)
    {
        return Some(format!("guardrail: clean_disk {why}"));
    }
    None
}

/// What dangerous thing a command line does, if any.
pub fn dangerous_command(command: &str) -> Option<&'static str> {
    DANGEROUS
        .iter()
        .find(|(re, _)| re.is_match(command))
        .map(|(_, why)| *why)
}

/// [`check`], and every clean_disk directory under one of `roots`.
pub fn check_with_roots(action: &Action, roots: &[String]) -> Option<String> {
    if let Some(why) = check(action) {
        return Some(why);
    }
    if action.name != "clean_disk" {
        return None;
    }
    let request = match clean_request(action) {
        Ok(request) => request,
        Err(why) => return Some(format!("guardrail: clean_disk {why}")),
    };
    for g in &request.globs {
        if !under_roots(&g.dir, roots) {
            return Some(format!(
                "guardrail: clean_disk glob `{}`: `{}` is not under an allowed clean-up root ({})",
                shorten(&g.glob),
                shorten(&g.dir),
                roots.join(", ")
            ));
        }
    }
    None
}

/// One clean_disk glob, split into its directory and file-name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanGlob {
    /// The glob as given.
    pub glob: String,
    /// The canonical absolute directory searched (one level, no recursion).
    pub dir: String,
    /// The `find -name` pattern.
    pub pattern: String,
}

/// A clean_disk request with every parameter checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanRequest {
    pub globs: Vec<CleanGlob>,
    /// Files older than this many minutes are moved (bounded: no overflow).
    pub older_than_mins: u64,
}

/// Parses and checks clean_disk's parameters; the error says which and why.
pub fn clean_request(action: &Action) -> Result<CleanRequest, String> {
    let globs = action.params.get("globs").ok_or_else(|| {
        "parameter `globs` missing: comma-separated absolute globs such as /var/log/*.gz"
            .to_string()
    })?;
    let globs: Vec<&str> = globs
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    if globs.is_empty() {
        return Err("parameter `globs`: no glob given".into());
    }
    if globs.len() > MAX_GLOBS {
        return Err(format!(
            "parameter `globs`: {} globs, at most {MAX_GLOBS}",
            globs.len()
        ));
    }
    let mut out = Vec::new();
    for glob in globs {
        let (dir, pattern) =
            check_clean_glob(glob).map_err(|why| format!("glob `{}`: {why}", shorten(glob)))?;
        out.push(CleanGlob {
            glob: glob.to_string(),
            dir: dir.to_string(),
            pattern: pattern.to_string(),
        });
    }
    let hours = match action.params.get("older_than_hours") {
        None => 24,
        Some(h) => h
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|h| OLDER_THAN_HOURS.contains(h))
            .ok_or_else(|| {
                format!(
                    "parameter `older_than_hours`: `{}` is not a whole number of hours from {} to {}",
                    shorten(h),
                    OLDER_THAN_HOURS.start(),
                    OLDER_THAN_HOURS.end()
                )
            })?,
    };
    Ok(CleanRequest {
        globs: out,
        // Cannot overflow: hours is at most 87,600.
        older_than_mins: hours * 60,
    })
}

/// A clean_disk glob is `DIR/PATTERN`: a canonical absolute directory (as
/// written: no `//`, `.`, `..` or trailing `/`; plain ASCII, so no look-alike
/// letters) and a file-name pattern that names something (not a bare `*`).
/// Non-canonical input is refused, never normalised into something else.
pub fn check_clean_glob(glob: &str) -> Result<(&str, &str), String> {
    if !glob.starts_with('/') {
        return Err("must be an absolute path such as /var/log/*.gz".into());
    }
    let Some((dir, pattern)) = glob.rsplit_once('/') else {
        return Err("must be an absolute path such as /var/log/*.gz".into());
    };
    if dir.is_empty() {
        return Err("the root directory is never cleaned".into());
    }
    canonical_dir(dir)?;
    if dir.contains(['*', '?', '[', ']', '\\']) {
        return Err("wildcards are allowed in the file name only".into());
    }
    if pattern.is_empty() {
        return Err("must end with a file-name pattern, not `/`".into());
    }
    if pattern == "." || pattern == ".." {
        return Err("the file-name pattern must name files, not `.` or `..`".into());
    }
    if pattern.chars().any(invisible) {
        return Err("the file-name pattern holds control or invisible characters".into());
    }
    if pattern.chars().all(|c| matches!(c, '*' | '?')) {
        return Err("the file-name pattern must name something (not a bare `*`)".into());
    }
    Ok((dir, pattern))
}

/// Whether `path` is an absolute directory spelled canonically: no empty,
/// `.` or `..` segment, no trailing slash, only printable ASCII. The reason
/// names what is wrong.
pub fn canonical_dir(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{}` is not an absolute path", shorten(path)));
    }
    if path == "/" {
        return Err("the root directory is never cleaned".into());
    }
    if !path.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(format!(
            "`{}` holds characters other than printable ASCII (look-alike letters or control characters)",
            path.escape_debug()
        ));
    }
    if path.ends_with('/') {
        return Err(format!("`{path}` ends with `/`: not canonical"));
    }
    for part in path[1..].split('/') {
        match part {
            "" => return Err(format!("`{path}` holds `//`: not canonical")),
            "." | ".." => return Err(format!("`{path}` holds a `{part}` segment: not canonical")),
            _ => {}
        }
    }
    Ok(())
}

/// Whether canonical `dir` is one of `roots` or below one.
pub fn under_roots(dir: &str, roots: &[String]) -> bool {
    roots.iter().any(|r| {
        dir == r
            || dir
                .strip_prefix(r.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Control and invisible formatting characters (bidi overrides, zero-width).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ResourceId;

    fn act(name: &str, key: &str, value: &str) -> Action {
        Action::new(name, ResourceId::new("linux/local/h")).with(key, value)
    }

    #[test]
    fn dangerous_commands_are_refused() {
        for cmd in [
            "rm -rf /",
            "rm -rf /*",
            "sudo rm -fr / --no-preserve-root",
            "rm --recursive --force /",
            "cd /tmp && rm -r -f ~",
            "mkfs.ext4 /dev/sda1",
            "mkfs -t xfs /dev/vdb",
            "dd if=/dev/zero of=/dev/sda bs=1M",
            "dd if=/dev/urandom of=/tmp/x",
            ":(){ :|:& };:",
            "bomb() { bomb | bomb & }; bomb",
            "echo hi > /dev/sda",
            "cat x >> /dev/nvme0n1",
            "shred -n 3 /dev/sdb",
            "chmod -R 777 /",
            "shutdown -h now",
        ] {
            let refused = check(&act("restart_service", "pre_command", cmd));
            assert!(refused.is_some(), "`{cmd}` passed the guardrails");
            assert!(refused.unwrap().starts_with("guardrail:"));
        }
    }

    #[test]
    fn ordinary_parameters_pass() {
        for value in [
            "nginx",
            "nginx.service",
            "/var/log/*.gz",
            "rm -rf /var/tmp/build-cache",
            "systemctl restart nginx",
            "addr=/dev/null",
        ] {
            assert_eq!(check(&act("restart_service", "x", value)), None, "{value}");
        }
    }

    #[test]
    fn clean_disk_globs_are_confined() {
        let ok = |g: &str| check(&act("clean_disk", "globs", g)).is_none();
        assert!(ok("/var/log/*.gz"));
        assert!(ok("/var/log/nginx/*.log.[0-9]"));
        assert!(ok("/var/log/*.gz, /var/log/*.1"));
        assert!(!ok("/*"));
        assert!(!ok("/var/log/*"));
        assert!(!ok("/var/log/../../etc/*.conf"));
        assert!(!ok("var/log/*.gz"));
        assert!(!ok("/var/*/x.gz"));
        assert!(!ok("/var/log/*.gz,//usr/lib/*.so"));
        assert!(!ok(""));
    }

    /// Spellings that once slipped past a deny-list: each is refused with a
    /// reason by the configuration-free check, or (a canonical directory
    /// outside the roots) by the allow-list.
    #[test]
    fn tricky_spellings_are_refused_not_normalised() {
        let roots: Vec<String> = DEFAULT_CLEAN_ROOTS.iter().map(|r| r.to_string()).collect();
        for glob in [
            "//etc/shadow*.gz",
            "/etc//x.gz",
            "/etc/",
            "/./etc/x.gz",
            "/var/log/../../etc/x.gz",
            "/var//log/../../etc/x.gz",
            "/var/log/./x.gz",
            "/var/log//x.gz",
            "/var/log/sub/",
            "/var/l\u{043e}g/x.gz",
            "/var/log\u{2215}..\u{2215}etc/x.gz",
            "/var/log/\u{202e}zg.x",
            "/var/log/a\nb/x.gz",
            "/var/log/x\n.gz",
            "/var/log/.",
            "/var/log/..",
            "/etc/x.gz",
            "/var/lib/dpkg/x.gz",
            "/root/.ssh/x.gz",
            "/var/logs/x.gz",
            "/tmpfoo/x.gz",
            "/",
            "//",
        ] {
            let refused = check_with_roots(&act("clean_disk", "globs", glob), &roots);
            let why = refused.unwrap_or_else(|| panic!("`{}` passed", glob.escape_debug()));
            assert!(why.starts_with("guardrail: clean_disk"), "{why}");
        }
        for glob in ["/var/log/x.gz", "/tmp/build/*.tar", "/var/tmp/a b/*.gz"] {
            assert_eq!(
                check_with_roots(&act("clean_disk", "globs", glob), &roots),
                None,
                "{glob}"
            );
        }
        assert!(
            check_with_roots(&act("clean_disk", "globs", "//etc/x.gz"), &roots)
                .unwrap()
                .contains("`//`")
        );
        assert!(
            check_with_roots(&act("clean_disk", "globs", "/etc/x.gz"), &roots)
                .unwrap()
                .contains("not under an allowed clean-up root")
        );
    }

    #[test]
    fn the_age_is_bounded_so_its_minutes_cannot_overflow() {
        let with = |h: &str| {
            clean_request(&act("clean_disk", "globs", "/var/log/*.gz").with("older_than_hours", h))
        };
        assert_eq!(with("24").unwrap().older_than_mins, 24 * 60);
        assert_eq!(with("87600").unwrap().older_than_mins, 87_600 * 60);
        for bad in [
            "18446744073709551615",
            "307445734561825861",
            "87601",
            "0",
            "-1",
            "1.5",
            "x",
            "",
        ] {
            let why = with(bad).unwrap_err();
            assert!(why.contains("older_than_hours"), "{bad}: {why}");
        }
        let refused = check(
            &act("clean_disk", "globs", "/var/log/*.gz")
                .with("older_than_hours", "18446744073709551615"),
        );
        assert!(refused.unwrap().contains("older_than_hours"));
    }

    #[test]
    fn roots_match_whole_segments() {
        let roots = vec!["/var/log".to_string()];
        assert!(under_roots("/var/log", &roots));
        assert!(under_roots("/var/log/nginx", &roots));
        assert!(!under_roots("/var/logs", &roots));
        assert!(!under_roots("/var", &roots));
    }
}
