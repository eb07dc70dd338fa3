//! XChaCha20-Poly1305-IETF authenticated encryption with associated data.
//!
//! [`aead_seal`] draws a random 24-byte nonce per message (large enough that
//! random nonces never collide in practice) and returns
//! `nonce || ciphertext || tag`; [`aead_open`] takes that back. The
//! explicit-nonce functions exist for known-answer tests.

use std::fmt;

use libsodium_rs::crypto_aead::xchacha20poly1305 as xchacha;

use super::{CryptoError, SecretBytes, random_bytes};

/// Length of an XChaCha20-Poly1305 nonce.
pub const AEAD_NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
pub const AEAD_TAG_LEN: usize = 16;

const _: () = assert!(AEAD_NONCE_LEN == xchacha::NPUBBYTES && AEAD_TAG_LEN == xchacha::ABYTES);

/// A 32-byte AEAD key. Zeroized on drop; `Debug` prints `AeadKey(..)`.
pub struct AeadKey(SecretBytes<32>);

impl AeadKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        AeadKey(SecretBytes::random())
    }

    /// Uses `bytes` as the key.
    pub fn from_bytes(bytes: SecretBytes<32>) -> Self {
        AeadKey(bytes)
    }

    /// The key bytes, e.g. to wrap them for storage.
    pub fn as_secret(&self) -> &SecretBytes<32> {
        &self.0
    }

    /// A libsodium key object; it zeroizes itself when dropped.
    fn sodium_key(&self) -> xchacha::Key {
        xchacha::Key::from(*self.0.as_bytes())
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey(..)")
    }
}

/// Encrypts `msg` under a fresh random nonce, authenticating `ad` too.
///
/// Returns `nonce || ciphertext || tag`, i.e. `msg.len() + 40` bytes.
pub fn aead_seal(key: &AeadKey, ad: &[u8], msg: &[u8]) -> Vec<u8> {
    let nonce: [u8; AEAD_NONCE_LEN] = random_bytes();
    let sealed = aead_encrypt_with_nonce(key, &nonce, ad, msg);
    let mut out = Vec::with_capacity(AEAD_NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Opens the output of [`aead_seal`] for the same key and `ad`.
pub fn aead_open(key: &AeadKey, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let min = AEAD_NONCE_LEN + AEAD_TAG_LEN;
    if sealed.len() < min {
        return Err(CryptoError::TooShort {
            what: "AEAD message",
            min,
            got: sealed.len(),
        });
    }
    let (nonce, ct) = sealed.split_at(AEAD_NONCE_LEN);
    let mut nonce_arr = [0u8; AEAD_NONCE_LEN];
    nonce_arr.copy_from_slice(nonce);
    aead_decrypt_with_nonce(key, &nonce_arr, ad, ct)
}

/// Encrypts with a caller-chosen nonce; returns `ciphertext || tag`.
///
/// For known-answer tests. Reusing a nonce with the same key destroys
/// confidentiality and authenticity: protocol code uses [`aead_seal`].
pub fn aead_encrypt_with_nonce(
    key: &AeadKey,
    nonce: &[u8; AEAD_NONCE_LEN],
    ad: &[u8],
    msg: &[u8],
) -> Vec<u8> {
    let nonce = xchacha::Nonce::from_bytes(*nonce);
    match xchacha::encrypt(msg, Some(ad), &nonce, &key.sodium_key()) {
        Ok(ct) => ct,
        // Only fails for messages beyond 2^64 bytes.
        Err(e) => panic!("XChaCha20-Poly1305 encryption failed: {e}"),
    }
}

/// Decrypts `ciphertext || tag` made with `nonce`; the inverse of
/// [`aead_encrypt_with_nonce`].
pub fn aead_decrypt_with_nonce(
    key: &AeadKey,
    nonce: &[u8; AEAD_NONCE_LEN],
    ad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if ct.len() < AEAD_TAG_LEN {
        return Err(CryptoError::TooShort {
            what: "AEAD ciphertext",
            min: AEAD_TAG_LEN,
            got: ct.len(),
        });
    }
    let nonce = xchacha::Nonce::from_bytes(*nonce);
    xchacha::decrypt(ct, Some(ad), &nonce, &key.sodium_key())
        .map_err(|_| CryptoError::DecryptFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_ad() {
        let key = AeadKey::generate();
        let sealed = aead_seal(&key, b"header", b"body");
        assert_eq!(sealed.len(), 4 + AEAD_NONCE_LEN + AEAD_TAG_LEN);
        assert_eq!(
            aead_open(&key, b"header", &sealed).ok().as_deref(),
            Some(&b"body"[..])
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let key = AeadKey::generate();
        let (a, b) = (aead_seal(&key, b"", b"same"), aead_seal(&key, b"", b"same"));
        assert_ne!(a[..AEAD_NONCE_LEN], b[..AEAD_NONCE_LEN]);
    }

    #[test]
    fn wrong_ad_key_or_any_flipped_bit_fails() {
        let key = AeadKey::generate();
        let sealed = aead_seal(&key, b"ad", b"message");
        let fail = |r: Result<Vec<u8>, CryptoError>| matches!(r, Err(CryptoError::DecryptFailed));
        assert!(fail(aead_open(&key, b"AD", &sealed)));
        assert!(fail(aead_open(&AeadKey::generate(), b"ad", &sealed)));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                fail(aead_open(&key, b"ad", &bad)),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn truncated_input_fails() {
        let key = AeadKey::generate();
        let sealed = aead_seal(&key, b"", b"message");
        assert!(matches!(
            aead_open(&key, b"", &sealed[..39]),
            Err(CryptoError::TooShort {
                min: 40,
                got: 39,
                ..
            })
        ));
        assert!(matches!(
            aead_open(&key, b"", &sealed[..sealed.len() - 1]),
            Err(CryptoError::DecryptFailed)
        ));
    }
}
