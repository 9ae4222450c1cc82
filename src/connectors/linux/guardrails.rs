//! Guardrails: actions whose parameters carry something destructive — wiping
//! the root, making a filesystem, raw writes to block devices, fork bombs —
//! are refused outright, before the policy gate sees them and again before a
//! connector runs anything. No approval can unlock them: they are never a
//! remediation.

use std::sync::LazyLock;

use regex::Regex;

use crate::event::Action;

/// Directories clean_disk may never touch, nor anything above them.
const PROTECTED_DIRS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc",
    "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/var/lib",
];

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

/// Why an action is refused, or `None` when it passes the guardrails.
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
    if action.name == "clean_disk"
        && let Some(globs) = action.params.get("globs")
    {
        for glob in globs.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            if let Err(why) = check_clean_glob(glob) {
                return Some(format!("guardrail: clean_disk glob `{glob}`: {why}"));
            }
        }
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

/// A clean_disk glob is `DIR/PATTERN`: an absolute directory below the
/// protected system directories, with no `..`, and a file-name pattern that
/// is not a bare `*`.
pub fn check_clean_glob(glob: &str) -> Result<(&str, &str), String> {
    let Some((dir, pattern)) = glob.rsplit_once('/') else {
        return Err("must be an absolute path such as /var/log/*.gz".into());
    };
    if !glob.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if dir.split('/').any(|part| part == ".." || part == ".") {
        return Err("must not contain `.` or `..`".into());
    }
    if dir.contains(['*', '?', '[']) {
        return Err("wildcards are allowed in the file name only".into());
    }
    let dir_norm = if dir.is_empty() { "/" } else { dir };
    if PROTECTED_DIRS.contains(&dir_norm.trim_end_matches('/')) || dir_norm == "/" {
        return Err(format!("`{dir_norm}` is a protected system directory"));
    }
    if pattern.is_empty() || pattern.chars().all(|c| c == '*' || c == '?') {
        return Err("the file-name pattern must name something (not a bare `*`)".into());
    }
    if pattern.contains(['\0', '\n']) || dir.contains(['\0', '\n']) {
        return Err("control characters are not allowed".into());
    }
    Ok((dir, pattern))
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
        assert!(!ok("/etc/*.conf"));
        assert!(!ok("/var/*"));
        assert!(!ok("/var/log/*"));
        assert!(!ok("/var/log/../../etc/*.conf"));
        assert!(!ok("var/log/*.gz"));
        assert!(!ok("/var/*/x.gz"));
        assert!(!ok("/var/log/*.gz,/usr/*.so"));
    }
}
