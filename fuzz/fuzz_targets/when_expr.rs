//! `when:` expressions: parsing, then evaluating against no facts (all unknown).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shieldops::playbook::Facts;
use shieldops::playbook::expr::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(expr) = parse(text)
    {
        let _ = expr.eval(&Facts::default());
    }
});
