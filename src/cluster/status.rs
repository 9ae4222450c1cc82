//! Each node's heartbeat and the cluster view it gathers for its consoles.
//!
//! A heartbeat is one small JSON value per node (name, role, console URL,
//! last local seq, time) under `node.NAME` in the lease bucket, rewritten
//! every third of the lease TTL. The bucket's `max_age` (the TTL) ages out a
//! node that stopped, so the set stays bounded by the live nodes without any
//! clean-up. Heartbeats are informational: who may append is decided by the
//! lease and the stream's expected-sequence check alone.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::lease::LEASE_KEY;
use super::view::{ClusterView, LeaseView, NodeRole, NodeSeen};
use super::{Cluster, ClusterError, js_error};
use crate::store::EventLog;

/// Prefix of the heartbeat keys in the lease bucket.
const HEARTBEAT_PREFIX: &str = "node.";
/// Heartbeats read at most (a bucket holding more is shown cut).
const MAX_NODES: usize = 32;
/// How often the view is gathered.
const GATHER_EVERY: Duration = Duration::from_secs(1);
/// How long one request of a gathering may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

impl Cluster {
    /// Publishes this node's heartbeat and gathers the cluster view, about
    /// once a second, until `cancel` (then the heartbeat is withdrawn).
    /// `role` is this node's role as it changes; `console` its console URL.
    pub fn watch_status(
        &self,
        log: EventLog,
        console: Option<String>,
        role: watch::Receiver<NodeRole>,
        cancel: CancellationToken,
    ) -> watch::Receiver<ClusterView> {
        let initial = ClusterView {
            site: self.config.site.clone(),
            node: self.node.clone(),
            role: *role.borrow(),
            lease: None,
            nodes: Vec::new(),
            stream_seq: log.last_seq(),
            at: Utc::now(),
        };
        let (tx, rx) = watch::channel(initial);
        let cluster = self.clone();
        let mut role = role;
        tokio::spawn(async move {
            let ttl = cluster.config.lease_ttl();
            let beat_every = (ttl / 3).max(Duration::from_millis(100));
            let key = format!("{HEARTBEAT_PREFIX}{}", cluster.node);
            let mut beaten: Option<(Instant, NodeRole)> = None;
            let mut tick = tokio::time::interval(GATHER_EVERY.min(beat_every));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut role_known = true;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                    // A new role is said at once, not at the next tick.
                    changed = role.changed(), if role_known => role_known = changed.is_ok(),
                }
                let me = NodeSeen {
                    name: cluster.node.clone(),
                    role: *role.borrow(),
                    console: console.clone(),
                    last_seq: log.last_seq(),
                    at: Utc::now(),
                };
                let due = beaten.is_none_or(|(at, r)| at.elapsed() >= beat_every || r != me.role);
                if due {
                    let value = serde_json::to_vec(&me).unwrap_or_default().into();
                    match tokio::time::timeout(REQUEST_TIMEOUT, cluster.lease.kv.put(&key, value))
                        .await
                    {
                        Ok(Ok(_)) => beaten = Some((Instant::now(), me.role)),
                        Ok(Err(e)) => tracing::debug!("cannot publish the heartbeat: {e}"),
                        Err(_) => tracing::debug!("publishing the heartbeat timed out"),
                    }
                }
                let mut view = tx.borrow().clone();
                match tokio::time::timeout(REQUEST_TIMEOUT, cluster.gather(ttl)).await {
                    Ok(Ok((lease, nodes, stream_seq))) => {
                        view.lease = lease;
                        view.nodes = nodes;
                        view.stream_seq = stream_seq;
                    }
                    // What was gathered last stays shown, with its age.
                    Ok(Err(e)) => tracing::debug!("cannot gather the cluster view: {e}"),
                    Err(_) => tracing::debug!("gathering the cluster view timed out"),
                }
                // This node's own line is always current.
                view.nodes.retain(|n| n.name != me.name);
                view.stream_seq = view.stream_seq.max(me.last_seq);
                view.role = me.role;
                view.nodes.push(me);
                view.nodes.sort_by(|a, b| a.name.cmp(&b.name));
                view.at = Utc::now();
                tx.send_replace(view);
            }
            // Gone at once rather than after the TTL (best effort).
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, cluster.lease.kv.delete(&key)).await;
        });
        rx
    }

    /// The lease, the heartbeats and the stream's last seq, as stored now.
    async fn gather(
        &self,
        ttl: Duration,
    ) -> Result<(Option<LeaseView>, Vec<NodeSeen>, u64), ClusterError> {
        let kv = &self.lease.kv;
        let what = || format!("lease bucket {}", self.lease.bucket);
        let lease = kv
            .entry(LEASE_KEY)
            .await
            .map_err(|e| js_error(&what(), e))?
            .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put)
            .and_then(|entry| {
                let holder: super::LeaseHolder = serde_json::from_slice(&entry.value).ok()?;
                let written = timestamp(entry.created.unix_timestamp_nanos());
                Some(LeaseView {
                    holder: holder.node,
                    console: holder.console,
                    revision: entry.revision,
                    expires: written + ttl,
                })
            });
        let keys: Vec<String> = kv
            .keys()
            .await
            .map_err(|e| js_error(&what(), e))?
            .filter_map(|k| async move { k.ok() })
            .filter(|k| std::future::ready(k.starts_with(HEARTBEAT_PREFIX)))
            .take(MAX_NODES)
            .collect()
            .await;
        let mut nodes = Vec::with_capacity(keys.len());
        for key in keys {
            let value = kv.get(&key).await.map_err(|e| js_error(&what(), e))?;
            // A value this build cannot read is left out, never trusted.
            if let Some(node) = value.and_then(|v| serde_json::from_slice::<NodeSeen>(&v).ok()) {
                nodes.push(node);
            }
        }
        let stream_seq = self.stream.last_seq().await?;
        Ok((lease, nodes, stream_seq))
    }
}

/// A time from nanoseconds since the epoch (far-off values clamp).
fn timestamp(nanos: i128) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_convert_and_far_off_ones_clamp() {
        let at = DateTime::parse_from_rfc3339("2026-06-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(i128::from(at.timestamp_nanos_opt().unwrap())), at);
        assert_eq!(
            timestamp(i128::MAX),
            DateTime::from_timestamp_nanos(i64::MAX)
        );
    }
}
