//! Contact card parsing, from text and from raw payload bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use node_core::identity::Card;

fuzz_target!(|data: &[u8]| {
    let _ = Card::parse(&String::from_utf8_lossy(data));
    let _ = Card::parse(&format!("kith:card/{}", node_core::wire::to_base32(data)));
});
