//! Alertmanager webhook payloads (what an operator-token holder posts).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shieldops::remote::alertmanager::parse(data);
});
