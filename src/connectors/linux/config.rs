//! `[linux]`: the local host (on by default) and SSH hosts, listed here or
//! taken from `~/.ssh/config` `Host` entries matching an opt-in pattern.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::guardrails;
use crate::event::Environment;

/// The default quarantine: root's own, not below a world-writable directory.
pub const DEFAULT_QUARANTINE_DIR: &str = "/var/lib/shieldops/quarantine";

/// `[linux]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinuxConfig {
    /// Watch the machine the console runs on.
    pub local: bool,
    /// Environment of the local host (and the default for SSH hosts).
    pub environment: Environment,
    /// Owning team of the local host (and the default for SSH hosts).
    pub team: String,
    /// Bound on connecting to a host and on each command, in seconds.
    pub timeout_secs: u64,
    /// At most this many SSH commands at once across the fleet.
    pub max_connections: usize,
    /// Opt-in: `Host` entries of the ssh config whose names match this pattern
    /// (`*` and `?` wildcards, comma-separated alternatives) join the fleet.
    pub ssh_config_hosts: Option<String>,
    /// The ssh config file to read and to pass to ssh (default: `~/.ssh/config`).
    pub ssh_config_file: Option<PathBuf>,
    /// Accept host keys not yet known (`StrictHostKeyChecking=accept-new`);
    /// by default only hosts already in known_hosts are trusted.
    pub accept_new_host_keys: bool,
    /// Where clean_disk moves files: a directory owned by the user the
    /// commands run as (root), mode 0700, no symbolic link and nothing
    /// writable by others along its path; checked before every use. Files on
    /// another filesystem are skipped, never copied.
    pub quarantine_dir: PathBuf,
    /// Quarantined files are purged after this many hours.
    pub quarantine_retention_hours: u64,
    /// The only directories clean_disk may touch (and those below them);
    /// canonical absolute paths.
    pub clean_roots: Vec<String>,
    /// SSH hosts listed one by one.
    pub hosts: Vec<SshHostConfig>,
}

impl Default for LinuxConfig {
    fn default() -> Self {
        Self {
            local: true,
            environment: Environment::Production,
            team: "ops".into(),
            timeout_secs: 10,
            max_connections: 16,
            ssh_config_hosts: None,
            ssh_config_file: None,
            accept_new_host_keys: false,
            quarantine_dir: PathBuf::from(DEFAULT_QUARANTINE_DIR),
            quarantine_retention_hours: 72,
            clean_roots: super::guardrails::DEFAULT_CLEAN_ROOTS
                .iter()
                .map(|r| r.to_string())
                .collect(),
            hosts: Vec::new(),
        }
    }
}

/// `[[linux.hosts]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshHostConfig {
    /// The name ssh connects to (an alias from the ssh config, or `user@host`).
    pub alias: String,
    #[serde(default)]
    pub environment: Option<Environment>,
    #[serde(default)]
    pub team: Option<String>,
}

impl LinuxConfig {
    /// Checks values serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=300).contains(&self.timeout_secs) {
            return Err(("timeout_secs", "must be between 1 and 300".into()));
        }
        if !(1..=256).contains(&self.max_connections) {
            return Err(("max_connections", "must be between 1 and 256".into()));
        }
        if !(1..=24 * 365).contains(&self.quarantine_retention_hours) {
            return Err((
                "quarantine_retention_hours",
                "must be between 1 and 8760 (a year)".into(),
            ));
        }
        let qdir = self
            .quarantine_dir
            .to_str()
            .ok_or(("quarantine_dir", "must be valid UTF-8".to_string()))?;
        guardrails::canonical_dir(qdir).map_err(|e| ("quarantine_dir", e))?;
        if self.clean_roots.is_empty() {
            return Err(("clean_roots", "must name at least one directory".into()));
        }
        for root in &self.clean_roots {
            guardrails::canonical_dir(root).map_err(|e| ("clean_roots", e))?;
            // Clean-up must never reach into the quarantine, nor the other way round.
            if guardrails::under_roots(qdir, std::slice::from_ref(root))
                || guardrails::under_roots(root, &[qdir.to_string()])
            {
                return Err((
                    "clean_roots",
                    format!("`{root}` overlaps the quarantine directory `{qdir}`"),
                ));
            }
        }
        if self.team.trim().is_empty() {
            return Err(("team", "must not be empty".into()));
        }
        for (i, h) in self.hosts.iter().enumerate() {
            if h.alias.trim().is_empty()
                || h.alias.starts_with('-')
                || h.alias.contains(char::is_whitespace)
            {
                return Err((
                    "hosts",
                    format!("host {}: alias `{}` is not a host name", i + 1, h.alias),
                ));
            }
        }
        Ok(())
    }
}

/// `Host` names in ssh config text that match `pattern` (literal names only:
/// wildcard `Host` lines describe many hosts and name none).
pub fn ssh_config_aliases(text: &str, pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        if !keyword.eq_ignore_ascii_case("host") {
            continue;
        }
        for name in words {
            let name = name.trim_matches('"');
            if name.starts_with('!') || name.contains(['*', '?']) {
                continue;
            }
            if pattern.split(',').any(|p| wildcard(p.trim(), name))
                && !out.iter().any(|o| o == name)
            {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// ssh_config-style wildcard matching (`*` any run, `?` one character).
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_in_pattern_selects_literal_host_entries() {
        let text = "Host *\n  ServerAliveInterval 30\nHost web-1 web-2 db-1\n  User ops\n\
                    host web-* !web-9\nHost bastion\n";
        assert_eq!(ssh_config_aliases(text, "web-*"), vec!["web-1", "web-2"]);
        assert_eq!(
            ssh_config_aliases(text, "db-?, bastion"),
            vec!["db-1", "bastion"]
        );
        assert!(ssh_config_aliases(text, "nothing").is_empty());
    }

    #[test]
    fn the_section_parses_and_mistakes_name_key_and_line() {
        let c = crate::config::Config::parse(
            "[linux]\nlocal = false\nssh_config_hosts = \"web-*\"\n\n[[linux.hosts]]\nalias = \"db-1\"\nenvironment = \"staging\"\n",
            "c.toml",
        )
        .unwrap();
        assert!(!c.linux.local);
        assert_eq!(c.linux.hosts[0].environment, Some(Environment::Staging));
        let e = crate::config::Config::parse("[linux]\ntimeout = 3\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("linux.timeout"), "{e}");
        let e = crate::config::Config::parse("[linux]\n\ntimeout_secs = 0\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("linux.timeout_secs"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut c = LinuxConfig {
            timeout_secs: 0,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "timeout_secs");
        c.timeout_secs = 5;
        c.hosts.push(SshHostConfig {
            alias: "-oProxyCommand=x".into(),
            environment: None,
            team: None,
        });
        assert_eq!(c.validate().unwrap_err().0, "hosts");
    }

    #[test]
    fn quarantine_and_roots_must_be_canonical_and_apart() {
        assert!(LinuxConfig::default().validate().is_ok());
        for (qdir, roots, key) in [
            ("/var/lib/shieldops//q", vec!["/var/log"], "quarantine_dir"),
            ("/var/lib/shieldops/q/", vec!["/var/log"], "quarantine_dir"),
            ("relative/q", vec!["/var/log"], "quarantine_dir"),
            ("/var/lib/q", vec!["/var/log/"], "clean_roots"),
            ("/var/lib/q", vec!["/var/./log"], "clean_roots"),
            ("/var/lib/q", vec!["/"], "clean_roots"),
            ("/var/lib/q", vec![], "clean_roots"),
            ("/var/tmp/q", vec!["/var/tmp"], "clean_roots"),
            ("/var/lib/q", vec!["/var/lib/q/sub"], "clean_roots"),
        ] {
            let c = LinuxConfig {
                quarantine_dir: qdir.into(),
                clean_roots: roots.iter().map(|r| r.to_string()).collect(),
                ..Default::default()
            };
            assert_eq!(c.validate().unwrap_err().0, key, "{qdir} {roots:?}");
        }
    }
}
