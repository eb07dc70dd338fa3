//! Secrets and constant-time comparison.
//!
//! [`SecretBytes`] holds key material: heap-allocated (so moving it does not
//! leave copies on the stack), zeroized on drop, redacted under `Debug`, and
//! without `PartialEq`, `Hash` or `Serialize`. [`CtBytes`] holds values that
//! must only ever be compared in constant time (MACs, tags, key
//! confirmations); it has no ordering and no hashing.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::init;

/// Compares two byte strings in constant time (libsodium's `sodium_memcmp`).
///
/// The time taken depends only on the lengths, never on the contents. Returns
/// `false` at once when the lengths differ: lengths are not secret.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    libsodium_rs::utils::memcmp(a, b)
}

/// Fills `buf` with bytes from libsodium's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    init();
    libsodium_rs::random::fill_bytes(buf);
}

/// Returns `N` bytes from libsodium's CSPRNG.
///
/// For key material prefer [`SecretBytes::random`], which never leaves the
/// bytes in an unzeroized stack copy.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill_random(&mut out);
    out
}

/// `N` bytes that may only be compared in constant time.
///
/// `==` goes through [`ct_eq`]; there is deliberately no `Ord` and no `Hash`,
/// so the value cannot end up in a sorted or hashed structure whose timing
/// would leak it.
#[derive(Clone, Copy)]
pub struct CtBytes<const N: usize>([u8; N]);

impl<const N: usize> CtBytes<N> {
    /// The bytes, for encoding. Do not compare them with `==` on slices.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> From<[u8; N]> for CtBytes<N> {
    fn from(bytes: [u8; N]) -> Self {
        CtBytes(bytes)
    }
}

impl<const N: usize> PartialEq for CtBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl<const N: usize> Eq for CtBytes<N> {}

impl<const N: usize> fmt::Debug for CtBytes<N> {
    /// Prints the bytes in hex: `CtBytes` is for tags and MACs, which are not
    /// secret; put secrets in [`SecretBytes`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CtBytes({})", data_encoding::HEXLOWER.encode(&self.0))
    }
}

/// `N` bytes of secret key material.
///
/// Zeroized when dropped; `Debug` prints `SecretBytes(..)`. There is no
/// `PartialEq` (compare with [`ct_eq`] on [`SecretBytes::as_bytes`] if you
/// really must), no `Hash`, no `Serialize`; `Clone` is explicit and produces
/// an independent, independently zeroized copy.
pub struct SecretBytes<const N: usize>(Box<[u8; N]>);

impl<const N: usize> SecretBytes<N> {
    /// Takes ownership of `bytes`.
    ///
    /// `bytes` is copied onto the heap; the caller's original (a `Copy`
    /// array) is not zeroized by this call, so zeroize it if it outlives this.
    pub fn new(bytes: [u8; N]) -> Self {
        SecretBytes(Box::new(bytes))
    }

    /// Fresh random bytes from libsodium's CSPRNG, generated in place.
    pub fn random() -> Self {
        let mut out = SecretBytes(Box::new([0u8; N]));
        fill_random(&mut out.0[..]);
        out
    }

    /// Copies a slice of exactly `N` bytes, failing on any other length.
    pub fn from_slice(what: &'static str, bytes: &[u8]) -> Result<Self, super::CryptoError> {
        if bytes.len() != N {
            return Err(super::CryptoError::BadLength {
                what,
                expected: N,
                got: bytes.len(),
            });
        }
        let mut out = SecretBytes(Box::new([0u8; N]));
        out.0.copy_from_slice(bytes);
        Ok(out)
    }

    /// Read access to the secret bytes.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// Write access to the secret bytes, e.g. to decode into them in place.
    pub fn expose_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

impl<const N: usize> Clone for SecretBytes<N> {
    fn clone(&self) -> Self {
        let mut out = SecretBytes(Box::new([0u8; N]));
        out.0.copy_from_slice(&self.0[..]);
        out
    }
}

impl<const N: usize> Drop for SecretBytes<N> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<const N: usize> ZeroizeOnDrop for SecretBytes<N> {}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn random_values_differ() {
        assert_ne!(random_bytes::<32>(), random_bytes::<32>());
        let (a, b) = (SecretBytes::<32>::random(), SecretBytes::<32>::random());
        assert!(!ct_eq(a.as_bytes(), b.as_bytes()));
    }

    #[test]
    fn clone_is_an_independent_copy() {
        let mut a = SecretBytes::new([7u8; 16]);
        let b = a.clone();
        a.expose_mut()[0] = 0;
        assert_eq!(b.as_bytes(), &[7u8; 16]);
        assert_eq!(a.as_bytes()[0], 0);
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(SecretBytes::<4>::from_slice("k", &[1, 2, 3, 4]).is_ok());
        assert!(matches!(
            SecretBytes::<4>::from_slice("k", &[1, 2, 3]),
            Err(super::super::CryptoError::BadLength {
                what: "k",
                expected: 4,
                got: 3
            })
        ));
    }

    #[test]
    fn ct_bytes_equality() {
        let a = CtBytes::from([1u8; 16]);
        assert_eq!(a, CtBytes::from([1u8; 16]));
        assert_ne!(a, CtBytes::from([2u8; 16]));
    }
}
