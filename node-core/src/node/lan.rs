//! The device's side of LAN discovery (`crate::lan`): the account's LAN
//! secret, the grants that give it to contacts, and the tags to look for.
//!
//! - **Secret** (self log, setting `lan`): 32 random bytes, made by the
//!   first own device that needs it, so every own device tags (and
//!   recognises) alike. Made anew when a contact is marked compromised or
//!   blocked ([`Node::rotate_lan_secret`]), so it stops recognising this
//!   account's devices from the next beacon on (own devices follow once
//!   the self log reaches them).
//! - **Grants** (1:1 conversation, kind [`conversation_kind::LAN_GRANT`],
//!   not shown): the secret, for the contact's devices to recognise ours.
//!   An empty body withdraws. The newest (by depth, author, id) counts.
//!   Compromised and blocked contacts get a withdrawal.
//!
//! - **DHT lookup** (self log, setting `lookup.dht`: `on`, else off): whether
//!   own devices publish their addresses in the Mainline DHT and look
//!   devices up there (`crate::dht`); [`Node::dht_record`] signs this
//!   device's record with its key.
//!
//! Not here: beacons and tags (`crate::lan`), the sockets (the daemon).

use std::collections::HashMap;

use super::messages::conversation_kind;
use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, LogId};
use crate::lan::{Beacon, Tag, epoch, tag};
use crate::log::Event;

/// The self-log setting holding the account's LAN secret.
pub const SETTING_LAN: &str = "lan";

/// The self-log setting turning DHT lookup on for all own devices.
pub const SETTING_DHT: &str = "lookup.dht";

/// A signed DHT address record, ready for the DHT client.
#[derive(Debug, Clone)]
pub struct DhtRecord {
    /// The device key (the BEP 44 key).
    pub key: [u8; 32],
    /// Ed25519 over the BEP 44 signable bytes.
    pub signature: [u8; 64],
    /// The record value (`crate::dht`).
    pub value: Vec<u8>,
    /// Its sequence number (seconds since the epoch).
    pub seq: i64,
}

/// LAN grants by (contact, whether written by this account).
pub(super) type LanGrants = super::mailbox::Grants;

/// Who a tag belongs to, and the secret that opens its beacon's ports.
#[derive(Clone)]
pub struct TagOwner {
    /// The device.
    pub device: DeviceId,
    /// Its account.
    pub account: AccountId,
    /// Its account's LAN secret.
    secret: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for TagOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TagOwner")
            .field("device", &self.device)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl TagOwner {
    /// The ports `beacon` (whose tag is this owner's) names.
    pub fn ports(&self, beacon: &crate::lan::Beacon) -> Vec<u16> {
        beacon.ports(&self.secret)
    }
}

impl Node {
    /// The account's LAN secret, if one was made.
    pub fn lan_secret(&self) -> Option<zeroize::Zeroizing<[u8; 32]>> {
        let bytes: [u8; 32] = self.setting(SETTING_LAN)?.try_into().ok()?;
        Some(zeroize::Zeroizing::new(bytes))
    }

    /// Makes the account's LAN secret if there is none; whether it wrote.
    pub async fn ensure_lan_secret(&mut self, now: i64) -> Result<bool, NodeError> {
        if self.lan_secret().is_some() {
            return Ok(false);
        }
        self.rotate_lan_secret(now).await?;
        Ok(true)
    }

    /// Makes a new LAN secret (contacts get it in the next grant round;
    /// the old one stops counting).
    pub async fn rotate_lan_secret(&mut self, now: i64) -> Result<(), NodeError> {
        let fresh = zeroize::Zeroizing::new(crate::crypto::random_bytes::<32>());
        self.set_setting(SETTING_LAN, fresh.as_slice(), now).await
    }

    /// Contacts whose newest LAN grant from this account is not what they
    /// should have: the current secret, or a withdrawal if compromised.
    pub fn lan_grants_due(&self) -> Vec<AccountId> {
        let secret = self.lan_secret();
        self.contacts
            .iter()
            .filter(|(c, info)| {
                let wanted: Vec<u8> = match &secret {
                    Some(s)
                        if info.trust != super::trust::Trust::Compromised
                            && !self.is_blocked(**c) =>
                    {
                        s.to_vec()
                    }
                    _ => Vec::new(),
                };
                let ours = self.lan_grants.get(&(**c, true)).map(|(_, b)| b.as_slice());
                match ours {
                    None => !wanted.is_empty(),
                    Some(ours) => !crate::crypto::ct_eq(ours, &wanted),
                }
            })
            .map(|(c, _)| *c)
            .collect()
    }

    /// Writes this account's LAN grant (or its withdrawal) into the
    /// conversation with `contact`.
    pub async fn write_lan_grant(&mut self, contact: AccountId, now: i64) -> Result<(), NodeError> {
        self.require_contact(contact)?;
        let compromised = self
            .contacts
            .get(&contact)
            .is_some_and(|c| c.trust == super::trust::Trust::Compromised)
            || self.is_blocked(contact);
        let body = match self.lan_secret() {
            Some(s) if !compromised => s.to_vec(),
            _ => Vec::new(),
        };
        let log = LogId::conversation(self.account, contact);
        self.append_for(log, conversation_kind::LAN_GRANT, body, now, &[contact])
            .await?;
        Ok(())
    }

    /// Records a stored LAN grant of the conversation `log`.
    pub(super) fn apply_lan_grant_entry(&mut self, log: LogId, event: &Event) {
        if let Some((side, by, body)) = self.grant_origin(log, event)
            && (body.is_empty() || body.len() == 32)
        {
            super::mailbox::keep_newest(&mut self.lan_grants, side, by, body);
        }
    }

    /// Whether the account publishes and looks up addresses in the DHT.
    pub fn dht_lookup(&self) -> bool {
        self.setting(SETTING_DHT) == Some(b"on".as_slice())
    }

    /// Turns DHT lookup on or off for all own devices.
    pub async fn set_dht_lookup(&mut self, on: bool, now: i64) -> Result<(), NodeError> {
        let value: &[u8] = if on { b"on" } else { b"off" };
        self.set_setting(SETTING_DHT, value, now).await
    }

    /// This device's DHT record naming `addrs`, signed now; `None` with no
    /// address to name.
    pub fn dht_record(&self, addrs: &[std::net::SocketAddr], now_ms: i64) -> Option<DhtRecord> {
        self.sign_dht_value(crate::dht::encode_record(addrs)?, now_ms)
    }

    /// This device's empty DHT record (lookup turned off), signed now.
    pub fn dht_withdrawal(&self, now_ms: i64) -> Option<DhtRecord> {
        self.sign_dht_value(crate::dht::encode_withdrawal(), now_ms)
    }

    fn sign_dht_value(&self, value: Vec<u8>, now_ms: i64) -> Option<DhtRecord> {
        let seq = now_ms / 1000;
        let signature = self.key.sign_bep44(seq, &value).to_bytes();
        Some(DhtRecord {
            key: *self.device().as_bytes(),
            signature,
            value,
            seq,
        })
    }

    /// This device's tag now, if the account has a secret.
    pub fn lan_tag_now(&self, now_ms: i64) -> Option<Tag> {
        let secret = self.lan_secret()?;
        Some(tag(&secret, epoch(now_ms), &self.device()))
    }

    /// This device's beacon now, naming `ports`, if the account has a
    /// secret.
    pub fn lan_beacon_now(&self, ports: &[u16], now_ms: i64) -> Option<Beacon> {
        let secret = self.lan_secret()?;
        let tag = tag(&secret, epoch(now_ms), &self.device());
        Some(Beacon::new(&secret, tag, ports))
    }

    /// The tags to recognise now: every other active own device under the
    /// account's secret, and every active device of each contact (not
    /// blocked, not compromised) that granted one, for this epoch and the
    /// ones on either side (clocks differ).
    pub fn lan_tags(&self, now_ms: i64) -> HashMap<Tag, TagOwner> {
        let mut out = HashMap::new();
        let e = epoch(now_ms);
        let epochs = [e.saturating_sub(1), e, e + 1];
        let me = self.device();
        let mut add = |secret: &[u8; 32], account: AccountId, devices: Vec<DeviceId>| {
            for device in devices.into_iter().filter(|d| *d != me) {
                for ep in epochs {
                    let owner = TagOwner {
                        device,
                        account,
                        secret: zeroize::Zeroizing::new(*secret),
                    };
                    out.insert(tag(secret, ep, &device), owner);
                }
            }
        };
        if let Some(secret) = self.lan_secret() {
            let own: Vec<DeviceId> = self
                .account_state()
                .map(|s| s.active_devices().map(|(d, _)| *d).collect())
                .unwrap_or_default();
            add(&secret, self.account, own);
        }
        for (account, info) in &self.contacts {
            if info.trust == super::trust::Trust::Compromised || self.is_blocked(*account) {
                continue;
            }
            let Some((_, body)) = self.lan_grants.get(&(*account, false)) else {
                continue;
            };
            let Ok(secret) = <[u8; 32]>::try_from(body.as_slice()) else {
                continue;
            };
            let secret = zeroize::Zeroizing::new(secret);
            add(&secret, *account, self.contact_devices(account));
        }
        out
    }
}
