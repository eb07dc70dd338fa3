//! The payload inside a mailbox deposit once opened (`decode_events`): any
//! contact holding a delivery token and a prekey writes it. It is signed
//! by the depositing device for one account (here `[7; 32]`, as the seeds).
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::log::event::MAX_EVENT;
use node_core::mailbox::{MAX_EVENTS, decode_events};

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = decode_events(&[7; 32], data) else {
        return;
    };
    assert!(payload.events.len() <= MAX_EVENTS);
    assert!(payload.events.iter().all(|e| e.len() <= MAX_EVENT));
    // Accepted only with a valid signature: for another account it fails.
    assert!(decode_events(&[8; 32], data).is_err());
});
