//! The payload inside a mailbox deposit once opened (`decode_events`): any
//! contact holding a delivery token and a prekey writes it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::log::event::MAX_EVENT;
use node_core::mailbox::{MAX_EVENTS, decode_events, encode_events};

fuzz_target!(|data: &[u8]| {
    let Ok(events) = decode_events(data) else {
        return;
    };
    assert!(events.len() <= MAX_EVENTS);
    assert!(events.iter().all(|e| e.len() <= MAX_EVENT));
    let owned: Vec<Vec<u8>> = events.iter().map(|e| e.to_vec()).collect();
    assert_eq!(encode_events(&owned), data);
});
