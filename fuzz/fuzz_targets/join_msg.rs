//! Messages on the join connection (`sync::join::JoinMsg`), from a device
//! that holds an invite code (or from whoever dials the inviting device).
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::identity::entry::check_name;
use node_core::sync::join::JoinMsg;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = JoinMsg::decode(data) else {
        return;
    };
    assert_eq!(msg.encode(), data);
    match &msg {
        JoinMsg::Request { name, .. } => assert!(check_name(name).is_ok()),
        JoinMsg::Refused(why) => assert!(why.len() <= 256),
        JoinMsg::Accepted => {}
    }
});
