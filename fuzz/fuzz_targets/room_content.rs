//! Room event bodies (`rooms::RoomContent`), from any room member. The
//! first two bytes are the body kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::rooms::RoomContent;

fuzz_target!(|data: &[u8]| {
    let Some((kind, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let kind = u16::from_be_bytes(*kind);
    let Ok(content) = RoomContent::decode(kind, body) else {
        return;
    };
    assert_eq!(content.kind(), kind);
    let encoded = content.encode();
    // A power event's map is re-written sorted and without repeats, so the
    // bytes may differ; the value may not.
    assert_eq!(RoomContent::decode(kind, &encoded).as_ref(), Ok(&content));
    if !matches!(content, RoomContent::Power { .. }) {
        assert_eq!(encoded, body);
    }
    let _ = content.is_shown();
});
