//! LAN discovery beacons (`node_core::lan::Beacon`), as anyone on the
//! local network may send them to the multicast group: decoded within its
//! bounds, a decoded beacon encodes back to the same bytes, and opening its
//! ports under any secret gives at most four, none zero.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::lan::{BEACON_LEN, Beacon, MAX_PORTS};

fuzz_target!(|data: &[u8]| {
    let Some(beacon) = Beacon::decode(data) else {
        return;
    };
    assert_eq!(data.len(), BEACON_LEN);
    assert_eq!(beacon.encode(), data);
    let ports = beacon.ports(&[7; 32]);
    assert!(ports.len() <= MAX_PORTS && !ports.contains(&0));
});
