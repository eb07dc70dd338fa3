//! Account-log entry decoding for every body kind.
#![no_main]
use libfuzzer_sys::fuzz_target;
use node_core::identity::AccountEntry;

fuzz_target!(|data: &[u8]| {
    if let Some((&k, body)) = data.split_first() {
        if let Ok(entry) = AccountEntry::decode(u16::from(k % 4), body) {
            assert_eq!(entry.encode(), body);
        }
    }
});
