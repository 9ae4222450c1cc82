//! Host hardening facts for the compliance controls: the SSH daemon's
//! effective `PermitRootLogin` / `PasswordAuthentication`, the mode and owner
//! of `/etc/shadow`, whether unattended upgrades run, and the OS id and
//! codename. Every fact that could not be read is `unknown`, never a guess.
//!
//! The same shell runs locally and over SSH (one round trip, plus one per
//! `Include` when `sshd -T` is unavailable). `sshd -T` prints the effective
//! configuration but needs root (it loads the host keys); without it the
//! configuration files are parsed the way sshd reads them: `Include` expands
//! in place (relative paths under `/etc/ssh`, globs sorted), the first value
//! of a keyword wins, and `Match` blocks do not set the global value.

use std::collections::BTreeMap;

use super::transport::Transport;

/// The main SSH daemon configuration file.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
/// The value of a fact that could not be read.
pub const UNKNOWN: &str = "unknown";
/// sshd's own nesting limit for `Include`.
const MAX_INCLUDE_DEPTH: usize = 16;
/// The sshd keywords the controls rest on (lower-case, as `sshd -T` prints them).
const KEYWORDS: [&str; 2] = ["permitrootlogin", "passwordauthentication"];
/// Compiled-in defaults of OpenSSH ≥ 7.0, which apply when no file sets the keyword.
const DEFAULTS: [(&str, &str); 2] = [
    ("permitrootlogin", "prohibit-password"),
    ("passwordauthentication", "yes"),
];

/// The facts, as resource attributes (names shared with the compliance rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    pub attributes: BTreeMap<String, String>,
}

impl Hardening {
    /// Every fact `unknown`, with why (a host that did not answer).
    pub fn unknown(why: &str) -> Self {
        let mut attributes: BTreeMap<String, String> = ATTRIBUTES
            .iter()
            .map(|a| (a.to_string(), UNKNOWN.to_string()))
            .collect();
        attributes.insert("sshd.source".into(), format!("unreadable: {why}"));
        Self { attributes }
    }
}

/// The attribute names this module sets (besides `sshd.source`, which says
/// where the sshd values came from: `sshd -T`, a file path, `not_installed`
/// or `unreadable: …`).
pub const ATTRIBUTES: &[&str] = &[
    "os.id",
    "os.version_codename",
    "sshd.permit_root_login",
    "sshd.password_authentication",
    "file./etc/shadow.mode",
    "file./etc/shadow.owner",
    "unattended_upgrades",
];

/// Reads the facts of the host behind `transport`; `sshd_config` is the
/// configuration to parse when `sshd -T` is unavailable (tests point it elsewhere).
pub async fn collect(transport: &dyn Transport, sshd_config: &str) -> Hardening {
    let out = match transport.run(&script()).await {
        Ok(out) => out.stdout,
        Err(e) => return Hardening::unknown(&e.to_string()),
    };
    let sections = sections(&out);
    let get = |name: &str| sections.get(name).map(String::as_str).unwrap_or("");
    let mut attributes = BTreeMap::new();

    let (id, codename) = parse_os_release(get("os"));
    attributes.insert("os.id".into(), id);
    attributes.insert("os.version_codename".into(), codename);

    let (mode, owner) = parse_stat(get("shadow"));
    attributes.insert("file./etc/shadow.mode".into(), mode);
    attributes.insert("file./etc/shadow.owner".into(), owner);

    attributes.insert(
        "unattended_upgrades".into(),
        unattended_upgrades(get("apt"), get("uu")),
    );

    let effective = parse_sshd_t(get("sshd_t"));
    let (values, source) = if effective.len() == KEYWORDS.len() {
        (effective, "sshd -T".to_string())
    } else if get("sshd_bin").trim().is_empty() && get("sshd_config").trim() == "absent" {
        let values = KEYWORDS
            .iter()
            .map(|k| (k.to_string(), "not_installed".to_string()))
            .collect();
        (values, "not_installed".to_string())
    } else {
        match read_config(transport, sshd_config).await {
            Ok(values) => (values, sshd_config.to_string()),
            Err(e) => (BTreeMap::new(), format!("unreadable: {e}")),
        }
    };
    let value = |k: &str| values.get(k).cloned().unwrap_or_else(|| UNKNOWN.into());
    attributes.insert("sshd.permit_root_login".into(), value("permitrootlogin"));
    attributes.insert(
        "sshd.password_authentication".into(),
        value("passwordauthentication"),
    );
    attributes.insert("sshd.source".into(), source);
    Hardening { attributes }
}

/// One shell for every fact, printed in `@@name` sections.
fn script() -> String {
    format!(
        "export LC_ALL=C; PATH=$PATH:/usr/sbin:/sbin; \
         echo @@os; cat /etc/os-release 2>/dev/null; \
         echo @@sshd_bin; command -v sshd 2>/dev/null; \
         echo @@sshd_config; if [ -r {SSHD_CONFIG} ]; then echo readable; elif [ -e {SSHD_CONFIG} ]; then echo unreadable; else echo absent; fi; \
         echo @@sshd_t; out=$(sshd -T 2>/dev/null) && printf '%s\\n' \"$out\" | grep -Ei '^(permitrootlogin|passwordauthentication) '; \
         echo @@shadow; stat -c '%a %U:%G' /etc/shadow 2>/dev/null; \
         echo @@apt; if command -v apt-config >/dev/null 2>&1; then echo dump; apt-config dump 2>/dev/null | grep -i '^APT::Periodic::Unattended-Upgrade '; \
         elif [ -d /etc/apt/apt.conf.d ]; then echo files; cat /etc/apt/apt.conf.d/* 2>/dev/null | grep -i 'APT::Periodic::Unattended-Upgrade'; fi; \
         echo @@uu; dpkg-query -W -f='${{Status}}\\n' unattended-upgrades 2>/dev/null; true"
    )
}

/// Splits `@@name` sections.
fn sections(out: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("@@")
            && !name.contains(' ')
        {
            current = Some(name.to_string());
            map.entry(name.to_string()).or_insert_with(String::new);
            continue;
        }
        if let Some(name) = &current
            && let Some(text) = map.get_mut(name)
        {
            text.push_str(line);
            text.push('\n');
        }
    }
    map
}

/// `ID` and `VERSION_CODENAME` from os-release text (`unknown` when absent).
pub fn parse_os_release(text: &str) -> (String, String) {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches(['"', '\'']).to_lowercase())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| UNKNOWN.into())
    };
    (field("ID"), field("VERSION_CODENAME"))
}

/// `stat -c '%a %U:%G'` → (`0640`, `root:shadow`).
fn parse_stat(text: &str) -> (String, String) {
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(mode), Some(owner))
            if !mode.is_empty() && mode.chars().all(|c| ('0'..='7').contains(&c)) =>
        {
            (format!("{mode:0>4}"), owner.to_string())
        }
        _ => (UNKNOWN.into(), UNKNOWN.into()),
    }
}

/// `enabled` / `disabled` / `not_installed` / `unknown` from the apt
/// configuration section and the package's dpkg status.
fn unattended_upgrades(apt: &str, dpkg_status: &str) -> String {
    let mut lines = apt.lines();
    let Some(how) = lines.next().map(str::trim) else {
        // No apt at all: whatever keeps this host patched is not something we can read.
        return UNKNOWN.into();
    };
    if how != "dump" && how != "files" {
        return UNKNOWN.into();
    }
    if !dpkg_status.contains("install ok installed") {
        return "not_installed".into();
    }
    // The last assignment wins, as in apt's own configuration merge.
    let value = lines
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with("//") || l.starts_with('#') {
                return None;
            }
            let start = l.find('"')?;
            let rest = &l[start + 1..];
            Some(rest[..rest.find('"')?].trim().to_string())
        })
        .next_back();
    match value.as_deref() {
        Some(v) if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false") => {
            "enabled".into()
        }
        _ => "disabled".into(),
    }
}

/// The keywords `sshd -T` printed.
fn parse_sshd_t(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(char::is_whitespace)?;
            let k = k.to_lowercase();
            KEYWORDS
                .contains(&k.as_str())
                .then(|| (k, normalise(v.trim())))
        })
        .collect()
}

/// sshd's lower-case spelling; `without-password` is the old name of `prohibit-password`.
fn normalise(value: &str) -> String {
    let v = value.trim_matches('"').to_lowercase();
    if v == "without-password" {
        "prohibit-password".into()
    } else {
        v
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Transport(#[from] super::transport::TransportError),
    #[error("{path}: cannot read")]
    Unreadable { path: String },
    #[error("{path}:{line}: Include nested deeper than {MAX_INCLUDE_DEPTH}")]
    TooDeep { path: String, line: usize },
    #[error(
        "{path}:{line}: Include pattern {pattern:?} has characters this reader does not expand"
    )]
    Pattern {
        path: String,
        line: usize,
        pattern: String,
    },
}

/// The global values of [`KEYWORDS`] set by `path` and what it includes,
/// with sshd's compiled-in defaults for keywords no file sets.
pub async fn read_config(
    transport: &dyn Transport,
    path: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = fetch(transport, path)
        .await?
        .into_iter()
        .next()
        .map(|(_, text)| text)
        .ok_or_else(|| ConfigError::Unreadable { path: path.into() })?;
    let mut values = BTreeMap::new();
    walk(transport, path, &text, 0, &mut values).await?;
    for (k, v) in DEFAULTS {
        values.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    Ok(values)
}

/// Applies one file's directives in order, expanding `Include` in place.
async fn walk(
    transport: &dyn Transport,
    path: &str,
    text: &str,
    depth: usize,
    values: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    // A `Match` block runs to the next `Match` or the end of this file; its
    // directives are conditional, so they never set the global value.
    let mut in_match = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, r)) => (k.to_lowercase(), r.trim().trim_start_matches('=').trim()),
            None => (line.to_lowercase(), ""),
        };
        if keyword == "match" {
            in_match = !rest.eq_ignore_ascii_case("all");
            continue;
        }
        if in_match {
            continue;
        }
        if keyword == "include" {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(ConfigError::TooDeep {
                    path: path.into(),
                    line: n + 1,
                });
            }
            for pattern in rest.split_whitespace() {
                let pattern = pattern.trim_matches('"');
                let pattern = if pattern.starts_with('/') {
                    pattern.to_string()
                } else {
                    format!("/etc/ssh/{pattern}")
                };
                if !pattern
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-*?+@,".contains(c))
                {
                    return Err(ConfigError::Pattern {
                        path: path.into(),
                        line: n + 1,
                        pattern,
                    });
                }
                for (included, body) in fetch(transport, &pattern).await? {
                    Box::pin(walk(transport, &included, &body, depth + 1, values)).await?;
                }
            }
            continue;
        }
        if KEYWORDS.contains(&keyword.as_str()) && !values.contains_key(&keyword) {
            let value = rest.split_whitespace().next().unwrap_or("");
            values.insert(keyword, normalise(value));
        }
    }
    Ok(())
}

/// The files matching a glob (sorted, as sshd expands them), with their text.
/// A pattern matching nothing is no error (sshd ignores it too).
async fn fetch(
    transport: &dyn Transport,
    pattern: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    // The pattern was checked to hold no shell metacharacters but globs.
    let script = format!(
        "for f in {pattern}; do [ -f \"$f\" ] || continue; \
         if [ -r \"$f\" ]; then echo \"@@file $f\"; cat \"$f\"; echo; else echo \"@@unreadable $f\"; fi; done; true"
    );
    let out = transport.run(&script).await?;
    let mut files: Vec<(String, String)> = Vec::new();
    for line in out.stdout.lines() {
        if let Some(path) = line.strip_prefix("@@unreadable ") {
            return Err(ConfigError::Unreadable { path: path.into() });
        }
        if let Some(path) = line.strip_prefix("@@file ") {
            files.push((path.to_string(), String::new()));
        } else if let Some((_, text)) = files.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::connectors::linux::transport::LocalTransport;

    fn local() -> LocalTransport {
        LocalTransport::new("test", Duration::from_secs(20))
    }

    #[test]
    fn os_release_fields() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID_LIKE=x\n";
        assert_eq!(
            parse_os_release(text),
            ("debian".to_string(), "bookworm".to_string())
        );
        assert_eq!(
            parse_os_release("ID=\"rhel\"\n"),
            ("rhel".to_string(), UNKNOWN.to_string())
        );
    }

    #[test]
    fn stat_mode_is_four_octal_digits() {
        assert_eq!(
            parse_stat("640 root:shadow\n"),
            ("0640".into(), "root:shadow".into())
        );
        assert_eq!(parse_stat(""), (UNKNOWN.into(), UNKNOWN.into()));
        assert_eq!(
            parse_stat("rw-r root:root"),
            (UNKNOWN.into(), UNKNOWN.into())
        );
    }

    #[test]
    fn unattended_upgrades_states() {
        let installed = "install ok installed\n";
        let on = "dump\nAPT::Periodic::Unattended-Upgrade \"1\";\n";
        let off = "dump\nAPT::Periodic::Unattended-Upgrade \"1\";\nAPT::Periodic::Unattended-Upgrade \"0\";\n";
        assert_eq!(unattended_upgrades(on, installed), "enabled");
        assert_eq!(unattended_upgrades(off, installed), "disabled");
        assert_eq!(unattended_upgrades("dump\n", installed), "disabled");
        assert_eq!(unattended_upgrades(on, ""), "not_installed");
        assert_eq!(
            unattended_upgrades(on, "deinstall ok config-files"),
            "not_installed"
        );
        assert_eq!(unattended_upgrades("", installed), UNKNOWN);
    }

    #[tokio::test]
    async fn config_files_follow_include_first_match_and_match_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("conf.d/10-root.conf"),
            "# site hardening\nPermitRootLogin no\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("conf.d/20-later.conf"),
            "PermitRootLogin yes\nMatch User backup\n  PasswordAuthentication yes\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sshd_config"),
            format!(
                "Include {d}/conf.d/*.conf\nPermitRootLogin yes\nMatch Address 10.0.0.0/8\n  PasswordAuthentication no\nMatch all\nPasswordAuthentication=No\n"
            ),
        )
        .unwrap();
        let values = read_config(&local(), &format!("{d}/sshd_config"))
            .await
            .unwrap();
        // The included 10-root.conf comes first; the Match-scoped lines never count.
        assert_eq!(values["permitrootlogin"], "no");
        assert_eq!(values["passwordauthentication"], "no");
    }

    #[tokio::test]
    async fn unset_keywords_take_sshds_defaults_and_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sshd_config");
        std::fs::write(&path, "Port 22\nPermitRootLogin without-password\n").unwrap();
        let values = read_config(&local(), &path.display().to_string())
            .await
            .unwrap();
        assert_eq!(values["permitrootlogin"], "prohibit-password");
        assert_eq!(values["passwordauthentication"], "yes");
        let err = read_config(&local(), &format!("{}/nope", dir.path().display()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[tokio::test]
    async fn include_patterns_with_shell_characters_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sshd_config");
        std::fs::write(&path, "Include /tmp/$(touch x)\n").unwrap();
        let err = read_config(&local(), &path.display().to_string())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(":1: Include pattern"), "{err}");
    }

    /// Against this machine's real files, cross-checked with the tools themselves.
    #[tokio::test]
    async fn this_machines_facts_match_its_tools() {
        let h = collect(&local(), SSHD_CONFIG).await;
        let a = &h.attributes;
        for name in ATTRIBUTES {
            assert!(a.contains_key(*name), "{name} missing: {a:?}");
        }
        let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        assert_eq!(
            (a["os.id"].clone(), a["os.version_codename"].clone()),
            parse_os_release(&os)
        );
        let stat = std::process::Command::new("stat")
            .args(["-c", "%a %U:%G", "/etc/shadow"])
            .output()
            .expect("stat runs");
        let (mode, owner) = parse_stat(&String::from_utf8_lossy(&stat.stdout));
        assert_eq!(a["file./etc/shadow.mode"], mode);
        assert_eq!(a["file./etc/shadow.owner"], owner);
        assert!(
            ["enabled", "disabled", "not_installed", UNKNOWN]
                .contains(&a["unattended_upgrades"].as_str()),
            "{a:?}"
        );
        if std::path::Path::new(SSHD_CONFIG).exists() {
            // Whichever way the values were read, the file parse agrees with
            // `sshd -T` on a host without Match-dependent overrides.
            let parsed = read_config(&local(), SSHD_CONFIG).await.unwrap();
            assert_eq!(a["sshd.permit_root_login"], parsed["permitrootlogin"]);
            assert_eq!(
                a["sshd.password_authentication"],
                parsed["passwordauthentication"]
            );
        }
    }
}
