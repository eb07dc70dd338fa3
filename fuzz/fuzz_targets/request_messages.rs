//! The messages frame of a contact request (`requests::decode_messages`),
//! sent by the requester — a stranger — after the answer. Decoded and
//! re-encoded (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::requests::{MAX_MESSAGE, MAX_MESSAGES, decode_messages, encode_messages};

fuzz_target!(|data: &[u8]| {
    let Ok(messages) = decode_messages(data) else {
        return;
    };
    assert!(messages.len() <= MAX_MESSAGES);
    assert!(messages.iter().all(|m| m.len() <= MAX_MESSAGE));
    assert_eq!(encode_messages(&messages), data);
});
