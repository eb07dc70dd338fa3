//! Binary and text encodings shared by every wire type.
//!
//! Binary: fixed-width big-endian integers, length-prefixed byte strings with
//! an explicit upper bound at every read, and no trailing bytes. Every value
//! has exactly one encoding, so `encode(decode(b)) == b` for accepted input.
//! Text: lowercase RFC 4648 base32 without padding (decoding also accepts
//! upper case, which QR codes use because it packs densely).
//!
//! Not here: what the fields mean (each type's own module says that).

use data_encoding::{Encoding, Specification};
use std::sync::OnceLock;

/// A decoding failure: what was being read and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended before `what` was complete.
    #[error("truncated input while reading {what}")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// A length or count was over its bound.
    #[error("{what} too large: {got} > {max}")]
    TooLarge {
        /// The field being read.
        what: &'static str,
        /// The value found.
        got: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// Bytes remained after the value was complete.
    #[error("{count} trailing bytes after {what}")]
    Trailing {
        /// The value that was complete.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// A field held a value with no meaning.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The field being read.
        what: &'static str,
        /// Why it was refused.
        why: &'static str,
    },
}

/// Appends fields to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Big-endian i64.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Bytes of a length both sides know.
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// A u32 length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Lengths are bounded far below u32::MAX by every caller's limits.
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.fixed(v)
    }
    /// A UTF-8 string as `bytes`.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    /// 0 for `None`, 1 then the value for `Some`.
    pub fn option<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Self, T)) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
                self
            }
        }
    }
    /// The bytes written so far.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Reads fields from a byte slice, checking every bound.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }
    /// Exactly `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Truncated { what });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(what)?[0])
    }
    /// Big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    /// Big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    /// Big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    /// Big-endian i64.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }
    /// A u32 length (at most `max`), then that many bytes.
    pub fn bytes(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(WireError::TooLarge {
                what,
                got: len as u64,
                max: max as u64,
            });
        }
        self.take(len, what)
    }
    /// A UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, max: usize, what: &'static str) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes(max, what)?).map_err(|_| WireError::Invalid {
            what,
            why: "not UTF-8",
        })
    }
    /// A count prefix (u16) of at most `max` items.
    pub fn count(&mut self, max: usize, what: &'static str) -> Result<usize, WireError> {
        let n = self.u16(what)? as usize;
        if n > max {
            return Err(WireError::TooLarge {
                what,
                got: n as u64,
                max: max as u64,
            });
        }
        Ok(n)
    }
    /// An option flag: 0 → `None`, 1 → `Some(f())`, anything else an error.
    pub fn option<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T, WireError>,
    ) -> Result<Option<T>, WireError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => f(self).map(Some),
            _ => Err(WireError::Invalid {
                what,
                why: "option flag is neither 0 nor 1",
            }),
        }
    }
    /// Whether all input was consumed (for optional trailing fields).
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
    /// Fails unless all input was consumed.
    pub fn finish(self, what: &'static str) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(WireError::Trailing {
                what,
                count: self.rest.len(),
            })
        }
    }
}

fn base32() -> &'static Encoding {
    static ENC: OnceLock<Encoding> = OnceLock::new();
    ENC.get_or_init(|| {
        let mut spec = Specification::new();
        spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
        spec.translate.from.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        spec.translate.to.push_str("abcdefghijklmnopqrstuvwxyz");
        // Only the fixed alphabet above: this cannot fail.
        #[allow(clippy::expect_used)]
        spec.encoding().expect("valid base32 specification")
    })
}

/// Lowercase base32 without padding.
pub fn to_base32(data: &[u8]) -> String {
    base32().encode(data)
}

/// Decodes base32 (either case, no padding).
pub fn from_base32(text: &str, what: &'static str) -> Result<Vec<u8>, WireError> {
    base32()
        .decode(text.as_bytes())
        .map_err(|_| WireError::Invalid {
            what,
            why: "not base32",
        })
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC
/// (`1970-01-01T00:00:00.000Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base32_is_lowercase_and_case_insensitive() {
        let s = to_base32(b"kith");
        assert_eq!(s, "nnuxi2a");
        assert_eq!(from_base32("NNUXI2A", "t").unwrap(), b"kith");
        assert!(from_base32("nnuxi2a=", "t").is_err());
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_132_800_000), "2026-11-20T00:00:00.000Z");
    }

    #[test]
    fn bounds_are_enforced() {
        let buf = Writer::new().bytes(&[1, 2, 3]).finish();
        let mut r = Reader::new(&buf);
        assert!(matches!(r.bytes(2, "x"), Err(WireError::TooLarge { .. })));
        let mut r = Reader::new(&buf[..5]);
        assert!(matches!(r.bytes(9, "x"), Err(WireError::Truncated { .. })));
    }

    proptest! {
        #[test]
        fn base32_round_trips(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(from_base32(&to_base32(&data), "t").unwrap(), data);
        }
    }
}
