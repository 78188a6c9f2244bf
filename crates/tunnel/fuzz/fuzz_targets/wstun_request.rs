//! Feeds arbitrary text to the wstun request and frame parsers: nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s4t_tunnel::wstun;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wstun::classify(Some(text));
        let _ = wstun::parse_new_connection(text);
        let _ = wstun::requested_service(Some(text));
        let _ = wstun::select_subprotocol(text);
    }
});
