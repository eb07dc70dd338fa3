//! Event and header decoding: any bytes give a value or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use node_core::log::{Event, Header};

fuzz_target!(|data: &[u8]| {
    let _ = Header::decode(data);
    if let Ok(e) = Event::decode(data) {
        let _ = e.verify();
        // Accepted input has exactly one encoding.
        assert_eq!(e.encode(), data);
    }
});
