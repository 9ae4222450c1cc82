//! The `[credentials]` configuration section: which secret stores are
//! watched, how their credentials are labelled for policy, and what a
//! rotation generates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// `[credentials]`: absent = no credential connectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialsConfig {
    /// The environment every watched credential belongs to (policy reads it);
    /// production unless told otherwise, the strictest reading.
    pub environment: crate::event::Environment,
    /// The team that owns the credentials (for scoping and notifications).
    pub team: String,
    /// The custom-metadata key (Vault) or tag (Secrets Manager) holding an
    /// RFC 3339 expiry date set by whoever issued the credential.
    pub expiry_key: String,
    /// A credential not rotated for this many days counts as expired; unset =
    /// only explicit expiry dates (and Vault version deletion times) count.
    pub max_age_days: Option<u32>,
    /// `[credentials.vault]`: HashiCorp Vault or OpenBao over its HTTP API.
    pub vault: Option<VaultConfig>,
    /// `[credentials.secretsmanager]`: AWS Secrets Manager.
    pub secretsmanager: Option<SecretsManagerConfig>,
    /// `[credentials.rotation]`: what a rotation writes.
    pub rotation: RotationConfig,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        Self {
            environment: crate::event::Environment::Production,
            team: String::new(),
            expiry_key: "expires_at".into(),
            max_age_days: None,
            vault: None,
            secretsmanager: None,
            rotation: RotationConfig::default(),
        }
    }
}

/// `[credentials.vault]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// `http(s)://host:port` of the server.
    pub address: String,
    /// The token; unset = `VAULT_TOKEN`, then `BAO_TOKEN`.
    pub token: Option<Secret>,
    /// KV v2 mounts to watch (`secret`); empty = every KV v2 mount `sys/mounts` lists.
    pub mounts: Vec<String>,
    /// Lease prefixes whose leases become credentials (`database/creds/`).
    pub lease_prefixes: Vec<String>,
    /// The most secrets listed per mount (a guard against huge trees).
    pub max_secrets: usize,
    /// Seconds one HTTP request may take.
    pub timeout_secs: u64,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:8200".into(),
            token: None,
            mounts: Vec::new(),
            lease_prefixes: Vec::new(),
            max_secrets: 5_000,
            timeout_secs: 15,
        }
    }
}

/// `[credentials.secretsmanager]`: one profile in one region, credentials
/// from the same AWS chain the `[aws]` connectors use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsManagerConfig {
    /// A profile from `~/.aws/config`; unset = the default chain.
    pub profile: Option<String>,
    /// The region; unset = the profile's own.
    pub region: Option<String>,
    /// Another endpoint (an emulator, a private gateway); unset =
    /// `AWS_ENDPOINT_URL` or AWS's own.
    pub endpoint_url: Option<String>,
}

/// `[credentials.rotation]`: the generated value (`length`, `charset`,
/// `key`), with overrides per path prefix in `[credentials.rotation.paths."secret/payments/"]`
/// (every secret under it; the longest matching prefix wins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    pub length: usize,
    pub charset: Charset,
    pub key: String,
    pub paths: BTreeMap<String, ValuePolicy>,
}

impl Default for RotationConfig {
    fn default() -> Self {
        let d = ValuePolicy::default();
        Self {
            length: d.length,
            charset: d.charset,
            key: d.key,
            paths: BTreeMap::new(),
        }
    }
}

impl RotationConfig {
    /// The value policy for a credential path: the longest matching prefix's, else the default.
    pub fn policy_for(&self, path: &str) -> ValuePolicy {
        self.paths
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| self.default_policy())
    }

    fn default_policy(&self) -> ValuePolicy {
        ValuePolicy {
            length: self.length,
            charset: self.charset,
            key: self.key.clone(),
        }
    }
}

/// How a rotated value is generated, and where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValuePolicy {
    /// Characters in the generated value.
    pub length: usize,
    pub charset: Charset,
    /// The field that gets the new value in a key/value secret (a Vault KV
    /// secret, or a Secrets Manager secret whose value is a JSON object);
    /// other fields are kept. A plain-text secret is replaced whole.
    pub key: String,
}

impl Default for ValuePolicy {
    fn default() -> Self {
        Self {
            length: 32,
            charset: Charset::Alphanumeric,
            key: "password".into(),
        }
    }
}

/// The characters a generated value is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Charset {
    /// `A-Z a-z 0-9`: safe in URLs, shells and connection strings.
    Alphanumeric,
    /// Alphanumeric plus `!#%+-.:=@^_~` (no quotes, slashes or spaces).
    AlphanumericSymbols,
    /// `0-9 a-f`.
    Hex,
}

impl CredentialsConfig {
    /// Checks values serde cannot: returns the offending key (relative to
    /// `[credentials]`) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, why: &str| Err((key.to_string(), why.to_string()));
        if self.expiry_key.trim().is_empty() {
            return bad("expiry_key", "must not be empty");
        }
        if let Some(days) = self.max_age_days
            && !(1..=3650).contains(&days)
        {
            return bad("max_age_days", "must be between 1 and 3650");
        }
        if let Some(v) = &self.vault {
            if !(v.address.starts_with("http://") || v.address.starts_with("https://")) {
                return bad(
                    "vault.address",
                    &format!("`{}` is not an http(s) URL", v.address),
                );
            }
            if !(1..=300).contains(&v.timeout_secs) {
                return bad("vault.timeout_secs", "must be between 1 and 300");
            }
            if !(1..=1_000_000).contains(&v.max_secrets) {
                return bad("vault.max_secrets", "must be between 1 and 1000000");
            }
            if let Some(m) = v.mounts.iter().find(|m| !valid_path(m)) {
                return bad("vault.mounts", &format!("`{m}` is not a mount path"));
            }
            if let Some(p) = v.lease_prefixes.iter().find(|p| !valid_path(p)) {
                return bad(
                    "vault.lease_prefixes",
                    &format!("`{p}` is not a lease prefix"),
                );
            }
        }
        if let Some(sm) = &self.secretsmanager
            && let Some(url) = &sm.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(
                "secretsmanager.endpoint_url",
                &format!("`{url}` is not an http(s) URL"),
            );
        }
        self.rotation
            .default_policy()
            .validate()
            .map_err(|(k, why)| (format!("rotation.{k}"), why))?;
        for (prefix, p) in &self.rotation.paths {
            p.validate()
                .map_err(|(k, why)| (format!("rotation.paths.{prefix}.{k}"), why))?;
        }
        Ok(())
    }
}

impl ValuePolicy {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(16..=4096).contains(&self.length) {
            return Err(("length", "must be between 16 and 4096".into()));
        }
        if self.key.trim().is_empty() {
            return Err(("key", "must not be empty".into()));
        }
        Ok(())
    }
}

/// Mount and lease paths: no spaces, no `..`, no query characters.
fn valid_path(s: &str) -> bool {
    !s.trim_matches('/').is_empty()
        && !s.split('/').any(|seg| seg == "..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(CredentialsConfig::default().validate(), Ok(()));
    }

    #[test]
    fn longest_prefix_wins() {
        let mut c = RotationConfig::default();
        c.paths.insert(
            "secret/".into(),
            ValuePolicy {
                length: 40,
                ..Default::default()
            },
        );
        c.paths.insert(
            "secret/payments/".into(),
            ValuePolicy {
                length: 64,
                ..Default::default()
            },
        );
        assert_eq!(c.policy_for("secret/payments/db").length, 64);
        assert_eq!(c.policy_for("secret/web").length, 40);
        assert_eq!(c.policy_for("other/x").length, 32);
    }

    #[test]
    fn short_values_and_bad_mounts_are_rejected() {
        let mut c = CredentialsConfig::default();
        c.rotation.paths.insert(
            "secret/x".into(),
            ValuePolicy {
                length: 8,
                ..Default::default()
            },
        );
        assert_eq!(
            c.validate().unwrap_err().0,
            "rotation.paths.secret/x.length"
        );
        let c = CredentialsConfig {
            vault: Some(VaultConfig {
                mounts: vec!["../sys".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "vault.mounts");
    }
}
