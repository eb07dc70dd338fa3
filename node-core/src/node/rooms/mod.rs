//! Rooms on this device: which rooms it holds (self log), their logs under
//! [`RoomLog`] rules, and the accounts of their members. The commands are
//! in `commands`, what the user sees in `info`, room links and strangers
//! in `links`, the gossip ring and device hints in `ring`.
//!
//! A room log travels only between devices of accounts that are invited to
//! or joined in it (as this device resolves it); see `sharing.rs`. Members who
//! are not contacts are known by their account logs, which travel with the
//! room.

mod commands;
mod info;
mod links;
mod ring;

use info::describe;
pub use info::{HeldInfo, HistoryInfo, MemberInfo, RoomInfo, role_name, role_power};
pub use links::{MAX_UNPROVEN_FOLLOWS, ROOM_LINK_PREFIX, RoomLink};
pub use ring::{FANOUT, ring_links, ring_neighbours};

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
}

/// What a TARGET names: a contact's conversation or a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A contact.
    Contact(AccountId),
    /// A room.
    Room(LogId),
    /// A conversation through a bridge (insecure).
    Bridged(LogId),
}

impl Node {
    /// The log of a TARGET: the conversation with a contact, or a room.
    pub fn target_log(&self, target: Target) -> LogId {
        match target {
            Target::Contact(with) => LogId::conversation(self.account, with),
            Target::Room(room) | Target::Bridged(room) => room,
        }
    }

    /// Resolves a TARGET: a contact (see [`Node::resolve_target`]) or a
    /// room (see [`Node::resolve_room`]); a name both could mean is an
    /// error listing the candidates.
    pub fn resolve_any(&self, target: &str) -> Result<Target, NodeError> {
        let contact = self.resolve_target(target);
        let rooms = self.room_candidates(target);
        // A bridged conversation never shadows a contact or a room: an
        // address the other network chose that also names one is
        // ambiguous, never silently the bridged one.
        if let Some(log) = self.resolve_bridged(target)? {
            if contact.is_ok() || !rooms.is_empty() {
                return Err(NodeError::Invalid(format!(
                    "{:?} is ambiguous: a bridged conversation ({}) and a contact or room; \
                     use an id",
                    target.trim(),
                    log.short(12)
                )));
            }
            return Ok(Target::Bridged(log));
        }
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
