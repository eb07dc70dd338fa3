//! Room links (`kith:room/…`), pasted by anyone. The first byte picks the
//! form: raw text, or the rest wrapped as a link.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::node::rooms::{ROOM_LINK_PREFIX, RoomLink};
use node_core::wire::to_base32;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let uri = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        format!("{ROOM_LINK_PREFIX}{}", to_base32(rest))
    };
    let Ok(link) = RoomLink::parse(&uri) else {
        return;
    };
    assert!(link.devices.len() <= 8);
    assert!(link.devices.iter().all(|(_, a)| a.len() <= 8));
    assert_eq!(RoomLink::parse(&link.to_uri()).ok(), Some(link));
});
