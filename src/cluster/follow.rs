//! A standby's side: check that the local log is a prefix of the stream,
//! follow the stream into it record by record, and catch up before leading.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{ClusterError, SiteStream, js_error};
use crate::store::EventLog;

/// Records appended to the local log in one go at most.
const FOLLOW_BATCH: usize = 256;

/// Refuses a local log that is not a prefix of the stream: its last record
/// must be the stream's record at that seq, byte for byte. A local log
/// longer than an empty stream is allowed: its leader seeds the stream.
pub(super) async fn check_prefix(stream: &SiteStream, log: &EventLog) -> Result<(), ClusterError> {
    let local = log.last_seq();
    let remote = stream.last_seq().await?;
    if local == 0 || remote == 0 {
        return Ok(());
    }
    let diverged = |reason: String| ClusterError::Diverged {
        stream: stream.name().to_string(),
        seq: local,
        reason,
    };
    if local > remote {
        return Err(diverged(format!(
            "the local log ends at seq {local} but the stream at seq {remote}"
        )));
    }
    let mine = log
        .scan_raw(local)
        .next()
        .transpose()?
        .map(|(_, bytes)| bytes);
    let theirs = stream.record(local).await?;
    if mine != theirs {
        return Err(diverged("the records are not the same bytes".into()));
    }
    Ok(())
}

/// [`follow`], started again after a JetStream failure (a lost server, a
/// consumer that could not be recreated while its stream's Raft group
/// elected a leader): a standby must outlive what its leader rides out.
/// Only a history that does not continue the local chain, or a local log
/// that fails, ends it.
pub(super) async fn follow_patiently(
    stream: SiteStream,
    log: EventLog,
    stop: CancellationToken,
) -> Result<(), ClusterError> {
    loop {
        match follow(stream.clone(), log.clone(), stop.clone()).await {
            Ok(()) => return Ok(()),
            Err(e @ (ClusterError::Diverged { .. } | ClusterError::Store(_))) => return Err(e),
            Err(e) => {
                tracing::warn!("following {}: {e}; following again", stream.name());
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(super::JOIN_RETRY) => {}
                }
            }
        }
    }
}

/// Appends every record the stream gets after the local log's end, until
/// `stop`; an error if a record does not continue the local chain.
pub(super) async fn follow(
    stream: SiteStream,
    log: EventLog,
    stop: CancellationToken,
) -> Result<(), ClusterError> {
    let start = log.last_seq() + 1;
    let handle = stream.handle().await?;
    let consumer = handle
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| js_error(&format!("consumer on {}", stream.name()), e))?;
    let messages = consumer
        .messages()
        .await
        .map_err(|e| js_error(&format!("consumer on {}", stream.name()), e))?;
    let mut batches = messages.ready_chunks(FOLLOW_BATCH);
    loop {
        let batch = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            batch = batches.next() => batch,
        };
        let Some(batch) = batch else {
            return Err(js_error(
                &format!("consumer on {}", stream.name()),
                "the message stream ended",
            ));
        };
        let mut records = Vec::with_capacity(batch.len());
        for message in batch {
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    // The ordered consumer recreates itself after a gap.
                    tracing::warn!("following {}: {e}", stream.name());
                    continue;
                }
            };
            let seq = message
                .info()
                .map_err(|e| js_error("message info", e))?
                .stream_sequence;
            let due = log.last_seq() + 1 + records.len() as u64;
            if seq < due {
                continue;
            }
            if seq > due {
                return Err(ClusterError::Diverged {
                    stream: stream.name().to_string(),
                    seq: due,
                    reason: format!("the stream delivered seq {seq} where seq {due} was due"),
                });
            }
            records.push(message.payload.to_vec());
        }
        if records.is_empty() {
            continue;
        }
        log.append_raw(records)
            .await
            .map_err(|e| ClusterError::Diverged {
                stream: stream.name().to_string(),
                seq: log.last_seq() + 1,
                reason: e.to_string(),
            })?;
    }
}

/// Waits until the local log reaches `end` (the follower appends); false if
/// `lost` or `cancel` fired first.
pub(super) async fn wait_for(
    log: &EventLog,
    end: u64,
    lost: &CancellationToken,
    cancel: &CancellationToken,
) -> bool {
    let mut events = log.subscribe(log.last_seq() + 1);
    while log.last_seq() < end {
        // Each durable event wakes this; the timeout re-reads the end in
        // case the subscription lagged or ended.
        let next = tokio::time::timeout(Duration::from_millis(200), async {
            if events.next().await.is_none() {
                std::future::pending::<()>().await;
            }
        });
        tokio::select! {
            _ = lost.cancelled() => return false,
            _ = cancel.cancelled() => return false,
            _ = next => {}
        }
    }
    true
}

/// A leader whose local log is ahead of an empty stream (a single-machine log
/// moving into a cluster) publishes it first, fenced like any append.
pub(super) async fn seed(
    stream: &SiteStream,
    log: &EventLog,
    end: u64,
) -> Result<(), ClusterError> {
    let local = log.last_seq();
    if local <= end {
        return Ok(());
    }
    if end != 0 {
        return Err(ClusterError::Diverged {
            stream: stream.name().to_string(),
            seq: end + 1,
            reason: format!(
                "the local log ends at seq {local}, after the stream's end at seq {end}"
            ),
        });
    }
    tracing::info!(
        records = local,
        "seeding the empty stream from the local log"
    );
    let mut batch = Vec::with_capacity(FOLLOW_BATCH);
    for item in log.scan_raw(1) {
        batch.push(item?);
        if batch.len() == FOLLOW_BATCH {
            publish_batch(stream, &mut batch).await?;
        }
    }
    publish_batch(stream, &mut batch).await
}

async fn publish_batch(
    stream: &SiteStream,
    batch: &mut Vec<(u64, Vec<u8>)>,
) -> Result<(), ClusterError> {
    let records: Vec<(u64, &[u8])> = batch.iter().map(|(s, b)| (*s, b.as_slice())).collect();
    stream.publish(&records).await?;
    batch.clear();
    Ok(())
}
