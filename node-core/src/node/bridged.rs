//! Bridged conversations: a conversation on another network (XMPP first),
//! carried by one of the account's own devices (the bridge device) and
//! shared with the account's own devices only — never with a contact.
//!
//! What is known is in self-log settings, so every own device learns it:
//! `bridge.ID` names a bridge (network, the account there, the device that
//! carries it; an empty value removes it), `bridged.LOG` a conversation
//! through it (the bridge, the address there, whether it is a group). A
//! bridged conversation is a log of its own kind ([`LogKind::Bridged`]),
//! written by own devices only (the self log's rule): [`bridged_kind::IN`]
//! is what arrived (written by the bridge device), [`bridged_kind::OUT`]
//! what to send (by any own device), [`bridged_kind::STATE`] what became of
//! an OUT (sent, delivered, failed; by the bridge device).
//!
//! Everything here is insecure by nature — the other network reads it and
//! its people are not proven by kith keys — and every answer about it says
//! so (`insecure`). The password of the bridged account is never here: it
//! stays in the bridge device's own store (`Node::bridge_secret`), which is
//! never synced.
//!
//! Not here: the network session (the `kith-bridge` crate, driven by the
//! daemon).

use super::messages::MessageInfo;
use super::{Node, NodeError};
use crate::crypto::{HashDomain, hash};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::log::LogKind;
use crate::wire::{Reader, Writer, rfc3339};
use std::collections::{HashMap, HashSet};

/// Event kinds in a bridged log.
pub mod bridged_kind {
    /// A message that arrived from the other network.
    pub const IN: u16 = 1;
    /// A message to send on the other network.
    pub const OUT: u16 = 2;
    /// What became of an OUT.
    pub const STATE: u16 = 3;
}

/// Most bytes of a bridged message's text (what the bridge takes is cut
/// shorter, at 64 KiB).
pub const MAX_TEXT: usize = 64 * 1024;
/// Most bytes of an address, a network id or a name.
pub const MAX_FIELD: usize = 1024;
/// Most bridges one account has.
pub const MAX_BRIDGES: usize = 8;
/// Most bridged conversations one account has.
pub const MAX_BRIDGED: usize = 2_000;
/// How many of a group's newest events are searched for a repeat (its
/// history is given again after each new login).
const REPEAT_WINDOW: usize = 200;
/// How many of a log's newest events are searched for messages to send.
const UNSENT_WINDOW: usize = 2_000;

const BRIDGE_PREFIX: &str = "bridge.";
const BRIDGED_PREFIX: &str = "bridged.";

/// A bridge of this account.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BridgeRecord {
    /// Its id (from the network and the account there).
    pub id: String,
    /// `xmpp`.
    pub network: String,
    /// The account on that network (XMPP: a bare JID).
    pub account: String,
    /// The own device that carries it.
    pub device: DeviceId,
    /// `HOST:PORT` of the server, if given.
    pub server: Option<String>,
}

impl BridgeRecord {
    /// The id of a bridge to `account` on `network`.
    pub fn id_for(network: &str, account: &str) -> String {
        let mut input = b"bridge".to_vec();
        input.extend_from_slice(network.as_bytes());
        input.push(0);
        input.extend_from_slice(account.as_bytes());
        let h = hash(HashDomain::LOG_ID, &input);
        crate::wire::to_base32(&h[..10])
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.str(&self.network)
            .str(&self.account)
            .fixed(self.device.as_bytes())
            .str(self.server.as_deref().unwrap_or(""));
        w.finish()
    }

    fn decode(id: &str, body: &[u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let network = r.str(16, "network").ok()?.to_owned();
        let account = r.str(MAX_FIELD, "account").ok()?.to_owned();
        let device = DeviceId::from_bytes(r.array("device").ok()?);
        let server = r.str(MAX_FIELD, "server").ok()?.to_owned();
        r.finish("bridge").ok()?;
        Some(BridgeRecord {
            id: id.to_owned(),
            network,
            account,
            device,
            server: (!server.is_empty()).then_some(server),
        })
    }
}

/// A bridged conversation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BridgedRecord {
    /// Its log.
    pub log: LogId,
    /// The bridge it goes through.
    pub bridge: String,
    /// The address on the other network (a contact's or a group's).
    pub address: String,
    /// Whether it is a group chat.
    pub group: bool,
}

impl BridgedRecord {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.str(&self.bridge)
            .str(&self.address)
            .u8(u8::from(self.group));
        w.finish()
    }

    fn decode(log: LogId, body: &[u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let bridge = r.str(64, "bridge").ok()?.to_owned();
        let address = r.str(MAX_FIELD, "address").ok()?.to_owned();
        let group = match r.u8("group").ok()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        r.finish("bridged").ok()?;
        // A setting must name its own log: nothing else can be smuggled in.
        (LogId::bridged(&bridge, &address) == log).then_some(BridgedRecord {
            log,
            bridge,
            address,
            group,
        })
    }
}

impl LogId {
    /// The log of the conversation with `address` through bridge `bridge`.
    pub fn bridged(bridge: &str, address: &str) -> Self {
        let mut input = b"bridged".to_vec();
        input.extend_from_slice(bridge.as_bytes());
        input.push(0);
        input.extend_from_slice(address.as_bytes());
        LogId::from_bytes(hash(HashDomain::LOG_ID, &input))
    }
}

/// What became of a message sent through a bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutState {
    /// Left the bridge device for the network's server.
    Sent,
    /// The recipient's client said it has it.
    Delivered,
    /// The network refused it.
    Failed,
}

impl OutState {
    fn code(self) -> u8 {
        match self {
            OutState::Sent => 1,
            OutState::Delivered => 2,
            OutState::Failed => 3,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => OutState::Sent,
            2 => OutState::Delivered,
            3 => OutState::Failed,
            _ => return None,
        })
    }
    /// Its name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            OutState::Sent => "sent",
            OutState::Delivered => "delivered",
            OutState::Failed => "failed",
        }
    }
}

/// A message that arrived through a bridge, as the bridge device writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrived {
    /// Who wrote it there (an address, or a nickname in a group).
    pub sender: String,
    /// Whether this account wrote it (a group's echo or history).
    pub own: bool,
    /// The network's id for it, if any.
    pub network_id: Option<String>,
    /// The network's time for it (Unix ms), if any.
    pub network_time: Option<i64>,
    /// The text.
    pub text: String,
}

fn encode_in(a: &Arrived) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(&a.sender)
        .u8(u8::from(a.own))
        .str(a.network_id.as_deref().unwrap_or(""))
        .i64(a.network_time.unwrap_or(0))
        .str(&a.text);
    w.finish()
}

fn decode_in(body: &[u8]) -> Option<Arrived> {
    let mut r = Reader::new(body);
    let sender = r.str(MAX_FIELD, "sender").ok()?.to_owned();
    let own = r.u8("own").ok()? == 1;
    let network_id = r.str(MAX_FIELD, "network id").ok()?.to_owned();
    let network_time = r.i64("network time").ok()?;
    let text = r.str(MAX_TEXT, "text").ok()?.to_owned();
    r.finish("arrived").ok()?;
    Some(Arrived {
        sender,
        own,
        network_id: (!network_id.is_empty()).then_some(network_id),
        network_time: (network_time != 0).then_some(network_time),
        text,
    })
}

fn decode_state(body: &[u8]) -> Option<(EventId, OutState, String)> {
    let mut r = Reader::new(body);
    let out = EventId::from_bytes(r.array("message").ok()?);
    let state = OutState::from_code(r.u8("state").ok()?)?;
    let why = r.str(MAX_FIELD, "why").ok()?.to_owned();
    r.finish("state").ok()?;
    Some((out, state, why))
}

/// A message to send through a bridge, not yet sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsent {
    /// The OUT event (its id is the id the network sees).
    pub id: EventId,
    /// Its text.
    pub text: String,
}

impl Node {
    /// This account's bridges.
    pub fn bridges(&self) -> Vec<BridgeRecord> {
        self.settings
            .iter()
            .filter_map(|(name, (_, value))| {
                let id = name.strip_prefix(BRIDGE_PREFIX)?;
                BridgeRecord::decode(id, value)
            })
            .collect()
    }

    /// One bridge, by id or a unique prefix of it.
    pub fn bridge(&self, id: &str) -> Result<BridgeRecord, NodeError> {
        let id = id.trim().to_lowercase();
        let found: Vec<BridgeRecord> = self
            .bridges()
            .into_iter()
            .filter(|b| !id.is_empty() && b.id.starts_with(&id))
            .collect();
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(NodeError::Invalid(format!("no bridge {id:?}"))),
            many => Err(NodeError::Invalid(format!(
                "{id:?} is ambiguous: bridges {}",
                many.iter()
                    .map(|b| b.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Records a bridge on every own device (its password stays here: see
    /// [`Node::set_bridge_secret`]).
    pub async fn add_bridge(&mut self, bridge: &BridgeRecord, now: i64) -> Result<(), NodeError> {
        let known = self.bridges();
        if known.len() >= MAX_BRIDGES && !known.iter().any(|b| b.id == bridge.id) {
            return Err(NodeError::Invalid(format!(
                "an account has at most {MAX_BRIDGES} bridges"
            )));
        }
        self.set_setting(
            &format!("{BRIDGE_PREFIX}{}", bridge.id),
            &bridge.encode(),
            now,
        )
        .await
    }

    /// Removes a bridge on every own device (its conversations stay, read
    /// only).
    pub async fn remove_bridge(&mut self, id: &str, now: i64) -> Result<BridgeRecord, NodeError> {
        let bridge = self.bridge(id)?;
        self.set_setting(&format!("{BRIDGE_PREFIX}{}", bridge.id), &[], now)
            .await?;
        Ok(bridge)
    }

    /// Every bridged conversation.
    pub fn bridged(&self) -> Vec<BridgedRecord> {
        self.settings
            .iter()
            .filter_map(|(name, (_, value))| {
                let log: LogId = name.strip_prefix(BRIDGED_PREFIX)?.parse().ok()?;
                BridgedRecord::decode(log, value)
            })
            .collect()
    }

    /// The bridged conversation of `log`, if it is one.
    pub fn bridged_record(&self, log: LogId) -> Option<BridgedRecord> {
        let value = self.setting(&format!("{BRIDGED_PREFIX}{log}"))?;
        BridgedRecord::decode(log, value)
    }

    /// Whether `log` is a bridged conversation.
    pub fn is_bridged(&self, log: &LogId) -> bool {
        self.bridged_record(*log).is_some()
    }

    /// Opens (or finds) the conversation with `address` through `bridge`.
    pub async fn open_bridged(
        &mut self,
        bridge: &str,
        address: &str,
        group: bool,
        now: i64,
    ) -> Result<LogId, NodeError> {
        let bridge = self.bridge(bridge)?;
        let address = address.trim();
        if address.is_empty() || address.len() > MAX_FIELD || address.chars().any(char::is_control)
        {
            return Err(NodeError::Invalid(format!(
                "{address:?} is not an address on {}",
                bridge.network
            )));
        }
        let log = LogId::bridged(&bridge.id, address);
        if self.is_bridged(&log) {
            return Ok(log);
        }
        if self.bridged().len() >= MAX_BRIDGED {
            return Err(NodeError::Invalid(format!(
                "an account has at most {MAX_BRIDGED} bridged conversations"
            )));
        }
        let record = BridgedRecord {
            log,
            bridge: bridge.id,
            address: address.to_owned(),
            group,
        };
        self.set_setting(&format!("{BRIDGED_PREFIX}{log}"), &record.encode(), now)
            .await?;
        Ok(log)
    }

    /// Called for every stored self-log setting: a bridged conversation's
    /// log is held from then on.
    pub(super) fn apply_bridged_setting(&mut self, name: &str) {
        let Some(log) = name
            .strip_prefix(BRIDGED_PREFIX)
            .and_then(|l| l.parse::<LogId>().ok())
        else {
            return;
        };
        if self.bridged_record(log).is_some() && !self.logs.contains_key(&log) {
            self.add_log(log, LogKind::Bridged);
            self.scope += 1;
        }
    }

    /// Keeps a message that arrived through a bridge (on the bridge
    /// device). In a group, a repeat — same sender and network id among the
    /// log's newest events (history given again) — is not kept: `None`.
    pub async fn bridged_arrived(
        &mut self,
        log: LogId,
        arrived: &Arrived,
        now: i64,
    ) -> Result<Option<EventId>, NodeError> {
        self.require_bridged(log)?;
        if arrived.text.len() > MAX_TEXT
            || arrived.sender.len() > MAX_FIELD
            || arrived
                .network_id
                .as_ref()
                .is_some_and(|i| i.len() > MAX_FIELD)
        {
            return Err(NodeError::Invalid("a bridged message out of bounds".into()));
        }
        let group = self.bridged_record(log).is_some_and(|r| r.group);
        if let Some(id) = arrived.network_id.as_ref().filter(|_| group) {
            let recent = self.bridged_events(log, Some(REPEAT_WINDOW)).await?;
            let repeat = recent.iter().any(|(_, kind, body)| {
                *kind == bridged_kind::IN
                    && decode_in(body).is_some_and(|a| {
                        a.network_id.as_deref() == Some(id) && a.sender == arrived.sender
                    })
            });
            if repeat {
                return Ok(None);
            }
        }
        let id = self
            .append(log, bridged_kind::IN, encode_in(arrived), now)
            .await?;
        Ok(Some(id))
    }

    /// Queues a message to send through a bridge (from any own device).
    pub async fn bridged_send(
        &mut self,
        log: LogId,
        text: &str,
        now: i64,
    ) -> Result<EventId, NodeError> {
        let record = self.require_bridged(log)?;
        if !self.bridges().iter().any(|b| b.id == record.bridge) {
            return Err(NodeError::Invalid(
                "the bridge of this conversation was removed".into(),
            ));
        }
        if text.is_empty() || text.len() > MAX_TEXT {
            return Err(NodeError::Invalid(format!(
                "a bridged message is 1 to {MAX_TEXT} bytes"
            )));
        }
        self.append(log, bridged_kind::OUT, text.as_bytes().to_vec(), now)
            .await
    }

    /// Records what became of a sent message (on the bridge device).
    pub async fn bridged_state(
        &mut self,
        log: LogId,
        out: EventId,
        state: OutState,
        why: &str,
        now: i64,
    ) -> Result<(), NodeError> {
        self.require_bridged(log)?;
        let mut why = why.to_owned();
        let mut end = why.len().min(MAX_FIELD);
        while !why.is_char_boundary(end) {
            end -= 1;
        }
        why.truncate(end);
        let mut w = Writer::new();
        w.fixed(out.as_bytes()).u8(state.code()).str(&why);
        self.append(log, bridged_kind::STATE, w.finish(), now)
            .await?;
        Ok(())
    }

    /// Messages of `log` to send that have no state yet, in display order
    /// (among its newest events: an older one without a state was handed
    /// over by an earlier run already, or is too old to go out now).
    pub async fn bridged_unsent(&self, log: LogId) -> Result<Vec<Unsent>, NodeError> {
        self.require_bridged(log)?;
        let events = self.bridged_events(log, Some(UNSENT_WINDOW)).await?;
        let stated: HashSet<EventId> = events
            .iter()
            .filter(|(_, k, _)| *k == bridged_kind::STATE)
            .filter_map(|(_, _, b)| decode_state(b).map(|s| s.0))
            .collect();
        Ok(events
            .into_iter()
            .filter(|(id, k, _)| *k == bridged_kind::OUT && !stated.contains(id))
            .map(|(id, _, body)| Unsent {
                id,
                text: String::from_utf8_lossy(&body).into_owned(),
            })
            .collect())
    }

    /// The newest network time among what arrived in `log` (for a group's
    /// history after a new login).
    pub async fn bridged_last_time(&self, log: LogId) -> Result<Option<i64>, NodeError> {
        let events = self.bridged_events(log, Some(REPEAT_WINDOW)).await?;
        Ok(events
            .iter()
            .filter(|(_, k, _)| *k == bridged_kind::IN)
            .filter_map(|(_, _, b)| decode_in(b)?.network_time)
            .max())
    }

    /// A bridged conversation in display order (the last `limit`), every
    /// entry marked insecure.
    pub async fn bridged_log(
        &self,
        log: LogId,
        limit: Option<usize>,
    ) -> Result<Vec<MessageInfo>, NodeError> {
        let record = self.require_bridged(log)?;
        let dag = self.logs.get(&log).ok_or(NodeError::UnknownLog(log))?;
        let order = dag.display_order();
        let events = self.store.events_by_id(&order).await?;
        let pos: HashMap<EventId, usize> =
            order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut events = events;
        events.sort_by_key(|e| pos.get(&e.event.id()).copied().unwrap_or(usize::MAX));
        let mut states: HashMap<EventId, OutState> = HashMap::new();
        for e in &events {
            if e.event.header().kind == bridged_kind::STATE
                && let Some((out, state, _)) = e.event.body().and_then(decode_state)
            {
                // Delivered or failed outrank sent, whatever the order.
                let slot = states.entry(out).or_insert(state);
                if state != OutState::Sent {
                    *slot = state;
                }
            }
        }
        let mut shown: Vec<MessageInfo> = events
            .iter()
            .filter_map(|e| {
                let h = e.event.header();
                let body = e.event.body()?;
                let (sender, text, state, time) = match h.kind {
                    bridged_kind::IN => {
                        let a = decode_in(body)?;
                        let time = a.network_time.unwrap_or(e.info.effective_time);
                        // Always who wrote it there, even under our own
                        // nickname in a group: a nickname proves nothing.
                        (Some(a.sender), a.text, None, time)
                    }
                    bridged_kind::OUT => {
                        let state = states.get(&e.event.id()).map_or("waiting", |s| s.as_str());
                        let text = String::from_utf8_lossy(body).into_owned();
                        (None, text, Some(state.to_owned()), e.info.effective_time)
                    }
                    _ => return None,
                };
                let delivered = state.as_deref().is_none_or(|s| s == "delivered");
                Some(MessageInfo {
                    id: e.event.id(),
                    author: if h.kind == bridged_kind::IN {
                        bridged_author(&record)
                    } else {
                        self.account
                    },
                    device: h.author,
                    text,
                    time: rfc3339(time),
                    delivered,
                    kind: "message".into(),
                    introduces: None,
                    insecure: true,
                    sender,
                    state,
                })
            })
            .collect();
        let skip = limit.map_or(0, |l| shown.len().saturating_sub(l));
        shown.drain(..skip);
        Ok(shown)
    }

    /// The bridged conversation a TARGET names: its exact address (one
    /// bridge's, else ambiguous), or its log id (12 characters at least of
    /// it). `None` if it names none.
    pub fn resolve_bridged(&self, target: &str) -> Result<Option<LogId>, NodeError> {
        let t = target.trim();
        if t.is_empty() {
            return Ok(None);
        }
        let lower = t.to_lowercase();
        let found: Vec<BridgedRecord> = self
            .bridged()
            .into_iter()
            .filter(|r| {
                r.address == t || (lower.len() >= 12 && r.log.to_string().starts_with(&lower))
            })
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.log)),
            many => Err(NodeError::Invalid(format!(
                "{t:?} is ambiguous: bridged conversations {}",
                many.iter()
                    .map(|r| r.log.short(12))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Keeps the password of a bridge this device carries, in this
    /// device's encrypted store only (never synced; empty removes it).
    pub async fn set_bridge_secret(&self, id: &str, secret: &[u8]) -> Result<(), NodeError> {
        self.store
            .set_meta(&[(&format!("bridge-secret.{id}"), secret)])
            .await?;
        Ok(())
    }

    /// The password of a bridge this device carries, if kept here.
    pub async fn bridge_secret(
        &self,
        id: &str,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, NodeError> {
        let v = self.store.meta(&format!("bridge-secret.{id}")).await?;
        Ok(v.filter(|v| !v.is_empty()).map(zeroize::Zeroizing::new))
    }

    /// How many events `log` holds (to notice that it changed).
    pub fn log_len(&self, log: &LogId) -> usize {
        self.logs.get(log).map_or(0, |d| d.len())
    }

    /// Every bridged conversation as a contact list entry: marked
    /// insecure, never validated, no kith devices.
    pub fn bridged_contacts(&self) -> Vec<super::contacts::ContactInfo> {
        let bridges = self.bridges();
        let names: HashMap<DeviceId, String> = self
            .devices()
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect();
        self.bridged()
            .into_iter()
            .map(|r| {
                let via = match bridges.iter().find(|b| b.id == r.bridge) {
                    Some(b) => format!(
                        "{} on {}",
                        b.network.to_uppercase(),
                        names
                            .get(&b.device)
                            .cloned()
                            .unwrap_or_else(|| b.device.short(12))
                    ),
                    None => "a removed bridge".to_owned(),
                };
                super::contacts::ContactInfo {
                    id: bridged_author(&r),
                    name: r.address.clone(),
                    alias: None,
                    trust: "unvalidated".into(),
                    trust_reason: Some(format!(
                        "a conversation on another network ({via}): not end-to-end \
                         encrypted, not proven by kith keys"
                    )),
                    devices: Vec::new(),
                    introduced_by: None,
                    unread: 0,
                    new_devices: Vec::new(),
                    muted: self.muted(r.log),
                    insecure: true,
                    via: Some(via),
                    group: r.group,
                }
            })
            .collect()
    }

    fn require_bridged(&self, log: LogId) -> Result<BridgedRecord, NodeError> {
        self.bridged_record(log).ok_or_else(|| {
            NodeError::Invalid(format!("{} is not a bridged conversation", log.short(12)))
        })
    }

    /// The stored events of a bridged log (the newest `newest`), with their
    /// kinds and bodies, in display order.
    async fn bridged_events(
        &self,
        log: LogId,
        newest: Option<usize>,
    ) -> Result<Vec<(EventId, u16, Vec<u8>)>, NodeError> {
        let Some(dag) = self.logs.get(&log) else {
            return Ok(Vec::new());
        };
        let order = dag.display_order();
        let skip = newest.map_or(0, |n| order.len().saturating_sub(n));
        let ids = &order[skip..];
        let mut events = self.store.events_by_id(ids).await?;
        let pos: HashMap<EventId, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        events.sort_by_key(|e| pos.get(&e.event.id()).copied().unwrap_or(usize::MAX));
        Ok(events
            .into_iter()
            .filter_map(|e| {
                let body = e.event.body()?.to_vec();
                Some((e.event.id(), e.event.header().kind, body))
            })
            .collect())
    }
}

/// The "author" shown for what a bridged conversation's other side wrote:
/// not a kith account (there is none); a stand-in derived from the
/// conversation, so it never equals a real account.
fn bridged_author(record: &BridgedRecord) -> AccountId {
    AccountId::from_bytes(*record.log.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_setting_names_its_own_log() {
        let b = BridgeRecord {
            id: BridgeRecord::id_for("xmpp", "me@example.org"),
            network: "xmpp".into(),
            account: "me@example.org".into(),
            device: DeviceId::from_bytes([3; 32]),
            server: Some("127.0.0.1:5222".into()),
        };
        assert_eq!(BridgeRecord::decode(&b.id, &b.encode()), Some(b.clone()));
        let log = LogId::bridged(&b.id, "bob@example.org");
        let r = BridgedRecord {
            log,
            bridge: b.id.clone(),
            address: "bob@example.org".into(),
            group: false,
        };
        assert_eq!(BridgedRecord::decode(log, &r.encode()), Some(r.clone()));
        // The same record under another log's name is refused.
        let other = LogId::bridged(&b.id, "mallory@example.org");
        assert_eq!(BridgedRecord::decode(other, &r.encode()), None);
        assert_ne!(LogId::bridged(&b.id, "a"), LogId::bridged("x", "a"));
    }

    #[test]
    fn arrivals_and_states_round_trip_and_garbage_is_refused() {
        let a = Arrived {
            sender: "alice".into(),
            own: false,
            network_id: Some("n1".into()),
            network_time: Some(1_700_000_000_000),
            text: "hi".into(),
        };
        assert_eq!(decode_in(&encode_in(&a)), Some(a));
        assert_eq!(decode_in(b"\xff\xff"), None);
        let mut w = Writer::new();
        w.fixed(&[1; 32]).u8(9).str("");
        assert_eq!(decode_state(&w.finish()), None);
    }
}
