//! Mailbox deposits: the sealed envelope anyone holding a delivery token can
//! leave (`open_deposit`), and the payload inside (`decode_events`). The
//! prekey is fixed, so the fuzzer can at best hit a slot that does not open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::crypto::{BoxSecretKey, SecretBytes};
use node_core::log::event::MAX_EVENT;
use node_core::mailbox::{MAX_EVENTS, decode_events, encode_events, open_deposit};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let key = BoxSecretKey::from_bytes(SecretBytes::new([7; 32]));
        let _ = open_deposit(&[&key], rest);
        return;
    }
    let Ok(events) = decode_events(rest) else {
        return;
    };
    assert!(events.len() <= MAX_EVENTS);
    assert!(events.iter().all(|e| e.len() <= MAX_EVENT));
    let owned: Vec<Vec<u8>> = events.iter().map(|e| e.to_vec()).collect();
    assert_eq!(encode_events(&owned), rest);
});
