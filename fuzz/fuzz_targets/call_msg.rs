//! Call control messages (`node_core::call::CallMsg`): what a device that
//! dials this one on the call protocol can send.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::call::CallMsg;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = CallMsg::decode(data) else {
        return;
    };
    assert_eq!(msg.encode(), data);
});
