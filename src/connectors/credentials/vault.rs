//! HashiCorp Vault / OpenBao over the plain HTTP API: KV v2 metadata
//! (created and updated times, versions, deletion times), rotation by a
//! check-and-set write of a new version, restore by writing an earlier
//! version's data back as a new version (what `vault kv rollback` does), and
//! leases with their TTLs from `sys/leases/lookup`.
//!
//! The token is sent in the `X-Vault-Token` header only; it is never logged
//! (it is held as a [`Secret`], whose `Debug` masks it).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{
    Credential, CredentialKind, CredentialStore, ValuePolicy, VaultConfig, VersionChange, generate,
    parse_time,
};
use crate::config::Secret;
use crate::connectors::{ConnectorError, Result};
use crate::event::Provider;

/// One Vault or OpenBao server.
pub struct VaultStore {
    http: reqwest::Client,
    base: String,
    token: Secret,
    mounts: Vec<String>,
    lease_prefixes: Vec<String>,
    max_secrets: usize,
    expiry_key: String,
}

impl std::fmt::Debug for VaultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultStore")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl VaultStore {
    /// A store for `config`; the token comes from the config, else
    /// `VAULT_TOKEN`, else `BAO_TOKEN`. Without one: the line saying how to add it.
    pub fn connect(config: &VaultConfig, expiry_key: &str) -> std::result::Result<Self, String> {
        let token = config
            .token
            .clone()
            .filter(|t| !t.0.is_empty())
            .or_else(|| env_token("VAULT_TOKEN"))
            .or_else(|| env_token("BAO_TOKEN"))
            .ok_or_else(|| {
                format!(
                    "no Vault token for {}: set `token` in [credentials.vault] or VAULT_TOKEN / BAO_TOKEN",
                    config.address
                )
            })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for Vault: {e}"))?;
        Ok(Self {
            http,
            base: config.address.trim_end_matches('/').to_string(),
            token,
            mounts: config
                .mounts
                .iter()
                .map(|m| m.trim_matches('/').to_string())
                .collect(),
            lease_prefixes: config
                .lease_prefixes
                .iter()
                .map(|p| p.trim_start_matches('/').to_string())
                .collect(),
            max_secrets: config.max_secrets,
            expiry_key: expiry_key.to_string(),
        })
    }

    /// One API call. `Ok(None)` = 404 (an empty LIST, a missing path).
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Option<Value>> {
        let url = format!("{}/v1/{}", self.base, path);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Token", &self.token.0);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ConnectorError::Backend(format!("vault {method} {path}: {e}")))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == StatusCode::NO_CONTENT {
            return Ok(Some(Value::Null));
        }
        let text = resp
            .text()
            .await
            .map_err(|e| ConnectorError::Backend(format!("vault {method} {path}: {e}")))?;
        if !status.is_success() {
            // Vault's errors name the problem, never the data sent.
            let why = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("errors")?.as_array().map(|e| {
                        e.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                })
                .unwrap_or_default();
            return Err(ConnectorError::Backend(format!(
                "vault {method} {path}: HTTP {}: {}",
                status.as_u16(),
                if why.is_empty() { "no detail" } else { &why }
            )));
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ConnectorError::Backend(format!("vault {method} {path}: not JSON: {e}")))
    }

    /// `data` of a successful answer.
    async fn read(&self, path: &str) -> Result<Option<Value>> {
        Ok(self
            .call(Method::GET, path, None)
            .await?
            .and_then(|v| v.get("data").cloned()))
    }

    async fn list_keys(&self, path: &str) -> Result<Vec<String>> {
        let method =
            Method::from_bytes(b"LIST").map_err(|e| ConnectorError::Backend(e.to_string()))?;
        let Some(v) = self.call(method, path, None).await? else {
            return Ok(Vec::new());
        };
        Ok(v.pointer("/data/keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The KV v2 mounts to watch: the configured ones, else every KV v2 mount.
    async fn kv_mounts(&self) -> Result<Vec<String>> {
        if !self.mounts.is_empty() {
            return Ok(self.mounts.clone());
        }
        let mounts = self
            .read("sys/mounts")
            .await?
            .ok_or_else(|| ConnectorError::Backend("vault sys/mounts: not found".into()))?;
        let Some(mounts) = mounts.as_object() else {
            return Err(ConnectorError::Backend(
                "vault sys/mounts: not an object".into(),
            ));
        };
        Ok(mounts
            .iter()
            .filter(|(_, m)| {
                m.get("type").and_then(Value::as_str) == Some("kv")
                    && m.pointer("/options/version").and_then(Value::as_str) == Some("2")
            })
            .map(|(name, _)| name.trim_matches('/').to_string())
            .collect())
    }

    /// Splits `mount/rest` by the longest watched mount.
    async fn split(&self, path: &str) -> Result<(String, String)> {
        let mounts = self.kv_mounts().await?;
        mounts
            .iter()
            .filter(|m| {
                path.strip_prefix(m.as_str())
                    .is_some_and(|r| r.starts_with('/') && r.len() > 1)
            })
            .max_by_key(|m| m.len())
            .map(|m| (m.clone(), path[m.len() + 1..].to_string()))
            .ok_or_else(|| {
                ConnectorError::Backend(format!("{path} is not under a watched KV v2 mount"))
            })
    }

    async fn metadata(&self, mount: &str, key: &str) -> Result<Value> {
        self.read(&format!("{mount}/metadata/{key}"))
            .await?
            .ok_or_else(|| ConnectorError::Backend(format!("{mount}/{key}: no such secret")))
    }

    fn secret_from_metadata(&self, path: String, meta: &Value) -> Credential {
        let current = meta.get("current_version").and_then(Value::as_u64);
        let version_meta = current.and_then(|v| meta.pointer(&format!("/versions/{v}")));
        let deletion = version_meta
            .and_then(|v| v.get("deletion_time"))
            .and_then(Value::as_str)
            .and_then(parse_time);
        let set_expiry = meta
            .pointer("/custom_metadata")
            .and_then(|m| m.get(&self.expiry_key))
            .and_then(Value::as_str)
            .and_then(parse_time);
        let expires_at = match (deletion, set_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Credential {
            kind: CredentialKind::Secret,
            path,
            created_at: meta
                .get("created_time")
                .and_then(Value::as_str)
                .and_then(parse_time),
            rotated_at: version_meta
                .and_then(|v| v.get("created_time"))
                .and_then(Value::as_str)
                .and_then(parse_time),
            expires_at,
            version: current.map(|v| v.to_string()),
            // KV v2 has no rotation schedule of its own.
            rotation_enabled: Some(false),
            lease_ttl_secs: None,
        }
    }

    /// Every secret path under a mount (depth first, bounded).
    async fn walk(&self, mount: &str, out: &mut Vec<String>) -> Result<()> {
        let mut pending = vec![String::new()];
        while let Some(prefix) = pending.pop() {
            for key in self
                .list_keys(&format!("{mount}/metadata/{prefix}"))
                .await?
            {
                if out.len() >= self.max_secrets {
                    tracing::warn!(
                        mount,
                        limit = self.max_secrets,
                        "KV listing cut at max_secrets"
                    );
                    return Ok(());
                }
                if key.ends_with('/') {
                    pending.push(format!("{prefix}{key}"));
                } else {
                    out.push(format!("{prefix}{key}"));
                }
            }
        }
        Ok(())
    }

    async fn leases(&self, out: &mut Vec<Credential>) -> Result<()> {
        let mut ids = Vec::new();
        let mut pending: Vec<String> = self.lease_prefixes.clone();
        while let Some(prefix) = pending.pop() {
            let prefix = if prefix.ends_with('/') {
                prefix
            } else {
                format!("{prefix}/")
            };
            for key in self
                .list_keys(&format!("sys/leases/lookup/{prefix}"))
                .await?
            {
                if ids.len() >= self.max_secrets {
                    break;
                }
                if key.ends_with('/') {
                    pending.push(format!("{prefix}{key}"));
                } else {
                    ids.push(format!("{prefix}{key}"));
                }
            }
        }
        for id in ids {
            out.push(self.lease(&id).await?);
        }
        Ok(())
    }

    async fn lease(&self, lease_id: &str) -> Result<Credential> {
        let v = self
            .call(
                Method::PUT,
                "sys/leases/lookup",
                Some(json!({ "lease_id": lease_id })),
            )
            .await?
            .and_then(|v| v.get("data").cloned())
            .ok_or_else(|| ConnectorError::Backend(format!("lease {lease_id}: not found")))?;
        let time = |k: &str| v.get(k).and_then(Value::as_str).and_then(parse_time);
        let issued = time("issue_time");
        Ok(Credential {
            kind: CredentialKind::Lease,
            path: lease_id.to_string(),
            created_at: issued,
            rotated_at: time("last_renewal").or(issued),
            expires_at: time("expire_time"),
            version: None,
            rotation_enabled: Some(false),
            lease_ttl_secs: v.get("ttl").and_then(Value::as_i64),
        })
    }

    /// The current version number and its data (`None` when that version is deleted).
    async fn current(&self, mount: &str, key: &str) -> Result<(u64, Option<Map<String, Value>>)> {
        let meta = self.metadata(mount, key).await?;
        let version = meta
            .get("current_version")
            .and_then(Value::as_u64)
            .ok_or_else(|| ConnectorError::Backend(format!("{mount}/{key}: no current version")))?;
        let data = self.version_data(mount, key, version).await?;
        Ok((version, data))
    }

    async fn version_data(
        &self,
        mount: &str,
        key: &str,
        version: u64,
    ) -> Result<Option<Map<String, Value>>> {
        Ok(self
            .read(&format!("{mount}/data/{key}?version={version}"))
            .await?
            .and_then(|d| d.get("data").and_then(Value::as_object).cloned()))
    }

    /// Writes `data` as a new version if `cas` is still current; returns the new version.
    async fn write(
        &self,
        mount: &str,
        key: &str,
        cas: u64,
        data: Map<String, Value>,
    ) -> Result<u64> {
        let answer = self
            .call(
                Method::POST,
                &format!("{mount}/data/{key}"),
                Some(json!({ "options": { "cas": cas }, "data": data })),
            )
            .await?
            .ok_or_else(|| ConnectorError::Backend(format!("{mount}/{key}: not found")))?;
        answer
            .pointer("/data/version")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                ConnectorError::Backend(format!("{mount}/{key}: the write named no new version"))
            })
    }
}

fn env_token(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| Secret(t.trim().to_string()))
}

#[async_trait]
impl CredentialStore for VaultStore {
    fn store(&self) -> &'static str {
        "vault"
    }

    fn provider(&self) -> Provider {
        Provider::Vault
    }

    async fn list(&self) -> Result<Vec<Credential>> {
        let mut out = Vec::new();
        for mount in self.kv_mounts().await? {
            let mut keys = Vec::new();
            self.walk(&mount, &mut keys).await?;
            for key in keys {
                let meta = self.metadata(&mount, &key).await?;
                out.push(self.secret_from_metadata(format!("{mount}/{key}"), &meta));
            }
        }
        self.leases(&mut out).await?;
        Ok(out)
    }

    async fn describe(&self, kind: CredentialKind, path: &str) -> Result<Credential> {
        match kind {
            CredentialKind::Lease => self.lease(path).await,
            CredentialKind::Secret => {
                let (mount, key) = self.split(path).await?;
                let meta = self.metadata(&mount, &key).await?;
                Ok(self.secret_from_metadata(path.to_string(), &meta))
            }
        }
    }

    async fn current_version(&self, path: &str) -> Result<String> {
        let (mount, key) = self.split(path).await?;
        match self.current(&mount, &key).await? {
            (v, Some(_)) => Ok(v.to_string()),
            (v, None) => Err(ConnectorError::Backend(format!(
                "{path}: current version {v} is deleted; there is nothing to rotate from"
            ))),
        }
    }

    async fn rotate(&self, path: &str, policy: &ValuePolicy) -> Result<VersionChange> {
        let (mount, key) = self.split(path).await?;
        let (from, data) = self.current(&mount, &key).await?;
        let mut data = data.ok_or_else(|| {
            ConnectorError::Backend(format!("{path}: current version {from} is deleted"))
        })?;
        let had_key = data.contains_key(&policy.key);
        data.insert(policy.key.clone(), Value::String(generate(policy).0));
        // Check-and-set: if someone wrote meanwhile, fail rather than overwrite their version.
        let to = self.write(&mount, &key, from, data).await?;
        Ok(VersionChange {
            from: from.to_string(),
            to: to.to_string(),
            steps: vec![
                format!("read {path} version {from}"),
                format!(
                    "generated a new `{}` ({} characters, {:?}){}",
                    policy.key,
                    policy.length,
                    policy.charset,
                    if had_key { "" } else { " (a new field)" }
                ),
                format!("wrote version {to} with check-and-set on version {from}"),
            ],
        })
    }

    async fn history(&self, path: &str) -> Result<Vec<(chrono::DateTime<chrono::Utc>, String)>> {
        let (mount, key) = self.split(path).await?;
        let meta = self.metadata(&mount, &key).await?;
        let Some(versions) = meta.get("versions").and_then(Value::as_object) else {
            return Ok(Vec::new());
        };
        Ok(versions
            .iter()
            .filter_map(|(n, v)| {
                let at = v
                    .get("created_time")
                    .and_then(Value::as_str)
                    .and_then(parse_time)?;
                let state = if v.get("destroyed").and_then(Value::as_bool) == Some(true) {
                    " (destroyed since)"
                } else if v
                    .get("deletion_time")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty())
                {
                    " (deleted or to be deleted)"
                } else {
                    ""
                };
                Some((at, format!("{path}: version {n} written{state}")))
            })
            .collect())
    }

    async fn restore_version(&self, path: &str, version: &str) -> Result<VersionChange> {
        let (mount, key) = self.split(path).await?;
        let wanted: u64 = version.parse().map_err(|_| {
            ConnectorError::Backend(format!("{path}: `{version}` is not a KV version"))
        })?;
        let data = self
            .version_data(&mount, &key, wanted)
            .await?
            .ok_or_else(|| {
                ConnectorError::Backend(format!(
                    "{path}: version {wanted} is deleted or destroyed; it cannot be restored"
                ))
            })?;
        let meta = self.metadata(&mount, &key).await?;
        let current = meta
            .get("current_version")
            .and_then(Value::as_u64)
            .ok_or_else(|| ConnectorError::Backend(format!("{path}: no current version")))?;
        let to = self.write(&mount, &key, current, data).await?;
        Ok(VersionChange {
            from: current.to_string(),
            to: to.to_string(),
            steps: vec![
                format!("read {path} version {wanted}"),
                format!("wrote it back as version {to} with check-and-set on version {current}"),
            ],
        })
    }
}
