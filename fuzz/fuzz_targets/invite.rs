//! Invite codes (`kith:join/…`) typed or pasted on a joining device. The
//! first byte picks the form: raw text, or the rest wrapped as a code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::sync::join::{Invite, JOIN_PREFIX};
use node_core::wire::to_base32;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let code = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        format!("{JOIN_PREFIX}{}", to_base32(rest))
    };
    let Ok(invite) = Invite::parse(&code) else {
        return;
    };
    assert!(invite.hints.len() <= 8);
    // Addresses are re-written in their normal form, so compare decoded values.
    let again = match Invite::parse(&invite.to_code()) {
        Ok(again) => again,
        Err(e) => panic!("a parsed invite does not parse again: {e}"),
    };
    assert_eq!(again.account, invite.account);
    assert_eq!(again.device, invite.device);
    assert_eq!(again.hints, invite.hints);
    assert_eq!(again.secret.as_bytes(), invite.secret.as_bytes());
    assert_eq!(again.expires, invite.expires);
});
