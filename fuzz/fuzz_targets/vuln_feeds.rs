//! Vulnerability feeds: NVD API 2.0 pages and the Debian Security Tracker dump.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shieldops::agents::security::vulndb::{debian, nvd};

fuzz_target!(|data: &[u8]| {
    let _ = nvd::parse(data, "fuzz-nvd.json");
    let _ = debian::parse(data, "fuzz-debian.json");
});
