//! Generic webhook: the message as JSON, signed with HMAC-SHA256 over
//! `"{timestamp}.{body}"` so a receiver can check who sent it and refuse
//! replays (see the README, "Webhook signatures").

use async_trait::async_trait;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Channel, DeliveryError, Message};

/// Header with the Unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-ShieldOps-Timestamp";
/// Header with `v1=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub const SIGNATURE_HEADER: &str = "X-ShieldOps-Signature";
/// Payload format version (also in the body as `version`).
pub const PAYLOAD_VERSION: u32 = 1;

/// Posts signed JSON to one URL.
pub(crate) struct Webhook {
    pub url: String,
    pub secret: String,
    pub host: String,
    pub client: reqwest::Client,
}

/// The signature header value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a receiver refused a request.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("timestamp header is not a Unix time")]
    BadTimestamp,
    #[error("timestamp is {0} s away from now, outside the tolerance")]
    Stale(i64),
    #[error("signature header is not `v1=<hex>`")]
    BadSignature,
    #[error("signature does not match")]
    Mismatch,
}

/// What a receiver does: check the timestamp is within `tolerance_secs` of
/// `now`, then compare the signature in constant time.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew = (now - ts).abs();
    if skew > tolerance_secs {
        return Err(VerifyError::Stale(skew));
    }
    let given = signature
        .trim()
        .strip_prefix("v1=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| VerifyError::Mismatch)
}

/// The JSON body: the message and the payload version.
pub fn payload(m: &Message) -> serde_json::Value {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    v["version"] = PAYLOAD_VERSION.into();
    v
}

#[async_trait]
impl Channel for Webhook {
    fn recipient(&self) -> String {
        format!("webhook at {}", self.host)
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.url.clone(), self.secret.clone()]
    }

    async fn deliver(&self, m: &Message) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&payload(m))
            .map_err(|e| DeliveryError::permanent(format!("cannot encode the payload: {e}")))?;
        // Wall-clock time, not the injected clock: the receiver compares the
        // timestamp with its own clock to refuse replays.
        let ts = Utc::now().timestamp();
        let signature = sign(self.secret.as_bytes(), ts, &body);
        super::http::send(
            self.client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(TIMESTAMP_HEADER, ts.to_string())
                .header(SIGNATURE_HEADER, signature)
                .header("X-ShieldOps-Event", m.event_seq.to_string())
                .body(body),
            &self.secrets(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_refuses_tampering_replay_and_wrong_key() {
        let key = b"0123456789abcdef-key";
        let body = br#"{"kind":"incident_opened"}"#;
        let sig = sign(key, 1_780_000_000, body);
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64, "{sig}");
        assert_eq!(
            verify(key, "1780000000", &sig, body, 1_780_000_010, 300),
            Ok(())
        );
        assert_eq!(
            verify(key, "1780000000", &sig, b"{}", 1_780_000_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(
                b"another-key-entirely",
                "1780000000",
                &sig,
                body,
                1_780_000_010,
                300
            ),
            Err(VerifyError::Mismatch)
        );
        // The same request replayed an hour later is refused by its timestamp,
        // and moving the timestamp forward breaks the signature.
        assert_eq!(
            verify(key, "1780000000", &sig, body, 1_780_003_600, 300),
            Err(VerifyError::Stale(3600))
        );
        assert_eq!(
            verify(key, "1780003600", &sig, body, 1_780_003_600, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(key, "soon", &sig, body, 0, 300),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify(key, "1780000000", "sha256=ab", body, 1_780_000_000, 300),
            Err(VerifyError::BadSignature)
        );
    }
}
