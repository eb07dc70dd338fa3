//! The key file: the random store key, wrapped by a passphrase-derived key
//! (argon2id) or, for a profile made with `--no-passphrase`, kept as is and
//! flagged unprotected.
//!
//! Layout: `KITHKEY` 0x01, a mode byte, then for mode 0 the 32-byte key; for
//! mode 1 a 16-byte salt, argon2 ops (u64 BE), memory bytes (u64 BE) and the
//! XChaCha20-Poly1305 sealing of the key (nonce, ciphertext, tag) with the
//! preceding bytes as associated data.

use crate::crypto::{
    ARGON2_SALT_LEN, AeadKey, Argon2Params, SecretBytes, aead_open, aead_seal, argon2id,
    random_bytes,
};
use crate::wire::{Reader, Writer};
use std::fmt;
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"KITHKEY\x01";
const MODE_PLAIN: u8 = 0;
const MODE_ARGON2ID: u8 = 1;
/// The argon2id cost new profiles use.
pub const DEFAULT_PARAMS: Argon2Params = Argon2Params::MODERATE;

/// A passphrase, wiped from memory when dropped.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }
    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// Why the key file could not give the store key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The passphrase does not unwrap the key.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The profile is protected but no passphrase was given.
    #[error("this profile is protected by a passphrase; none was given")]
    PassphraseNeeded,
    /// The file is not a key file or is damaged.
    #[error("key file is damaged or not a kith key file: {0}")]
    Corrupt(String),
}

/// Makes the key file bytes for `key`.
pub fn wrap(
    key: &SecretBytes<32>,
    passphrase: Option<&Passphrase>,
) -> Result<Vec<u8>, KeyFileError> {
    let mut w = Writer::new();
    w.fixed(MAGIC);
    let Some(pass) = passphrase else {
        w.u8(MODE_PLAIN).fixed(key.as_bytes());
        return Ok(w.finish());
    };
    let salt: [u8; ARGON2_SALT_LEN] = random_bytes();
    let params = DEFAULT_PARAMS;
    w.u8(MODE_ARGON2ID)
        .fixed(&salt)
        .u64(params.ops)
        .u64(params.mem_bytes as u64);
    let mut out = w.finish();
    let kek = derive(pass, &salt, params)?;
    let sealed = aead_seal(&kek, &out, key.as_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Whether the key file is protected by a passphrase.
pub fn is_protected(file: &[u8]) -> bool {
    file.get(MAGIC.len()) == Some(&MODE_ARGON2ID)
}

/// Recovers the store key.
pub fn unwrap(
    file: &[u8],
    passphrase: Option<&Passphrase>,
) -> Result<SecretBytes<32>, KeyFileError> {
    let corrupt = |e: &dyn fmt::Display| KeyFileError::Corrupt(e.to_string());
    let mut r = Reader::new(file);
    if r.take(MAGIC.len(), "magic").map_err(|e| corrupt(&e))? != MAGIC {
        return Err(KeyFileError::Corrupt("bad magic".into()));
    }
    match r.u8("mode").map_err(|e| corrupt(&e))? {
        MODE_PLAIN => {
            let key = r.array::<32>("key").map_err(|e| corrupt(&e))?;
            r.finish("key file").map_err(|e| corrupt(&e))?;
            Ok(SecretBytes::new(key))
        }
        MODE_ARGON2ID => {
            let pass = passphrase.ok_or(KeyFileError::PassphraseNeeded)?;
            let salt = r
                .array::<ARGON2_SALT_LEN>("salt")
                .map_err(|e| corrupt(&e))?;
            let ops = r.u64("ops").map_err(|e| corrupt(&e))?;
            let mem = r.u64("mem").map_err(|e| corrupt(&e))?;
            let params = Argon2Params {
                ops,
                mem_bytes: usize::try_from(mem).map_err(|e| corrupt(&e))?,
            };
            params.check().map_err(|e| corrupt(&e))?;
            let header_len = MAGIC.len() + 1 + ARGON2_SALT_LEN + 16;
            let (ad, sealed) = file.split_at(header_len);
            let kek = derive(pass, &salt, params)?;
            let plain = Zeroizing::new(
                aead_open(&kek, ad, sealed).map_err(|_| KeyFileError::WrongPassphrase)?,
            );
            let arr: [u8; 32] = plain
                .as_slice()
                .try_into()
                .map_err(|_| KeyFileError::Corrupt("wrapped key has the wrong length".into()))?;
            Ok(SecretBytes::new(arr))
        }
        _ => Err(KeyFileError::Corrupt("unknown mode".into())),
    }
}

fn derive(
    pass: &Passphrase,
    salt: &[u8; ARGON2_SALT_LEN],
    params: Argon2Params,
) -> Result<AeadKey, KeyFileError> {
    let k = argon2id(pass.as_bytes(), salt, params)
        .map_err(|e| KeyFileError::Corrupt(e.to_string()))?;
    Ok(AeadKey::from_bytes(k))
}
