//! Sealed room call frames (`node_core::call::conf::SenderKeys::open`):
//! what a participant (or anyone on the path) can put in a media
//! datagram. The input is cut into frames at 0xff bytes and each is
//! opened in turn under two held keys (a current and a previous one), so
//! the replay window and key retirement see sequences, not one frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::call::conf::{SenderKey, SenderKeys};
use node_core::crypto::SecretBytes;

fuzz_target!(|data: &[u8]| {
    let mut keys = SenderKeys::default();
    keys.add(1, SecretBytes::new([1; 32]));
    keys.add(2, SecretBytes::new([2; 32]));
    // A real frame first, so opening succeeds at least once.
    let mut real = SenderKey::generate(3);
    if let node_core::call::conf::ConfMsg::Key { kid, key } = real.announce() {
        keys.add(kid, key);
    }
    let header = [0x10u8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
    let good = real.seal(&header, b"frame");
    assert!(keys.open(&header, &good).is_ok());
    for piece in data.split(|b| *b == 0xff) {
        let (h, sealed) = piece.split_at(piece.len().min(12));
        let _ = keys.open(h, sealed);
    }
    // The good frame never opens twice.
    assert!(keys.open(&header, &good).is_err());
});
