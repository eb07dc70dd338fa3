//! The answer to a contact request (`requests::RequestAnswer`), read by
//! the requester from whatever device answered the dial — possibly one a
//! forged card named. Decoded, re-encoded (one encoding per value) and
//! checked as the requester checks it before sending any message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::requests::{ANSWER_KEPT, MAX_ACCOUNT_EVENTS, RequestAnswer};
use node_core::{AccountId, DeviceId};

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = RequestAnswer::decode(data) else {
        return;
    };
    assert!(answer.account_log.len() <= MAX_ACCOUNT_EVENTS);
    assert!(answer.code == ANSWER_KEPT || answer.account_log.is_empty());
    assert_eq!(answer.encode(), data);
    // Against the account its first event would found, and any other.
    if let Some(first) = answer.account_log.first() {
        let account = AccountId::from_bytes(*first.id().as_bytes());
        let _ = answer.proves(account, first.header().author, &[]);
    }
    let _ = answer.proves(
        AccountId::from_bytes([0; 32]),
        DeviceId::from_bytes([0; 32]),
        &answer.account_log,
    );
});
