//! `[store]`: the event log's cache bound and where its checkpoints go.

use serde::{Deserialize, Serialize};

/// `[store]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Bound on the storage engine's page cache, in MiB.
    pub cache_mb: u64,
    /// `[store.checkpoints]`: signed checkpoints of the chain's head sent to a
    /// webhook channel, so a witness off this machine holds a later head.
    pub checkpoints: Option<CheckpointConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_mb: super::DEFAULT_CACHE_BYTES / (1024 * 1024),
            checkpoints: None,
        }
    }
}

/// `[store.checkpoints]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// A `type = "webhook"` channel of `[notify.channels]`; its secret signs the checkpoint.
    pub channel: String,
    /// A checkpoint every this many events (and one at shutdown).
    #[serde(default = "default_every")]
    pub every: u64,
}

fn default_every() -> u64 {
    1_000
}

impl StoreConfig {
    /// The options a runtime opens its log with.
    pub fn open_options(&self) -> super::OpenOptions {
        super::OpenOptions {
            cache_bytes: self.cache_mb.saturating_mul(1024 * 1024),
            ..super::OpenOptions::default()
        }
    }

    /// Checks the values; `Err((key, why))` names the key under `[store]`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(4..=65_536).contains(&self.cache_mb) {
            return Err(("cache_mb", "must be between 4 and 65536 (MiB)".into()));
        }
        if let Some(c) = &self.checkpoints
            && !(1..=10_000_000).contains(&c.every)
        {
            return Err(("checkpoints.every", "must be between 1 and 10000000".into()));
        }
        Ok(())
    }
}
