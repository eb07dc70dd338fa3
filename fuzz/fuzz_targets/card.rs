//! Contact cards (`kith:card/…`), pasted, scanned or fetched from a
//! nameserver. The first byte picks the form: the raw text, or the rest
//! wrapped as a card URI (so the fuzzer works on the binary card body,
//! not on its base32).
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::identity::card::{CARD_PREFIX, Card, MAX_CARD_DEVICES, MAX_HINT_LEN, MAX_HINTS};
use node_core::wire::to_base32;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let uri = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        format!("{CARD_PREFIX}{}", to_base32(rest))
    };
    let Ok(card) = Card::parse(&uri) else { return };
    assert!(card.devices.len() <= MAX_CARD_DEVICES);
    assert!(card.hints.len() <= MAX_HINTS);
    assert!(card.hints.iter().all(|h| h.len() <= MAX_HINT_LEN));
    assert!(card.devices.contains(&card.signer));
    // Case and surrounding space do not change what a card says.
    assert_eq!(
        Card::parse(&format!(" {}\n", uri.to_uppercase())).ok(),
        Some(card)
    );
});
