//! argon2id (v1.3, one lane) for deriving keys from passphrases.
//!
//! Parameters are often read back from files, so [`argon2id`] refuses any
//! outside [`Argon2Params::check`]'s bounds: a hostile or corrupted file must
//! not be able to make the device allocate gigabytes or spin for minutes.

use libsodium_rs::crypto_pwhash::argon2id as sodium;
use zeroize::Zeroize;

use super::{CryptoError, SecretBytes, init};

/// Length of an argon2id salt.
pub const ARGON2_SALT_LEN: usize = 16;

const _: () = assert!(ARGON2_SALT_LEN == sodium::SALTBYTES);

/// Largest accepted memory cost: 1 GiB.
const MAX_MEM_BYTES: usize = 1 << 30;
/// Largest accepted number of passes.
const MAX_OPS: u64 = 16;

/// argon2id cost parameters, in libsodium's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Number of passes over memory (argon2's `t`).
    pub ops: u64,
    /// Memory in bytes (argon2's `m` is this divided by 1024).
    pub mem_bytes: usize,
}

impl Argon2Params {
    /// libsodium's interactive preset: 2 passes, 64 MiB.
    pub const INTERACTIVE: Argon2Params = Argon2Params {
        ops: sodium::OPSLIMIT_INTERACTIVE,
        mem_bytes: sodium::MEMLIMIT_INTERACTIVE,
    };

    /// libsodium's moderate preset: 3 passes, 256 MiB.
    pub const MODERATE: Argon2Params = Argon2Params {
        ops: sodium::OPSLIMIT_MODERATE,
        mem_bytes: sodium::MEMLIMIT_MODERATE,
    };

    /// Accepts parameters within libsodium's limits and kith's own caps
    /// (at most 1 GiB of memory and 16 passes).
    pub fn check(&self) -> Result<(), CryptoError> {
        let max_ops = MAX_OPS.min(sodium::OPSLIMIT_MAX);
        if !(sodium::OPSLIMIT_MIN..=max_ops).contains(&self.ops) {
            return Err(CryptoError::BadParams(format!(
                "argon2id ops {} outside {}..={max_ops}",
                self.ops,
                sodium::OPSLIMIT_MIN
            )));
        }
        let max_mem = MAX_MEM_BYTES.min(sodium::MEMLIMIT_MAX);
        if !(sodium::MEMLIMIT_MIN..=max_mem).contains(&self.mem_bytes) {
            return Err(CryptoError::BadParams(format!(
                "argon2id memory {} bytes outside {}..={max_mem}",
                self.mem_bytes,
                sodium::MEMLIMIT_MIN
            )));
        }
        Ok(())
    }
}

/// Derives a 32-byte key from `passphrase` and `salt` with argon2id v1.3
/// (one lane, no secret, no associated data).
///
/// Fails with [`CryptoError::BadParams`] when `params` do not pass
/// [`Argon2Params::check`], or if libsodium cannot allocate the memory.
pub fn argon2id(
    passphrase: &[u8],
    salt: &[u8; ARGON2_SALT_LEN],
    params: Argon2Params,
) -> Result<SecretBytes<32>, CryptoError> {
    params.check()?;
    init();
    let mut derived = sodium::pwhash(32, passphrase, salt, params.ops, params.mem_bytes)
        .map_err(|e| CryptoError::BadParams(format!("argon2id failed: {e}")))?;
    let out = SecretBytes::from_slice("argon2id output", &derived);
    derived.zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Params = Argon2Params {
        ops: 1,
        mem_bytes: 64 * 1024,
    };

    #[test]
    fn presets_pass_check() {
        assert_eq!(Argon2Params::INTERACTIVE.check().ok(), Some(()));
        assert_eq!(Argon2Params::MODERATE.check().ok(), Some(()));
        assert_eq!(CHEAP.check().ok(), Some(()));
    }

    #[test]
    fn out_of_bounds_params_are_rejected() {
        let bad = [
            Argon2Params { ops: 0, ..CHEAP },
            Argon2Params { ops: 17, ..CHEAP },
            Argon2Params {
                mem_bytes: 0,
                ..CHEAP
            },
            Argon2Params {
                mem_bytes: (1 << 30) + 1024,
                ..CHEAP
            },
            Argon2Params {
                ops: u64::MAX,
                mem_bytes: usize::MAX,
            },
        ];
        for params in bad {
            assert!(
                matches!(params.check(), Err(CryptoError::BadParams(_))),
                "{params:?}"
            );
            assert!(argon2id(b"pw", &[0u8; 16], params).is_err(), "{params:?}");
        }
    }

    #[test]
    fn deterministic_and_input_sensitive() {
        let salt = [7u8; ARGON2_SALT_LEN];
        let a = argon2id(b"correct horse", &salt, CHEAP).expect("kdf");
        let b = argon2id(b"correct horse", &salt, CHEAP).expect("kdf");
        let c = argon2id(b"correct horsf", &salt, CHEAP).expect("kdf");
        let d = argon2id(b"correct horse", &[8u8; ARGON2_SALT_LEN], CHEAP).expect("kdf");
        assert_eq!(a.as_bytes(), b.as_bytes());
        assert_ne!(a.as_bytes(), c.as_bytes());
        assert_ne!(a.as_bytes(), d.as_bytes());
    }
}

/// What a key derived from a master secret is for: libsodium's `crypto_kdf`
/// context (8 bytes) and subkey id. Each purpose gets its own key, so one
/// secret is never used directly for two jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfPurpose {
    context: [u8; 8],
    id: u64,
}

impl KdfPurpose {
    /// The key that derives a mailbox's delivery tokens from its seed.
    pub const MAILBOX_TOKENS: KdfPurpose = KdfPurpose {
        context: *b"kithmbox",
        id: 1,
    };
    /// Every purpose (distinct pairs, checked in tests).
    pub const ALL: &'static [KdfPurpose] = &[KdfPurpose::MAILBOX_TOKENS];
}

/// A 32-byte key for `purpose` derived from `master` (BLAKE2b keyed by the
/// master key, as libsodium's `crypto_kdf_derive_from_key`).
pub fn derive_key(master: &SecretBytes<32>, purpose: KdfPurpose) -> SecretBytes<32> {
    init();
    let key = libsodium_rs::crypto_kdf::Key::from(*master.as_bytes());
    match libsodium_rs::crypto_kdf::derive_from_key(32, purpose.id, &purpose.context, &key) {
        Ok(mut bytes) => {
            let out = SecretBytes::from_slice("derived key", &bytes);
            bytes.zeroize();
            match out {
                Ok(k) => k,
                Err(e) => panic!("crypto_kdf gave a key of the wrong length: {e}"),
            }
        }
        Err(e) => panic!("crypto_kdf called with out-of-range parameters: {e}"),
    }
}

#[cfg(test)]
mod derive_tests {
    use super::*;

    #[test]
    fn purposes_are_distinct_and_keys_differ_by_purpose_and_master() {
        let all = KdfPurpose::ALL;
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let m1 = SecretBytes::new([1; 32]);
        let m2 = SecretBytes::new([2; 32]);
        let k1 = derive_key(&m1, KdfPurpose::MAILBOX_TOKENS);
        assert_eq!(
            k1.as_bytes(),
            derive_key(&m1, KdfPurpose::MAILBOX_TOKENS).as_bytes()
        );
        assert_ne!(
            k1.as_bytes(),
            derive_key(&m2, KdfPurpose::MAILBOX_TOKENS).as_bytes()
        );
        assert_ne!(k1.as_bytes(), m1.as_bytes(), "not the master itself");
    }
}
