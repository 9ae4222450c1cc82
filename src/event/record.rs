//! The event record, its stored encoding and its hash chain.
//!
//! Stored value = 32-byte SHA-256 digest ‖ canonical JSON body. The body holds
//! the format version, seq, time, actor, kind with its fields and the previous
//! record's hash; the digest is over exactly those body bytes. Verification
//! re-hashes the stored bytes, never a re-encoding, so records written by a
//! newer build (unknown kinds, extra fields) verify unchanged.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::kind::{EventKind, KNOWN_KINDS};

/// Version of the stored record format this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// A SHA-256 digest in the hash chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The hash that the first record's `prev_hash` holds.
    pub const GENESIS: ChainHash = ChainHash([0u8; 32]);

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(ChainHash(arr))
    }

    /// Digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ChainHash(Sha256::digest(bytes).into())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

impl Serialize for ChainHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChainHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChainHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// A fact not yet in the log: the writer assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: EventKind,
}

impl NewEvent {
    /// Builds a draft.
    pub fn new(at: DateTime<Utc>, actor: impl Into<String>, kind: EventKind) -> Self {
        Self {
            at,
            actor: actor.into(),
            kind,
        }
    }
}

/// A durable, chained fact.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: EventKind,
    pub prev_hash: ChainHash,
    pub hash: ChainHash,
}

/// Why stored bytes could not be read as an event.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("record is {0} bytes, shorter than its 32-byte hash")]
    Truncated(usize),
    #[error("record body is not valid JSON: {0}")]
    Json(String),
    #[error(
        "record was written by format version {found}; this build reads up to {FORMAT_VERSION}"
    )]
    NewerFormat { found: u64 },
    #[error("record field `{0}` is missing or malformed")]
    Field(&'static str),
    #[error("record of kind `{kind}` has malformed fields: {error}")]
    Kind { kind: String, error: String },
}

impl Event {
    /// Encodes a draft at `seq` after `prev_hash`; returns the event and its stored bytes.
    pub fn seal(seq: u64, prev_hash: ChainHash, draft: NewEvent) -> (Event, Vec<u8>) {
        let body_bytes = body_bytes(seq, &draft.at, &draft.actor, &draft.kind, &prev_hash);
        let hash = ChainHash::of(&body_bytes);
        let mut stored = Vec::with_capacity(32 + body_bytes.len());
        stored.extend_from_slice(&hash.0);
        stored.extend_from_slice(&body_bytes);
        (
            Event {
                seq,
                at: draft.at,
                actor: draft.actor,
                kind: draft.kind,
                prev_hash,
                hash,
            },
            stored,
        )
    }

    /// Decodes stored bytes without checking the digest (see [`Event::check`]).
    pub fn decode(stored: &[u8]) -> Result<Event, DecodeError> {
        if stored.len() < 32 {
            return Err(DecodeError::Truncated(stored.len()));
        }
        let hash = ChainHash(stored[..32].try_into().expect("length checked"));
        let mut body: Map<String, Value> =
            serde_json::from_slice(&stored[32..]).map_err(|e| DecodeError::Json(e.to_string()))?;
        let version = body
            .remove("v")
            .and_then(|v| v.as_u64())
            .ok_or(DecodeError::Field("v"))?;
        if version > FORMAT_VERSION {
            return Err(DecodeError::NewerFormat { found: version });
        }
        let seq = body
            .remove("seq")
            .and_then(|v| v.as_u64())
            .ok_or(DecodeError::Field("seq"))?;
        let at = body
            .remove("at")
            .and_then(|v| {
                v.as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            })
            .ok_or(DecodeError::Field("at"))?
            .with_timezone(&Utc);
        let actor = match body.remove("actor") {
            Some(Value::String(s)) => s,
            _ => return Err(DecodeError::Field("actor")),
        };
        let prev_hash = body
            .remove("prev_hash")
            .and_then(|v| v.as_str().and_then(ChainHash::from_hex))
            .ok_or(DecodeError::Field("prev_hash"))?;
        let kind_name = match body.get("kind") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(DecodeError::Field("kind")),
        };
        let kind = if KNOWN_KINDS.contains(&kind_name.as_str()) {
            serde_json::from_value(Value::Object(body)).map_err(|e| DecodeError::Kind {
                kind: kind_name,
                error: e.to_string(),
            })?
        } else {
            body.remove("kind");
            EventKind::Unknown {
                kind: kind_name,
                fields: body,
            }
        };
        Ok(Event {
            seq,
            at,
            actor,
            kind,
            prev_hash,
            hash,
        })
    }

    /// Whether `stored`'s leading digest matches its body.
    pub fn check(stored: &[u8]) -> bool {
        stored.len() >= 32 && ChainHash::of(&stored[32..]).0[..] == stored[..32]
    }

    /// The export form: `seq`, `at` (RFC 3339), `actor`, `kind`, the kind's fields, `prev_hash`, `hash`.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("seq".into(), Value::from(self.seq));
        obj.insert("at".into(), Value::from(rfc3339(&self.at)));
        obj.insert("actor".into(), Value::from(self.actor.clone()));
        kind_into(&self.kind, &mut obj);
        obj.insert("prev_hash".into(), Value::from(self.prev_hash.to_hex()));
        obj.insert("hash".into(), Value::from(self.hash.to_hex()));
        Value::Object(obj)
    }
}

/// RFC 3339 with millisecond precision and a `Z` suffix.
pub fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The canonical body: `v`, `seq`, `at`, `actor`, `kind` and its fields in
/// declaration order, `prev_hash`. Written directly rather than through a JSON
/// map, so the byte layout does not depend on serde_json's map features and no
/// intermediate tree is built on the writer's path.
fn body_bytes(
    seq: u64,
    at: &DateTime<Utc>,
    actor: &str,
    kind: &EventKind,
    prev_hash: &ChainHash,
) -> Vec<u8> {
    let kind_json = match kind {
        EventKind::Unknown { .. } => {
            let mut obj = Map::new();
            kind_into(kind, &mut obj);
            serde_json::to_vec(&Value::Object(obj))
        }
        known => serde_json::to_vec(known),
    }
    .expect("event kinds always serialise");
    let mut out = Vec::with_capacity(kind_json.len() + 200);
    out.extend_from_slice(b"{\"v\":");
    out.extend_from_slice(FORMAT_VERSION.to_string().as_bytes());
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b",\"at\":\"");
    out.extend_from_slice(at.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
    out.extend_from_slice(b"\",\"actor\":");
    serde_json::to_writer(&mut out, actor).expect("strings always serialise");
    // The kind serialises as an object starting with its `kind` tag: splice its members in.
    debug_assert!(kind_json.first() == Some(&b'{') && kind_json.last() == Some(&b'}'));
    if kind_json.len() > 2 {
        out.push(b',');
        out.extend_from_slice(&kind_json[1..kind_json.len() - 1]);
    }
    out.extend_from_slice(b",\"prev_hash\":\"");
    out.extend_from_slice(prev_hash.to_hex().as_bytes());
    out.extend_from_slice(b"\"}");
    out
}

fn kind_into(kind: &EventKind, obj: &mut Map<String, Value>) {
    match kind {
        EventKind::Unknown { kind, fields } => {
            obj.insert("kind".into(), Value::from(kind.clone()));
            for (k, v) in fields {
                obj.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        known => {
            if let Value::Object(fields) =
                serde_json::to_value(known).expect("event kinds always serialise")
            {
                obj.extend(fields);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::model::ResourceId;

    fn draft() -> NewEvent {
        NewEvent::new(
            DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
                .unwrap()
                .with_timezone(&Utc),
            "agent:test",
            EventKind::ResourceGone {
                resource: ResourceId::new("k8s/x/pod/y"),
            },
        )
    }

    #[test]
    fn seal_then_decode_round_trips() {
        let (event, stored) = Event::seal(7, ChainHash::GENESIS, draft());
        assert!(Event::check(&stored));
        assert_eq!(Event::decode(&stored).unwrap(), event);
    }

    #[test]
    fn one_flipped_byte_fails_the_check() {
        let (_, mut stored) = Event::seal(1, ChainHash::GENESIS, draft());
        let last = stored.len() - 3;
        stored[last] ^= 0x01;
        assert!(!Event::check(&stored));
    }

    #[test]
    fn unknown_kind_is_preserved_not_fatal() {
        let body = br#"{"v":1,"seq":3,"at":"2026-01-02T03:04:05Z","actor":"future","kind":"quantum_flux","level":9,"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
        let mut stored = ChainHash::of(body).0.to_vec();
        stored.extend_from_slice(body);
        assert!(Event::check(&stored));
        let event = Event::decode(&stored).unwrap();
        assert_eq!(event.kind.name(), "quantum_flux");
        let json = event.to_json();
        assert_eq!(json["level"], 9);
        assert_eq!(json["kind"], "quantum_flux");
    }

    #[test]
    fn body_is_canonical_json_with_fields_in_order() {
        let (_, stored) = Event::seal(7, ChainHash::GENESIS, draft());
        let body = std::str::from_utf8(&stored[32..]).unwrap();
        assert!(
            body.starts_with(r#"{"v":1,"seq":7,"at":"2026-01-02T03:04:05.678Z","actor":"agent:test","kind":"resource_gone","resource":"k8s/x/pod/y","prev_hash":""#),
            "{body}"
        );
        let parsed: Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["kind"], "resource_gone");
    }

    #[test]
    fn newer_format_is_a_clear_error() {
        let body = br#"{"v":99,"seq":3}"#;
        let mut stored = ChainHash::of(body).0.to_vec();
        stored.extend_from_slice(body);
        assert_eq!(
            Event::decode(&stored),
            Err(DecodeError::NewerFormat { found: 99 })
        );
    }

    #[test]
    fn export_has_the_documented_fields() {
        let (event, _) = Event::seal(1, ChainHash::GENESIS, draft());
        let json = event.to_json();
        for key in [
            "seq",
            "at",
            "actor",
            "kind",
            "hash",
            "prev_hash",
            "resource",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["at"], "2026-01-02T03:04:05.678Z");
        assert_eq!(json["kind"], "resource_gone");
    }
}
