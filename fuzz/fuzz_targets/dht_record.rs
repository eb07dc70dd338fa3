//! DHT address records (`node_core::dht::decode_record`), as anyone can
//! file under a device's key (the signature holds, the value is theirs):
//! read within bounds; what is read encodes back to a record that reads
//! the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::dht::{MAX_ADDRS, decode_record, encode_record};

fuzz_target!(|data: &[u8]| {
    let Some(addrs) = decode_record(data) else {
        return;
    };
    assert!(addrs.len() <= MAX_ADDRS);
    assert!(addrs.iter().all(|a| a.port() != 0 && !a.ip().is_unspecified()));
    if let Some(again) = encode_record(&addrs) {
        assert_eq!(decode_record(&again), Some(addrs));
    }
});
