//! `[cluster]` in the config: where the NATS servers are, how to log in, the
//! site's name and the leadership lease's length. Secrets are read from files
//! named here, never written in the config and never shown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ClusterError;

/// `[cluster]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// NATS server URLs (`nats://host:port` or `tls://host:port`).
    pub servers: Vec<String>,
    /// A NATS credentials file (JWT and NKey seed), as `nsc` writes it.
    pub credentials_file: Option<PathBuf>,
    /// A file whose first line is the NATS token (mode 600).
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) the servers' TLS certificates must chain to;
    /// setting it requires TLS.
    pub ca: Option<PathBuf>,
    /// The site this node serves: names the stream and the lease bucket.
    pub site: String,
    /// This node's name in the lease (default: host name and process id).
    pub node: Option<String>,
    /// How long a leader's lease lasts without renewal, in milliseconds.
    pub lease_ttl_ms: u64,
    /// Copies JetStream keeps of the stream and the lease (3 in a 3-node
    /// cluster; at most the number of servers).
    pub replicas: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            credentials_file: None,
            token_file: None,
            ca: None,
            site: "default".into(),
            node: None,
            lease_ttl_ms: 5_000,
            replicas: 3,
        }
    }
}

/// Shortest lease accepted: a renewal every third of it must still fit in
/// a round trip to a busy cluster.
const MIN_LEASE: Duration = Duration::from_millis(500);

impl ClusterConfig {
    /// The lease's length.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// Checks what the file alone can tell; errors name the `[cluster]` key.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |key: &str, why: String| ClusterError::Config(format!("[cluster] {key}: {why}"));
        if self.servers.is_empty() {
            return Err(bad("servers", "at least one nats:// URL is needed".into()));
        }
        if !valid_name(&self.site) {
            return Err(bad(
                "site",
                format!(
                    "{:?} must be 1–64 letters, digits, '-' or '_' (it names a JetStream stream)",
                    self.site
                ),
            ));
        }
        if let Some(node) = &self.node
            && !valid_name(node)
        {
            return Err(bad(
                "node",
                format!("{node:?} must be 1–64 letters, digits, '-' or '_'"),
            ));
        }
        if self.lease_ttl() < MIN_LEASE {
            return Err(bad(
                "lease_ttl_ms",
                format!(
                    "{} is below the minimum of {} ms",
                    self.lease_ttl_ms,
                    MIN_LEASE.as_millis()
                ),
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(bad(
                "replicas",
                format!("{} is not between 1 and 5", self.replicas),
            ));
        }
        if self.credentials_file.is_some() && self.token_file.is_some() {
            return Err(bad(
                "token_file",
                "give either credentials_file or token_file, not both".into(),
            ));
        }
        Ok(())
    }

    /// The JetStream stream holding this site's events.
    pub fn stream_name(&self) -> String {
        format!("SHIELDOPS_{}", self.site)
    }

    /// The subject the events are published on.
    pub fn subject(&self) -> String {
        format!("shieldops.{}.events", self.site)
    }

    /// The key-value bucket holding this site's leadership lease.
    pub fn lease_bucket(&self) -> String {
        format!("shieldops_lease_{}", self.site)
    }
}

/// A name NATS accepts in stream, bucket and subject names alike.
fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The token in `path` (first line, trimmed); refused if group or others may
/// read the file. The token itself never appears in an error.
pub(super) fn read_token_file(path: &Path) -> Result<String, ClusterError> {
    crate::remote::auth::read_token_file(path)
        .map_err(|why| ClusterError::Config(format!("[cluster] token_file: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> ClusterConfig {
        ClusterConfig {
            servers: vec!["nats://127.0.0.1:4222".into()],
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn names_derive_from_the_site() {
        let mut c = good();
        c.site = "eu-west_1".into();
        c.validate().unwrap();
        assert_eq!(c.stream_name(), "SHIELDOPS_eu-west_1");
        assert_eq!(c.subject(), "shieldops.eu-west_1.events");
        assert_eq!(c.lease_bucket(), "shieldops_lease_eu-west_1");
    }

    #[test]
    fn a_site_that_would_change_the_subject_is_refused() {
        // A '.' or '*' in the site would publish into, or read from, another
        // site's subject; '>' would match them all.
        for site in ["a.b", "a*", ">", "", "x y", &"s".repeat(65)] {
            let mut c = good();
            c.site = site.into();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("[cluster] site"), "{site:?}: {err}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = good();
        c.servers.clear();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("[cluster] servers")
        );
        let mut c = good();
        c.lease_ttl_ms = 100;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("lease_ttl_ms")
        );
        let mut c = good();
        c.replicas = 0;
        assert!(c.validate().unwrap_err().to_string().contains("replicas"));
        let mut c = good();
        c.token_file = Some("/t".into());
        c.credentials_file = Some("/c".into());
        assert!(c.validate().unwrap_err().to_string().contains("not both"));
    }

    #[test]
    fn a_token_file_others_can_read_is_refused_without_showing_the_token() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\nignored\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_token_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token_file(&path).unwrap(), "s3cret-token");
        std::fs::write(&path, "\n").unwrap();
        assert!(
            read_token_file(&path)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }
}
