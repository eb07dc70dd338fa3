//! Room call control messages (`node_core::call::conf::ConfMsg`): what a
//! device that dials this one for a room's call can send.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::call::conf::ConfMsg;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = ConfMsg::decode(data) else {
        return;
    };
    assert_eq!(msg.encode(), data);
});
