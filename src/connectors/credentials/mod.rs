//! Credential stores (HashiCorp Vault / OpenBao, AWS Secrets Manager) as
//! connectors: each stored secret and each lease is a fleet resource of kind
//! `credential`, and `rotate_secret` runs through the same snapshot →
//! execute → validate → restore path as every other action.
//!
//! Secret values never leave this module in clear: a rotation reads the
//! current value only to keep a key/value secret's other fields, writes the
//! new one, and reports version numbers. Snapshots record the *version* a
//! rotation replaced, never its value — see [`RecordedVersion`].

mod config;
mod secretsmanager;
mod vault;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use config::{
    Charset, CredentialsConfig, RotationConfig, SecretsManagerConfig, ValuePolicy, VaultConfig,
};
pub use secretsmanager::SecretsManagerStore;
pub use vault::VaultStore;

use super::{ConnectorError, InfraConnector, Result, Scope, TimeWindow};
use crate::clock::SharedClock;
use crate::config::Secret;
use crate::event::StringMap;
use crate::event::{
    Action, ActionOutcome, ConnectorId, Health, HealthStatus, InfraEvent, Provider, Resource,
    ResourceId, Snapshot,
};

/// The resource kind every credential has.
pub const KIND: &str = "credential";
/// The one mutating action a credential takes.
pub const ROTATE: &str = "rotate_secret";
/// How early an expiry makes a credential's health degraded (the security
/// agent raises its finding over the same window).
const WARN_BEFORE: Duration = Duration::days(7);

/// A stored secret or a lease, as its store describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub kind: CredentialKind,
    /// KV path with its mount (`secret/app/db`), secret name, or lease id.
    pub path: String,
    pub created_at: Option<DateTime<Utc>>,
    /// When the current version was written (or the lease issued or renewed).
    pub rotated_at: Option<DateTime<Utc>>,
    /// The store's own expiry (a set expiry date, a version's deletion time, a lease's end).
    pub expires_at: Option<DateTime<Utc>>,
    pub version: Option<String>,
    /// Whether the store itself rotates it on a schedule.
    pub rotation_enabled: Option<bool>,
    pub lease_ttl_secs: Option<i64>,
}

/// What a credential resource stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A stored secret with versions: rotatable.
    Secret,
    /// A dynamic secret's lease (database credentials, certificates): read only.
    Lease,
}

/// What a rotation or restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionChange {
    /// The version current before.
    pub from: String,
    /// The version current after.
    pub to: String,
    pub steps: Vec<String>,
}

/// A secret store: lists credentials, rotates a secret by writing a new
/// generated version, and makes an earlier version current again.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// `vault` or `secretsmanager` (the `store` attribute and the id prefix).
    fn store(&self) -> &'static str;
    /// The infrastructure family for the Fleet pane.
    fn provider(&self) -> Provider;
    /// Every watched secret and lease.
    async fn list(&self) -> Result<Vec<Credential>>;
    /// One credential, read afresh.
    async fn describe(&self, kind: CredentialKind, path: &str) -> Result<Credential>;
    /// The version a rotation would replace.
    async fn current_version(&self, path: &str) -> Result<String>;
    /// Writes a new value generated under `policy` as the current version.
    async fn rotate(&self, path: &str, policy: &ValuePolicy) -> Result<VersionChange>;
    /// Makes `version`'s value current again.
    async fn restore_version(&self, path: &str, version: &str) -> Result<VersionChange>;
    /// When each version of a secret was written (for evidence); none by default.
    async fn history(&self, _path: &str) -> Result<Vec<(DateTime<Utc>, String)>> {
        Ok(Vec::new())
    }
}

/// A fresh random value under `policy`, from the thread's CSPRNG.
pub fn generate(policy: &ValuePolicy) -> Secret {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const SYMBOLS: &[u8] = b"!#%+-.:=@^_~";
    const HEX: &[u8] = b"0123456789abcdef";
    let chars: Vec<u8> = match policy.charset {
        Charset::Alphanumeric => ALNUM.to_vec(),
        Charset::AlphanumericSymbols => [ALNUM, SYMBOLS].concat(),
        Charset::Hex => HEX.to_vec(),
    };
    let mut rng = rand::rng();
    Secret(
        (0..policy.length)
            .map(|_| char::from(chars[rng.random_range(0..chars.len())]))
            .collect(),
    )
}

/// What a snapshot of a credential records.
///
/// Snapshots are written into the event log (`snapshot_taken`), which is
/// replicated to attached consoles and kept for audit, so a snapshot must
/// never hold a secret value. Both stores keep earlier versions (KV v2 keeps
/// `max_versions` of them, Secrets Manager keeps every version that still
/// has a stage or was written recently), so the snapshot records only the
/// version that was current, and a restore reads that version's value from
/// the store itself. A version the store has since destroyed cannot be
/// restored, and the restore says so instead of guessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedVersion {
    pub store: String,
    pub path: String,
    pub version: String,
}

/// A credential store as an infrastructure connector.
pub struct CredentialConnector {
    id: ConnectorId,
    store: Arc<dyn CredentialStore>,
    config: CredentialsConfig,
    clock: SharedClock,
}

impl CredentialConnector {
    /// Wraps a store under `id`; `config` labels its credentials and says what rotations generate.
    pub fn new(
        id: ConnectorId,
        store: Arc<dyn CredentialStore>,
        config: CredentialsConfig,
        clock: SharedClock,
    ) -> Self {
        Self {
            id,
            store,
            config,
            clock,
        }
    }

    /// The resource id of a credential of this store.
    pub fn resource_id(&self, kind: CredentialKind, path: &str) -> ResourceId {
        let segment = match kind {
            CredentialKind::Secret => "secret",
            CredentialKind::Lease => "lease",
        };
        ResourceId::new(format!("{}/{segment}/{path}", self.store.store()))
    }

    fn parse(&self, id: &ResourceId) -> Result<(CredentialKind, String)> {
        let rest = id
            .as_str()
            .strip_prefix(self.store.store())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| ConnectorError::NotFound(id.clone()))?;
        let (kind, path) = if let Some(p) = rest.strip_prefix("secret/") {
            (CredentialKind::Secret, p)
        } else if let Some(p) = rest.strip_prefix("lease/") {
            (CredentialKind::Lease, p)
        } else {
            return Err(ConnectorError::NotFound(id.clone()));
        };
        if path.is_empty() {
            return Err(ConnectorError::NotFound(id.clone()));
        }
        Ok((kind, path.to_string()))
    }

    /// The earliest of the store's expiry and the maximum age.
    fn expiry(&self, c: &Credential) -> Option<DateTime<Utc>> {
        let by_age = match (self.config.max_age_days, c.kind) {
            (Some(days), CredentialKind::Secret) => c
                .rotated_at
                .or(c.created_at)
                .map(|t| t + Duration::days(i64::from(days))),
            _ => None,
        };
        match (c.expires_at, by_age) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn health_of(&self, c: &Credential) -> Health {
        let Some(expires) = self.expiry(c) else {
            return Health::healthy();
        };
        let left = expires - self.clock.now();
        if left <= Duration::zero() {
            Health::new(
                HealthStatus::Unhealthy,
                "CredentialExpired",
                format!("{} expired {}", c.path, expires.to_rfc3339()),
            )
        } else if left <= WARN_BEFORE {
            Health::new(
                HealthStatus::Degraded,
                "CredentialExpiring",
                format!("{} expires {}", c.path, expires.to_rfc3339()),
            )
        } else {
            Health::healthy()
        }
    }

    fn resource(&self, c: &Credential) -> Resource {
        let unknown = || "unknown".to_string();
        let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_else(unknown);
        let mut attributes = StringMap::new();
        attributes.insert("store".into(), self.store.store().to_string());
        attributes.insert("path".into(), c.path.clone());
        attributes.insert("created_at".into(), time(c.created_at));
        attributes.insert("rotated_at".into(), time(c.rotated_at));
        if let Some(t) = self.expiry(c) {
            attributes.insert("expires_at".into(), t.to_rfc3339());
        }
        attributes.insert("version".into(), c.version.clone().unwrap_or_else(unknown));
        attributes.insert(
            "rotation_enabled".into(),
            c.rotation_enabled
                .map(|b| b.to_string())
                .unwrap_or_else(unknown),
        );
        if c.kind == CredentialKind::Lease {
            attributes.insert(
                "lease_ttl_secs".into(),
                c.lease_ttl_secs
                    .map(|s| s.to_string())
                    .unwrap_or_else(unknown),
            );
        }
        let mut labels = StringMap::new();
        labels.insert("store".into(), self.store.store().to_string());
        // Policy tells a rotatable secret from a lease by this label.
        labels.insert(
            "credential_type".into(),
            match c.kind {
                CredentialKind::Secret => "secret",
                CredentialKind::Lease => "lease",
            }
            .into(),
        );
        labels.insert(
            "environment".into(),
            self.config.environment.as_str().to_string(),
        );
        if !self.config.team.is_empty() {
            labels.insert("team".into(), self.config.team.clone());
        }
        Resource {
            id: self.resource_id(c.kind, &c.path),
            name: c.path.clone(),
            kind: KIND.into(),
            provider: self.store.provider(),
            connector: self.id.clone(),
            environment: self.config.environment,
            team: self.config.team.clone(),
            labels,
            attributes,
            health: self.health_of(c),
            created_at: c.created_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        }
    }

    fn secret_path(&self, id: &ResourceId, action: &str) -> Result<String> {
        match self.parse(id)? {
            (CredentialKind::Secret, path) => Ok(path),
            (CredentialKind::Lease, _) => Err(ConnectorError::Unsupported {
                action: action.into(),
                resource: id.clone(),
            }),
        }
    }
}

#[async_trait]
impl InfraConnector for CredentialConnector {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn provider(&self) -> Provider {
        self.store.provider()
    }

    async fn list_resources(&self, scope: &Scope) -> Result<Vec<Resource>> {
        if !scope.kinds.is_empty() && !scope.kinds.iter().any(|k| k == KIND) {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .list()
            .await?
            .iter()
            .map(|c| self.resource(c))
            .collect())
    }

    async fn health(&self, id: &ResourceId) -> Result<Health> {
        let (kind, path) = self.parse(id)?;
        Ok(self.health_of(&self.store.describe(kind, &path).await?))
    }

    async fn events(&self, id: &ResourceId, window: TimeWindow) -> Result<Vec<InfraEvent>> {
        let (CredentialKind::Secret, path) = self.parse(id)? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<InfraEvent> = self
            .store
            .history(&path)
            .await?
            .into_iter()
            .filter(|(at, _)| *at >= window.from && *at <= window.to)
            .map(|(at, what)| InfraEvent {
                at,
                resource: id.clone(),
                kind: "change".into(),
                reason: "SecretVersionWritten".into(),
                message: what,
            })
            .collect();
        out.sort_by_key(|e| e.at);
        Ok(out)
    }

    async fn metrics(&self, id: &ResourceId) -> Result<BTreeMap<String, f64>> {
        let (kind, path) = self.parse(id)?;
        let c = self.store.describe(kind, &path).await?;
        let now = self.clock.now();
        let mut m = BTreeMap::new();
        if let Some(t) = self.expiry(&c) {
            m.insert("days_left".into(), (t - now).num_days() as f64);
        }
        if let Some(t) = c.rotated_at {
            m.insert("age_days".into(), (now - t).num_days() as f64);
        }
        if let Some(ttl) = c.lease_ttl_secs {
            m.insert("lease_ttl_secs".into(), ttl as f64);
        }
        Ok(m)
    }

    async fn snapshot(&self, id: &ResourceId) -> Result<Snapshot> {
        let path = self.secret_path(id, "snapshot")?;
        let version = self.store.current_version(&path).await?;
        let recorded = RecordedVersion {
            store: self.store.store().into(),
            path: path.clone(),
            version: version.clone(),
        };
        let data = serde_json::to_value(&recorded).map_err(|e| {
            ConnectorError::Backend(format!("snapshot of {id} does not serialise: {e}"))
        })?;
        Ok(Snapshot {
            resource: id.clone(),
            connector: self.id.clone(),
            taken_at: self.clock.now(),
            data,
            summary: format!("{path}: version {version} is current (the value stays in the store)"),
        })
    }

    async fn preview(&self, action: &Action) -> Result<crate::event::Preview> {
        check_rotation(action)?;
        let path = self.secret_path(&action.target, &action.name)?;
        let version = self.store.current_version(&path).await?;
        let policy = self.config.rotation.policy_for(&path);
        Ok(rotation_preview(
            action,
            self.store.store(),
            &path,
            &version,
            &policy,
        ))
    }

    async fn execute(&self, action: &Action) -> Result<ActionOutcome> {
        check_rotation(action)?;
        let path = self.secret_path(&action.target, &action.name)?;
        let policy = self.config.rotation.policy_for(&path);
        let change = self.store.rotate(&path, &policy).await?;
        tracing::info!(connector = %self.id, path = %path, from = %change.from, to = %change.to, "secret rotated");
        Ok(ActionOutcome {
            success: true,
            message: format!("rotated {path}: version {} → {}", change.from, change.to),
            steps: change.steps,
        })
    }

    async fn restore(&self, snapshot: &Snapshot) -> Result<ActionOutcome> {
        let id = &snapshot.resource;
        let recorded: RecordedVersion = super::recorded_state(snapshot, &self.id)?;
        let path = self.secret_path(id, "restore")?;
        if recorded.path != path || recorded.store != self.store.store() {
            return Err(ConnectorError::BadSnapshot(
                id.clone(),
                "the recorded version is of another secret".into(),
            ));
        }
        let change = self.store.restore_version(&path, &recorded.version).await?;
        tracing::info!(connector = %self.id, path = %path, version = %recorded.version, "secret restored");
        Ok(ActionOutcome {
            success: true,
            message: format!(
                "restored {path}: version {}'s value is current again (now version {})",
                recorded.version, change.to
            ),
            steps: change.steps,
        })
    }
}

/// The credential connectors built from `[credentials]`, and the ones that could not be.
pub struct Setup {
    pub connectors: Vec<Arc<dyn InfraConnector>>,
    /// Connector → one line saying how to add it.
    pub absent: Vec<(ConnectorId, String)>,
}

/// The id of the Vault connector.
pub fn vault_id() -> ConnectorId {
    ConnectorId::new("credentials:vault")
}

/// The id of the Secrets Manager connector.
pub fn secretsmanager_id() -> ConnectorId {
    ConnectorId::new("credentials:secretsmanager")
}

/// Builds the configured stores. Nothing here fails: a store that cannot be
/// used (no section, no token, no AWS credentials) is reported as absent.
pub async fn connect(config: Option<&CredentialsConfig>, clock: SharedClock) -> Setup {
    let mut setup = Setup {
        connectors: Vec::new(),
        absent: Vec::new(),
    };
    let Some(config) = config else {
        setup.absent.push((
            ConnectorId::new("credentials"),
            "credential stores not configured: add [credentials.vault] (address; token or \
             VAULT_TOKEN) or [credentials.secretsmanager] to the config file"
                .into(),
        ));
        return setup;
    };
    if let Some(vault) = &config.vault {
        match VaultStore::connect(vault, &config.expiry_key) {
            Ok(store) => setup.connectors.push(Arc::new(CredentialConnector::new(
                vault_id(),
                Arc::new(store),
                config.clone(),
                clock.clone(),
            ))),
            Err(line) => setup.absent.push((vault_id(), line)),
        }
    }
    if let Some(sm) = &config.secretsmanager {
        match SecretsManagerStore::connect(sm, &config.expiry_key).await {
            Ok(store) => setup.connectors.push(Arc::new(CredentialConnector::new(
                secretsmanager_id(),
                Arc::new(store),
                config.clone(),
                clock.clone(),
            ))),
            Err(line) => setup.absent.push((secretsmanager_id(), line)),
        }
    }
    setup
}

/// Parses an RFC 3339 time; empty or malformed text is no time.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Refuses any action but a rotation, and any parameter a rotation would
/// ignore (the new value comes from the configured value policy only).
fn check_rotation(action: &Action) -> Result<()> {
    if action.name != ROTATE {
        return Err(ConnectorError::Unsupported {
            action: action.name.clone(),
            resource: action.target.clone(),
        });
    }
    super::check_params(action, &[])
}

/// What rotating `path` would change: the current version gives way to a new
/// one generated under `policy`. No value is read or shown.
fn rotation_preview(
    action: &Action,
    store: &str,
    path: &str,
    current: &str,
    policy: &ValuePolicy,
) -> crate::event::Preview {
    let charset = match policy.charset {
        Charset::Alphanumeric => "letters and digits",
        Charset::AlphanumericSymbols => "letters, digits and symbols",
        Charset::Hex => "hex digits",
    };
    let mut p = super::preview_of(
        action,
        format!("{store} secret {path}"),
        vec![crate::event::Change::new(
            "current version",
            current,
            "a new version",
        )],
    );
    p.notes.push(format!(
        "field `{}` gets a new value of {} {charset}; other fields are kept",
        policy.key, policy.length
    ));
    p.notes.push(format!(
        "version {current} stays in the store; a restore makes it current again"
    ));
    p.notes
        .push("every client reading the secret gets the new value on its next read".into());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_preview_names_the_version_it_replaces_and_takes_no_parameters() {
        let policy = ValuePolicy {
            length: 32,
            charset: Charset::Alphanumeric,
            key: "password".into(),
        };
        let target = ResourceId::new("vault/secret/payments/db");
        let rotate = Action::new(ROTATE, target.clone()).with("reason", "expires in 3 days");
        check_rotation(&rotate).unwrap();
        let p = rotation_preview(&rotate, "vault", "payments/db", "7", &policy);
        assert_eq!(p.object, "vault secret payments/db");
        assert_eq!(p.lines(), ["current version: 7 → a new version"]);
        assert!(p.notes.contains(&"reason: expires in 3 days".to_string()));
        assert!(p.notes.iter().any(|n| n.contains("32 letters and digits")));
        // A value or a length the approver might believe is used is refused.
        for param in ["value", "length"] {
            let err = check_rotation(&Action::new(ROTATE, target.clone()).with(param, "x"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("`{param}`")) && err.contains("ignored"),
                "{err}"
            );
        }
        assert!(matches!(
            check_rotation(&Action::new("rotate_credential", target)),
            Err(ConnectorError::Unsupported { .. })
        ));
    }

    #[test]
    fn generated_values_follow_the_policy_and_differ() {
        let policy = ValuePolicy {
            length: 40,
            charset: Charset::Hex,
            key: "password".into(),
        };
        let a = generate(&policy);
        let b = generate(&policy);
        assert_eq!(a.0.len(), 40);
        assert!(a.0.chars().all(|c| c.is_ascii_hexdigit()), "{}", a.0);
        assert_ne!(a, b);
        let sym = generate(&ValuePolicy {
            length: 4096,
            charset: Charset::AlphanumericSymbols,
            key: "k".into(),
        });
        assert!(sym.0.chars().any(|c| "!#%+-.:=@^_~".contains(c)));
        assert!(!sym.0.contains(['"', '\'', '/', ' ', '\\']));
    }
}
