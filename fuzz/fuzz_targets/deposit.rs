//! Mailbox deposits as the owner's devices collect them: the sealed
//! envelope anyone holding a delivery token can leave (`open_deposit`).
//! The prekey is fixed; the seeds are sealed to it, so mutations of the
//! slots and body are tried against a key that opens one of them.
//! Slow (an X25519 operation per slot): see docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::crypto::{BoxSecretKey, SecretBytes};
use node_core::mailbox::{MAX_DEPOSIT, open_deposit};
use std::sync::LazyLock;

static PREKEY: LazyLock<BoxSecretKey> =
    LazyLock::new(|| BoxSecretKey::from_bytes(SecretBytes::new([7; 32])));

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(payload)) = open_deposit(&[&PREKEY], data) {
        assert!(payload.len() <= MAX_DEPOSIT);
    }
});
