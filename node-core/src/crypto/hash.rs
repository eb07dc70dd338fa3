//! Domain-separated BLAKE2b-256.
//!
//! Every hash kith computes is `BLAKE2b-256(domain || 0x00 || data)` for one of
//! the [`HashDomain`] constants, so an event id can never collide with a log id
//! or a store key computed over the same bytes.

use std::fmt;

use libsodium_rs::crypto_generichash;

use super::has_no_nul;

/// Length of a [`hash`] output.
pub const HASH_LEN: usize = 32;

/// The purpose a hash is computed for. Only the constants below exist.
///
/// Domain strings must never contain NUL: the `0x00` separator is what keeps
/// one domain from being a prefix-with-NUL of another (checked at compile time
/// and over [`HashDomain::ALL`] in tests).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HashDomain(&'static str);

impl HashDomain {
    /// Content address of a signed event.
    pub const EVENT_ID: HashDomain = HashDomain("kith/v1/event-id");
    /// Hash of an event body (referenced from the signed header).
    pub const BODY: HashDomain = HashDomain("kith/v1/event-body");
    /// Identifier of an event log.
    pub const LOG_ID: HashDomain = HashDomain("kith/v1/log-id");
    /// Keys and checksums inside the local store.
    pub const STORE: HashDomain = HashDomain("kith/v1/store");
    /// A whole file's content (file offers).
    pub const FILE: HashDomain = HashDomain("kith/v1/file");
    /// One chunk of a file.
    pub const FILE_CHUNK: HashDomain = HashDomain("kith/v1/file-chunk");
    /// A mailbox delivery token, as the mailbox server stores it.
    pub const MAILBOX_TOKEN: HashDomain = HashDomain("kith/v1/mailbox-token");
    /// The body of a signed mailbox request.
    pub const MAILBOX_REQUEST: HashDomain = HashDomain("kith/v1/mailbox-request");
    /// A device's blinded LAN discovery tag (keyed BLAKE2b, `crate::lan`).
    pub const LAN_TAG: HashDomain = HashDomain("kith/v1/lan-tag");
    /// The keystream sealing a LAN beacon's ports (keyed BLAKE2b).
    pub const LAN_PORTS: HashDomain = HashDomain("kith/v1/lan-ports");
    /// A participant's place in a room call's order (who forwards).
    pub const CONF_ORDER: HashDomain = HashDomain("kith/v1/conf-order");

    /// Every hash domain; a new constant must be added here too.
    pub const ALL: &'static [HashDomain] = &[
        HashDomain::EVENT_ID,
        HashDomain::BODY,
        HashDomain::LOG_ID,
        HashDomain::STORE,
        HashDomain::FILE,
        HashDomain::FILE_CHUNK,
        HashDomain::MAILBOX_TOKEN,
        HashDomain::MAILBOX_REQUEST,
        HashDomain::LAN_TAG,
        HashDomain::LAN_PORTS,
        HashDomain::CONF_ORDER,
    ];

    /// The domain string.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

const _: () = {
    let mut i = 0;
    while i < HashDomain::ALL.len() {
        assert!(has_no_nul(HashDomain::ALL[i].0), "hash domain contains NUL");
        i += 1;
    }
};

/// `BLAKE2b-256(domain || 0x00 || data)`.
pub fn hash(domain: HashDomain, data: &[u8]) -> [u8; HASH_LEN] {
    let mut h = Hasher::new(domain);
    h.update(data);
    h.finalize()
}

/// Plain SHA-256, for digests other software computes too (a TLS
/// certificate's pin); kith's own hashes use [`hash`].
pub fn sha256(data: &[u8]) -> [u8; 32] {
    libsodium_rs::crypto_hash::sha256::hash(data)
}

/// Incremental form of [`hash`]: same result for the same concatenated input.
pub struct Hasher {
    domain: HashDomain,
    state: crypto_generichash::State,
}

impl Hasher {
    /// Starts a hash for `domain` (the domain and separator are absorbed now).
    pub fn new(domain: HashDomain) -> Self {
        let mut state = unkeyed_state(HASH_LEN);
        state.update(domain.0.as_bytes());
        state.update(&[0]);
        Hasher { domain, state }
    }

    /// Absorbs more data.
    pub fn update(&mut self, data: &[u8]) {
        self.state.update(data);
    }

    /// The 32-byte digest.
    pub fn finalize(mut self) -> [u8; HASH_LEN] {
        let digest = self.state.finalize();
        let mut out = [0u8; HASH_LEN];
        out.copy_from_slice(&digest);
        out
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("domain", &self.domain.0)
            .finish_non_exhaustive()
    }
}

/// Raw BLAKE2b with no domain separation, for known-answer tests against
/// published vectors. Protocol code uses [`hash`].
///
/// # Panics
///
/// If `out_len` is not in `1..=64` or `key` is not 16 to 64 bytes long
/// (libsodium's limits). Both are constants at every legitimate call site.
pub fn blake2b(data: &[u8], key: Option<&[u8]>, out_len: usize) -> Vec<u8> {
    match crypto_generichash::generichash(data, key, out_len) {
        Ok(out) => out,
        Err(e) => panic!("blake2b called with out-of-range parameters: {e}"),
    }
}

/// A fresh unkeyed BLAKE2b state producing `out_len` bytes.
fn unkeyed_state(out_len: usize) -> crypto_generichash::State {
    match crypto_generichash::State::new(None, out_len) {
        Ok(state) => state,
        // Only reachable if `out_len` is outside 16..=64, which it never is.
        Err(e) => panic!("BLAKE2b state with constant parameters failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hasher_matches_hash() {
        let data = b"the quick brown fox jumps over the lazy dog";
        for domain in HashDomain::ALL {
            let mut h = Hasher::new(*domain);
            h.update(&data[..10]);
            h.update(b"");
            h.update(&data[10..]);
            assert_eq!(h.finalize(), hash(*domain, data));
        }
    }

    #[test]
    fn hash_is_blake2b_over_prefixed_input() {
        let expected = blake2b(b"kith/v1/store\0abc", None, 32);
        assert_eq!(
            hash(HashDomain::STORE, b"abc").as_slice(),
            expected.as_slice()
        );
    }

    #[test]
    fn domains_separate() {
        let all = HashDomain::ALL;
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(hash(*a, b"same"), hash(*b, b"same"), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn domain_strings_are_distinct_and_nul_free() {
        let all = HashDomain::ALL;
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
}
