//! Anonymous sealed boxes (`crypto_box_seal`): X25519 + XSalsa20-Poly1305.
//!
//! Anyone holding a [`BoxPublicKey`] can [`seal`] a message that only the
//! holder of the matching [`BoxSecretKey`] can [`open_sealed`]. The sender is
//! anonymous (a fresh ephemeral key per message) and the box is not
//! authenticated to any sender: sign the contents if the recipient must know
//! who sent them.

use std::fmt;

use libsodium_rs::crypto_box;
use libsodium_rs::crypto_scalarmult::curve25519;

use super::{CryptoError, SecretBytes, init};

/// Bytes a sealed box adds to its message (ephemeral key + tag).
pub const SEAL_OVERHEAD: usize = crypto_box::SEALBYTES;

/// Any fixed non-zero scalar: multiplying a small-order point by it gives the
/// all-zero output that libsodium refuses, which is how such points are found.
const PROBE_SCALAR: [u8; 32] = [0x5a; 32];

/// An X25519 public key that sealed boxes can be addressed to.
///
/// Construction rejects the small-order points for which sealing would fail,
/// so [`seal`] to a `BoxPublicKey` always succeeds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BoxPublicKey([u8; 32]);

impl BoxPublicKey {
    /// Parses 32 bytes, rejecting small-order points (e.g. all zeros).
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, CryptoError> {
        curve25519::scalarmult(&PROBE_SCALAR, &bytes)
            .map_err(|_| CryptoError::InvalidKey("X25519 public key has small order"))?;
        Ok(BoxPublicKey(bytes))
    }

    /// The encoded key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// An X25519 secret key. Zeroized on drop; `Debug` prints `BoxSecretKey(..)`.
pub struct BoxSecretKey {
    secret: crypto_box::SecretKey,
    public: BoxPublicKey,
}

impl BoxSecretKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        BoxSecretKey::from_bytes(SecretBytes::random())
    }

    /// The key with this 32-byte scalar (as stored by [`BoxSecretKey::to_bytes`]).
    pub fn from_bytes(scalar: SecretBytes<32>) -> Self {
        init();
        let public = match curve25519::scalarmult_base(scalar.as_bytes()) {
            Ok(public) => public,
            // crypto_scalarmult_curve25519_base clamps and has no failure path.
            Err(e) => panic!("X25519 base point multiplication failed: {e}"),
        };
        BoxSecretKey {
            secret: crypto_box::SecretKey::from_bytes_exact(*scalar.as_bytes()),
            public: BoxPublicKey(public),
        }
    }

    /// The 32-byte scalar, for storage.
    pub fn to_bytes(&self) -> SecretBytes<32> {
        let mut out = SecretBytes::new([0u8; 32]);
        out.expose_mut().copy_from_slice(self.secret.as_bytes());
        out
    }

    /// The matching public key.
    pub fn public_key(&self) -> BoxPublicKey {
        self.public
    }
}

impl fmt::Debug for BoxSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxSecretKey(..)")
    }
}

/// Seals `msg` to `to`. The output is [`SEAL_OVERHEAD`] bytes longer.
pub fn seal(to: &BoxPublicKey, msg: &[u8]) -> Vec<u8> {
    init();
    let public = crypto_box::PublicKey::from_bytes_exact(to.0);
    match crypto_box::seal_box(msg, &public) {
        Ok(sealed) => sealed,
        // Only fails for small-order keys, which BoxPublicKey cannot hold.
        Err(e) => panic!("crypto_box_seal failed for a validated key: {e}"),
    }
}

/// Opens a box sealed to `sk`'s public key.
///
/// Fails with [`CryptoError::TooShort`] for input shorter than
/// [`SEAL_OVERHEAD`], and [`CryptoError::DecryptFailed`] for anything that was
/// not sealed to this key or was altered.
pub fn open_sealed(sk: &BoxSecretKey, ct: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if ct.len() < SEAL_OVERHEAD {
        return Err(CryptoError::TooShort {
            what: "sealed box",
            min: SEAL_OVERHEAD,
            got: ct.len(),
        });
    }
    let public = crypto_box::PublicKey::from_bytes_exact(sk.public.0);
    crypto_box::open_sealed_box(ct, &public, &sk.secret).map_err(|_| CryptoError::DecryptFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let sk = BoxSecretKey::generate();
        let ct = seal(&sk.public_key(), b"for your eyes only");
        assert_eq!(ct.len(), 18 + SEAL_OVERHEAD);
        assert_eq!(
            open_sealed(&sk, &ct).ok().as_deref(),
            Some(&b"for your eyes only"[..])
        );
    }

    #[test]
    fn wrong_key_and_tamper_fail() {
        let sk = BoxSecretKey::generate();
        let other = BoxSecretKey::generate();
        let mut ct = seal(&sk.public_key(), b"m");
        assert!(matches!(
            open_sealed(&other, &ct),
            Err(CryptoError::DecryptFailed)
        ));
        let last = ct.len() - 1;
        ct[last] ^= 1;
        assert!(matches!(
            open_sealed(&sk, &ct),
            Err(CryptoError::DecryptFailed)
        ));
    }

    #[test]
    fn short_input_is_rejected() {
        let sk = BoxSecretKey::generate();
        assert!(matches!(
            open_sealed(&sk, &[0u8; 47]),
            Err(CryptoError::TooShort {
                min: 48,
                got: 47,
                ..
            })
        ));
    }

    #[test]
    fn small_order_public_keys_are_rejected() {
        assert!(BoxPublicKey::from_bytes([0u8; 32]).is_err());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(BoxPublicKey::from_bytes(one).is_err());
        let real = BoxSecretKey::generate().public_key();
        assert_eq!(BoxPublicKey::from_bytes(*real.as_bytes()).ok(), Some(real));
    }

    #[test]
    fn secret_round_trip() {
        let sk = BoxSecretKey::generate();
        let again = BoxSecretKey::from_bytes(sk.to_bytes());
        assert_eq!(sk.public_key(), again.public_key());
    }
}
