//! Rego bundle loading: a site's policy file is compiled into a gate or
//! refused with an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shieldops::policy::{Bundle, Gate, GateOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut bundle = Bundle::empty();
        bundle.add_policy("fuzz.rego", text);
        let _ = Gate::new(&bundle, GateOptions::default());
    }
});
