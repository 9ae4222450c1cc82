//! The leadership lease: one key in a JetStream key-value bucket whose
//! `max_age` is the TTL. Taken with create-if-absent, kept by compare-and-set
//! on its revision; a holder that stops renewing loses it when the bucket
//! ages the key out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};

use super::{ClusterConfig, ClusterError, LeaderState, js_error};

/// The key holding the lease.
pub(super) const LEASE_KEY: &str = "leader";

/// Who holds the lease, as stored in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The node's name.
    pub node: String,
    /// Where consoles attach to it.
    #[serde(default)]
    pub console: Option<String>,
}

/// The site's lease bucket.
#[derive(Clone)]
pub(super) struct Lease {
    pub(super) kv: kv::Store,
    pub(super) bucket: String,
}

impl Lease {
    /// Opens the bucket, making it if absent (its `max_age` is the TTL).
    pub async fn open(
        js: &jetstream::Context,
        config: &ClusterConfig,
    ) -> Result<Lease, ClusterError> {
        let bucket = config.lease_bucket();
        let settings = kv::Config {
            bucket: bucket.clone(),
            history: 1,
            max_age: config.lease_ttl(),
            num_replicas: config.replicas,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        let kv = super::patiently(&format!("lease bucket {bucket}"), || async {
            match js.get_key_value(&bucket).await {
                Ok(kv) => Ok(kv),
                Err(_) => js.create_key_value(settings.clone()).await,
            }
        })
        .await?;
        Ok(Lease { kv, bucket })
    }

    /// Takes the lease if nobody holds it: its revision, or `None` if held.
    pub async fn try_take(&self, holder: &LeaseHolder) -> Result<Option<u64>, ClusterError> {
        match self.kv.create(LEASE_KEY, encode(holder)).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(js_error(&format!("lease bucket {}", self.bucket), e)),
        }
    }

    /// Who holds the lease now.
    pub async fn holder(&self) -> Result<Option<LeaseHolder>, ClusterError> {
        let value = self
            .kv
            .get(LEASE_KEY)
            .await
            .map_err(|e| js_error(&format!("lease bucket {}", self.bucket), e))?;
        Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
    }
}

fn encode(holder: &LeaseHolder) -> bytes::Bytes {
    serde_json::to_vec(holder).unwrap_or_default().into()
}

/// Renews the lease every third of `ttl` until the node steps down. A
/// renewal refused (someone else's revision) steps down at once; one that
/// fails otherwise is retried until the lease would have expired.
pub(super) async fn keep(
    lease: Lease,
    holder: LeaseHolder,
    mut revision: u64,
    ttl: Duration,
    state: Arc<LeaderState>,
) {
    let every = ttl / 3;
    let value = encode(&holder);
    loop {
        tokio::select! {
            _ = state.lost.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let sent = Instant::now();
        let renewal =
            tokio::time::timeout(every, lease.kv.update(LEASE_KEY, value.clone(), revision));
        match renewal.await {
            Ok(Ok(next)) => {
                revision = next;
                state.renewed(sent + ttl);
            }
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                state.step_down(
                    "the leadership lease was taken by another node (its revision moved on)".into(),
                );
                return;
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                tracing::warn!("cannot renew the leadership lease: {why}");
                // Retried while the lease is still certainly ours (also
                // while catching up, before appends are allowed).
                if !state.lease_valid() {
                    state.step_down(format!("the leadership lease could not be renewed: {why}"));
                    return;
                }
            }
        }
    }
}
