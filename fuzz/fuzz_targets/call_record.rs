//! Call records (`node_core::call::CallRecord`): the body of a `call`
//! event a contact's device writes into the conversation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::call::record::{CallRecord, MAX_DURATION_MS, Outcome};

fuzz_target!(|data: &[u8]| {
    let Ok(record) = CallRecord::decode(data) else {
        return;
    };
    assert_eq!(record.encode(), data);
    assert!(record.duration_ms <= MAX_DURATION_MS);
    assert_eq!(record.outcome == Outcome::Answered, record.answered_by.is_some());
    // What `kith log` shows is built from it without failing.
    assert!(!record.describe().is_empty());
});
