//! Stored event-log records (digest ‖ canonical JSON), as read back from disk
//! or received by an attached console.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shieldops::event::Event;

fuzz_target!(|data: &[u8]| {
    let intact = Event::check(data);
    if let Ok(event) = Event::decode(data) {
        let _ = event.to_json();
        let _ = intact;
    }
});
