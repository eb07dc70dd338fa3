//! Sync frames (`sync::Msg`): what any peer on a link can send.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::sync::message::{MAX_EVENTS, MAX_HEADS, MAX_HINTS, MAX_IDS, MAX_RECON, Msg};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Msg::decode(data) else { return };
    // One encoding per value: an accepted frame is its own re-encoding.
    assert_eq!(msg.encode(), data);
    match &msg {
        Msg::Begin { heads, .. } => assert!(heads.len() <= MAX_HEADS),
        Msg::Heads { heads, .. } => assert!(heads.as_ref().is_none_or(|h| h.len() <= MAX_HEADS)),
        Msg::Want { ids, .. } | Msg::Ack { ids, .. } | Msg::Have { ids, .. } => {
            assert!(ids.len() <= MAX_IDS)
        }
        Msg::Events { events, .. } => assert!(events.len() <= MAX_EVENTS),
        Msg::Recon { recon, .. } => assert!(recon.len() <= MAX_RECON),
        Msg::Hints { addrs } | Msg::DeviceHints { addrs, .. } => assert!(addrs.len() <= MAX_HINTS),
        _ => {}
    }
});
