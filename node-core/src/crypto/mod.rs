//! `crypto`: the one door to libsodium.
//!
//! Every primitive kith uses is reached through this module, so there is one
//! place to audit, upgrade and test (the shape of Arti's `tor-llcrypto`):
//!
//! - secrets: [`SecretBytes`] (zeroized on drop, redacted `Debug`),
//!   [`CtBytes`] and [`ct_eq`] (constant-time comparison only), randomness.
//! - hashing: domain-separated BLAKE2b-256 ([`hash`], [`Hasher`]).
//! - signatures: domain-separated Ed25519 ([`SigningKey`], [`VerifyingKey`]).
//! - sealing: anonymous X25519 sealed boxes ([`seal`], [`open_sealed`]).
//! - AEAD: XChaCha20-Poly1305-IETF with random nonces ([`aead_seal`]).
//! - streams: `crypto_secretstream_xchacha20poly1305` for files and long
//!   transfers ([`StreamEncryptor`], [`StreamDecryptor`]).
//! - password KDF: argon2id with bounded parameters ([`argon2id`]).
//! - safety numbers: Signal's numeric fingerprint ([`numeric_fingerprint`]).
//!
//! Every secret type zeroizes itself on drop, prints only `TypeName(..)` under
//! `Debug`, and has no `PartialEq`, `Hash` or `Serialize`.
//!
//! Not in this module, deliberately: identities and their encodings
//! (`identity`), wire formats, key storage and file permissions (`store`), and
//! any protocol logic. This module never logs. It offers no raw X25519, no
//! unauthenticated encryption and no SHA-2 beyond the SHA-512 that Signal's
//! safety-number algorithm specifies ([`numeric_fingerprint`]); the only non-domain-separated entry
//! points ([`SigningKey::sign_raw`], [`VerifyingKey::verify_raw`], [`blake2b`],
//! [`aead_encrypt_with_nonce`]) exist for known-answer tests and say so.
//!
//! # Domain separation
//!
//! Signed and hashed inputs are `domain bytes || 0x00 || message`. No domain
//! string contains a NUL byte (checked at compile time and in tests), so the
//! first NUL unambiguously ends the domain: a domain can never be a
//! "prefix-with-NUL" of another, and a message under one domain can never be
//! read as a message under another.

mod aead;
mod error;
mod fingerprint;
mod hash;
mod kdf;
mod seal;
mod secret;
mod sign;
mod stream;

use std::sync::Once;

pub use aead::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, AeadKey, aead_decrypt_with_nonce, aead_encrypt_with_nonce,
    aead_open, aead_seal,
};
pub use error::{CryptoError, SignatureError};
pub use fingerprint::{FINGERPRINT_DIGITS, FINGERPRINT_ITERATIONS, numeric_fingerprint};
pub use hash::{HASH_LEN, HashDomain, Hasher, blake2b, hash, sha256};
pub use kdf::{ARGON2_SALT_LEN, Argon2Params, KdfPurpose, argon2id, derive_key};
pub use seal::{BoxPublicKey, BoxSecretKey, SEAL_OVERHEAD, open_sealed, seal};
pub use secret::{CtBytes, SecretBytes, ct_eq, fill_random, random_bytes};
pub use sign::{SignDomain, Signature, SigningKey, VerifyingKey};
pub use stream::{STREAM_ABYTES, STREAM_HEADER_LEN, StreamDecryptor, StreamEncryptor, StreamKey};

/// Initialises libsodium. Idempotent and cheap after the first call.
///
/// The crate's functions call this themselves before anything that needs an
/// initialised library (randomness, key generation); calling it early at
/// start-up only moves the one-time cost.
///
/// # Panics
///
/// Only if libsodium cannot initialise at all (no usable randomness source),
/// in which case no cryptography is possible.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if libsodium_rs::ensure_init().is_err() {
            panic!("libsodium failed to initialise: no cryptography is possible");
        }
    });
}

/// `domain || 0x00 || msg`, the input that is signed or hashed for `domain`.
fn domain_separated(domain: &str, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 1 + msg.len());
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    out.extend_from_slice(msg);
    out
}

/// True when `s` contains no NUL byte; usable in `const` assertions.
const fn has_no_nul(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0 {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_idempotent() {
        init();
        init();
    }

    #[test]
    fn domain_separated_layout() {
        assert_eq!(domain_separated("ab", b"cd"), b"ab\0cd");
        assert_eq!(domain_separated("ab", b""), b"ab\0");
    }

    #[test]
    fn has_no_nul_detects_nul() {
        assert!(has_no_nul("kith/v1/event"));
        assert!(!has_no_nul("kith\0v1"));
    }
}
