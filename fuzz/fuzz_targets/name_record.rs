//! Signed name records, as `kith-named` receives them in a POST body and as
//! the client reads them from nameservers (`names::NameRecord::verify`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::names::{MAX_RECORD_EVENTS, NameRecord};

fuzz_target!(|data: &[u8]| {
    let Ok(record) = NameRecord::verify(data, &[]) else {
        return;
    };
    assert!(record.account_log.len() <= MAX_RECORD_EVENTS);
    assert_eq!(record.bytes, data);
    assert_eq!(record.handle.to_string().parse().ok(), Some(record.handle));
});
