//! Account-log entries: the bodies of account-log events.

use crate::crypto::{SignDomain, Signature, SigningKey, VerifyingKey};
use crate::id::{AccountId, DeviceId};
use crate::wire::{Reader, WireError, Writer};

/// Longest account or device name, in bytes.
pub const MAX_NAME: usize = 64;

/// Body kinds of account-log events.
pub mod kind {
    /// The first event: names the first device and the recovery key.
    pub const GENESIS: u16 = 1;
    /// A device joins; signed by an active device and by the new one.
    pub const ADD_DEVICE: u16 = 2;
    /// A device is cut off (by sequence number only: revocations written
    /// before per-log cuts existed, and by the recovery key).
    pub const REVOKE_DEVICE: u16 = 3;
    /// A device is cut off, and the revoking device vouches in each log for
    /// the revoked device's events it holds (see `crate::log::cut`).
    pub const REVOKE_DEVICE_CUT: u16 = 4;
}

/// What an account-log event says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountEntry {
    /// The account begins; its author is the first device.
    Genesis {
        /// The account's display name.
        account_name: String,
        /// The first device's name.
        device_name: String,
        /// An offline key that beats every device.
        recovery: Option<VerifyingKey>,
    },
    /// A new device joins. The event's author (an active device) signs the
    /// header; the new device signs `join` to prove it holds its key.
    AddDevice {
        /// The new device.
        device: DeviceId,
        /// Its name.
        name: String,
        /// The new device's signature over [`join_message`].
        join: Signature,
    },
    /// A device is revoked: its events with a higher sequence number than
    /// `cutoff_seq` are rejected everywhere.
    RevokeDevice {
        /// The revoked device.
        device: DeviceId,
        /// The revoked device's last valid sequence number.
        cutoff_seq: u64,
        /// Whether the revoking device writes a cut in each log: then the
        /// revoked device's events that no cut vouches for are kept only
        /// as structure (never shown, never applied).
        cuts: bool,
    },
}

impl AccountEntry {
    /// The body kind for the event header.
    pub fn kind(&self) -> u16 {
        match self {
            AccountEntry::Genesis { .. } => kind::GENESIS,
            AccountEntry::AddDevice { .. } => kind::ADD_DEVICE,
            AccountEntry::RevokeDevice { cuts: false, .. } => kind::REVOKE_DEVICE,
            AccountEntry::RevokeDevice { cuts: true, .. } => kind::REVOKE_DEVICE_CUT,
        }
    }

    /// The body bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            AccountEntry::Genesis {
                account_name,
                device_name,
                recovery,
            } => {
                w.str(account_name)
                    .str(device_name)
                    .option(*recovery, |w, r| {
                        w.fixed(r.as_bytes());
                    });
            }
            AccountEntry::AddDevice { device, name, join } => {
                w.fixed(device.as_bytes()).str(name).fixed(join.as_bytes());
            }
            AccountEntry::RevokeDevice {
                device, cutoff_seq, ..
            } => {
                w.fixed(device.as_bytes()).u64(*cutoff_seq);
            }
        }
        w.finish()
    }

    /// Reads a body of the given kind.
    pub fn decode(kind: u16, body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let entry = match kind {
            kind::GENESIS => AccountEntry::Genesis {
                account_name: name(&mut r, "account name")?,
                device_name: name(&mut r, "device name")?,
                recovery: r.option("recovery key", |r| {
                    Ok(VerifyingKey::from_bytes(r.array("recovery key")?))
                })?,
            },
            kind::ADD_DEVICE => AccountEntry::AddDevice {
                device: DeviceId::from_bytes(r.array("device")?),
                name: name(&mut r, "device name")?,
                join: Signature::from_bytes(r.array("join signature")?),
            },
            kind::REVOKE_DEVICE | kind::REVOKE_DEVICE_CUT => AccountEntry::RevokeDevice {
                device: DeviceId::from_bytes(r.array("device")?),
                cutoff_seq: r.u64("cutoff")?,
                cuts: kind == kind::REVOKE_DEVICE_CUT,
            },
            _ => {
                return Err(WireError::Invalid {
                    what: "account entry kind",
                    why: "unknown",
                });
            }
        };
        r.finish("account entry")?;
        Ok(entry)
    }
}

/// Reads a name: UTF-8, non-empty, at most [`MAX_NAME`] bytes, no control
/// characters.
pub fn name(r: &mut Reader<'_>, what: &'static str) -> Result<String, WireError> {
    let s = r.str(MAX_NAME, what)?;
    check_name(s).map_err(|why| WireError::Invalid { what, why })?;
    Ok(s.to_owned())
}

/// The rules every account and device name follows.
pub fn check_name(s: &str) -> Result<(), &'static str> {
    if s.trim().is_empty() {
        return Err("empty");
    }
    if s.len() > MAX_NAME {
        return Err("longer than 64 bytes");
    }
    if s.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

/// What a joining device signs: the account, its own id and its name.
pub fn join_message(account: AccountId, device: DeviceId, name: &str) -> Vec<u8> {
    Writer::new()
        .fixed(account.as_bytes())
        .fixed(device.as_bytes())
        .str(name)
        .finish()
}

/// The joining device's proof that it holds its key and wants this account.
pub fn sign_join(key: &SigningKey, account: AccountId, name: &str) -> Signature {
    let device = DeviceId::from(key.verifying_key());
    key.sign(SignDomain::JOIN, &join_message(account, device, name))
}

/// Checks a joining device's proof.
pub fn verify_join(account: AccountId, device: DeviceId, name: &str, join: &Signature) -> bool {
    device
        .verifying_key()
        .verify(SignDomain::JOIN, &join_message(account, device, name), join)
        .is_ok()
}
