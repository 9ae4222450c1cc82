//! The wire protocol between `serve` and `attach`: versioned JSON messages,
//! one per WebSocket text frame, each tagged by `type`.
//!
//! A session: the client sends `hello` (its protocol version, and the last seq
//! it holds when it resumes); the server answers `welcome`, then either a
//! `snapshot` (the projected state at a seq) or nothing when resuming, then
//! `events` frames in seq order for as long as the connection lives. Commands
//! go up as `command` with a client-chosen id; each gets one `reply`. Anything
//! wrong ends the session with an `error` frame and a close; other sessions
//! are untouched.
//!
//! A cluster node (`serve --cluster`) also says, in `welcome`, what it is
//! (leader or standby) and who leads, and sends a `cluster` message whenever
//! that view changes (about once a second: it carries each node's lag). A
//! server that is not clustered sends neither, exactly as before; a client
//! skips message types it does not know, so later additions stay cheap.
//!
//! Events travel as their exact stored records (digest and canonical body),
//! so a client checks every record's digest and the hash chain from the last
//! record it holds: a gap, a duplicate or a corrupted record is detected, never
//! folded.

use serde::{Deserialize, Serialize};

use super::auth::Role;
use crate::cluster::ClusterView;
use crate::event::Event;
use crate::runtime::command::Command;
use crate::state::State;

/// This build's protocol version. A peer of another version is refused with
/// an `error` of code `version_mismatch` naming both.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame a client may send (commands are small; this bounds memory per connection).
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// Largest frame the server sends: a snapshot of a large fleet. The client
/// refuses anything bigger.
pub const MAX_SERVER_FRAME: usize = 64 * 1024 * 1024;

/// Most records in one `events` frame.
pub const MAX_RECORDS_PER_FRAME: usize = 256;

/// Client → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message of a session. `after_seq`: resume after this seq (the
    /// client already holds everything up to it); absent: send a snapshot.
    Hello {
        version: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_seq: Option<u64>,
    },
    /// An operator command. The identity is the token's principal, never the client's word.
    Command { id: u64, command: Command },
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        version: u32,
        principal: String,
        role: Role,
        /// The server refuses approvals and never executes.
        read_only: bool,
        /// The runtime's clock now, and how many of its seconds pass per real
        /// second (a sped-up demo), so the console's ages and header clock
        /// agree with event times as a local console's do.
        now: chrono::DateTime<chrono::Utc>,
        speed: f64,
        /// The cluster as this node sees it; absent when it is not clustered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<Box<ClusterView>>,
    },
    /// The cluster view changed (cluster nodes only).
    Cluster { view: Box<ClusterView> },
    /// The projected state after event `seq`, whose record digest is `hash`
    /// (all zeros at seq 0). Events follow from `seq + 1`.
    Snapshot {
        seq: u64,
        hash: String,
        #[serde(deserialize_with = "state_via_value")]
        state: Box<State>,
    },
    /// Consecutive records, in seq order.
    Events { records: Vec<WireRecord> },
    /// The runtime's answer to command `id`.
    Reply { id: u64, ok: bool, message: String },
    /// Why the session ends; a close frame follows.
    Error { code: ErrorCode, message: String },
    /// A message type this build does not know (from a newer server): skipped.
    #[serde(other)]
    Unknown,
}

/// The state's maps have integer keys, written as JSON strings. An
/// internally tagged enum buffers its fields in a form that cannot turn those
/// strings back into integers, so the state is read as a JSON value first,
/// whose own deserializer can.
fn state_via_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Box<State>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    serde_json::from_value(value)
        .map(Box::new)
        .map_err(serde::de::Error::custom)
}

/// Machine-readable reasons for an `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The peer speaks another protocol version.
    VersionMismatch,
    /// A frame was not valid JSON of a known message, or came out of order.
    Malformed,
    /// A frame exceeded the size limit.
    TooLarge,
    /// `after_seq` is beyond the server's log (a different or reset server).
    ResumeUnavailable,
    /// The server is shutting down.
    ShuttingDown,
    /// The server could not read its own log.
    Internal,
}

/// One stored event record: its SHA-256 digest and its canonical JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRecord {
    pub hash: String,
    pub body: String,
}

impl WireRecord {
    /// The wire form of a stored record (digest then body, as the store keeps it).
    pub fn from_stored(bytes: &[u8]) -> Result<WireRecord, ProtocolError> {
        if bytes.len() < 32 {
            return Err(ProtocolError::Record("stored record is truncated".into()));
        }
        let body = std::str::from_utf8(&bytes[32..])
            .map_err(|_| ProtocolError::Record("stored record is not UTF-8".into()))?;
        Ok(WireRecord {
            hash: hex::encode(&bytes[..32]),
            body: body.to_string(),
        })
    }

    /// The event, after checking the digest against the body.
    pub fn to_event(&self) -> Result<Event, ProtocolError> {
        let digest = hex::decode(&self.hash)
            .ok()
            .filter(|d| d.len() == 32)
            .ok_or_else(|| ProtocolError::Record("record hash is not 64 hex digits".into()))?;
        let mut stored = digest;
        stored.extend_from_slice(self.body.as_bytes());
        if !Event::check(&stored) {
            return Err(ProtocolError::Record(
                "record body does not match its hash".into(),
            ));
        }
        Event::decode(&stored).map_err(|e| ProtocolError::Record(e.to_string()))
    }
}

/// Why a frame could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the client speaks protocol version {theirs}; this server speaks version {ours}")]
    VersionMismatch { theirs: u64, ours: u32 },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("bad event record: {0}")]
    Record(String),
}

impl ProtocolError {
    /// The `error` code that reports this to the peer.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::TooLarge { .. } => ErrorCode::TooLarge,
            ProtocolError::VersionMismatch { .. } => ErrorCode::VersionMismatch,
            ProtocolError::Malformed(_) | ProtocolError::Record(_) => ErrorCode::Malformed,
        }
    }
}

/// Decodes a client frame. A `hello` of another version is reported as a
/// version mismatch even when the rest of it would not parse, so an old or
/// new client learns why rather than seeing "malformed".
pub fn decode_client(frame: &[u8]) -> Result<ClientMessage, ProtocolError> {
    if frame.len() > MAX_CLIENT_FRAME {
        return Err(ProtocolError::TooLarge {
            size: frame.len(),
            limit: MAX_CLIENT_FRAME,
        });
    }
    let value: serde_json::Value =
        serde_json::from_slice(frame).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if value.get("type").and_then(|t| t.as_str()) == Some("hello")
        && let Some(version) = value.get("version").and_then(|v| v.as_u64())
        && version != u64::from(PROTOCOL_VERSION)
    {
        return Err(ProtocolError::VersionMismatch {
            theirs: version,
            ours: PROTOCOL_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// Decodes a server frame (the client's side).
pub fn decode_server(frame: &[u8]) -> Result<ServerMessage, ProtocolError> {
    if frame.len() > MAX_SERVER_FRAME {
        return Err(ProtocolError::TooLarge {
            size: frame.len(),
            limit: MAX_SERVER_FRAME,
        });
    }
    serde_json::from_slice(frame).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// Encodes a message as the text of one frame.
pub fn encode<M: Serialize>(message: &M) -> String {
    serde_json::to_string(message).expect("protocol messages always serialise")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::event::{ChainHash, EventKind, NewEvent, ResourceId};

    #[test]
    fn hello_and_command_round_trip() {
        for m in [
            ClientMessage::Hello {
                version: PROTOCOL_VERSION,
                after_seq: Some(41),
            },
            ClientMessage::Command {
                id: 7,
                command: Command::Approve {
                    remediation: 12,
                    comment: "ok".into(),
                },
            },
        ] {
            assert_eq!(decode_client(encode(&m).as_bytes()).unwrap(), m);
        }
    }

    #[test]
    fn another_version_is_named_not_called_malformed() {
        let e = decode_client(br#"{"type":"hello","version":2,"capabilities":["x"]}"#).unwrap_err();
        assert_eq!(
            e,
            ProtocolError::VersionMismatch {
                theirs: 2,
                ours: PROTOCOL_VERSION
            }
        );
        assert!(e.to_string().contains("version 2"));
    }

    #[test]
    fn oversized_frames_are_refused_before_parsing() {
        let big = vec![b' '; MAX_CLIENT_FRAME + 1];
        assert_eq!(decode_client(&big).unwrap_err().code(), ErrorCode::TooLarge);
    }

    #[test]
    fn a_client_cannot_smuggle_an_identity() {
        let e = decode_client(
            br#"{"type":"command","id":1,"command":{"command":"rescan"},"by":{"name":"root"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Malformed);
    }

    #[test]
    fn records_round_trip_and_tampering_is_caught() {
        let draft = NewEvent::new(
            chrono::Utc::now(),
            "agent:test",
            EventKind::ResourceGone {
                resource: ResourceId::new("k8s/x/pod/y"),
            },
        );
        let (event, stored) = Event::seal(5, ChainHash::GENESIS, draft);
        let record = WireRecord::from_stored(&stored).unwrap();
        assert_eq!(record.to_event().unwrap(), event);
        let tampered = WireRecord {
            body: record.body.replace("pod/y", "pod/z"),
            ..record.clone()
        };
        assert!(tampered.to_event().is_err());
        let bad_hash = WireRecord {
            hash: "zz".into(),
            ..record
        };
        assert!(bad_hash.to_event().is_err());
    }

    #[test]
    fn a_snapshot_with_integer_keyed_maps_round_trips() {
        let draft = NewEvent::new(
            chrono::Utc::now(),
            "supervisor",
            EventKind::IncidentOpened {
                title: "Down".into(),
                alert: "Down".into(),
                labels: Default::default(),
                severity: crate::event::Severity::High,
                resource: ResourceId::new("target/db"),
                fingerprint: "f".into(),
                alert_seq: 1,
            },
        );
        let (event, _) = Event::seal(2, ChainHash::GENESIS, draft);
        let mut state = State::new();
        state.apply(&event);
        assert_eq!(state.incidents.len(), 1);
        let m = ServerMessage::Snapshot {
            seq: 2,
            hash: event.hash.to_hex(),
            state: Box::new(state),
        };
        assert_eq!(decode_server(encode(&m).as_bytes()).unwrap(), m);
    }

    #[test]
    fn a_welcome_without_a_cluster_reads_as_single_and_unknown_types_are_skipped() {
        // An older server's welcome: no `cluster` field.
        let old = br#"{"type":"welcome","version":1,"principal":"alice","role":"approver","read_only":false,"now":"2026-06-03T10:00:00Z","speed":1.0}"#;
        match decode_server(old).unwrap() {
            ServerMessage::Welcome { cluster, .. } => assert_eq!(cluster, None),
            other => panic!("{other:?}"),
        }
        // A single machine's welcome carries no `cluster` key at all.
        let single = ServerMessage::Welcome {
            version: PROTOCOL_VERSION,
            principal: "alice".into(),
            role: Role::Approver,
            read_only: false,
            now: chrono::Utc::now(),
            speed: 1.0,
            cluster: None,
        };
        assert!(!encode(&single).contains("cluster"));
        // A later server's new message type is skipped, not a fault.
        assert_eq!(
            decode_server(br#"{"type":"weather","sunny":true}"#).unwrap(),
            ServerMessage::Unknown
        );
        let view = crate::cluster::ClusterView {
            site: "eu".into(),
            node: "b".into(),
            role: crate::cluster::NodeRole::Standby,
            lease: None,
            nodes: vec![],
            stream_seq: 4,
            at: chrono::Utc::now(),
        };
        let m = ServerMessage::Cluster {
            view: Box::new(view),
        };
        assert_eq!(decode_server(encode(&m).as_bytes()).unwrap(), m);
    }

    proptest! {
        // Whatever bytes arrive, decoding returns (never panics), and anything
        // it accepts re-encodes to an equal message.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(m) = decode_client(&bytes) {
                prop_assert_eq!(decode_client(encode(&m).as_bytes()).unwrap(), m);
            }
            let _ = decode_server(&bytes);
        }

        // Mutations of a valid frame: flipped, cut or inserted bytes.
        #[test]
        fn mutated_frames_never_panic(
            cut in 0usize..80,
            flip in 0usize..80,
            byte in any::<u8>(),
        ) {
            let good = encode(&ClientMessage::Command {
                id: 3,
                command: Command::Deny { remediation: 9, reason: "no".into() },
            });
            let mut bytes = good.into_bytes();
            let i = flip % bytes.len();
            bytes[i] = byte;
            bytes.truncate(bytes.len().saturating_sub(cut % 8));
            let _ = decode_client(&bytes);
        }
    }
}
