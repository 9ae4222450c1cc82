//! AWS Secrets Manager: secrets with their rotation metadata
//! (`RotationEnabled`, `LastRotatedDate`, the current version's creation),
//! rotation by `PutSecretValue` with a generated value (or `RotateSecret`
//! where the secret has a rotation function configured), and restore by
//! moving the `AWSCURRENT` stage back to the recorded version.
//!
//! The client is built exactly as the `[aws]` connectors build theirs
//! (`connectors::aws::client`): same credential chain, rustls, retries.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    Credential, CredentialKind, CredentialStore, SecretsManagerConfig, ValuePolicy, VersionChange,
    generate, parse_time,
};
use crate::connectors::aws::client::{self, AwsFailure, CredentialCheck, Target};
use crate::connectors::aws::{AwsConfig, smithy_time};
use crate::connectors::{ConnectorError, Result};
use crate::event::Provider;

/// The stage that marks a secret's current value.
const CURRENT: &str = "AWSCURRENT";

/// One profile in one region.
pub struct SecretsManagerStore {
    client: Client,
    expiry_key: String,
}

/// What `DescribeSecret` and `ListSecretVersionIds` say about one secret.
struct Described {
    credential: Credential,
    current: Option<String>,
    rotation_function: bool,
}

impl SecretsManagerStore {
    /// A store for `config`, or the line saying why there is none.
    pub async fn connect(
        config: &SecretsManagerConfig,
        expiry_key: &str,
    ) -> std::result::Result<Self, String> {
        let aws = AwsConfig {
            endpoint_url: config.endpoint_url.clone(),
            ..AwsConfig::default()
        };
        let target = Target {
            profile: config.profile.clone(),
            region: config.region.clone(),
        };
        let sdk = client::load(&target, &aws, None).await;
        if sdk.region().is_none() {
            return Err(format!(
                "Secrets Manager: profile `{}` names no region: set `region` in [credentials.secretsmanager]",
                target.profile_label()
            ));
        }
        match client::check_credentials(&sdk, &target).await {
            CredentialCheck::Usable => {}
            CredentialCheck::Missing(line) | CredentialCheck::Unusable(line) => {
                return Err(format!("Secrets Manager: {line}"));
            }
        }
        Ok(Self::new(Client::new(&sdk), expiry_key))
    }

    /// A store on an already built client.
    pub fn new(client: Client, expiry_key: &str) -> Self {
        Self {
            client,
            expiry_key: expiry_key.to_string(),
        }
    }

    async fn names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_secrets()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsFailure::of("ListSecrets", &e))?;
            names.extend(
                page.secret_list()
                    .iter()
                    .filter_map(|s| s.name().map(str::to_string)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(names),
            }
        }
    }

    async fn describe_secret(&self, name: &str) -> Result<Described> {
        let d = self
            .client
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| AwsFailure::of("DescribeSecret", &e))?;
        let current = d.version_ids_to_stages().and_then(|m| {
            m.iter()
                .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
                .map(|(id, _)| id.clone())
        });
        let rotated_at = match &current {
            Some(v) => self.version_created(name, v).await?,
            None => None,
        };
        let tags: BTreeMap<&str, &str> = d
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value()?)))
            .collect();
        let created_at = d.created_date().map(smithy_time);
        Ok(Described {
            credential: Credential {
                kind: CredentialKind::Secret,
                path: name.to_string(),
                created_at,
                rotated_at: rotated_at
                    .or(d.last_rotated_date().map(smithy_time))
                    .or(created_at),
                expires_at: tags
                    .get(self.expiry_key.as_str())
                    .and_then(|t| parse_time(t)),
                version: current.clone(),
                rotation_enabled: Some(d.rotation_enabled().unwrap_or(false)),
                lease_ttl_secs: None,
            },
            current,
            rotation_function: d.rotation_enabled().unwrap_or(false)
                && d.rotation_lambda_arn().is_some_and(|a| !a.is_empty()),
        })
    }

    /// When a version was written.
    async fn version_created(&self, name: &str, version: &str) -> Result<Option<DateTime<Utc>>> {
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_secret_version_ids()
                .secret_id(name)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsFailure::of("ListSecretVersionIds", &e))?;
            if let Some(v) = page
                .versions()
                .iter()
                .find(|v| v.version_id() == Some(version))
            {
                return Ok(v.created_date().map(smithy_time));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }

    fn current_of(name: &str, d: &Described) -> Result<String> {
        d.current
            .clone()
            .ok_or_else(|| ConnectorError::Backend(format!("{name}: no version is {CURRENT}")))
    }

    /// The new value: the configured field replaced in a JSON-object secret,
    /// or the whole value for a plain-text one.
    async fn next_value(&self, name: &str, policy: &ValuePolicy) -> Result<(String, String)> {
        let current = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage(CURRENT)
            .send()
            .await
            .map_err(|e| AwsFailure::of("GetSecretValue", &e))?;
        let fresh = generate(policy).0;
        if let Some(text) = current.secret_string()
            && let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(text)
        {
            fields.insert(policy.key.clone(), Value::String(fresh));
            let body = serde_json::to_string(&fields)
                .map_err(|e| ConnectorError::Backend(format!("{name}: {e}")))?;
            return Ok((body, format!("field `{}` of the JSON value", policy.key)));
        }
        Ok((fresh, "the whole value".into()))
    }
}

#[async_trait]
impl CredentialStore for SecretsManagerStore {
    fn store(&self) -> &'static str {
        "secretsmanager"
    }

    fn provider(&self) -> Provider {
        Provider::Aws
    }

    async fn list(&self) -> Result<Vec<Credential>> {
        let mut out = Vec::new();
        for name in self.names().await? {
            out.push(self.describe_secret(&name).await?.credential);
        }
        Ok(out)
    }

    async fn describe(&self, kind: CredentialKind, path: &str) -> Result<Credential> {
        match kind {
            CredentialKind::Secret => Ok(self.describe_secret(path).await?.credential),
            CredentialKind::Lease => Err(ConnectorError::Backend(format!(
                "{path}: Secrets Manager has no leases"
            ))),
        }
    }

    async fn current_version(&self, path: &str) -> Result<String> {
        let d = self.describe_secret(path).await?;
        Self::current_of(path, &d)
    }

    async fn rotate(&self, path: &str, policy: &ValuePolicy) -> Result<VersionChange> {
        let d = self.describe_secret(path).await?;
        let from = Self::current_of(path, &d)?;
        if d.rotation_function {
            // The secret's own rotation function knows how to change the
            // credential where it is used; writing a value here would not.
            let out = self
                .client
                .rotate_secret()
                .secret_id(path)
                .rotate_immediately(true)
                .send()
                .await
                .map_err(|e| AwsFailure::of("RotateSecret", &e))?;
            let to = out.version_id().unwrap_or("unknown").to_string();
            return Ok(VersionChange {
                steps: vec![
                    format!(
                        "{path}: rotation is configured; asked its rotation function to rotate"
                    ),
                    format!("RotateSecret started version {to} (replacing {from})"),
                ],
                from,
                to,
            });
        }
        let (value, what) = self.next_value(path, policy).await?;
        let out = self
            .client
            .put_secret_value()
            .secret_id(path)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| AwsFailure::of("PutSecretValue", &e))?;
        let to = out
            .version_id()
            .ok_or_else(|| {
                ConnectorError::Backend(format!("{path}: PutSecretValue named no version"))
            })?
            .to_string();
        Ok(VersionChange {
            steps: vec![
                format!(
                    "generated {what} ({} characters, {:?})",
                    policy.length, policy.charset
                ),
                format!("PutSecretValue wrote version {to} as {CURRENT}; {from} is AWSPREVIOUS"),
            ],
            from,
            to,
        })
    }

    async fn restore_version(&self, path: &str, version: &str) -> Result<VersionChange> {
        let d = self.describe_secret(path).await?;
        let current = Self::current_of(path, &d)?;
        if current == version {
            return Ok(VersionChange {
                from: current.clone(),
                to: current,
                steps: vec![format!("{path}: version {version} is already {CURRENT}")],
            });
        }
        self.client
            .update_secret_version_stage()
            .secret_id(path)
            .version_stage(CURRENT)
            .move_to_version_id(version)
            .remove_from_version_id(&current)
            .send()
            .await
            .map_err(|e| AwsFailure::of("UpdateSecretVersionStage", &e))?;
        Ok(VersionChange {
            from: current.clone(),
            to: version.to_string(),
            steps: vec![format!(
                "UpdateSecretVersionStage moved {CURRENT} from {current} back to {version}"
            )],
        })
    }
}
