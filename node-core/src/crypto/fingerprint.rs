//! Signal's numeric fingerprint ("safety number"), as libsignal computes
//! it: per party, SHA-512 iterated over `version ‖ key ‖ identifier`, the
//! first 30 bytes read as six 5-digit groups; the two parties' 30 digits
//! are joined smaller first, so both sides show the same 60 digits.
//!
//! This is the one place SHA-512 is used: it is what the published
//! algorithm (and its test vectors) specify.

use libsodium_rs::crypto_hash::sha512;

/// libsignal's iteration count.
pub const FINGERPRINT_ITERATIONS: u32 = 5200;
/// Digits in a displayed fingerprint.
pub const FINGERPRINT_DIGITS: usize = 60;

/// The 30 digits of one party.
fn party_digits(iterations: u32, identifier: &[u8], key: &[u8]) -> String {
    super::init();
    // Version 0 of the hash input, as a big-endian u16.
    let mut hash: Vec<u8> = [0u8, 0u8]
        .iter()
        .chain(key)
        .chain(identifier)
        .copied()
        .collect();
    for _ in 0..iterations {
        let mut state = sha512::State::new();
        state.update(&hash);
        state.update(key);
        hash = state.finalize().to_vec();
    }
    hash[..30]
        .chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect()
}

/// The displayable fingerprint of a conversation between a local and a
/// remote party, each given as (stable identifier, public key bytes). Both
/// sides compute the same 60 digits.
pub fn numeric_fingerprint(
    iterations: u32,
    local: (&[u8], &[u8]),
    remote: (&[u8], &[u8]),
) -> String {
    let l = party_digits(iterations, local.0, local.1);
    let r = party_digits(iterations, remote.0, remote.1);
    if l <= r { l + &r } else { r + &l }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libsignal's own vector (libsignal-protocol-c `test_fingerprint.c`,
    /// `test_vectors_v0`/`v1`; the same numbers in libsignal's Rust and
    /// Java tests): two serialized Curve25519 identity keys, phone numbers
    /// as identifiers, 5200 iterations.
    #[test]
    fn libsignal_vector() {
        let alice: [u8; 33] = [
            0x05, 0x06, 0x86, 0x3b, 0xc6, 0x6d, 0x02, 0xb4, 0x0d, 0x27, 0xb8, 0xd4, 0x9c, 0xa7,
            0xc0, 0x9e, 0x92, 0x39, 0x23, 0x6f, 0x9d, 0x7d, 0x25, 0xd6, 0xfc, 0xca, 0x5c, 0xe1,
            0x3c, 0x70, 0x64, 0xd8, 0x68,
        ];
        let bob: [u8; 33] = [
            0x05, 0xf7, 0x81, 0xb6, 0xfb, 0x32, 0xfe, 0xd9, 0xba, 0x1c, 0xf2, 0xde, 0x97, 0x8d,
            0x4d, 0x5d, 0xa2, 0x8d, 0xc3, 0x40, 0x46, 0xae, 0x81, 0x44, 0x02, 0xb5, 0xc0, 0xdb,
            0xd9, 0x6f, 0xda, 0x90, 0x7b,
        ];
        let expected = "300354477692869396892869876765458257569162576843440918079131";
        let a = numeric_fingerprint(
            FINGERPRINT_ITERATIONS,
            (b"+14152222222", &alice),
            (b"+14153333333", &bob),
        );
        let b = numeric_fingerprint(
            FINGERPRINT_ITERATIONS,
            (b"+14153333333", &bob),
            (b"+14152222222", &alice),
        );
        assert_eq!(a, expected);
        assert_eq!(b, expected);
    }

    #[test]
    fn a_different_key_or_identifier_changes_the_number() {
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        let base = numeric_fingerprint(1024, (b"a", &k1), (b"b", &k2));
        assert_eq!(base.len(), FINGERPRINT_DIGITS);
        assert_ne!(
            base,
            numeric_fingerprint(1024, (b"a", &k1), (b"b", &[3u8; 32]))
        );
        assert_ne!(base, numeric_fingerprint(1024, (b"a", &k1), (b"c", &k2)));
    }
}
