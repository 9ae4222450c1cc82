//! Installed packages: the dpkg status database (Debian, Ubuntu) and the rpm
//! database through `rpm -qa` (RHEL, Fedora, SUSE). Versions are kept exactly
//! as the package manager writes them (epoch included) because the security
//! agent compares them with Debian/rpm version semantics.

use std::collections::BTreeMap;

/// Where dpkg keeps its status database.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// The rpm query that prints one `name<TAB>epoch:version-release` per package.
pub const RPM_QUERY: &str = r"rpm -qa --queryformat '%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\n'";

/// A malformed status database, naming the line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{source_name}: line {line}: {reason}")]
pub struct PackageError {
    pub source_name: String,
    pub line: usize,
    pub reason: String,
}

/// Installed packages (`name` → version) from dpkg status text. Only packages
/// whose status is `install ok installed` count; half-installed, config-files
/// (removed) and not-installed entries are skipped. Multi-arch packages
/// installed for several architectures keep the first version seen.
pub fn parse_dpkg_status(
    text: &str,
    source_name: &str,
) -> Result<BTreeMap<String, String>, PackageError> {
    parse_dpkg_inventory(text, source_name).map(|i| i.versions)
}

/// Installed binary packages and, where dpkg names one, their source package.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Binary package → version.
    pub versions: BTreeMap<String, String>,
    /// Binary package → its `Source:` field as dpkg writes it (`openssl`, or
    /// `openssl (3.0.11-1~deb12u2)` when the source version differs), for
    /// packages whose source is named (advisories are per source package).
    pub sources: BTreeMap<String, String>,
}

/// Like [`parse_dpkg_status`], keeping each package's `Source:` field too.
pub fn parse_dpkg_inventory(text: &str, source_name: &str) -> Result<Inventory, PackageError> {
    let mut out = Inventory::default();
    let mut package: Option<&str> = None;
    let mut version: Option<&str> = None;
    let mut source: Option<&str> = None;
    let mut installed = false;
    let mut stanza_start = 1;
    let mut finish = |package: Option<&str>,
                      version: Option<&str>,
                      source: Option<&str>,
                      installed: bool,
                      start: usize|
     -> Result<(), PackageError> {
        match (package, version, installed) {
            (Some(p), Some(v), true) => {
                if !out.versions.contains_key(p) {
                    out.versions.insert(p.to_string(), v.to_string());
                    if let Some(s) = source {
                        out.sources.insert(p.to_string(), s.to_string());
                    }
                }
                Ok(())
            }
            (None, _, _) if version.is_some() || installed => Err(PackageError {
                source_name: source_name.to_string(),
                line: start,
                reason: "stanza has no Package field".into(),
            }),
            (Some(p), None, true) => Err(PackageError {
                source_name: source_name.to_string(),
                line: start,
                reason: format!("installed package `{p}` has no Version field"),
            }),
            _ => Ok(()),
        }
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            finish(package, version, source, installed, stanza_start)?;
            package = None;
            version = None;
            source = None;
            installed = false;
            stanza_start = n + 1;
            continue;
        }
        // Continuation lines (descriptions, conffiles) start with white space.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(PackageError {
                source_name: source_name.to_string(),
                line: n,
                reason: format!("expected `Field: value`, found `{}`", truncate(line)),
            });
        };
        let value = value.trim();
        match key {
            "Package" => package = Some(value),
            "Version" => version = Some(value),
            "Source" => source = Some(value),
            "Status" => installed = value.split_whitespace().last() == Some("installed"),
            _ => {}
        }
    }
    finish(package, version, source, installed, stanza_start)?;
    Ok(out)
}

/// Installed packages from the output of [`RPM_QUERY`]. An epoch of 0 is
/// dropped, as rpm itself prints versions.
pub fn parse_rpm_query(text: &str) -> Result<BTreeMap<String, String>, PackageError> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, version)) = line.split_once('\t') else {
            return Err(PackageError {
                source_name: "rpm -qa".into(),
                line: i + 1,
                reason: format!("expected `name<TAB>version`, found `{}`", truncate(line)),
            });
        };
        let version = version.strip_prefix("0:").unwrap_or(version);
        out.entry(name.to_string())
            .or_insert_with(|| version.to_string());
    }
    Ok(out)
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machines_real_status_database_parses() {
        let text = std::fs::read_to_string(DPKG_STATUS)
            .expect("this test reads the machine's real dpkg status database");
        let packages = parse_dpkg_status(&text, DPKG_STATUS).unwrap();
        // Every Debian system has these essential packages.
        for essential in ["dpkg", "coreutils", "base-files", "libc6"] {
            assert!(
                packages.contains_key(essential),
                "{essential} missing from {} packages",
                packages.len()
            );
        }
        // Cross-check the count against dpkg-query itself.
        let listed = std::process::Command::new("dpkg-query")
            .args(["-W", "-f", "${db:Status-Abbrev}|${Package}|${Version}\n"])
            .output()
            .expect("dpkg-query runs");
        let text = String::from_utf8_lossy(&listed.stdout);
        let mut expected = BTreeMap::new();
        for line in text.lines() {
            let mut parts = line.split('|');
            let (Some(status), Some(name), Some(version)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if status.starts_with("ii") {
                expected
                    .entry(name.to_string())
                    .or_insert_with(|| version.to_string());
            }
        }
        assert_eq!(packages, expected);
    }

    #[test]
    fn source_packages_are_kept_as_dpkg_writes_them() {
        let text = "Package: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: 3.0.15-1~deb12u1\n\n\
                    Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\nSource: bash (5.2.15-2)\n\n\
                    Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n";
        let i = parse_dpkg_inventory(text, "status").unwrap();
        assert_eq!(i.versions.len(), 3);
        assert_eq!(i.sources["libssl3"], "openssl");
        assert_eq!(i.sources["bash"], "bash (5.2.15-2)");
        assert!(!i.sources.contains_key("zlib1g"));
    }

    #[test]
    fn removed_and_half_installed_packages_are_skipped() {
        let text = "Package: a\nStatus: install ok installed\nVersion: 1:2.0-1\nDescription: x\n more\n\n\
                    Package: b\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
                    Package: c\nStatus: install ok half-installed\nVersion: 3\n";
        let p = parse_dpkg_status(text, "status").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p["a"], "1:2.0-1");
    }

    #[test]
    fn malformed_database_names_the_line() {
        let e = parse_dpkg_status(
            "Package: a\nStatus: install ok installed\nVersion: 1\n\nthis is not a field\n",
            "status",
        )
        .unwrap_err();
        assert_eq!(e.line, 5);
        let e =
            parse_dpkg_status("Package: a\nStatus: install ok installed\n", "status").unwrap_err();
        assert!(e.to_string().contains("no Version"), "{e}");
    }

    #[test]
    fn rpm_query_output_parses() {
        let p = parse_rpm_query("openssl\t1:3.0.7-27.el9\nbash\t0:5.1.8-9.el9\n").unwrap();
        assert_eq!(p["openssl"], "1:3.0.7-27.el9");
        assert_eq!(p["bash"], "5.1.8-9.el9");
        assert!(parse_rpm_query("garbage\n").is_err());
    }
}
