//! Joining an account: the one-time invite code an active device prints,
//! and the messages of the join connection (ALPN `kith-join/1`).
//!
//! The code carries the account, the inviting device (the join connection
//! is authenticated as that device) with its addresses, a random 128-bit
//! secret and the expiry. The joining device proves both that it holds the
//! secret and that it holds its own key (the `join` signature that goes
//! into the add-device entry); the inviting device checks both, writes the
//! entry and sends the account log and the self log.

use crate::crypto::{SecretBytes, Signature};
use crate::id::{AccountId, DeviceId};
use crate::identity::entry::name;
use crate::wire::{Reader, WireError, Writer, from_base32, to_base32};
use std::fmt;
use std::net::SocketAddr;

/// URI prefix of an invite code.
pub const JOIN_PREFIX: &str = "kith:join/";
/// How long an invite code is valid, in milliseconds.
pub const INVITE_LIFETIME_MS: i64 = 10 * 60 * 1000;
const CODE_VERSION: u8 = 1;
const MAX_CODE: usize = 2048;
const MAX_CODE_HINTS: usize = 8;

/// A decoded invite code.
pub struct Invite {
    /// The account to join.
    pub account: AccountId,
    /// The device that issued the code (dial it).
    pub device: DeviceId,
    /// Where it listens.
    pub hints: Vec<SocketAddr>,
    /// The one-time secret.
    pub secret: SecretBytes<16>,
    /// Expiry, ms since the Unix epoch.
    pub expires: i64,
}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invite")
            .field("account", &self.account)
            .field("device", &self.device)
            .field("hints", &self.hints)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Why an invite code does not parse.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// Not a `kith:join/` code.
    #[error("not an invite code (it starts with {JOIN_PREFIX})")]
    NotACode,
    /// Damaged or truncated.
    #[error("the invite code is damaged: {0}")]
    Damaged(#[from] WireError),
    /// From a newer kith.
    #[error("the invite code is from a newer version of kith")]
    Version,
}

impl Invite {
    /// The code as text.
    pub fn to_code(&self) -> String {
        let mut w = Writer::new();
        w.u8(CODE_VERSION)
            .fixed(self.account.as_bytes())
            .fixed(self.device.as_bytes())
            .fixed(self.secret.as_bytes())
            .i64(self.expires)
            .u16(self.hints.len() as u16);
        for h in &self.hints {
            w.str(&h.to_string());
        }
        format!("{JOIN_PREFIX}{}", to_base32(&w.finish()))
    }

    /// Parses a code (either case; surrounding space ignored).
    pub fn parse(code: &str) -> Result<Self, InviteError> {
        let code = code.trim();
        if code.len() > MAX_CODE {
            return Err(InviteError::NotACode);
        }
        let (prefix, payload) = code
            .split_at_checked(JOIN_PREFIX.len())
            .ok_or(InviteError::NotACode)?;
        if !prefix.eq_ignore_ascii_case(JOIN_PREFIX) {
            return Err(InviteError::NotACode);
        }
        let bytes = zeroize::Zeroizing::new(from_base32(payload, "invite code")?);
        let mut r = Reader::new(&bytes);
        if r.u8("version")? != CODE_VERSION {
            return Err(InviteError::Version);
        }
        let account = AccountId::from_bytes(r.array("account")?);
        let device = DeviceId::from_bytes(r.array("device")?);
        let secret = SecretBytes::new(r.array("secret")?);
        let expires = r.i64("expiry")?;
        let n = r.count(MAX_CODE_HINTS, "addresses")?;
        let mut hints = Vec::with_capacity(n);
        for _ in 0..n {
            let h = r.str(128, "address")?;
            hints.push(h.parse().map_err(|_| WireError::Invalid {
                what: "address",
                why: "not ip:port",
            })?);
        }
        r.finish("invite code")?;
        Ok(Self {
            account,
            device,
            hints,
            secret,
            expires,
        })
    }
}

/// A message on the join connection.
pub enum JoinMsg {
    /// Joining device → inviting device.
    Request {
        /// The code's secret.
        secret: SecretBytes<16>,
        /// The new device's name.
        name: String,
        /// The new device's signature over
        /// [`crate::identity::entry::join_message`].
        join: Signature,
    },
    /// Inviting device → joining device: added; the account log and the
    /// self log follow as sync `Events` frames, then `Synced` for the self
    /// log.
    Accepted,
    /// Inviting device → joining device: refused, and why.
    Refused(String),
}

impl fmt::Debug for JoinMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinMsg::Request { name, .. } => f
                .debug_struct("Request")
                .field("name", name)
                .finish_non_exhaustive(),
            JoinMsg::Accepted => f.write_str("Accepted"),
            JoinMsg::Refused(why) => f.debug_tuple("Refused").field(why).finish(),
        }
    }
}

mod tag {
    pub const REQUEST: u8 = 0x40;
    pub const ACCEPTED: u8 = 0x41;
    pub const REFUSED: u8 = 0x42;
}

impl JoinMsg {
    /// The frame payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            JoinMsg::Request { secret, name, join } => {
                w.u8(tag::REQUEST)
                    .fixed(secret.as_bytes())
                    .str(name)
                    .fixed(join.as_bytes());
            }
            JoinMsg::Accepted => {
                w.u8(tag::ACCEPTED);
            }
            JoinMsg::Refused(why) => {
                w.u8(tag::REFUSED).str(why);
            }
        }
        w.finish()
    }

    /// Reads a frame payload.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let msg = match r.u8("message tag")? {
            tag::REQUEST => {
                let secret = SecretBytes::new(r.array("secret")?);
                let name = name(&mut r, "device name")?;
                let join = Signature::from_bytes(r.array("join signature")?);
                JoinMsg::Request { secret, name, join }
            }
            tag::ACCEPTED => JoinMsg::Accepted,
            tag::REFUSED => JoinMsg::Refused(r.str(256, "reason")?.to_owned()),
            _ => {
                return Err(WireError::Invalid {
                    what: "message tag",
                    why: "not a join message",
                });
            }
        };
        r.finish("join message")?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn invite() -> Invite {
        Invite {
            account: AccountId::from_bytes([1; 32]),
            device: DeviceId::from_bytes([2; 32]),
            hints: vec!["127.0.0.1:4000".parse().unwrap()],
            secret: SecretBytes::new([3; 16]),
            expires: 1_700_000_000_000,
        }
    }

    #[test]
    fn codes_round_trip_in_either_case() {
        let code = invite().to_code();
        for c in [code.clone(), code.to_uppercase(), format!("  {code}\n")] {
            let back = Invite::parse(&c).unwrap();
            assert_eq!(back.account, AccountId::from_bytes([1; 32]));
            assert_eq!(back.device, DeviceId::from_bytes([2; 32]));
            assert_eq!(back.secret.as_bytes(), &[3; 16]);
            assert_eq!(back.hints, invite().hints);
        }
    }

    #[test]
    fn damaged_codes_are_refused() {
        let code = invite().to_code();
        assert!(Invite::parse("hello").is_err());
        assert!(Invite::parse("kith:join/").is_err());
        assert!(Invite::parse(&code[..code.len() - 5]).is_err());
        assert!(Invite::parse(&format!("{code}aa")).is_err());
        assert!(Invite::parse(&code.replace("kith:join/", "kith:card/")).is_err());
    }

    #[test]
    fn join_messages_round_trip() {
        let req = JoinMsg::Request {
            secret: SecretBytes::new([9; 16]),
            name: "laptop".into(),
            join: Signature::from_bytes([4; 64]),
        };
        match JoinMsg::decode(&req.encode()).unwrap() {
            JoinMsg::Request { secret, name, .. } => {
                assert_eq!(secret.as_bytes(), &[9; 16]);
                assert_eq!(name, "laptop");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            JoinMsg::decode(&JoinMsg::Refused("no".into()).encode()).unwrap(),
            JoinMsg::Refused(w) if w == "no"
        ));
        assert!(JoinMsg::decode(&[0x43]).is_err());
    }
}
