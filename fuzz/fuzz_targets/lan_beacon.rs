//! LAN discovery beacons (`node_core::lan::Beacon`), as anyone on the
//! local network may send them to the multicast group: decoded within its
//! bounds, and a decoded beacon encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::lan::{Beacon, MAX_BEACON, MAX_PORTS};

fuzz_target!(|data: &[u8]| {
    let Some(beacon) = Beacon::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_BEACON);
    assert!(!beacon.ports.is_empty() && beacon.ports.len() <= MAX_PORTS);
    assert!(!beacon.ports.contains(&0));
    assert_eq!(beacon.encode(), data);
});
