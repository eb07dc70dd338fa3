//! Ed25519 signatures with domain separation.
//!
//! [`SigningKey::sign`] signs `domain || 0x00 || msg` for one of the
//! [`SignDomain`] constants, so a signature made for one purpose (an event, a
//! push wake-up, a mailbox challenge) can never be replayed as another. The
//! signatures are plain RFC 8032 Ed25519 over that prefixed input, checkable
//! by any Ed25519 implementation.

use std::fmt;

use libsodium_rs::crypto_sign;
use zeroize::Zeroize;

use super::seal::{BoxPublicKey, BoxSecretKey};
use super::{CryptoError, SecretBytes, SignatureError, domain_separated, has_no_nul, init};

/// The purpose a signature is made for. Only the constants below exist.
///
/// Domain strings must never contain NUL: the `0x00` separator is what keeps
/// one domain from being a prefix-with-NUL of another (checked at compile time
/// and over [`SignDomain::ALL`] in tests).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SignDomain(&'static str);

impl SignDomain {
    /// A log event.
    pub const EVENT: SignDomain = SignDomain("kith/v1/event");
    /// A contact card.
    pub const CARD: SignDomain = SignDomain("kith/v1/card");
    /// A device's request to join an account.
    pub const JOIN: SignDomain = SignDomain("kith/v1/join-account");
    /// A push wake-up registration or request.
    pub const WAKEUP: SignDomain = SignDomain("kith/v1/push-wakeup");
    /// The answer to a mailbox server's challenge.
    pub const MAILBOX: SignDomain = SignDomain("kith/v1/mailbox-challenge");
    /// A binding between a name and a key.
    pub const NAME: SignDomain = SignDomain("kith/v1/name-binding");
    /// A device's X25519 prekey for mailbox deposits.
    pub const PREKEY: SignDomain = SignDomain("kith/v1/mailbox-prekey");
    /// A deposit's payload, signed by the device that deposits it.
    pub const DEPOSIT: SignDomain = SignDomain("kith/v1/mailbox-deposit");

    /// Every signature domain; a new constant must be added here too.
    pub const ALL: &'static [SignDomain] = &[
        SignDomain::EVENT,
        SignDomain::CARD,
        SignDomain::JOIN,
        SignDomain::WAKEUP,
        SignDomain::MAILBOX,
        SignDomain::NAME,
        SignDomain::PREKEY,
        SignDomain::DEPOSIT,
    ];

    /// The domain string.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

const _: () = {
    let mut i = 0;
    while i < SignDomain::ALL.len() {
        assert!(has_no_nul(SignDomain::ALL[i].0), "sign domain contains NUL");
        i += 1;
    }
};

/// An Ed25519 signing key. Zeroized on drop; `Debug` prints `SigningKey(..)`.
pub struct SigningKey {
    secret: crypto_sign::SecretKey,
    public: VerifyingKey,
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        SigningKey::from_seed(&SecretBytes::random())
    }

    /// The key derived from a 32-byte seed (the RFC 8032 "secret key").
    pub fn from_seed(seed: &SecretBytes<32>) -> Self {
        init();
        let pair = match crypto_sign::keypair_from_seed(seed.as_bytes()) {
            Ok(pair) => pair,
            // crypto_sign_seed_keypair cannot fail for a 32-byte seed.
            Err(e) => panic!("Ed25519 key derivation from a seed failed: {e}"),
        };
        let (public, secret) = pair.into_tuple();
        SigningKey {
            secret,
            public: VerifyingKey(*public.as_bytes()),
        }
    }

    /// The 32-byte seed this key was derived from, for storage.
    pub fn seed(&self) -> SecretBytes<32> {
        let mut seed = SecretBytes::new([0u8; 32]);
        seed.expose_mut()
            .copy_from_slice(&self.secret.as_bytes()[..32]);
        seed
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// Signs `domain || 0x00 || msg`.
    pub fn sign(&self, domain: SignDomain, msg: &[u8]) -> Signature {
        self.sign_raw(&domain_separated(domain.0, msg))
    }

    /// Plain Ed25519 over `msg` with NO domain separation.
    ///
    /// Only for known-answer tests against published vectors: protocol code
    /// must use [`SigningKey::sign`], or a signature could be replayed in
    /// another context.
    pub fn sign_raw(&self, msg: &[u8]) -> Signature {
        match crypto_sign::sign_detached(msg, &self.secret) {
            Ok(sig) => Signature(sig),
            // crypto_sign_detached has no failure path for a valid key.
            Err(e) => panic!("Ed25519 signing failed: {e}"),
        }
    }

    /// Ed25519 over a kith DHT record's BEP 44 signable bytes (the
    /// Mainline DHT's format, `4:salt<len>:<salt>3:seqi<seq>e1:v<len>:<value>`,
    /// always with kith's salt [`crate::dht::SALT`]), built here from its
    /// parts, so no other message can be signed this way: no kith domain
    /// (`kith/…`), TLS signature input or salt-less record (a pkarr record
    /// for the same key, which other iroh software would believe) starts as
    /// these bytes do.
    #[cfg(feature = "node")]
    pub(crate) fn sign_bep44(&self, seq: i64, value: &[u8]) -> Signature {
        let salt = crate::dht::SALT;
        let mut signable = Vec::with_capacity(value.len() + 64);
        signable.extend_from_slice(format!("4:salt{}:", salt.len()).as_bytes());
        signable.extend_from_slice(salt);
        signable.extend_from_slice(format!("3:seqi{seq}e1:v{}:", value.len()).as_bytes());
        signable.extend_from_slice(value);
        self.sign_raw(&signable)
    }

    /// The X25519 secret key for the same identity
    /// (`crypto_sign_ed25519_sk_to_curve25519`), to open sealed boxes sent to
    /// [`VerifyingKey::to_box_public`].
    pub fn to_box_secret(&self) -> BoxSecretKey {
        let mut scalar = match crypto_sign::ed25519_sk_to_curve25519(&self.secret) {
            Ok(scalar) => scalar,
            // The conversion hashes the seed; it has no failure path.
            Err(e) => panic!("Ed25519 to X25519 secret key conversion failed: {e}"),
        };
        let key = BoxSecretKey::from_bytes(SecretBytes::new(scalar));
        scalar.zeroize();
        key
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct VerifyingKey([u8; 32]);

impl VerifyingKey {
    /// Wraps 32 bytes. Any bytes are accepted; a key that is not a valid
    /// point simply never verifies anything.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        VerifyingKey(bytes)
    }

    /// The encoded key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks a signature over `domain || 0x00 || msg`.
    pub fn verify(
        &self,
        domain: SignDomain,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), SignatureError> {
        self.verify_raw(&domain_separated(domain.0, msg), sig)
    }

    /// Checks a plain Ed25519 signature over `msg` with NO domain separation.
    ///
    /// Only for known-answer tests against published vectors: protocol code
    /// must use [`VerifyingKey::verify`].
    pub fn verify_raw(&self, msg: &[u8], sig: &Signature) -> Result<(), SignatureError> {
        let public = crypto_sign::PublicKey::from_bytes_exact(self.0);
        if crypto_sign::verify_detached(&sig.0, msg, &public) {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }

    /// The X25519 public key for the same identity
    /// (`crypto_sign_ed25519_pk_to_curve25519`).
    ///
    /// Fails for bytes that are not a valid, non-small-order Ed25519 point.
    pub fn to_box_public(&self) -> Result<BoxPublicKey, CryptoError> {
        let public = crypto_sign::PublicKey::from_bytes_exact(self.0);
        let converted = crypto_sign::ed25519_pk_to_curve25519(&public)
            .map_err(|_| CryptoError::InvalidKey("Ed25519 key is not a valid curve point"))?;
        BoxPublicKey::from_bytes(converted)
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Wraps 64 bytes; validity is only known after verification.
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Signature(bytes)
    }

    /// The encoded signature, by value.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// The encoded signature.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip_per_domain() {
        let key = SigningKey::generate();
        let vk = key.verifying_key();
        for domain in SignDomain::ALL {
            let sig = key.sign(*domain, b"hello");
            assert_eq!(vk.verify(*domain, b"hello", &sig), Ok(()));
            assert_eq!(
                vk.verify(*domain, b"hellO", &sig),
                Err(SignatureError::Invalid)
            );
        }
    }

    #[test]
    fn signature_for_one_domain_fails_under_every_other() {
        let key = SigningKey::generate();
        let vk = key.verifying_key();
        for a in SignDomain::ALL {
            let sig = key.sign(*a, b"payload");
            for b in SignDomain::ALL.iter().filter(|b| *b != a) {
                assert_eq!(
                    vk.verify(*b, b"payload", &sig),
                    Err(SignatureError::Invalid)
                );
            }
            // Nor does it verify as a raw signature over the bare message.
            assert_eq!(
                vk.verify_raw(b"payload", &sig),
                Err(SignatureError::Invalid)
            );
        }
    }

    #[test]
    fn domain_signature_is_raw_signature_over_prefixed_message() {
        let key = SigningKey::generate();
        let sig = key.sign(SignDomain::CARD, b"x");
        assert_eq!(
            key.verifying_key().verify_raw(b"kith/v1/card\0x", &sig),
            Ok(())
        );
    }

    #[test]
    fn domain_strings_are_distinct_and_nul_free() {
        let all = SignDomain::ALL;
        for (i, a) in all.iter().enumerate() {
            assert!(!a.as_str().as_bytes().contains(&0), "{a:?} contains NUL");
            assert!(
                a.as_str().starts_with("kith/v1/"),
                "{a:?} lacks the version prefix"
            );
            for b in &all[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
    }

    #[test]
    fn seed_round_trip() {
        let key = SigningKey::generate();
        let again = SigningKey::from_seed(&key.seed());
        assert_eq!(key.verifying_key(), again.verifying_key());
        let sig = again.sign(SignDomain::EVENT, b"m");
        assert_eq!(key.sign(SignDomain::EVENT, b"m"), sig);
    }

    #[test]
    fn box_conversion_pairs_up() {
        let key = SigningKey::generate();
        let public = key.verifying_key().to_box_public();
        assert_eq!(public.ok(), Some(key.to_box_secret().public_key()));
    }

    #[test]
    fn garbage_verifying_key_rejects() {
        let vk = VerifyingKey::from_bytes([0u8; 32]);
        let sig = Signature::from_bytes([0u8; 64]);
        assert_eq!(
            vk.verify(SignDomain::EVENT, b"", &sig),
            Err(SignatureError::Invalid)
        );
        assert!(vk.to_box_public().is_err());
    }
}
