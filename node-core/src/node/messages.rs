//! 1:1 messages: sending and the conversation as displayed.

use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::log::event::MAX_BODY;
use std::collections::HashSet;

/// Body kinds of conversation events.
pub mod conversation_kind {
    /// A text message (UTF-8).
    pub const MESSAGE: u16 = 1;
    /// A contact introduced: its card URI and the introducer's trust in it.
    pub const INTRODUCTION: u16 = 2;
    /// A file offered ([`crate::files::FileOffer`]); its id is the file id.
    pub const FILE_OFFER: u16 = 3;
    /// Where the author's account lets the other deposit while it is away
    /// (`node::mailbox`); not shown.
    pub const MAILBOX_GRANT: u16 = 4;
    /// Where the authoring device can be woken (`node::push`); not shown.
    pub const PUSH_GRANT: u16 = 5;
    /// An invitation to a room: room id, creator, inviter (not shown).
    pub const ROOM_INVITE: u16 = 6;
    /// A call that ended ([`crate::call::CallRecord`]), written by the
    /// caller's device.
    pub const CALL: u16 = 7;
    /// The author's account's LAN discovery secret (`node::lan`); not
    /// shown.
    pub const LAN_GRANT: u16 = 8;
}

/// A message as `kith log --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MessageInfo {
    /// Event id.
    pub id: EventId,
    /// The author's account.
    pub author: AccountId,
    /// The author's device.
    pub device: DeviceId,
    /// The text (empty if deleted).
    pub text: String,
    /// Effective time, RFC 3339 UTC.
    pub time: String,
    /// Whether a device of every other member holds it.
    pub delivered: bool,
    /// `message` or `introduction`.
    #[serde(default = "message_kind")]
    pub kind: String,
    /// For an introduction: the account introduced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduces: Option<AccountId>,
    /// A bridged conversation's message: the other network carried it
    /// (read by its servers, its people not proven by kith keys).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// In a bridged conversation: who wrote it there (an address, or a
    /// nickname in a group); absent for this account's own messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// In a bridged conversation, for this account's messages: `waiting`
    /// (for the bridge device), `sent`, `delivered` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

fn message_kind() -> String {
    "message".into()
}

/// Most contacts one contact may introduce.
const MAX_INTRODUCED: usize = 32;

/// An introduction's body: card URI, then the introducer's trust in it.
pub(super) fn encode_introduction(uri: &str, trust: super::trust::Trust) -> Vec<u8> {
    let mut w = crate::wire::Writer::new();
    w.str(uri).str(trust.as_str());
    w.finish()
}

/// Reads an introduction: the card and the introducer's trust in it.
pub(super) fn decode_introduction(body: &[u8]) -> Option<(crate::identity::Card, String, String)> {
    let mut r = crate::wire::Reader::new(body);
    let uri = r.str(crate::identity::card::MAX_CARD_URI, "card").ok()?;
    let trust = r.str(16, "trust").ok()?.to_owned();
    r.finish("introduction").ok()?;
    let card = crate::identity::Card::parse(uri).ok()?;
    Some((card, uri.to_owned(), trust))
}

impl Node {
    /// Fails unless `account` is a contact.
    pub(super) fn require_contact(&self, account: AccountId) -> Result<(), NodeError> {
        if self.contacts.contains_key(&account) {
            return Ok(());
        }
        Err(NodeError::Invalid(format!(
            "{} is not a contact",
            account.short(12)
        )))
    }

    /// Queues a text message to a contact; returns at once.
    pub async fn send_message(
        &mut self,
        to: AccountId,
        text: &str,
        now: i64,
    ) -> Result<EventId, NodeError> {
        self.require_contact(to)?;
        if text.len() > MAX_BODY {
            return Err(NodeError::Invalid(format!(
                "message too long ({} bytes, limit {MAX_BODY})",
                text.len()
            )));
        }
        let log = LogId::conversation(self.account, to);
        self.append_for(
            log,
            conversation_kind::MESSAGE,
            text.as_bytes().to_vec(),
            now,
            &[to],
        )
        .await
    }

    /// Records a call with `with` that ended (this device called).
    pub async fn record_call(
        &mut self,
        with: AccountId,
        record: &crate::call::CallRecord,
        now: i64,
    ) -> Result<EventId, NodeError> {
        self.require_contact(with)?;
        let log = LogId::conversation(self.account, with);
        self.append_for(log, conversation_kind::CALL, record.encode(), now, &[with])
            .await
    }

    /// Introduces `contact` to `to`: sends `to` the contact's card and our
    /// trust in it. `to` adds it as unvalidated, seeing who introduced it.
    pub async fn share_contact(
        &mut self,
        contact: AccountId,
        to: AccountId,
        now: i64,
    ) -> Result<EventId, NodeError> {
        if contact == to {
            return Err(NodeError::Invalid(
                "a contact cannot be introduced to itself".into(),
            ));
        }
        let (Some(c), true) = (self.contacts.get(&contact), self.contacts.contains_key(&to)) else {
            return Err(NodeError::Invalid(
                "both must be contacts: the one to share and the one to share with".into(),
            ));
        };
        let body = encode_introduction(&c.uri, c.trust);
        let log = LogId::conversation(self.account, to);
        self.append_for(log, conversation_kind::INTRODUCTION, body, now, &[to])
            .await
    }

    /// Adds the contacts that contacts introduced (noted while storing
    /// their events), as unvalidated, naming the introducer.
    pub(super) async fn add_introduced(&mut self, now: i64) -> Result<(), NodeError> {
        for (introducer, uri) in std::mem::take(&mut self.introduced) {
            let Ok(card) = crate::identity::Card::parse(&uri) else {
                continue;
            };
            if card.account == self.account
                || self.contacts.contains_key(&card.account)
                || self.request_standing(card.account) == super::requests::Standing::Refused
            {
                continue;
            }
            // A contact cannot flood the contact list: a compromised one
            // introduces nobody, and each introduces at most a few.
            let introducer_ok = self
                .contacts
                .get(&introducer)
                .is_some_and(|c| c.trust != super::trust::Trust::Compromised);
            let introduced = self
                .contacts
                .values()
                .filter(|c| c.introduced_by == Some(introducer))
                .count();
            if !introducer_ok || introduced >= MAX_INTRODUCED {
                tracing::warn!(
                    introducer = %introducer.short(12),
                    "introduction ignored (compromised introducer, or {MAX_INTRODUCED} already)"
                );
                continue;
            }
            let body = super::contacts::encode_contact(&uri, None, Some(introducer));
            self.append(
                LogId::self_log(self.account),
                super::contacts::self_kind::CONTACT,
                body,
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// Queues many text messages to a contact in one transaction.
    pub async fn send_messages(
        &mut self,
        to: AccountId,
        texts: &[String],
        now: i64,
    ) -> Result<Vec<EventId>, NodeError> {
        self.require_contact(to)?;
        if texts.iter().any(|t| t.len() > MAX_BODY) {
            return Err(NodeError::Invalid(format!(
                "a message is longer than {MAX_BODY} bytes"
            )));
        }
        let log = LogId::conversation(self.account, to);
        let bodies = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
        self.append_many(log, conversation_kind::MESSAGE, bodies, now, &[to])
            .await
    }

    /// The conversation with a contact in display order (the last `limit`).
    pub async fn conversation(
        &self,
        with: AccountId,
        limit: Option<usize>,
    ) -> Result<Vec<MessageInfo>, NodeError> {
        let log = LogId::conversation(self.account, with);
        let dag = self.logs.get(&log).ok_or(NodeError::UnknownLog(log))?;
        let order = dag.display_order();
        let skip = limit.map_or(0, |l| order.len().saturating_sub(l));
        let ids = &order[skip..];
        let undelivered: HashSet<EventId> =
            self.store.undelivered(log).await?.into_iter().collect();
        let mut events = self.store.events_by_id(ids).await?;
        let pos: std::collections::HashMap<EventId, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        events.sort_by_key(|e| pos.get(&e.event.id()).copied().unwrap_or(usize::MAX));
        let own = self.account_state()?;
        Ok(events
            .into_iter()
            // Deleted messages keep only their header: not shown.
            .filter(|e| {
                matches!(
                    e.event.header().kind,
                    conversation_kind::MESSAGE
                        | conversation_kind::INTRODUCTION
                        | conversation_kind::FILE_OFFER
                        | conversation_kind::CALL
                ) && e.event.body().is_some()
            })
            .map(|e| {
                let h = e.event.header();
                let author = if own.devices.contains_key(&h.author) {
                    self.account
                } else {
                    with
                };
                let body = e.event.body().unwrap_or_default();
                let (kind, text, introduces) = if h.kind == conversation_kind::INTRODUCTION {
                    match decode_introduction(body) {
                        Some((card, _, trust)) => (
                            "introduction",
                            format!(
                                "introduces {} ({}); the introducer's trust in them: {trust}",
                                card.name,
                                card.account.short(12)
                            ),
                            Some(card.account),
                        ),
                        None => ("introduction", "(a damaged introduction)".into(), None),
                    }
                } else if h.kind == conversation_kind::FILE_OFFER {
                    match crate::files::FileOffer::decode(body) {
                        Ok(o) => (
                            "file",
                            format!("[file] {} ({} bytes)", o.name, o.size),
                            None,
                        ),
                        Err(_) => ("file", "(a damaged file offer)".into(), None),
                    }
                } else if h.kind == conversation_kind::CALL {
                    match crate::call::CallRecord::decode(body) {
                        Ok(r) => ("call", r.describe(), None),
                        Err(_) => ("call", "(a damaged call record)".into(), None),
                    }
                } else {
                    ("message", String::from_utf8_lossy(body).into_owned(), None)
                };
                MessageInfo {
                    id: e.event.id(),
                    author,
                    device: h.author,
                    text,
                    time: crate::wire::rfc3339(e.info.effective_time),
                    delivered: !undelivered.contains(&e.event.id()),
                    kind: kind.into(),
                    introduces,
                    insecure: false,
                    sender: None,
                    state: None,
                }
            })
            .collect())
    }

    /// Events waiting for delivery.
    pub async fn outbox_len(&self) -> Result<u64, NodeError> {
        Ok(self.store.outbox_len().await?.max(0) as u64)
    }
}
