//! Account-log entries (`identity::AccountEntry`), the bodies of account
//! events from any contact. The first two bytes are the body kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::identity::AccountEntry;

fuzz_target!(|data: &[u8]| {
    let Some((kind, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let kind = u16::from_be_bytes(*kind);
    let Ok(entry) = AccountEntry::decode(kind, body) else {
        return;
    };
    assert_eq!(entry.kind(), kind);
    assert_eq!(entry.encode(), body);
});
