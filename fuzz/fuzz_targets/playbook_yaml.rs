//! Playbook YAML: any text is a playbook or an error naming where, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = shieldops::playbook::Playbook::parse("fuzz.yaml", text);
    }
});
