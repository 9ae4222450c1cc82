//! `[security]` in the config file.

use serde::{Deserialize, Serialize};

/// `[security]`: how old the offline vulnerability data may get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Vulnerability data older than this many days is stale: the console
    /// warns instead of letting "no findings" look like "no vulnerabilities".
    pub cve_max_age_days: u32,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            cve_max_age_days: 7,
        }
    }
}

impl SecurityConfig {
    /// The offending key and why, if a value is out of range.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=3650).contains(&self.cve_max_age_days) {
            return Err(("cve_max_age_days", "must be between 1 and 3650 days".into()));
        }
        Ok(())
    }
}
