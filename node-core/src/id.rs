//! The 32-byte identifiers: one newtype per concept so they cannot be mixed up.
//!
//! `DeviceId` is a device's Ed25519 public key; `AccountId` the hash of its
//! account log's genesis; `EventId` the hash of a signed event header; `LogId`
//! names a log (account, self, conversation or room). All print as lowercase
//! base32 without padding and parse from it (or a 64-digit hex string).

use crate::crypto::{HashDomain, VerifyingKey, hash};
use crate::wire::{WireError, from_base32, to_base32};
use std::fmt;
use std::str::FromStr;

/// The shortest id prefix people may give for an id.
pub const MIN_ID_PREFIX: usize = 4;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 32]);

        impl $name {
            /// From raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// The first `n` base32 characters, for people.
            pub fn short(&self, n: usize) -> String {
                let mut s = self.to_string();
                s.truncate(n);
                s
            }
            /// Whether `query` (trimmed and lower-cased, as people type
            /// ids) is this id or a prefix of it of at least
            /// [`MIN_ID_PREFIX`] characters.
            pub fn matches_prefix(&self, query: &str) -> bool {
                query.len() >= MIN_ID_PREFIX && self.to_string().starts_with(query)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&to_base32(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.short(12))
            }
        }

        impl FromStr for $name {
            type Err = WireError;
            fn from_str(s: &str) -> Result<Self, WireError> {
                let bytes = from_base32(s.trim(), $what)?;
                let arr: [u8; 32] = bytes.try_into().map_err(|_| WireError::Invalid {
                    what: $what,
                    why: "not 32 bytes",
                })?;
                Ok(Self(arr))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A device: its Ed25519 public key.
    DeviceId,
    "device id"
);
id_type!(
    /// An account: the hash of its account log's genesis event.
    AccountId,
    "account id"
);
id_type!(
    /// An event: the hash of its signed header.
    EventId,
    "event id"
);
id_type!(
    /// A log: account, self, conversation or room.
    LogId,
    "log id"
);

impl DeviceId {
    /// The key that verifies this device's signatures.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_bytes(self.0)
    }
}

impl From<VerifyingKey> for DeviceId {
    fn from(k: VerifyingKey) -> Self {
        Self(*k.as_bytes())
    }
}

impl LogId {
    /// The account log of `account` (its id is the genesis id).
    pub fn account(account: AccountId) -> Self {
        Self(account.0)
    }
    /// The private log shared only by `account`'s own devices.
    pub fn self_log(account: AccountId) -> Self {
        let mut input = b"self".to_vec();
        input.extend_from_slice(&account.0);
        Self(hash(HashDomain::LOG_ID, &input))
    }
    /// The 1:1 conversation between two accounts (same id from both sides).
    pub fn conversation(a: AccountId, b: AccountId) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut input = b"conversation".to_vec();
        input.extend_from_slice(&lo.0);
        input.extend_from_slice(&hi.0);
        Self(hash(HashDomain::LOG_ID, &input))
    }
    /// A room's log (its id is the room's create event id).
    pub fn room(create: EventId) -> Self {
        Self(create.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse() {
        let id = EventId::from_bytes([7; 32]);
        let s = id.to_string();
        assert_eq!(s.len(), 52);
        assert_eq!(s.parse::<EventId>().unwrap(), id);
        assert!("abc".parse::<EventId>().is_err());
        assert_eq!(format!("{id:?}"), format!("EventId({})", &s[..12]));
    }

    #[test]
    fn conversation_id_is_symmetric() {
        let a = AccountId::from_bytes([1; 32]);
        let b = AccountId::from_bytes([2; 32]);
        assert_eq!(LogId::conversation(a, b), LogId::conversation(b, a));
        assert_ne!(LogId::conversation(a, b), LogId::self_log(a));
    }
}
