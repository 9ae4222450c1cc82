//! WebSocket protocol frames, both directions: decoding never panics, and a
//! frame that decodes re-encodes to something that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shieldops::remote::protocol::{decode_client, decode_server, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode_client(data) {
        let again = encode(&message);
        assert_eq!(decode_client(again.as_bytes()).ok(), Some(message));
    }
    if let Ok(message) = decode_server(data) {
        let _ = encode(&message);
    }
});
