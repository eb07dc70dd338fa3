//! `crypto_secretstream_xchacha20poly1305`: a sequence of authenticated chunks.
//!
//! Chunks cannot be reordered, dropped, duplicated or moved between streams
//! without [`StreamDecryptor::pull`] failing. Truncation after a whole chunk
//! is the one thing a chunk cannot show by itself: the sender tags its last
//! chunk final, and a reader that reaches the end of its input without having
//! pulled a final chunk must treat the stream as truncated.

use std::fmt;

use libsodium_rs::crypto_secretstream::xchacha20poly1305 as ss;

use super::{CryptoError, SecretBytes, init};

/// Length of the header that starts every stream.
pub const STREAM_HEADER_LEN: usize = 24;
/// Bytes each chunk grows by (tag byte + MAC).
pub const STREAM_ABYTES: usize = 17;

const _: () = assert!(STREAM_HEADER_LEN == ss::HEADERBYTES && STREAM_ABYTES == ss::ABYTES);

/// A 32-byte secretstream key. Zeroized on drop; `Debug` prints `StreamKey(..)`.
pub struct StreamKey(SecretBytes<32>);

impl StreamKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        StreamKey(SecretBytes::random())
    }

    /// Uses `bytes` as the key.
    pub fn from_bytes(bytes: SecretBytes<32>) -> Self {
        StreamKey(bytes)
    }

    /// The key bytes, e.g. to wrap them for storage.
    pub fn as_secret(&self) -> &SecretBytes<32> {
        &self.0
    }

    /// A libsodium key object; it zeroizes itself when dropped.
    fn sodium_key(&self) -> ss::Key {
        ss::Key::from(*self.0.as_bytes())
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(..)")
    }
}

/// The sending side of a stream.
pub struct StreamEncryptor {
    state: ss::PushState,
    finished: bool,
}

impl StreamEncryptor {
    /// Starts a stream; the header must reach the reader before any chunk.
    pub fn new(key: &StreamKey) -> (Self, [u8; STREAM_HEADER_LEN]) {
        init();
        match ss::PushState::init_push(&key.sodium_key()) {
            Ok((state, header)) => (
                StreamEncryptor {
                    state,
                    finished: false,
                },
                header,
            ),
            // init_push has no failure path in libsodium.
            Err(e) => panic!("secretstream init_push failed: {e}"),
        }
    }

    /// Encrypts one chunk (`chunk.len() + STREAM_ABYTES` bytes out). `last`
    /// tags it final; it must be set on exactly the last chunk.
    ///
    /// # Panics
    ///
    /// If called again after a chunk with `last` set: that is a bug in the
    /// caller, not something a peer can cause.
    pub fn push(&mut self, chunk: &[u8], last: bool) -> Vec<u8> {
        assert!(
            !self.finished,
            "StreamEncryptor::push after the final chunk"
        );
        let tag = if last { ss::TAG_FINAL } else { ss::TAG_MESSAGE };
        self.finished = last;
        match self.state.push(chunk, None, tag) {
            Ok(ct) => ct,
            // Only fails after the final chunk (excluded above) or for a
            // chunk beyond libsodium's ~256 GiB per-message limit.
            Err(e) => panic!("secretstream push failed: {e}"),
        }
    }
}

impl fmt::Debug for StreamEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamEncryptor")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// The receiving side of a stream.
pub struct StreamDecryptor {
    state: ss::PullState,
    finished: bool,
}

impl StreamDecryptor {
    /// Starts reading a stream from its header.
    pub fn new(key: &StreamKey, header: &[u8; STREAM_HEADER_LEN]) -> Result<Self, CryptoError> {
        init();
        let state = ss::PullState::init_pull(header, &key.sodium_key())
            .map_err(|_| CryptoError::DecryptFailed)?;
        Ok(StreamDecryptor {
            state,
            finished: false,
        })
    }

    /// Decrypts the next chunk; the `bool` is true when it was tagged final.
    ///
    /// Fails with [`CryptoError::StreamFinished`] once a final chunk has been
    /// pulled, [`CryptoError::TooShort`] for input under [`STREAM_ABYTES`],
    /// and [`CryptoError::DecryptFailed`] for a wrong key, a tampered,
    /// reordered, replayed or foreign chunk. Reaching the end of the input
    /// without a final chunk means the stream was truncated: the caller must
    /// check [`StreamDecryptor::is_finished`] (or the returned flag).
    pub fn pull(&mut self, ct: &[u8]) -> Result<(Vec<u8>, bool), CryptoError> {
        if self.finished {
            return Err(CryptoError::StreamFinished);
        }
        if ct.len() < STREAM_ABYTES {
            return Err(CryptoError::TooShort {
                what: "secretstream chunk",
                min: STREAM_ABYTES,
                got: ct.len(),
            });
        }
        let (plain, tag) = self
            .state
            .pull(ct, None)
            .map_err(|_| CryptoError::DecryptFailed)?;
        self.finished = tag == ss::TAG_FINAL;
        Ok((plain, self.finished))
    }

    /// True once the chunk tagged final has been pulled.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

impl fmt::Debug for StreamDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamDecryptor")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypt(key: &StreamKey, chunks: &[&[u8]]) -> ([u8; STREAM_HEADER_LEN], Vec<Vec<u8>>) {
        let (mut enc, header) = StreamEncryptor::new(key);
        let n = chunks.len();
        let cts = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| enc.push(c, i + 1 == n))
            .collect();
        (header, cts)
    }

    #[test]
    fn round_trip_and_final_flag() {
        let key = StreamKey::generate();
        let (header, cts) = encrypt(&key, &[b"one", b"", b"three"]);
        assert_eq!(cts[0].len(), 3 + STREAM_ABYTES);
        let mut dec = StreamDecryptor::new(&key, &header).expect("header");
        let got: Vec<_> = cts.iter().map(|c| dec.pull(c).expect("chunk")).collect();
        assert_eq!(got[0], (b"one".to_vec(), false));
        assert_eq!(got[1], (Vec::new(), false));
        assert_eq!(got[2], (b"three".to_vec(), true));
        assert!(dec.is_finished());
        assert!(matches!(
            dec.pull(&cts[2]),
            Err(CryptoError::StreamFinished)
        ));
    }

    #[test]
    fn reorder_and_tamper_fail() {
        let key = StreamKey::generate();
        let (header, cts) = encrypt(&key, &[b"a", b"b", b"c"]);
        let mut dec = StreamDecryptor::new(&key, &header).expect("header");
        assert!(matches!(dec.pull(&cts[1]), Err(CryptoError::DecryptFailed)));

        let mut dec = StreamDecryptor::new(&key, &header).expect("header");
        let mut bad = cts[0].clone();
        bad[0] ^= 1;
        assert!(matches!(dec.pull(&bad), Err(CryptoError::DecryptFailed)));
    }

    #[test]
    fn short_chunk_is_rejected() {
        let key = StreamKey::generate();
        let (header, _) = encrypt(&key, &[b"a"]);
        let mut dec = StreamDecryptor::new(&key, &header).expect("header");
        assert!(matches!(
            dec.pull(&[0u8; 16]),
            Err(CryptoError::TooShort { min: 17, .. })
        ));
    }

    #[test]
    #[should_panic(expected = "after the final chunk")]
    fn push_after_final_panics() {
        let (mut enc, _) = StreamEncryptor::new(&StreamKey::generate());
        enc.push(b"end", true);
        enc.push(b"more", false);
    }
}
