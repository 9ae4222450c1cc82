//! Checkpoints of the event log's head, sent to a webhook off this machine.
//!
//! A hash chain proves order only to someone who holds a later head. Every
//! `every` events and at shutdown the witness posts the head (seq, hash, the
//! record's time) to the configured webhook channel, signed like every
//! webhook message with the channel's secret (HMAC-SHA256 over
//! `"{timestamp}.{body}"`). Whoever keeps those checkpoints can later run
//! `shieldops log verify --checkpoint SEQ:HASH` and catch a log that was cut
//! short or rewritten, even by root on this host, anchor file included.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::DeliveryError;
use super::config::WebhookConfig;
use super::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::event::{Event, rfc3339};
use crate::store::EventLog;

/// Attempts per checkpoint before the witness gives up on it (the next one supersedes it).
const ATTEMPTS: u32 = 4;

/// What the `type` field of a checkpoint says.
pub const CHECKPOINT_TYPE: &str = "shieldops.log_checkpoint";

/// Posts signed checkpoints of the log's head.
pub struct Witness {
    url: String,
    secret: String,
    every: u64,
    client: reqwest::Client,
}

impl Witness {
    /// A witness posting to `channel` every `every` events.
    pub fn new(channel: &WebhookConfig, every: u64, timeout: Duration) -> Result<Witness, String> {
        Ok(Witness {
            url: channel.url.0.clone(),
            secret: channel.secret.0.clone(),
            every: every.max(1),
            client: super::http::client(timeout)?,
        })
    }

    /// The JSON body of the checkpoint for `head`.
    pub fn body(head: &Event, reason: &str) -> serde_json::Value {
        json!({
            "type": CHECKPOINT_TYPE,
            "version": 1,
            "seq": head.seq,
            "hash": head.hash.to_hex(),
            "at": rfc3339(&head.at),
            "reason": reason,
            "verify": format!("shieldops log verify --checkpoint {}:{}", head.seq, head.hash.to_hex()),
        })
    }

    /// Sends one checkpoint, retrying transient failures with back-off.
    pub async fn send(&self, head: &Event, reason: &str) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&Self::body(head, reason))
            .map_err(|e| DeliveryError::permanent(format!("cannot encode: {e}")))?;
        let mut last = DeliveryError::permanent("not sent");
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            let ts = Utc::now().timestamp();
            let result = super::http::send(
                self.client
                    .post(&self.url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(TIMESTAMP_HEADER, ts.to_string())
                    .header(SIGNATURE_HEADER, sign(self.secret.as_bytes(), ts, &body))
                    .header("X-ShieldOps-Event", head.seq.to_string())
                    .body(body.clone()),
                &[self.url.clone(), self.secret.clone()],
            )
            .await;
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.retryable => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Follows `log` from its current end: a checkpoint whenever a seq is a
    /// multiple of `every`, and one of the head when `cancel` fires (cancel it
    /// after the runtime has stopped appending, before the log closes).
    pub async fn run(self, log: EventLog, cancel: CancellationToken) {
        let mut sub = log.subscribe(log.last_seq() + 1);
        let mut head: Option<Event> = log.scan(log.last_seq()).next().and_then(Result::ok);
        let mut sent: Option<u64> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                next = sub.next() => match next {
                    Some(Ok(event)) => {
                        let due = event.seq % self.every == 0;
                        head = Some(event);
                        if due && let Some(h) = &head {
                            self.report(h, "interval").await;
                            sent = Some(h.seq);
                        }
                    }
                    Some(Err(e)) => tracing::warn!("log witness: {e}"),
                    None => break,
                },
            }
        }
        // The caller cancels after the runtime has stopped: the log's last
        // record is the final head.
        if let Some(Ok(last)) = log.scan(log.last_seq()).next() {
            head = Some(last);
        }
        if let Some(h) = head.filter(|h| Some(h.seq) != sent) {
            self.report(&h, "shutdown").await;
        }
    }

    async fn report(&self, head: &Event, reason: &str) {
        match self.send(head, reason).await {
            Ok(()) => tracing::info!(seq = head.seq, "log checkpoint sent ({reason})"),
            Err(e) => tracing::warn!(
                seq = head.seq,
                "log checkpoint not delivered: {}",
                e.message
            ),
        }
    }
}
