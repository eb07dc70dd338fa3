//! Rooms on this device: which rooms it holds (self log), their logs under
//! [`RoomLog`] rules, the accounts of their members, and the commands
//! (create, invite, join, roles, kick, leave, messages).
//!
//! A room log travels only between devices of accounts that are invited to
//! or joined in it (as this device resolves it); see `view.rs`. Members who
//! are not contacts are known by their account logs, which travel with the
//! room.

use super::contacts::self_kind;
use super::messages::{MessageInfo, conversation_kind};
use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::identity::Members;
use crate::log::{Dag, Draft, Event, LogKind, Rules, Status};
use crate::rooms::{
    ADMIN, History, MAX_CONFIRMATIONS, MAX_MESSAGE, MAX_TEXT, MEMBER, MODERATOR, Membership,
    RoomContent, RoomLog, RoomState, Trust, kind as room_kind,
};
use crate::wire::{Reader, WireError, Writer};
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// How many member devices each device dials per room (it is dialled by
/// as many): the gossip fan-out.
pub const FANOUT: usize = 3;

/// The member devices `me` dials in `room`: all member devices are placed
/// on a ring in the order of a hash of (room, device), the same on every
/// device, and each dials the devices [`FANOUT`] fixed distances ahead of
/// it (1, ⌊√n⌋ and ⌊n/2⌋). As each distance is a rotation of the ring,
/// every device is dialled by exactly as many as it dials: each keeps at
/// most 2 × `FANOUT` room links, so what it uploads per message is
/// bounded, and any device is a few hops from any other.
pub fn ring_links(room: &LogId, me: DeviceId, devices: &[DeviceId]) -> Vec<DeviceId> {
    ring_around(room, me, devices, false)
}

/// The member devices linked with `me` on the ring of [`ring_links`] in
/// either direction: those it dials and those that dial it.
pub fn ring_neighbours(room: &LogId, me: DeviceId, devices: &[DeviceId]) -> Vec<DeviceId> {
    ring_around(room, me, devices, true)
}

fn ring_around(room: &LogId, me: DeviceId, devices: &[DeviceId], both: bool) -> Vec<DeviceId> {
    let mut ring: Vec<(Vec<u8>, DeviceId)> = devices
        .iter()
        .chain(std::iter::once(&me))
        .map(|d| {
            let mut both = Vec::with_capacity(64);
            both.extend_from_slice(room.as_bytes());
            both.extend_from_slice(d.as_bytes());
            (crate::crypto::blake2b(&both, None, 16), *d)
        })
        .collect();
    ring.sort();
    ring.dedup_by(|a, b| a.1 == b.1);
    let n = ring.len();
    let Some(at) = ring.iter().position(|(_, d)| *d == me) else {
        return vec![];
    };
    let root = (n as f64).sqrt() as usize;
    let mut offsets: Vec<usize> = [1, root, n / 2]
        .into_iter()
        .filter(|o| *o >= 1 && *o < n)
        .collect();
    offsets.dedup();
    offsets.truncate(FANOUT);
    let mut out: Vec<DeviceId> = offsets.iter().map(|o| ring[(at + o) % n].1).collect();
    if both {
        out.extend(offsets.iter().map(|o| ring[(at + n - o) % n].1));
    }
    out.sort();
    out.dedup();
    out.retain(|d| *d != me);
    out
}
/// Most room members' device hints passed to one peer.
const MAX_PEER_HINTS: usize = 64;
/// Most hints kept aside for devices not known yet.
const MAX_STASHED_HINTS: usize = 1024;
/// Most rooms being joined from links that are kept across a restart.
const MAX_JOINING: usize = 256;
/// Where they are kept (store metadata).
const META_JOINING: &str = "room_joining";

/// Hints for a device not known yet: (who told, addresses, relay).
pub(super) type StashedHints = (AccountId, Vec<SocketAddr>, Option<String>);

/// What this device knows about a room before its log arrives: who made it
/// and through whom it came (they share it with us first).
#[derive(Debug, Clone, Copy)]
pub(super) struct HeldRoom {
    pub(super) creator: AccountId,
    pub(super) via: AccountId,
}

/// A room as `kith room list --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoomInfo {
    /// Room id.
    pub id: LogId,
    /// Its name.
    pub name: String,
    /// Anyone with the link may join.
    pub public: bool,
    /// Joined members.
    pub members: usize,
    /// This account's membership (`join`, `invite`, `leave`, `ban`, or
    /// `unknown` while the room's log has not arrived).
    pub membership: String,
    /// The topic.
    #[serde(default)]
    pub topic: String,
}

/// A member as `kith room members --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MemberInfo {
    /// The account.
    pub account: AccountId,
    /// `admin`, `moderator` or `member`.
    pub role: String,
    /// Its power level (the creator's is unlimited: `null`).
    pub power: Option<i64>,
    /// `join` or `invite`.
    pub membership: String,
    /// The contact's name or alias, if it is a contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A room's rule for late history as `kith room history --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HistoryInfo {
    /// Other members whose citations release a late event.
    pub confirmations: usize,
    /// `auto`, `members` or `admins`.
    pub trust: String,
    /// Whether only moderators and admins release late events now (always
    /// with `admins`; with `auto`, once the room is public or large).
    pub admin_trusted: bool,
    /// Events held as arrived late now.
    pub held: usize,
}

/// An event held as arrived late, as `kith room held --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HeldInfo {
    /// Event id.
    pub id: EventId,
    /// The author's account.
    pub author: AccountId,
    /// The author's device.
    pub device: DeviceId,
    /// `message`, `file` or the state it would change (`member`, `power`,
    /// `name`, …).
    pub kind: String,
    /// What it says, in short.
    pub text: String,
    /// The time its author claims (not trusted).
    pub time: String,
    /// Its depth in the room, and the deepest head's when listed: how far
    /// back it was placed.
    pub depth: u64,
    /// The deepest head's depth.
    pub head_depth: u64,
}

/// How a room event is described to the user: its kind and text.
fn describe(content: &RoomContent) -> (&'static str, String) {
    match content {
        RoomContent::Message(text) => ("message", text.clone()),
        RoomContent::File(offer) => (
            "file",
            format!("[file] {} ({} bytes)", offer.name, offer.size),
        ),
        RoomContent::Create { name, .. } => ("create", name.clone()),
        RoomContent::Power { users } => ("power", format!("{} power levels", users.len())),
        RoomContent::Member { target, membership } => (
            "member",
            format!(
                "{} {}",
                target.short(12),
                membership_name(Some(*membership))
            ),
        ),
        RoomContent::JoinRule { public } => (
            "join-rule",
            if *public { "public" } else { "private" }.into(),
        ),
        RoomContent::Name(name) => ("name", name.clone()),
        RoomContent::Topic(topic) => ("topic", topic.clone()),
        RoomContent::History(h) => (
            "history",
            format!(
                "{} confirmations, trust {}",
                h.confirmations,
                h.trust.name()
            ),
        ),
        RoomContent::Confirm(id) => ("confirm", id.short(12)),
        RoomContent::Cut(cut) => ("cut", format!("vouches for {}", cut.head.short(12))),
    }
}

/// The role names the CLI takes, as power levels.
pub fn role_power(role: &str) -> Result<i64, NodeError> {
    match role.trim().to_lowercase().as_str() {
        "admin" => Ok(ADMIN),
        "moderator" | "mod" => Ok(MODERATOR),
        "member" => Ok(MEMBER),
        other => Err(NodeError::Invalid(format!(
            "there is no role {other:?}: use admin, moderator or member"
        ))),
    }
}

/// The role name of a power level.
pub fn role_name(power: i64) -> &'static str {
    if power >= ADMIN {
        "admin"
    } else if power >= MODERATOR {
        "moderator"
    } else {
        "member"
    }
}

fn membership_name(m: Option<Membership>) -> &'static str {
    match m {
        Some(Membership::Join) => "join",
        Some(Membership::Invite) => "invite",
        Some(Membership::Leave) => "leave",
        Some(Membership::Ban) => "ban",
        None => "unknown",
    }
}

/// A room entry of the self log: room, creator, and the account it came
/// through.
pub(super) fn encode_room_entry(room: LogId, held: HeldRoom) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(room.as_bytes())
        .fixed(held.creator.as_bytes())
        .fixed(held.via.as_bytes());
    w.finish()
}

fn decode_room_entry(body: &[u8]) -> Result<(LogId, HeldRoom), WireError> {
    let mut r = Reader::new(body);
    let room = LogId::from_bytes(r.array("room")?);
    let creator = AccountId::from_bytes(r.array("creator")?);
    let via = AccountId::from_bytes(r.array("via")?);
    r.finish("room entry")?;
    Ok((room, HeldRoom { creator, via }))
}

/// The rules of a room log on this device: the author must be a device of
/// a known account that may still write (revocations), and the room's own
/// rules must allow the event at its parents.
pub(super) struct RoomRules<'a> {
    pub(super) members: &'a Members,
    pub(super) room: &'a mut RoomLog,
}

impl Rules for RoomRules<'_> {
    fn authorize(&self, event: &Event, dag: &Dag) -> Result<(), String> {
        self.members.authorize(event, dag)?;
        self.room.authorize(event, dag)
    }

    fn soft_fail(&self, event: &Event, dag: &Dag) -> bool {
        self.members.soft_fail(event, dag)
    }

    fn accepted(&mut self, event: &Event, status: Status) {
        self.room.accepted(event, status);
    }
}

impl Node {
    /// Applies a stored room entry of the self log.
    pub(super) fn apply_room_entry(&mut self, event: &Event) {
        if let Some(Ok((room, held))) = event.body().map(decode_room_entry) {
            self.hold_room(room, held);
        }
    }

    /// Starts holding a room's log (empty until it arrives).
    pub(super) fn hold_room(&mut self, room: LogId, held: HeldRoom) {
        if !self.held_rooms.contains_key(&room) {
            self.scope += 1;
        }
        self.held_rooms.entry(room).or_insert(held);
        self.add_log(room, LogKind::Room);
        self.rooms.entry(room).or_default();
        self.track_account(held.creator);
        self.track_account(held.via);
    }

    /// Starts following `account`'s account log (a room member who may not
    /// be a contact). Remembers that sessions should sync again.
    pub(super) fn track_account(&mut self, account: AccountId) {
        if self.accounts.contains_key(&account) {
            return;
        }
        self.accounts
            .map_mut()
            .insert(account, crate::identity::AccountLog::new(account));
        self.add_log(LogId::account(account), LogKind::Account);
        self.scope += 1;
    }

    /// Changes whenever what this device shares with whom may have changed
    /// (a room held, a member followed, a membership or role changed):
    /// links then sync again, account logs first.
    pub fn scope(&self) -> u64 {
        self.scope
    }

    /// Every device of every known account (revoked ones too: their old
    /// events stay), for reading room events.
    pub(super) fn known_devices(&self) -> Vec<(DeviceId, AccountId)> {
        self.accounts
            .iter()
            .filter_map(|(a, log)| log.state_ref().ok().map(|s| (*a, s)))
            .flat_map(|(a, s)| s.devices.keys().map(move |d| (*d, a)))
            .collect()
    }

    /// The rules for a room log: all known accounts may author (the room
    /// decides who may say what).
    pub(super) fn room_members(&self) -> Members {
        Members::new(
            self.accounts
                .values()
                .filter_map(|l| l.state().ok())
                .collect(),
        )
        .distrusting(self.distrusted.keys().copied().collect())
    }

    /// Reads the accounts stored room events name, so their account logs
    /// are followed (before the room is loaded or its events checked).
    ///
    /// A member event is only signature-checked here (a join by a new
    /// account can only be checked once its account log is followed), so
    /// accounts followed without proof yet (no account log arrived) are
    /// bounded by [`MAX_UNPROVEN_FOLLOWS`].
    pub(super) fn track_named_accounts<'e>(&mut self, events: impl Iterator<Item = &'e Event>) {
        for e in events {
            let Some(a) = RoomLog::named_account(e) else {
                continue;
            };
            if self.accounts.contains_key(&a) {
                continue;
            }
            if self.unproven_follows() >= MAX_UNPROVEN_FOLLOWS {
                continue;
            }
            self.track_account(a);
        }
    }

    /// Followed accounts whose account log has not arrived (nothing proves
    /// them yet).
    fn unproven_follows(&self) -> usize {
        self.accounts
            .values()
            .filter(|l| l.events().next().is_none())
            .count()
    }

    /// Rebuilds a room's rules from its stored events (parents first).
    pub(super) fn restore_room<'e>(
        &mut self,
        room: LogId,
        events: impl Iterator<Item = (&'e Event, Status)>,
    ) {
        let mut log = RoomLog::new();
        for (d, a) in self.known_devices() {
            log.set_device(d, a);
        }
        for (e, status) in events {
            log.accepted(e, status);
        }
        self.rooms.insert(room, log);
        // What the room is shared with may differ from before.
        self.scope += 1;
    }

    /// A held room's log, or the error every room command gives.
    fn held_room(&self, room: &LogId) -> Result<&RoomLog, NodeError> {
        self.rooms
            .get(room)
            .ok_or_else(|| NodeError::Invalid("no such room here".into()))
    }

    /// A room's resolved state (empty before its log arrives).
    pub fn room_state(&self, room: &LogId) -> Option<&RoomState> {
        self.rooms.get(room).map(|r| &r.resolved().state)
    }

    /// Whether `room` is shared with `account`: both are invited or joined
    /// (as this device resolves the room), or, before the room's log has
    /// arrived, `account` made it or brought it here.
    pub(super) fn room_shared_with(&self, room: &LogId, account: AccountId) -> bool {
        if account == self.account {
            return true;
        }
        let Some(log) = self.rooms.get(room) else {
            return false;
        };
        let state = &log.resolved().state;
        let present = |a: &AccountId| {
            matches!(
                state.membership(a),
                Some(Membership::Join | Membership::Invite)
            )
        };
        // Until the room's log (as far as this account's own invitation or
        // join) has arrived, it is fetched from whoever made it or brought
        // it here: the events before the invitation may need account logs
        // only they can give.
        if state.creator.is_none() || state.membership(&self.account).is_none() {
            return self
                .held_rooms
                .get(room)
                .is_some_and(|h| h.creator == account || h.via == account);
        }
        // This device shares what it has (its own leave, say) as long as it
        // was ever in the room; what it receives is decided by the others,
        // who send nothing to a member they see removed. A public room is
        // shared with anyone who asks (and may join it) but the banned.
        let open = state.public
            && state.is_joined(&self.account)
            && state.membership(&account) != Some(Membership::Ban);
        present(&account) || open
    }

    /// The accounts whose logs travel with a room: everyone it names.
    pub(super) fn room_accounts(&self, room: &LogId) -> BTreeSet<AccountId> {
        let mut out = BTreeSet::new();
        if let Some(h) = self.held_rooms.get(room) {
            out.insert(h.creator);
            out.insert(h.via);
        }
        if let Some(log) = self.rooms.get(room) {
            let state = &log.resolved().state;
            out.extend(state.members.keys().copied());
            out.extend(state.creator);
        }
        out.remove(&self.account);
        out
    }

    /// Whether a room log is held here.
    pub fn is_room(&self, log: &LogId) -> bool {
        self.rooms.contains_key(log)
    }

    /// Resolves a room given as its id, a unique id prefix (at least four
    /// characters) or its name.
    pub fn resolve_room(&self, target: &str) -> Result<LogId, NodeError> {
        super::contacts::only_match(
            &self.room_candidates(target),
            target.trim(),
            "no room",
            |id| id.short(12),
        )
    }

    pub(super) fn room_candidates(&self, target: &str) -> Vec<LogId> {
        let t = target.trim();
        let lower = t.to_lowercase();
        if let Ok(id) = t.parse::<LogId>()
            && self.rooms.contains_key(&id)
        {
            return vec![id];
        }
        self.rooms
            .iter()
            .filter(|(id, log)| log.resolved().state.name == t || id.matches_prefix(&lower))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Makes a new room; this account is its creator (unlimited power).
    pub async fn create_room(
        &mut self,
        name: &str,
        public: bool,
        now: i64,
    ) -> Result<LogId, NodeError> {
        check_room_text(name, "room name")?;
        let body = RoomContent::Create {
            name: name.trim().to_owned(),
            public,
        }
        .encode();
        let seq = self.next_seq;
        let genesis = Event::sign(
            &self.key,
            Draft {
                log: None,
                log_kind: LogKind::Room,
                seq,
                prev: None,
                parents: vec![],
                time: now,
                kind: room_kind::CREATE,
                body,
            },
        );
        let room = genesis.log_id();
        let held = HeldRoom {
            creator: self.account,
            via: self.account,
        };
        self.append(
            LogId::self_log(self.account),
            self_kind::ROOM,
            encode_room_entry(room, held),
            now,
        )
        .await?;
        self.next_seq = self.next_seq.max(seq + 1);
        self.store
            .set_meta(&[(super::META_NEXT_SEQ, &self.next_seq.to_be_bytes())])
            .await?;
        self.ingest_event(genesis, now, None).await?;
        Ok(room)
    }

    /// Writes a room event by this device, after checking that the current
    /// state allows it (so a refusal is a clear error, not a stored event
    /// no one shows). Queued for every other invited or joined member.
    pub async fn room_write(
        &mut self,
        room: LogId,
        content: RoomContent,
        now: i64,
    ) -> Result<EventId, NodeError> {
        let log = self.held_room(&room)?;
        let state = &log.resolved().state;
        if state.creator.is_none() {
            return Err(NodeError::Invalid(
                "this room's history has not arrived yet; try again once a member's device was reached"
                    .into(),
            ));
        }
        state
            .authorize(self.account, &content)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        // Queued for whoever is in the room once it is written: an invitee
        // hears of it, a removed member does not (nothing reaches them).
        let mut after = state.clone();
        after.apply(self.account, &content);
        let mut recipients: BTreeSet<AccountId> = after
            .members
            .iter()
            .filter(|(_, m)| matches!(m, Membership::Join | Membership::Invite))
            .map(|(a, _)| *a)
            .collect();
        recipients.remove(&self.account);
        let recipients: Vec<AccountId> = recipients.into_iter().collect();
        self.append_for(room, content.kind(), content.encode(), now, &recipients)
            .await
    }

    /// Sends a message to a room.
    pub async fn room_send(
        &mut self,
        room: LogId,
        text: &str,
        now: i64,
    ) -> Result<EventId, NodeError> {
        if text.len() > MAX_MESSAGE {
            return Err(NodeError::Invalid(format!(
                "message too long ({} bytes, limit {MAX_MESSAGE})",
                text.len()
            )));
        }
        self.room_write(room, RoomContent::Message(text.to_owned()), now)
            .await
    }

    /// Invites a contact: the room records the invitation, and the contact
    /// hears of the room in the 1:1 conversation (its devices then fetch
    /// the room and join).
    pub async fn room_invite(
        &mut self,
        room: LogId,
        contact: AccountId,
        now: i64,
    ) -> Result<EventId, NodeError> {
        self.require_contact(contact)?;
        let creator = self
            .held_room(&room)?
            .resolved()
            .state
            .creator
            .ok_or_else(|| NodeError::Invalid("no such room here".into()))?;
        let id = self
            .room_write(
                room,
                RoomContent::Member {
                    target: contact,
                    membership: Membership::Invite,
                },
                now,
            )
            .await?;
        let body = encode_room_entry(
            room,
            HeldRoom {
                creator,
                via: self.account,
            },
        );
        self.append_for(
            LogId::conversation(self.account, contact),
            conversation_kind::ROOM_INVITE,
            body,
            now,
            &[contact],
        )
        .await?;
        Ok(id)
    }

    /// Notes a room invitation that arrived in a contact's conversation
    /// (acted on after the ingest: see [`Node::accept_room_invites`]).
    pub(super) fn note_room_invite(&mut self, contact: AccountId, event: &Event) {
        if let Some(Ok((room, held))) = event.body().map(decode_room_entry)
            && held.via == contact
        {
            self.room_invites.push((room, held));
        }
    }

    /// Holds rooms contacts invited this account to (not from compromised
    /// contacts), and joins rooms where this account is invited.
    pub(super) async fn accept_room_invites(&mut self, now: i64) -> Result<(), NodeError> {
        for (room, held) in std::mem::take(&mut self.room_invites) {
            let trusted = self
                .contacts
                .get(&held.via)
                .is_some_and(|c| c.trust != super::trust::Trust::Compromised);
            if !trusted || self.held_rooms.contains_key(&room) {
                continue;
            }
            self.append(
                LogId::self_log(self.account),
                self_kind::ROOM,
                encode_room_entry(room, held),
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// Sets `account`'s role (needs the power to).
    pub async fn room_set_role(
        &mut self,
        room: LogId,
        account: AccountId,
        role: &str,
        now: i64,
    ) -> Result<EventId, NodeError> {
        let level = role_power(role)?;
        let state = &self.held_room(&room)?.resolved().state;
        if !matches!(
            state.membership(&account),
            Some(Membership::Join | Membership::Invite)
        ) {
            return Err(NodeError::Invalid(format!(
                "{} is not a member of this room",
                account.short(12)
            )));
        }
        let mut users = state.power.clone();
        if level == MEMBER {
            users.remove(&account);
        } else {
            users.insert(account, level);
        }
        self.room_write(room, RoomContent::Power { users }, now)
            .await
    }

    /// Removes `account` (kick), or bans it.
    pub async fn room_remove(
        &mut self,
        room: LogId,
        account: AccountId,
        ban: bool,
        now: i64,
    ) -> Result<EventId, NodeError> {
        if account == self.account {
            return Err(NodeError::Invalid(
                "use `kith room leave` to leave a room".into(),
            ));
        }
        let membership = if ban {
            Membership::Ban
        } else {
            Membership::Leave
        };
        self.room_write(
            room,
            RoomContent::Member {
                target: account,
                membership,
            },
            now,
        )
        .await
    }

    /// Leaves a room.
    pub async fn room_leave(&mut self, room: LogId, now: i64) -> Result<EventId, NodeError> {
        let me = self.account;
        self.room_write(
            room,
            RoomContent::Member {
                target: me,
                membership: Membership::Leave,
            },
            now,
        )
        .await
    }

    /// Sets the room's name or topic.
    pub async fn room_set_text(
        &mut self,
        room: LogId,
        topic: bool,
        text: &str,
        now: i64,
    ) -> Result<EventId, NodeError> {
        check_room_text(text, if topic { "topic" } else { "room name" })?;
        let content = if topic {
            RoomContent::Topic(text.trim().to_owned())
        } else {
            RoomContent::Name(text.trim().to_owned())
        };
        self.room_write(room, content, now).await
    }

    /// Sets how late history is released (admins only): how many members'
    /// citations release a late event, and whose citations count. What is
    /// not given stays as it is.
    pub async fn room_set_history(
        &mut self,
        room: LogId,
        confirmations: Option<u8>,
        trust: Option<Trust>,
        now: i64,
    ) -> Result<EventId, NodeError> {
        if let Some(n) = confirmations
            && !(1..=MAX_CONFIRMATIONS).contains(&n)
        {
            return Err(NodeError::Invalid(format!(
                "confirmations go from 1 to {MAX_CONFIRMATIONS} (got {n})"
            )));
        }
        let log = self.held_room(&room)?;
        let current = log.resolved().state.history;
        let history = History {
            confirmations: confirmations
                .unwrap_or(u8::try_from(log.confirmations()).unwrap_or(MAX_CONFIRMATIONS)),
            trust: trust.or(current.map(|h| h.trust)).unwrap_or_default(),
        };
        self.room_write(room, RoomContent::History(history), now)
            .await
    }

    /// A room's rule for late history, as it applies now.
    pub fn room_history(&self, room: LogId) -> Result<HistoryInfo, NodeError> {
        let log = self.held_room(&room)?;
        let history = log.resolved().state.history;
        Ok(HistoryInfo {
            confirmations: log.confirmations(),
            trust: history.map(|h| h.trust).unwrap_or_default().name().into(),
            admin_trusted: log.admin_trusted(),
            held: log.late().count(),
        })
    }

    /// Events of a room held as arrived late, oldest place first.
    pub async fn room_held(&self, room: LogId) -> Result<Vec<HeldInfo>, NodeError> {
        let log = self.held_room(&room)?;
        let dag = self.logs.get(&room).ok_or(NodeError::UnknownLog(room))?;
        let head_depth = dag.heads().map(|(_, d)| d).max().unwrap_or(0);
        let ids: Vec<EventId> = log.late().copied().collect();
        let mut out: Vec<HeldInfo> = self
            .store
            .events_by_id(&ids)
            .await?
            .into_iter()
            .filter_map(|e| {
                let decoded = log.decode(&e.event).ok()?;
                let h = e.event.header();
                let (kind, text) = describe(&decoded.content);
                Some(HeldInfo {
                    id: decoded.id,
                    author: decoded.sender,
                    device: h.author,
                    kind: kind.into(),
                    text,
                    time: crate::wire::rfc3339(h.time),
                    depth: h.depth,
                    head_depth,
                })
            })
            .collect();
        out.sort_by_key(|h| (h.depth, h.id));
        Ok(out)
    }

    /// Confirms an event held as arrived late (moderators and admins): a
    /// confirmation event that cites it, which releases it on every device
    /// that receives both.
    pub async fn room_confirm(
        &mut self,
        room: LogId,
        event: &str,
        now: i64,
    ) -> Result<EventId, NodeError> {
        let log = self.held_room(&room)?;
        let t = event.trim().to_lowercase();
        let found: Vec<EventId> = log
            .late()
            .filter(|id| id.matches_prefix(&t))
            .copied()
            .collect();
        if found.is_empty() {
            return Err(NodeError::Invalid(format!(
                "no event held as arrived late in this room matches {:?} (`kith room held ROOM` lists them)",
                event.trim()
            )));
        }
        let id =
            super::contacts::only_match(&found, event.trim(), "no held event", |id| id.short(12))?;
        self.room_write(room, RoomContent::Confirm(id), now).await
    }

    /// Rooms, for `kith room list`.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        self.rooms
            .iter()
            .map(|(id, log)| {
                let s = &log.resolved().state;
                RoomInfo {
                    id: *id,
                    name: s.name.clone(),
                    public: s.public,
                    members: s.joined().count(),
                    membership: membership_name(s.membership(&self.account)).into(),
                    topic: s.topic.clone(),
                }
            })
            .collect()
    }

    /// A room's invited and joined members with their roles.
    pub fn room_member_list(&self, room: LogId) -> Result<Vec<MemberInfo>, NodeError> {
        let state = &self.held_room(&room)?.resolved().state;
        Ok(state
            .members
            .iter()
            .filter(|(_, m)| matches!(m, Membership::Join | Membership::Invite))
            .map(|(a, m)| {
                let power = state.power_of(a);
                MemberInfo {
                    account: *a,
                    role: role_name(power).into(),
                    power: (power != i64::MAX).then_some(power),
                    membership: membership_name(Some(*m)).into(),
                    name: self
                        .contacts
                        .get(a)
                        .map(|c| c.alias.clone().unwrap_or_else(|| c.card.name.clone())),
                }
            })
            .collect())
    }

    /// Resolves a member account given as an id, a unique prefix, or a
    /// contact's alias or name.
    pub fn resolve_member(&self, room: LogId, who: &str) -> Result<AccountId, NodeError> {
        let state = &self.held_room(&room)?.resolved().state;
        let t = who.trim().to_lowercase();
        let found: Vec<AccountId> = state
            .members
            .keys()
            .filter(|a| {
                a.matches_prefix(&t)
                    || self.contacts.get(a).is_some_and(|c| {
                        c.alias.as_deref().map(str::to_lowercase).as_deref() == Some(t.as_str())
                            || c.card.name.to_lowercase() == t
                    })
            })
            .copied()
            .collect();
        super::contacts::only_match(&found, who.trim(), "no account in this room", |a| {
            a.short(12)
        })
    }

    /// A room's messages in display order (the last `limit`).
    pub async fn room_log(
        &self,
        room: LogId,
        limit: Option<usize>,
    ) -> Result<Vec<MessageInfo>, NodeError> {
        let log = self.held_room(&room)?;
        let dag = self.logs.get(&room).ok_or(NodeError::UnknownLog(room))?;
        let shown = &log.resolved().shown;
        let undelivered: std::collections::HashSet<EventId> =
            self.store.undelivered(room).await?.into_iter().collect();
        let mut events = self.store.events_by_id(shown).await?;
        let pos: std::collections::HashMap<EventId, usize> =
            shown.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        events.sort_by_key(|e| pos.get(&e.event.id()).copied().unwrap_or(usize::MAX));
        let mut out: Vec<MessageInfo> = events
            .into_iter()
            .filter(|e| e.event.body().is_some())
            .filter_map(|e| {
                let h = e.event.header();
                let author = log.account_of(&h.author)?;
                let content = RoomContent::decode(h.kind, e.event.body()?).ok()?;
                if !content.is_shown() {
                    return None;
                }
                let (kind, text) = describe(&content);
                let time = dag
                    .node(&e.event.id())
                    .map_or(e.info.effective_time, |n| n.effective_time);
                Some(MessageInfo {
                    id: e.event.id(),
                    author,
                    device: h.author,
                    text,
                    time: crate::wire::rfc3339(time),
                    delivered: !undelivered.contains(&e.event.id()),
                    kind: kind.into(),
                    introduces: None,
                })
            })
            .collect();
        if let Some(l) = limit {
            let skip = out.len().saturating_sub(l);
            out.drain(..skip);
        }
        Ok(out)
    }

    /// The message events of a room (for deleting the whole room's
    /// messages: its state stays, or the room could not be read).
    pub(super) fn room_message_ids(&self, room: &LogId) -> Vec<EventId> {
        self.rooms
            .get(room)
            .map(|r| {
                let res = r.resolved();
                res.shown.iter().chain(&res.refused).copied().collect()
            })
            .unwrap_or_default()
    }

    /// Room events other members wrote cite (as ancestors) what they had:
    /// our events below them have reached those accounts.
    pub(super) async fn room_receipts(
        &mut self,
        room: LogId,
        stored: &[EventId],
    ) -> Result<(), NodeError> {
        let Some(log) = self.rooms.get(&room) else {
            return Ok(());
        };
        let Some(dag) = self.logs.get(&room) else {
            return Ok(());
        };
        let mut by_account: std::collections::BTreeMap<AccountId, Vec<EventId>> =
            Default::default();
        for id in stored {
            // What is kept only as structure proves no delivery (a thief's
            // event could cite anything).
            if let Some(n) = dag.node(id).filter(|n| n.status == Status::Accepted)
                && let Some(a) = log.account_of(&n.author)
                && a != self.account
            {
                by_account.entry(a).or_default().push(*id);
            }
        }
        for (account, ids) in by_account {
            let below = self.outbox_below(room, &ids).await?;
            if !below.is_empty() {
                self.store.delivered(account, &below).await?;
            }
        }
        Ok(())
    }

    /// Room members' devices to keep links with (see [`ring_links`]), per
    /// room where this account is joined.
    pub fn room_dial_targets(&self) -> Vec<(DeviceId, Vec<SocketAddr>)> {
        let me = self.device();
        let mut chosen: BTreeSet<DeviceId> = BTreeSet::new();
        for (room, log) in &self.rooms {
            let state = &log.resolved().state;
            if !state.is_joined(&self.account) {
                continue;
            }
            chosen.extend(ring_links(room, me, &self.room_devices(state)));
        }
        chosen.remove(&me);
        chosen.into_iter().map(|d| (d, self.hints_of(&d))).collect()
    }

    /// This device's ring neighbours in `room` (see [`ring_neighbours`]).
    pub fn room_ring_neighbours(&self, room: &LogId) -> Vec<DeviceId> {
        self.rooms.get(room).map_or_else(Vec::new, |log| {
            ring_neighbours(
                room,
                self.device(),
                &self.room_devices(&log.resolved().state),
            )
        })
    }

    /// The active devices of a room's joined members.
    pub(super) fn room_devices(&self, state: &RoomState) -> Vec<DeviceId> {
        state
            .joined()
            .filter_map(|a| self.accounts.get(a)?.state_ref().ok())
            .flat_map(|s| s.active_devices().map(|(d, _)| *d))
            .collect()
    }

    /// Whether new events of `room` are pushed at once to `peer` (a linked
    /// device): to own devices and ring neighbours (see [`ring_links`]),
    /// and to everyone while this device has no ring neighbour connected.
    /// Other linked members are only offered the events' ids (`Have`) and
    /// ask for what their ring did not bring them; so each device uploads a
    /// message a bounded number of times, whatever its number of contacts
    /// in the room.
    pub fn room_push_to(&self, room: &LogId, peer: &DeviceId, connected: &[DeviceId]) -> bool {
        self.sharing().room_push_to(room, peer, connected)
    }

    /// Where devices of members of rooms shared with `account` were last
    /// seen (for that account's device), so room members find each other.
    pub fn room_device_hints(
        &self,
        account: AccountId,
        peer: DeviceId,
    ) -> Vec<(DeviceId, Vec<SocketAddr>)> {
        // The peer's own ring neighbours first (the devices it should be
        // linked with), so the bound never leaves them out.
        let (mut first, mut rest) = (Vec::new(), Vec::new());
        let mut seen = BTreeSet::new();
        for (room, log) in &self.rooms {
            if account == self.account || !self.room_shared_with(room, account) {
                continue;
            }
            let devices = self.room_devices(&log.resolved().state);
            let ring: BTreeSet<DeviceId> =
                ring_neighbours(room, peer, &devices).into_iter().collect();
            for a in self.room_accounts(room) {
                if a == account {
                    continue;
                }
                let Some(s) = self.accounts.get(&a).and_then(|l| l.state_ref().ok()) else {
                    continue;
                };
                for (d, _) in s.active_devices() {
                    if !seen.insert(*d) {
                        continue;
                    }
                    if let Some(h) = self.device_hints.get(d) {
                        if ring.contains(d) {
                            first.push((*d, h.clone()));
                        } else {
                            rest.push((*d, h.clone()));
                        }
                    }
                }
            }
        }
        first.extend(rest);
        first.truncate(MAX_PEER_HINTS);
        first
    }

    /// Keeps hints about a device this node cannot place yet (its
    /// account log has not arrived); used once it can (bounded, in memory).
    pub fn stash_hints(
        &mut self,
        from: AccountId,
        device: DeviceId,
        addrs: Vec<SocketAddr>,
        relay: Option<String>,
    ) {
        if self.stashed_hints.len() >= MAX_STASHED_HINTS
            && !self.stashed_hints.contains_key(&device)
        {
            return;
        }
        self.stashed_hints.insert(device, (from, addrs, relay));
    }

    /// Applies stashed hints whose devices can now be placed.
    pub(super) async fn place_stashed_hints(&mut self) -> Result<(), NodeError> {
        let ready: Vec<DeviceId> = self
            .stashed_hints
            .iter()
            .filter(|(d, (from, _, _))| self.may_hint(*from, d))
            .map(|(d, _)| *d)
            .collect();
        for device in ready {
            if let Some((from, addrs, relay)) = self.stashed_hints.remove(&device) {
                self.take_hints(from, device, addrs, relay).await?;
            }
        }
        Ok(())
    }

    /// Whether `from` (an account whose device told us) may tell us where
    /// `device` is: a device of its own account, or of a member of a room
    /// we share with it.
    pub fn may_hint(&self, from: AccountId, device: &DeviceId) -> bool {
        let Some(owner) = self.account_of_device(device) else {
            return false;
        };
        owner == from
            || self
                .rooms
                .keys()
                .any(|r| self.room_shared_with(r, from) && self.room_accounts(r).contains(&owner))
    }

    /// Keeps what `from` says of where `device` is, if it may say it
    /// ([`Node::may_hint`]). Only the device's own account replaces what we
    /// know; another room member only fills in a device we know nothing
    /// of (a room peer cannot point us at its own address or relay for
    /// someone else's device).
    pub async fn take_hints(
        &mut self,
        from: AccountId,
        device: DeviceId,
        addrs: Vec<SocketAddr>,
        relay: Option<String>,
    ) -> Result<(), NodeError> {
        if !self.may_hint(from, &device) {
            return Ok(());
        }
        let owner = self.account_of_device(&device) == Some(from);
        if owner || !self.device_hints.contains_key(&device) {
            self.set_hints(device, addrs).await?;
        }
        if relay.is_some() && (owner || !self.device_relays.contains_key(&device)) {
            self.set_relay_hint(device, relay).await?;
        }
        Ok(())
    }
}

fn check_room_text(text: &str, what: &str) -> Result<(), NodeError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(NodeError::Invalid(format!("the {what} is empty")));
    }
    if t.len() > MAX_TEXT {
        return Err(NodeError::Invalid(format!(
            "the {what} is longer than {MAX_TEXT} bytes"
        )));
    }
    if t.chars().any(char::is_control) {
        return Err(NodeError::Invalid(format!(
            "the {what} contains control characters"
        )));
    }
    Ok(())
}

/// The prefix of room links.
pub const ROOM_LINK_PREFIX: &str = "kith:room/";
/// Most devices a room link names.
const MAX_LINK_DEVICES: usize = 8;
/// Most addresses per device in a room link.
const MAX_LINK_ADDRS: usize = 8;
/// Most accounts followed only because they dialled in for a public room
/// (until they join): bounds what strangers can make this device keep.
const MAX_STRANGERS: usize = 1024;
/// Most accounts followed at once because a room event named them before
/// anything proved them (their account log has not arrived).
pub const MAX_UNPROVEN_FOLLOWS: usize = 256;

/// What a room link says: the room, its creator, and where a member's
/// devices can be reached to fetch it. Nothing in it needs trust: the
/// room id is the hash of its create event, and everything fetched is
/// checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLink {
    /// The room.
    pub room: LogId,
    /// Its creator.
    pub creator: AccountId,
    /// The member whose link it is.
    pub via: AccountId,
    /// That member's devices and their addresses (and relay URLs).
    pub devices: Vec<(DeviceId, Vec<String>)>,
}

impl RoomLink {
    /// The `kith:room/…` URI.
    pub fn to_uri(&self) -> String {
        let mut w = Writer::new();
        w.u8(1)
            .fixed(self.room.as_bytes())
            .fixed(self.creator.as_bytes())
            .fixed(self.via.as_bytes())
            .u16(self.devices.len().min(MAX_LINK_DEVICES) as u16);
        for (d, addrs) in self.devices.iter().take(MAX_LINK_DEVICES) {
            w.fixed(d.as_bytes())
                .u16(addrs.len().min(MAX_LINK_ADDRS) as u16);
            for a in addrs.iter().take(MAX_LINK_ADDRS) {
                w.str(a);
            }
        }
        format!("{ROOM_LINK_PREFIX}{}", crate::wire::to_base32(&w.finish()))
    }

    /// Reads a room link.
    pub fn parse(uri: &str) -> Result<Self, NodeError> {
        let bad = |why: &str| NodeError::Invalid(format!("that is not a kith room link: {why}"));
        let rest = uri
            .trim()
            .strip_prefix(ROOM_LINK_PREFIX)
            .ok_or_else(|| bad("it does not start with kith:room/"))?;
        let bytes = crate::wire::from_base32(rest, "room link").map_err(|e| bad(&e.to_string()))?;
        let read = || -> Result<Self, WireError> {
            let mut r = Reader::new(&bytes);
            if r.u8("version")? != 1 {
                return Err(WireError::Invalid {
                    what: "room link",
                    why: "unknown version",
                });
            }
            let room = LogId::from_bytes(r.array("room")?);
            let creator = AccountId::from_bytes(r.array("creator")?);
            let via = AccountId::from_bytes(r.array("via")?);
            let n = r.count(MAX_LINK_DEVICES, "devices")?;
            let mut devices = Vec::with_capacity(n);
            for _ in 0..n {
                let d = DeviceId::from_bytes(r.array("device")?);
                let m = r.count(MAX_LINK_ADDRS, "addresses")?;
                let mut addrs = Vec::with_capacity(m);
                for _ in 0..m {
                    addrs.push(r.str(256, "address")?.to_owned());
                }
                devices.push((d, addrs));
            }
            r.finish("room link")?;
            Ok(Self {
                room,
                creator,
                via,
                devices,
            })
        };
        read().map_err(|e| bad(&e.to_string()))
    }
}

impl Node {
    /// A link anyone can join a public room with: it names this account's
    /// devices and where they listen (`own` are this device's addresses).
    pub fn room_link(&self, room: LogId, own: Vec<String>) -> Result<String, NodeError> {
        let state = self
            .room_state(&room)
            .filter(|s| s.creator.is_some())
            .ok_or_else(|| NodeError::Invalid("no such room here".into()))?;
        if !state.public {
            return Err(NodeError::Invalid(
                "this room is private: invite contacts with `kith room invite`".into(),
            ));
        }
        if !state.is_joined(&self.account) {
            return Err(NodeError::Invalid(
                "you are not a member of this room".into(),
            ));
        }
        let creator = state.creator.unwrap_or(self.account);
        let mut devices = vec![(self.device(), own)];
        for (d, addrs) in self.own_device_hints() {
            devices.push((d, addrs.iter().map(ToString::to_string).collect()));
        }
        Ok(RoomLink {
            room,
            creator,
            via: self.account,
            devices,
        }
        .to_uri())
    }

    /// Starts joining a room from its link: holds the room, remembers where
    /// the member's devices are, and joins once its log has arrived.
    pub async fn room_join_link(&mut self, uri: &str, now: i64) -> Result<LogId, NodeError> {
        let link = RoomLink::parse(uri)?;
        if link.via == self.account {
            if self.rooms.contains_key(&link.room) {
                return Ok(link.room);
            }
            return Err(NodeError::Invalid(
                "that link is this account's own, for a room this device does not hold".into(),
            ));
        }
        if let Some(state) = self.room_state(&link.room)
            && state.is_joined(&self.account)
        {
            return Ok(link.room);
        }
        for (device, hints) in &link.devices {
            let addrs: Vec<SocketAddr> = hints.iter().filter_map(|h| h.parse().ok()).collect();
            self.set_hints(*device, addrs).await?;
            let relay = hints
                .iter()
                .find(|h| h.starts_with("http://") || h.starts_with("https://"))
                .cloned();
            if relay.is_some() {
                self.set_relay_hint(*device, relay).await?;
            }
            self.join_targets.insert(*device, link.room);
        }
        self.joining.insert(link.room);
        if !self.held_rooms.contains_key(&link.room) {
            self.append(
                LogId::self_log(self.account),
                self_kind::ROOM,
                encode_room_entry(
                    link.room,
                    HeldRoom {
                        creator: link.creator,
                        via: link.via,
                    },
                ),
                now,
            )
            .await?;
        }
        self.save_joining().await?;
        self.join_if_wanted(link.room, now).await?;
        Ok(link.room)
    }

    /// Keeps the rooms being joined from links, and the devices their links
    /// named, across a restart (this device's own business: not in the self
    /// log).
    async fn save_joining(&self) -> Result<(), NodeError> {
        let rooms: Vec<&LogId> = self.joining.iter().take(MAX_JOINING).collect();
        let mut w = Writer::new();
        w.u16(rooms.len() as u16);
        for room in rooms {
            let devices: Vec<&DeviceId> = self
                .join_targets
                .iter()
                .filter(|(_, r)| *r == room)
                .map(|(d, _)| d)
                .take(MAX_LINK_DEVICES)
                .collect();
            w.fixed(room.as_bytes()).u16(devices.len() as u16);
            for d in devices {
                w.fixed(d.as_bytes());
            }
        }
        self.store
            .set_meta(&[(META_JOINING, &w.finish())])
            .await
            .map_err(NodeError::from)
    }

    /// Restores what [`Node::save_joining`] kept (a damaged record is
    /// dropped: `kith room join` can be run again).
    pub(super) async fn restore_joining(&mut self) -> Result<(), NodeError> {
        let Some(bytes) = self.store.meta(META_JOINING).await? else {
            return Ok(());
        };
        let read = || -> Result<Vec<(LogId, Vec<DeviceId>)>, WireError> {
            let mut r = Reader::new(&bytes);
            let n = r.count(MAX_JOINING, "rooms")?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let room = LogId::from_bytes(r.array("room")?);
                let m = r.count(MAX_LINK_DEVICES, "devices")?;
                let devices = (0..m)
                    .map(|_| r.array("device").map(DeviceId::from_bytes))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push((room, devices));
            }
            r.finish("rooms being joined")?;
            Ok(out)
        };
        match read() {
            Ok(entries) => {
                for (room, devices) in entries {
                    // Joined since, or invited, removed or gone: not wanted.
                    if !self.held_rooms.contains_key(&room)
                        || self
                            .room_state(&room)
                            .is_some_and(|s| s.membership(&self.account).is_some())
                    {
                        continue;
                    }
                    self.joining.insert(room);
                    for d in devices {
                        self.join_targets.insert(d, room);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "dropping a damaged list of rooms being joined"),
        }
        Ok(())
    }

    /// Joins a room this device was asked to join (by an invitation or a
    /// link) once its log allows it.
    pub(super) async fn join_if_wanted(&mut self, room: LogId, now: i64) -> Result<(), NodeError> {
        let Some(state) = self.room_state(&room) else {
            return Ok(());
        };
        let mine = state.membership(&self.account);
        let wanted = mine == Some(Membership::Invite)
            || (self.joining.contains(&room)
                && state.public
                && mine != Some(Membership::Join)
                && mine != Some(Membership::Ban));
        if state.creator.is_some() && wanted {
            self.room_write(
                room,
                RoomContent::Member {
                    target: self.account,
                    membership: Membership::Join,
                },
                now,
            )
            .await?;
        }
        if self
            .room_state(&room)
            .is_some_and(|s| s.is_joined(&self.account))
            && self.joining.remove(&room)
        {
            self.join_targets.retain(|_, r| *r != room);
            self.save_joining().await?;
        }
        Ok(())
    }

    /// Devices named by room links being joined.
    pub(super) fn room_join_targets(&self) -> Vec<(DeviceId, Vec<SocketAddr>)> {
        self.join_targets
            .keys()
            .map(|d| (*d, self.hints_of(d)))
            .collect()
    }

    /// Whether this device shares a public room with anyone who asks.
    pub fn has_public_rooms(&self) -> bool {
        self.rooms.values().any(|r| {
            let s = &r.resolved().state;
            s.public && s.is_joined(&self.account)
        })
    }

    /// Follows the account log of a stranger that dialled in for a public
    /// room (bounded), so its devices can be checked and it can join.
    /// Returns whether it counts as a stranger (then
    /// [`Node::leave_stranger`] is due when its link ends).
    pub fn follow_stranger(&mut self, account: AccountId) -> bool {
        if let Some(links) = self.strangers.get_mut(&account) {
            *links += 1;
            return true;
        }
        if self.accounts.contains_key(&account)
            || !self.has_public_rooms()
            || self.strangers.len() >= MAX_STRANGERS
        {
            return false;
        }
        self.strangers.insert(account, 1);
        self.track_account(account);
        true
    }

    /// A stranger's link ended: once it has no link left and has not
    /// become a contact or someone a room names, its account log is
    /// forgotten, in memory and at rest (so strangers cannot fill the
    /// bound, or the disk, for good).
    pub async fn leave_stranger(&mut self, account: AccountId) -> Result<(), NodeError> {
        let Some(links) = self.strangers.get_mut(&account) else {
            return Ok(());
        };
        *links = links.saturating_sub(1);
        if *links > 0 {
            return Ok(());
        }
        self.strangers.remove(&account);
        let named = self.contacts.contains_key(&account)
            || self
                .rooms
                .keys()
                .any(|r| self.room_accounts(r).contains(&account));
        if named {
            return Ok(());
        }
        let log = LogId::account(account);
        self.accounts.map_mut().remove(&account);
        self.logs.remove(&log);
        self.store.forget_log(log).await?;
        self.scope += 1;
        Ok(())
    }
}

/// What a TARGET names: a contact's conversation or a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A contact.
    Contact(AccountId),
    /// A room.
    Room(LogId),
}

impl Node {
    /// The log of a TARGET: the conversation with a contact, or a room.
    pub fn target_log(&self, target: Target) -> LogId {
        match target {
            Target::Contact(with) => LogId::conversation(self.account, with),
            Target::Room(room) => room,
        }
    }

    /// Resolves a TARGET: a contact (see [`Node::resolve_target`]) or a
    /// room (see [`Node::resolve_room`]); a name both could mean is an
    /// error listing the candidates.
    pub fn resolve_any(&self, target: &str) -> Result<Target, NodeError> {
        let contact = self.resolve_target(target);
        let rooms = self.room_candidates(target);
        match (contact, rooms.as_slice()) {
            (Ok(c), []) => Ok(Target::Contact(c)),
            (Err(_), [room]) => Ok(Target::Room(*room)),
            (Err(e), []) => Err(e),
            (Err(_), _) => self.resolve_room(target).map(Target::Room),
            (Ok(c), many) => Err(NodeError::Invalid(format!(
                "{:?} is ambiguous: contact {} or room {}",
                target.trim(),
                c.short(12),
                many.iter()
                    .map(|r| r.short(12))
                    .collect::<Vec<_>>()
                    .join(", room ")
            ))),
        }
    }
}
