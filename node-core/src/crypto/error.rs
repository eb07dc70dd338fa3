//! The errors of the crypto module.
//!
//! They are deliberately coarse where detail would help an attacker: a failed
//! decryption says only [`CryptoError::DecryptFailed`], never which check
//! failed. Lengths, which are public, are reported precisely.

use thiserror::Error;

/// Why a cryptographic operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication failed: wrong key, tampered or truncated ciphertext,
    /// wrong associated data, or a sealed box meant for someone else.
    #[error("decryption failed: wrong key or tampered data")]
    DecryptFailed,
    /// An input of fixed size had the wrong length.
    #[error("{what}: expected {expected} bytes, got {got}")]
    BadLength {
        /// What the input was.
        what: &'static str,
        /// The only accepted length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// An input was shorter than the smallest valid one (e.g. a ciphertext
    /// without room for its nonce and tag).
    #[error("{what}: at least {min} bytes needed, got {got}")]
    TooShort {
        /// What the input was.
        what: &'static str,
        /// The smallest accepted length.
        min: usize,
        /// The length received.
        got: usize,
    },
    /// Key material that is not a usable key (e.g. a low-order curve point).
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// Out-of-range parameters, typically argon2 settings read from a file.
    #[error("bad parameters: {0}")]
    BadParams(String),
    /// A secretstream chunk arrived after the chunk tagged final.
    #[error("stream already finished: data after the final chunk")]
    StreamFinished,
}

/// A signature did not verify.
///
/// Carries no detail on purpose: a malformed key, a malformed signature and a
/// valid signature over other bytes are the same failure to the caller.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum SignatureError {
    /// The signature is not valid for this key, domain and message.
    #[error("invalid signature")]
    Invalid,
}
