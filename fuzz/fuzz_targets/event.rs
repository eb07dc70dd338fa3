//! Events in their wire form (`log::Event`), as they arrive in `Events`
//! frames, deposits and name records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::log::event::{Event, Header, MAX_BODY, MAX_PARENTS};

fuzz_target!(|data: &[u8]| {
    // The header decoder on its own (stored header bytes are read with it).
    if let Ok(header) = Header::decode(data) {
        assert_eq!(header.encode(), data);
    }
    let Ok(event) = Event::decode(data) else {
        return;
    };
    assert_eq!(event.encode(), data);
    assert_eq!(Event::decode(&event.encode()).as_ref(), Ok(&event));
    let header = event.header();
    assert!(header.parents.len() <= MAX_PARENTS);
    assert!(header.body_len as usize <= MAX_BODY);
    assert!(event.body().is_none_or(|b| b.len() <= MAX_BODY));
    assert_eq!(header.encode(), event.header_bytes());
    // Never valid (no one signs what the fuzzer writes), but must not panic.
    let _ = event.verify();
    let _ = event.log_id();
    let _ = event.without_body().encode();
});
