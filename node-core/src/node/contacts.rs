//! Contacts: added from a card, recorded in the self log (so every own
//! device learns them), and resolved from the command line's TARGET.

use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, LogId};
use crate::identity::entry::check_name;
use crate::identity::{AccountLog, Card};
use crate::log::{Event, LogKind};
use crate::wire::{Reader, WireError, Writer};
use std::net::SocketAddr;

/// Body kinds of self-log events.
pub mod self_kind {
    /// A contact added (or its alias changed): the card URI and an alias.
    pub const CONTACT: u16 = 1;
    /// Messages deleted on all own devices.
    pub const DELETE: u16 = 2;
    /// A contact's trust state set (by hand, by a verified safety number,
    /// or on detecting a compromise).
    pub const TRUST: u16 = 3;
    /// A conversation read up to an event.
    pub const READ: u16 = 4;
    /// A setting (name, value), shared by all own devices.
    pub const SETTING: u16 = 5;
    /// A room held: its id, creator and the account it came through.
    pub const ROOM: u16 = 6;
    /// A contact request declined or blocked: the account, and whether it
    /// is blocked.
    pub const REFUSE: u16 = 7;
}

/// Which self-log entry set a register: the entry with the highest
/// (depth, author, id) wins, whatever the arrival order.
pub(super) type RegisterKey = (u64, DeviceId, crate::id::EventId);

/// A register never set.
pub(super) const UNSET: RegisterKey = (
    0,
    DeviceId::from_bytes([0; 32]),
    crate::id::EventId::from_bytes([0; 32]),
);

/// A contact as this device knows it.
#[derive(Debug, Clone)]
pub struct Contact {
    /// The card it was added from (the newest issued).
    pub card: Card,
    /// That card's URI.
    pub uri: String,
    /// The user's name for it.
    pub alias: Option<String>,
    alias_by: RegisterKey,
    /// Trust state.
    pub trust: super::trust::Trust,
    /// Why (for `compromised`: what was detected).
    pub trust_reason: Option<String>,
    pub(super) trust_by: RegisterKey,
    /// Its account log's heads when it was validated.
    pub(super) validated_at: Vec<crate::id::EventId>,
    /// The contact that introduced this one, if it came that way.
    pub introduced_by: Option<AccountId>,
    /// The entry that named `introduced_by` (the lowest key wins).
    introduced_by_key: RegisterKey,
    /// Whether an own device added it itself (an entry naming no
    /// introducer): only that overrides a decline or a block.
    pub(super) added_directly: bool,
}

/// A contact as `kith contact list --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ContactInfo {
    /// Account id.
    pub id: AccountId,
    /// The name its card gives.
    pub name: String,
    /// The user's alias, if any.
    pub alias: Option<String>,
    /// `unvalidated`, `validated` or `compromised`.
    pub trust: String,
    /// Why the trust state is what it is (what was detected, for
    /// `compromised`).
    #[serde(default)]
    pub trust_reason: Option<String>,
    /// Its active devices (from its account log once synced, else its card).
    pub devices: Vec<DeviceId>,
    /// The contact that introduced it, if it came that way.
    #[serde(default)]
    pub introduced_by: Option<AccountId>,
    /// Messages from it not read yet (on any own device).
    #[serde(default)]
    pub unread: usize,
    /// Devices it added after it was validated (a notice: validation
    /// stands, as both its devices signed each addition).
    #[serde(default)]
    pub new_devices: Vec<DeviceId>,
    /// Its notifications are muted (on every own device).
    #[serde(default)]
    pub muted: bool,
    /// A conversation on another network through a bridge: read by that
    /// network's servers, its people not proven by kith keys. Never
    /// validated; `id` is then the conversation's log id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// For a bridged conversation: which network, through which own
    /// device (`XMPP on laptop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// For a bridged conversation: whether it is a group chat.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub group: bool,
}

/// A Contact entry: card URI, alias, and (optional, at the end) the
/// contact that introduced it.
pub(super) fn encode_contact(
    uri: &str,
    alias: Option<&str>,
    introduced_by: Option<AccountId>,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(uri).option(alias, |w, a| {
        w.str(a);
    });
    if let Some(by) = introduced_by {
        w.fixed(by.as_bytes());
    }
    w.finish()
}

struct ContactEntry {
    card: Card,
    uri: String,
    alias: Option<String>,
    introduced_by: Option<AccountId>,
}

fn decode_contact(body: &[u8]) -> Result<ContactEntry, WireError> {
    let mut r = Reader::new(body);
    let uri = r.str(crate::identity::card::MAX_CARD_URI, "card")?;
    let card = Card::parse(uri).map_err(|_| WireError::Invalid {
        what: "card",
        why: "invalid",
    })?;
    let uri = uri.to_owned();
    let alias = r.option("alias", |r| Ok(r.str(64, "alias")?.to_owned()))?;
    let introduced_by = if r.is_empty() {
        None
    } else {
        Some(AccountId::from_bytes(r.array("introducer")?))
    };
    r.finish("contact")?;
    Ok(ContactEntry {
        card,
        uri,
        alias,
        introduced_by,
    })
}

impl Node {
    /// Adds a contact from its `kith:` card (as `unvalidated`).
    pub async fn add_contact(
        &mut self,
        uri: &str,
        alias: Option<&str>,
        now: i64,
    ) -> Result<AccountId, NodeError> {
        let card = Card::parse(uri).map_err(NodeError::Card)?;
        if card.account == self.account {
            return Err(NodeError::Invalid("that is your own card".into()));
        }
        if let Some(a) = alias {
            check_name(a).map_err(NodeError::BadName)?;
        }
        let body = encode_contact(uri.trim(), alias, None);
        self.append(LogId::self_log(self.account), self_kind::CONTACT, body, now)
            .await?;
        Ok(card.account)
    }

    /// Applies a stored self-log event to what this device knows. The
    /// result does not depend on the order entries arrive in: contacts are
    /// an add-wins set, the card is the newest issued (ties by signature
    /// bytes), the alias a register ordered by (depth, author, id).
    pub(super) fn apply_self_entry(&mut self, event: &Event) {
        match event.header().kind {
            self_kind::CONTACT => {}
            self_kind::DELETE => return self.apply_delete_entry(event),
            self_kind::TRUST => return self.apply_trust_entry(event),
            self_kind::READ => return self.apply_read_entry(event),
            self_kind::SETTING => return self.apply_setting_entry(event),
            self_kind::ROOM => return self.apply_room_entry(event),
            self_kind::REFUSE => return self.apply_refusal_entry(event),
            _ => return,
        }
        let Some(Ok(entry)) = event.body().map(decode_contact) else {
            return;
        };
        let ContactEntry {
            card,
            uri,
            alias,
            introduced_by,
        } = entry;
        let account = card.account;
        if account == self.account {
            return;
        }
        let h = event.header();
        let by = (h.depth, h.author, event.id());
        match self.contacts.get_mut(&account) {
            Some(c) => {
                if (card.issued, card.encode_unsigned()) > (c.card.issued, c.card.encode_unsigned())
                {
                    c.card = card;
                    c.uri = uri;
                }
                // The introducer of the lowest entry (by register order) stays.
                if introduced_by.is_some()
                    && (c.introduced_by.is_none() || by < c.introduced_by_key)
                {
                    c.introduced_by = introduced_by;
                    c.introduced_by_key = by;
                }
                if alias.is_some() && by > c.alias_by {
                    c.alias = alias;
                    c.alias_by = by;
                }
                c.added_directly |= introduced_by.is_none();
            }
            None => {
                let alias_by = if alias.is_some() { by } else { UNSET };
                self.contacts.insert(
                    account,
                    Contact {
                        card,
                        uri,
                        alias,
                        alias_by,
                        trust: super::trust::Trust::Unvalidated,
                        trust_reason: None,
                        trust_by: UNSET,
                        validated_at: Vec::new(),
                        introduced_by_key: if introduced_by.is_some() { by } else { UNSET },
                        added_directly: introduced_by.is_none(),
                        introduced_by,
                    },
                );
            }
        }
        self.accounts
            .map_mut()
            .entry(account)
            .or_insert_with(|| AccountLog::new(account));
        self.add_log(LogId::account(account), LogKind::Account);
        self.add_log(
            LogId::conversation(self.account, account),
            LogKind::Conversation,
        );
    }

    /// The contact whose 1:1 conversation `log` is.
    pub fn contact_of_conversation(&self, log: LogId) -> Option<AccountId> {
        self.contacts
            .keys()
            .find(|c| LogId::conversation(self.account, **c) == log)
            .copied()
    }

    /// Every contact's account.
    pub fn contact_accounts(&self) -> Vec<AccountId> {
        self.contacts.keys().copied().collect()
    }

    /// A contact.
    pub fn contact(&self, account: &AccountId) -> Option<&Contact> {
        self.contacts.get(account)
    }

    /// The account whose log lists `device` as active (not revoked): the
    /// account it proves it speaks for.
    pub fn active_account_of(&self, device: &DeviceId) -> Option<AccountId> {
        self.accounts.index().active(device)
    }

    /// The account whose log lists `device`, revoked or not.
    pub fn account_of_device(&self, device: &DeviceId) -> Option<AccountId> {
        self.accounts.index().listing(device)
    }

    /// Every contact, for `kith contact list`.
    pub fn contacts(&self) -> Vec<ContactInfo> {
        self.contacts
            .iter()
            .map(|(id, c)| ContactInfo {
                id: *id,
                name: c.card.name.clone(),
                alias: c.alias.clone(),
                trust: c.trust.as_str().into(),
                trust_reason: c.trust_reason.clone(),
                devices: self.contact_devices(id),
                introduced_by: c.introduced_by,
                unread: self.unread(*id),
                muted: self.muted(LogId::conversation(self.account, *id)),
                new_devices: self.devices_since_validation(*id),
                insecure: false,
                via: None,
                group: false,
            })
            .collect()
    }

    /// A contact's active devices: from its account log once it has
    /// arrived, else as its card lists them.
    pub fn contact_devices(&self, account: &AccountId) -> Vec<DeviceId> {
        match self.account_log_state(*account) {
            Ok(state) => state.active_devices().map(|(d, _)| *d).collect(),
            Err(_) => self
                .contacts
                .get(account)
                .map(|c| c.card.devices.clone())
                .unwrap_or_default(),
        }
    }

    /// Devices to keep links with (own other active devices and contacts'
    /// active devices), with the addresses cards (for the device that
    /// signed each), invite codes and the devices' own reports gave.
    pub fn dial_targets(&self) -> Vec<(DeviceId, Vec<SocketAddr>)> {
        let mut out = Vec::new();
        let me = self.device();
        if let Ok(own) = self.account_state() {
            for (d, _) in own.active_devices().filter(|(d, _)| **d != me) {
                out.push((*d, self.hints_of(d)));
            }
        }
        for (account, c) in &self.contacts {
            // A blocked account that came by introduction: not dialled.
            if self.is_blocked(*account) {
                continue;
            }
            let card: Vec<SocketAddr> =
                c.card.hints.iter().filter_map(|h| h.parse().ok()).collect();
            for d in self.contact_devices(account) {
                let mut hints = self.hints_of(&d);
                // A card's addresses are its signer's own: given to another
                // device of the account they reach the wrong key, and a
                // handshake that does fails the whole dial.
                if d == c.card.signer {
                    hints.extend(card.iter().copied());
                }
                hints.sort();
                hints.dedup();
                out.push((d, hints));
            }
        }
        for (d, hints) in self
            .room_dial_targets()
            .into_iter()
            .chain(self.room_join_targets())
        {
            if !out.iter().any(|(o, _)| *o == d) {
                out.push((d, hints));
            }
        }
        out
    }

    /// Resolves a TARGET: an account id, a unique prefix of one (at least
    /// four characters), an alias or a name.
    pub fn resolve_target(&self, target: &str) -> Result<AccountId, NodeError> {
        let t = target.trim();
        if let Ok(id) = t.parse::<AccountId>()
            && self.contacts.contains_key(&id)
        {
            return Ok(id);
        }
        let by_name: Vec<AccountId> = self
            .contacts
            .iter()
            .filter(|(_, c)| c.alias.as_deref() == Some(t))
            .map(|(id, _)| *id)
            .collect();
        let candidates = if !by_name.is_empty() {
            by_name
        } else {
            let lower = t.to_lowercase();
            self.contacts
                .iter()
                .filter(|(id, c)| c.card.name.to_lowercase() == lower || id.matches_prefix(&lower))
                .map(|(id, _)| *id)
                .collect()
        };
        only_match(&candidates, t, "no contact or room", |id| id.short(12))
    }
}

/// The one candidate a name matched; none is an error naming `none` ("no
/// contact", say), several one listing them.
pub(super) fn only_match<T: Copy>(
    candidates: &[T],
    target: &str,
    none: &str,
    short: impl Fn(&T) -> String,
) -> Result<T, NodeError> {
    match candidates {
        [one] => Ok(*one),
        [] => Err(NodeError::Invalid(format!("{none} matches {target:?}"))),
        many => Err(NodeError::Invalid(format!(
            "{target:?} is ambiguous: {}",
            many.iter().map(short).collect::<Vec<_>>().join(", ")
        ))),
    }
}
