//! Room state: what room events say, who may say it, and how a room's DAG
//! resolves to one state and one set of shown messages on every device.
//!
//! A room is one DAG (`LogKind::Room`) whose genesis is a [`RoomContent::Create`].
//! Its state events set power levels, membership, the join rule, the name
//! and the topic; messages are the rest. Authorship is by account (the
//! caller maps a device to its account through the account logs).
//!
//! - **Authorisation** ([`RoomState::authorize`]): the creator has unlimited
//!   power for good; admins (100) change power levels, moderators (50) kick,
//!   ban and change the name, topic and join rule; any member invites and
//!   writes messages. No one acts on a member of equal or higher power, or
//!   raises anyone above themselves.
//! - **Resolution** ([`resolve`]): all events are linearised by a
//!   topological sort that, among the events ready at each step, takes
//!   first those a power event depends on (power levels, join rules,
//!   kicks, bans), then other state, then messages; ties go to the
//!   sender's power (in the state built so far), then lower depth, then
//!   lower id — never claimed time. Each event is then checked against the
//!   state built so far: state events that fail are dropped, messages that
//!   fail are not shown. The result depends only on the set of events, so
//!   every device that holds the same events shows the same state and the
//!   same messages in the same order, whatever order they arrived in.
//!   Because a removal is taken before the concurrent events that do not
//!   lead to it, a removed member's messages concurrent with (or after)
//!   the removal are not shown.
//!
//! This is a restriction of Matrix state resolution v2.1 to these kinds
//! (power events first, power-ordered, then the rest), applied to one DAG
//! where every event carries its full ancestry.
//!
//! [`RoomLog`] plugs this into a room's DAG: an event is admitted only if
//! the state at its parents allows it, and the resolution is kept current
//! (appending a message at the heads is incremental; anything else is
//! resolved again from scratch).
//!
//! The store, sync, fan-out and the CLI are in `node::rooms` and the
//! daemon (see `docs/rooms.md`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use crate::id::{AccountId, DeviceId, EventId};
use crate::log::{Dag, Event, Rules, Status};
use crate::wire::{Reader, WireError, Writer};

/// Power of an admin.
pub const ADMIN: i64 = 100;
/// Power of a moderator.
pub const MODERATOR: i64 = 50;
/// Power of a member.
pub const MEMBER: i64 = 0;
/// Longest room name or topic, in bytes.
pub const MAX_TEXT: usize = 1024;
/// Longest message, in bytes.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most entries in a power-levels event.
pub const MAX_POWER_ENTRIES: usize = 4096;

/// Body kinds of room events.
pub mod kind {
    /// The genesis.
    pub const CREATE: u16 = 1;
    /// Power levels.
    pub const POWER: u16 = 2;
    /// A membership change.
    pub const MEMBER: u16 = 3;
    /// Public or invite-only.
    pub const JOIN_RULE: u16 = 4;
    /// The room's name.
    pub const NAME: u16 = 5;
    /// The room's topic.
    pub const TOPIC: u16 = 6;
    /// How history that arrives late is released.
    pub const HISTORY: u16 = 7;
    /// A moderator's confirmation of an event held as arrived late.
    pub const CONFIRM: u16 = 8;
    /// A message.
    pub const MESSAGE: u16 = 16;
    /// A file offer.
    pub const FILE: u16 = 17;
    /// A conference: started, joined, left, ended, a member muted or
    /// removed (see `crate::call::conf`).
    pub const CALL: u16 = 18;
}

/// Who releases an event held as arrived late (see [`RoomLog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Trust {
    /// Members' citations, until the room is public or large (more than
    /// [`LateRule::large_room`] joined members); then only moderators' and
    /// admins'.
    #[default]
    Auto,
    /// Members' citations, whatever the room's size.
    Members,
    /// Only moderators' and admins' citations (admin-trusted history).
    Admins,
}

impl Trust {
    fn code(self) -> u8 {
        match self {
            Trust::Auto => 0,
            Trust::Members => 1,
            Trust::Admins => 2,
        }
    }

    fn from_code(code: u8) -> Result<Self, WireError> {
        Ok(match code {
            0 => Trust::Auto,
            1 => Trust::Members,
            2 => Trust::Admins,
            _ => {
                return Err(WireError::Invalid {
                    what: "history trust",
                    why: "unknown",
                });
            }
        })
    }

    /// The name the CLI uses.
    pub fn name(self) -> &'static str {
        match self {
            Trust::Auto => "auto",
            Trust::Members => "members",
            Trust::Admins => "admins",
        }
    }

    /// From the CLI's name.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_lowercase().as_str() {
            "auto" => Some(Trust::Auto),
            "members" => Some(Trust::Members),
            "admins" => Some(Trust::Admins),
            _ => None,
        }
    }
}

/// A room's rule for history that arrives late, as its admins set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct History {
    /// How many other member accounts must cite a late event to release
    /// it (while members' citations count).
    pub confirmations: u8,
    /// Whose citations count.
    pub trust: Trust,
}

/// Most confirmations a room may ask for.
pub const MAX_CONFIRMATIONS: u8 = 32;

/// A membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Membership {
    /// Invited, not joined yet.
    Invite,
    /// A member.
    Join,
    /// Left, or kicked (when another account wrote it).
    Leave,
    /// Banned.
    Ban,
}

impl Membership {
    fn code(self) -> u8 {
        match self {
            Membership::Invite => 1,
            Membership::Join => 2,
            Membership::Leave => 3,
            Membership::Ban => 4,
        }
    }

    fn from_code(code: u8) -> Result<Self, WireError> {
        Ok(match code {
            1 => Membership::Invite,
            2 => Membership::Join,
            3 => Membership::Leave,
            4 => Membership::Ban,
            _ => {
                return Err(WireError::Invalid {
                    what: "membership",
                    why: "unknown",
                });
            }
        })
    }
}

/// What a room event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomContent {
    /// The room begins; its author's account is the creator.
    Create {
        /// The room's name.
        name: String,
        /// Anyone with the link may join.
        public: bool,
    },
    /// Power levels of accounts (absent: member).
    Power {
        /// Account → level.
        users: BTreeMap<AccountId, i64>,
    },
    /// A membership change of `target`.
    Member {
        /// Whose.
        target: AccountId,
        /// To what.
        membership: Membership,
    },
    /// Public (anyone with the link) or invite-only.
    JoinRule {
        /// Public.
        public: bool,
    },
    /// The room's name.
    Name(String),
    /// The room's topic.
    Topic(String),
    /// How late history is released (admins only).
    History(History),
    /// Releases an event held as arrived late (moderators and admins; the
    /// event is also one of this one's parents).
    Confirm(EventId),
    /// A text message.
    Message(String),
    /// A file offer.
    File(crate::file_offer::FileOffer),
    /// What a revocation vouches for here (see `crate::log::cut`); changes
    /// nothing in the room.
    Cut(crate::log::Cut),
    /// The room's conference (see `crate::call::conf`).
    Call(crate::call::conf::RoomCall),
}

impl RoomContent {
    /// The body kind.
    pub fn kind(&self) -> u16 {
        match self {
            RoomContent::Create { .. } => kind::CREATE,
            RoomContent::Power { .. } => kind::POWER,
            RoomContent::Member { .. } => kind::MEMBER,
            RoomContent::JoinRule { .. } => kind::JOIN_RULE,
            RoomContent::Name(_) => kind::NAME,
            RoomContent::Topic(_) => kind::TOPIC,
            RoomContent::History(_) => kind::HISTORY,
            RoomContent::Confirm(_) => kind::CONFIRM,
            RoomContent::Message(_) => kind::MESSAGE,
            RoomContent::File(_) => kind::FILE,
            RoomContent::Cut(_) => crate::log::CUT_KIND,
            RoomContent::Call(_) => kind::CALL,
        }
    }

    /// The body bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            RoomContent::Create { name, public } => w.str(name).u8(u8::from(*public)),
            RoomContent::Power { users } => {
                w.u16(users.len() as u16);
                for (account, level) in users {
                    w.fixed(account.as_bytes()).i64(*level);
                }
                &mut w
            }
            RoomContent::Member { target, membership } => {
                w.fixed(target.as_bytes()).u8(membership.code())
            }
            RoomContent::JoinRule { public } => w.u8(u8::from(*public)),
            RoomContent::Name(text) | RoomContent::Topic(text) | RoomContent::Message(text) => {
                w.str(text)
            }
            RoomContent::History(h) => w.u8(h.confirmations).u8(h.trust.code()),
            RoomContent::Confirm(id) => w.fixed(id.as_bytes()),
            RoomContent::File(offer) => return offer.encode(),
            RoomContent::Cut(cut) => return cut.encode(),
            RoomContent::Call(call) => return call.encode(),
        };
        w.finish()
    }

    /// Reads a body of `kind`.
    pub fn decode(kind: u16, body: &[u8]) -> Result<Self, WireError> {
        if kind == kind::FILE {
            return crate::file_offer::FileOffer::decode(body).map(RoomContent::File);
        }
        if kind == crate::log::CUT_KIND {
            return crate::log::Cut::decode(body).map(RoomContent::Cut);
        }
        if kind == kind::CALL {
            return crate::call::conf::RoomCall::decode(body).map(RoomContent::Call);
        }
        let mut r = Reader::new(body);
        let content = match kind {
            kind::CREATE => RoomContent::Create {
                name: r.str(MAX_TEXT, "room name")?.to_owned(),
                public: flag(&mut r)?,
            },
            kind::POWER => {
                let n = r.count(MAX_POWER_ENTRIES, "power levels")?;
                let mut users = BTreeMap::new();
                for _ in 0..n {
                    let account = AccountId::from_bytes(r.array("account")?);
                    users.insert(account, r.i64("level")?);
                }
                RoomContent::Power { users }
            }
            kind::MEMBER => RoomContent::Member {
                target: AccountId::from_bytes(r.array("target")?),
                membership: Membership::from_code(r.u8("membership")?)?,
            },
            kind::JOIN_RULE => RoomContent::JoinRule {
                public: flag(&mut r)?,
            },
            kind::NAME => RoomContent::Name(r.str(MAX_TEXT, "room name")?.to_owned()),
            kind::TOPIC => RoomContent::Topic(r.str(MAX_TEXT, "topic")?.to_owned()),
            kind::HISTORY => {
                let confirmations = r.u8("confirmations")?;
                if !(1..=MAX_CONFIRMATIONS).contains(&confirmations) {
                    return Err(WireError::Invalid {
                        what: "confirmations",
                        why: "not from 1 to 32",
                    });
                }
                RoomContent::History(History {
                    confirmations,
                    trust: Trust::from_code(r.u8("trust")?)?,
                })
            }
            kind::CONFIRM => RoomContent::Confirm(EventId::from_bytes(r.array("event")?)),
            kind::MESSAGE => RoomContent::Message(r.str(MAX_MESSAGE, "message")?.to_owned()),
            _ => {
                return Err(WireError::Invalid {
                    what: "room event kind",
                    why: "unknown",
                });
            }
        };
        r.finish("room event")?;
        Ok(content)
    }

    /// Power events are resolved first: they decide what else is allowed.
    fn class(&self, sender: AccountId) -> u8 {
        match self {
            RoomContent::Create { .. }
            | RoomContent::Power { .. }
            | RoomContent::JoinRule { .. }
            | RoomContent::History(_) => 0,
            RoomContent::Member { target, membership } => {
                if *membership == Membership::Ban
                    || (*target != sender && *membership == Membership::Leave)
                {
                    0
                } else {
                    1
                }
            }
            RoomContent::Name(_) | RoomContent::Topic(_) => 1,
            RoomContent::Confirm(_)
            | RoomContent::Message(_)
            | RoomContent::File(_)
            | RoomContent::Cut(_)
            | RoomContent::Call(_) => 2,
        }
    }

    /// Shown in the room's conversation (a message or a file).
    pub fn is_shown(&self) -> bool {
        matches!(self, RoomContent::Message(_) | RoomContent::File(_))
    }
}

fn flag(r: &mut Reader<'_>) -> Result<bool, WireError> {
    match r.u8("flag")? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::Invalid {
            what: "flag",
            why: "not 0 or 1",
        }),
    }
}

/// Why an event is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The room has no create event yet (or this is a second one).
    #[error("{0}")]
    Create(&'static str),
    /// The sender is not a member.
    #[error("you are not a member of this room")]
    NotMember,
    /// Not enough power.
    #[error("you need power {needed} for this (you have {have})")]
    Power {
        /// Required.
        needed: i64,
        /// The sender's.
        have: i64,
    },
    /// The target's power is not below the sender's.
    #[error("you cannot act on a member with power equal to or above yours")]
    Target,
    /// Not allowed for another reason.
    #[error("{0}")]
    Refused(&'static str),
}

/// A room's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomState {
    /// The creator (unlimited power), once created.
    pub creator: Option<AccountId>,
    /// Account → level (absent: member).
    pub power: BTreeMap<AccountId, i64>,
    /// Account → membership.
    pub members: BTreeMap<AccountId, Membership>,
    /// Anyone with the link may join.
    pub public: bool,
    /// The name.
    pub name: String,
    /// The topic.
    pub topic: String,
    /// How late history is released, once an admin set it.
    pub history: Option<History>,
    /// The conference on in the room, if any.
    pub call: Option<crate::call::conf::Conference>,
    /// Members a moderator removed from a call: they stay out of this
    /// room's calls.
    pub call_removed: BTreeSet<AccountId>,
}

impl RoomState {
    /// The power of `account` (the creator's is unlimited).
    pub fn power_of(&self, account: &AccountId) -> i64 {
        if self.creator.as_ref() == Some(account) {
            return i64::MAX;
        }
        self.power.get(account).copied().unwrap_or(MEMBER)
    }

    /// The membership of `account`.
    pub fn membership(&self, account: &AccountId) -> Option<Membership> {
        self.members.get(account).copied()
    }

    /// Whether `account` is a joined member.
    pub fn is_joined(&self, account: &AccountId) -> bool {
        self.membership(account) == Some(Membership::Join)
    }

    /// Accounts that are joined, by account id.
    pub fn joined(&self) -> impl Iterator<Item = &AccountId> {
        self.members
            .iter()
            .filter(|(_, m)| **m == Membership::Join)
            .map(|(a, _)| a)
    }

    /// Whether `sender` may write `content` given this state.
    pub fn authorize(&self, sender: AccountId, content: &RoomContent) -> Result<(), AuthError> {
        let Some(_) = self.creator else {
            return match content {
                RoomContent::Create { .. } => Ok(()),
                _ => Err(AuthError::Create("the room has no create event")),
            };
        };
        let joined = self.is_joined(&sender);
        let have = self.power_of(&sender);
        let need = |needed: i64| {
            if have >= needed {
                Ok(())
            } else {
                Err(AuthError::Power { needed, have })
            }
        };
        match content {
            RoomContent::Create { .. } => Err(AuthError::Create("the room exists already")),
            RoomContent::Message(_) | RoomContent::File(_) => {
                joined.then_some(()).ok_or(AuthError::NotMember)
            }
            // Members only (a public room's too: anyone who joined it);
            // muting and removing take a moderator, over a member below.
            RoomContent::Call(event) => {
                use crate::call::conf::{Conference, RoomCall};
                if !joined {
                    return Err(AuthError::NotMember);
                }
                if let RoomCall::Mute { target, .. } | RoomCall::Remove { target, .. } = event {
                    need(MODERATOR)?;
                    if self.power_of(target) >= have {
                        return Err(AuthError::Target);
                    }
                }
                let moderator = have >= MODERATOR;
                match Conference::refuse(
                    self.call.as_ref(),
                    &self.call_removed,
                    (sender, moderator),
                    event,
                ) {
                    Some(why) => Err(AuthError::Refused(why)),
                    None => Ok(()),
                }
            }
            // It changes nothing in the room, and only vouches for events of
            // its author's own account (checked with the account logs):
            // written even where the revoked device's join is inert.
            RoomContent::Cut(_) => Ok(()),
            RoomContent::Confirm(_) => {
                if !joined {
                    return Err(AuthError::NotMember);
                }
                need(MODERATOR)
            }
            RoomContent::History(_) => {
                if !joined {
                    return Err(AuthError::NotMember);
                }
                need(ADMIN)
            }
            RoomContent::Name(_) | RoomContent::Topic(_) | RoomContent::JoinRule { .. } => {
                if !joined {
                    return Err(AuthError::NotMember);
                }
                need(MODERATOR)
            }
            RoomContent::Power { users } => {
                if !joined {
                    return Err(AuthError::NotMember);
                }
                need(ADMIN)?;
                let accounts: std::collections::BTreeSet<&AccountId> =
                    users.keys().chain(self.power.keys()).collect();
                for account in accounts {
                    let old = self.power.get(account).copied().unwrap_or(MEMBER);
                    let new = users.get(account).copied().unwrap_or(MEMBER);
                    if old == new {
                        continue;
                    }
                    if new > have || !(MEMBER..=ADMIN).contains(&new) {
                        return Err(AuthError::Refused(
                            "power levels go from 0 to 100 and never above your own",
                        ));
                    }
                    if *account != sender && self.power_of(account) >= have {
                        return Err(AuthError::Target);
                    }
                }
                Ok(())
            }
            RoomContent::Member { target, membership } => {
                let current = self.membership(target);
                if current == Some(Membership::Ban)
                    && !(*membership == Membership::Leave && *target != sender)
                {
                    return match membership {
                        Membership::Ban => Err(AuthError::Refused("already banned")),
                        _ => Err(AuthError::Refused("banned from this room")),
                    };
                }
                match (membership, *target == sender) {
                    (Membership::Join, true) => {
                        if joined || self.public || current == Some(Membership::Invite) {
                            Ok(())
                        } else {
                            Err(AuthError::Refused("this room needs an invitation"))
                        }
                    }
                    (Membership::Join, false) => {
                        Err(AuthError::Refused("only the account itself can join"))
                    }
                    (Membership::Leave, true) => match current {
                        Some(Membership::Join | Membership::Invite) => Ok(()),
                        _ => Err(AuthError::NotMember),
                    },
                    (Membership::Invite, false) => {
                        if !joined {
                            return Err(AuthError::NotMember);
                        }
                        match current {
                            Some(Membership::Join) => Err(AuthError::Refused("already a member")),
                            _ => Ok(()),
                        }
                    }
                    (Membership::Invite, true) => {
                        Err(AuthError::Refused("you cannot invite yourself"))
                    }
                    (Membership::Leave | Membership::Ban, false) => {
                        if !joined {
                            return Err(AuthError::NotMember);
                        }
                        need(MODERATOR)?;
                        if self.power_of(target) >= have {
                            return Err(AuthError::Target);
                        }
                        match (membership, current) {
                            (Membership::Ban, _) => Ok(()),
                            (_, Some(Membership::Join | Membership::Invite | Membership::Ban)) => {
                                Ok(())
                            }
                            _ => Err(AuthError::Refused("not a member")),
                        }
                    }
                    (Membership::Ban, true) => Err(AuthError::Refused("you cannot ban yourself")),
                }
            }
        }
    }

    /// Applies an authorised state event (messages change nothing).
    pub fn apply(&mut self, sender: AccountId, content: &RoomContent) {
        match content {
            RoomContent::Create { name, public } => {
                self.creator = Some(sender);
                self.members.insert(sender, Membership::Join);
                self.name = name.clone();
                self.public = *public;
            }
            RoomContent::Power { users } => self.power = users.clone(),
            RoomContent::Member { target, membership } => {
                self.members.insert(*target, *membership);
                if *membership != Membership::Join {
                    crate::call::conf::Conference::drop_member(&mut self.call, target);
                }
            }
            RoomContent::JoinRule { public } => self.public = *public,
            RoomContent::Name(name) => self.name = name.clone(),
            RoomContent::Topic(topic) => self.topic = topic.clone(),
            RoomContent::History(h) => self.history = Some(*h),
            RoomContent::Call(event) => crate::call::conf::Conference::apply(
                &mut self.call,
                &mut self.call_removed,
                sender,
                event,
            ),
            RoomContent::Confirm(_)
            | RoomContent::Message(_)
            | RoomContent::File(_)
            | RoomContent::Cut(_) => {}
        }
    }
}

/// A room event as resolution sees it.
#[derive(Debug, Clone)]
pub struct RoomEvent {
    /// Its id.
    pub id: EventId,
    /// Its parents.
    pub parents: Vec<EventId>,
    /// Its depth.
    pub depth: u64,
    /// The sender's account.
    pub sender: AccountId,
    /// What it says.
    pub content: RoomContent,
    /// Kept only as structure (a revoked device's event no cut vouches
    /// for): its descendants resolve, but it is neither shown nor applied.
    pub inert: bool,
}

/// What a room's events resolve to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The state.
    pub state: RoomState,
    /// Messages shown, in display order.
    pub shown: Vec<EventId>,
    /// Events refused by the state they met (dropped state events and
    /// hidden messages).
    pub refused: Vec<EventId>,
}

/// Resolves a room from its events (in any order; events whose parents are
/// missing are ignored with everything after them).
///
/// Two passes: the first orders by the power senders have as it goes; the
/// second makes an event as urgent as the most powerful (by the first
/// pass's outcome) power event that depends on it, so a branch leading to
/// the creator's or an admin's decision is taken before a concurrent branch
/// of someone who (in the end) has less power — power held on an old branch
/// cannot be used against a decision made concurrently by a more powerful
/// member.
pub fn resolve(events: &[RoomEvent]) -> Resolved {
    let first = resolve_pass(events, None);
    resolve_pass(events, Some(&first.state))
}

fn resolve_pass(events: &[RoomEvent], outcome: Option<&RoomState>) -> Resolved {
    let index: HashMap<EventId, usize> =
        events.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
    let n = events.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    let mut complete = vec![true; n];
    for (i, e) in events.iter().enumerate() {
        for p in &e.parents {
            match index.get(p) {
                Some(&j) => {
                    children[j].push(i);
                    waiting[i] += 1;
                }
                None => complete[i] = false,
            }
        }
    }
    // Most urgent class among each event and everything after it: an event a
    // power event depends on is as urgent as that power event. Descendants
    // have greater depth, so one pass by depth (deepest first) settles it.
    let mut by_depth: Vec<usize> = (0..n).collect();
    by_depth.sort_by_key(|&i| Reverse(events[i].depth));
    let mut urgency: Vec<(u8, Reverse<i64>)> = events
        .iter()
        .map(|e| {
            // Only power events lend their sender's power to what leads to
            // them; so appending a message never reorders earlier events.
            let class = if e.inert {
                2
            } else {
                e.content.class(e.sender)
            };
            let power = match outcome {
                Some(s) if class == 0 => s.power_of(&e.sender),
                _ => MEMBER,
            };
            (class, Reverse(power))
        })
        .collect();
    for &i in &by_depth {
        if let Some(best) = children[i].iter().map(|&c| urgency[c]).min() {
            urgency[i] = urgency[i].min(best);
        }
    }
    let mut state = RoomState::default();
    let mut ready = BinaryHeap::new();
    let key = |state: &RoomState, i: usize| {
        let e = &events[i];
        Reverse((
            urgency[i],
            Reverse(state.power_of(&e.sender)),
            e.depth,
            e.id,
            i,
        ))
    };
    for i in 0..n {
        if waiting[i] == 0 && complete[i] {
            ready.push(key(&state, i));
        }
    }
    let mut shown = Vec::new();
    let mut refused = Vec::new();
    while let Some(Reverse((_, _, _, _, i))) = ready.pop() {
        let e = &events[i];
        let genesis_ok = match e.content {
            RoomContent::Create { .. } => e.parents.is_empty(),
            _ => !e.parents.is_empty(),
        };
        match state.authorize(e.sender, &e.content) {
            _ if e.inert => {}
            Ok(()) if genesis_ok => {
                if e.content.is_shown() {
                    shown.push(e.id);
                } else {
                    state.apply(e.sender, &e.content);
                }
            }
            _ => refused.push(e.id),
        }
        for &c in &children[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 && complete[c] {
                ready.push(key(&state, c));
            }
        }
    }
    Resolved {
        state,
        shown,
        refused,
    }
}

/// A room's log as a device holds it: the DAG's rules for it (an event
/// must be authorised by the state at its parents), the events decoded,
/// and the current resolution, kept up to date as events are accepted.
///
/// Which account a device belongs to comes from the account logs; the
/// owner tells it with [`RoomLog::set_device`] before offering events.
///
/// **Arrived late**: an event whose parents lie more than
/// [`LateRule::depth_gap`] below the deepest head when it arrives is kept
/// but held out of the resolution (not shown, not built on) until it is
/// confirmed: cited (as an ancestor) by events of
/// [`LateRule::confirmations`] other member accounts (or as many as the
/// room's [`History`] says), or of one moderator or admin — a
/// [`RoomContent::Confirm`] is a moderator's explicit citation. So a member
/// cannot slip a message or a state change into the past unnoticed. In
/// admin-trusted rooms (see [`RoomLog::admin_trusted`]) members' citations
/// do not count.
#[derive(Debug, Default)]
pub struct RoomLog {
    devices: HashMap<DeviceId, AccountId>,
    events: Vec<RoomEvent>,
    heads: BTreeSet<EventId>,
    resolved: Resolved,
    late: BTreeSet<EventId>,
    rule: LateRule,
    depths: HashMap<EventId, u64>,
}

/// When an event counts as arrived late, and what confirms it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateRule {
    /// How far below the deepest head its deepest parent may be.
    pub depth_gap: u64,
    /// How many other member accounts must cite it (one moderator or admin
    /// is enough).
    pub confirmations: usize,
    /// Above this many joined members, and in public rooms, history is
    /// admin-trusted: a late event is released only by a moderator's or
    /// admin's citation, and one a moderator or admin wrote is not held.
    pub large_room: usize,
}

impl Default for LateRule {
    fn default() -> Self {
        Self {
            depth_gap: 20,
            confirmations: 2,
            large_room: 50,
        }
    }
}

impl RoomLog {
    /// An empty room log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A room log with its own late-arrival rule.
    pub fn with_rule(rule: LateRule) -> Self {
        Self {
            rule,
            ..Self::default()
        }
    }

    /// Events held as arrived late (not shown, not to be built on).
    pub fn late(&self) -> impl Iterator<Item = &EventId> {
        self.late.iter()
    }

    /// Records that `device` belongs to `account`.
    pub fn set_device(&mut self, device: DeviceId, account: AccountId) {
        self.devices.insert(device, account);
    }

    /// The current resolution.
    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    /// Reads a stored event as resolution sees it.
    pub fn decode(&self, event: &Event) -> Result<RoomEvent, String> {
        let h = event.header();
        let sender = *self
            .devices
            .get(&h.author)
            .ok_or("the author is not a device of a known account")?;
        let content = match event.body() {
            Some(body) => RoomContent::decode(h.kind, body).map_err(|e| e.to_string())?,
            // A deleted message keeps its place (its header) in the room.
            None if matches!(h.kind, kind::MESSAGE | kind::FILE) => {
                RoomContent::Message(String::new())
            }
            None => return Err("the body is missing".into()),
        };
        // A device joins or leaves a call only by its own word: no member
        // can put another's device in a call (or take it out).
        if let RoomContent::Call(call) = &content
            && call.device().is_some_and(|d| d != h.author)
        {
            return Err("a call join or leave names a device other than its author".into());
        }
        Ok(RoomEvent {
            id: event.id(),
            parents: h.parents.clone(),
            depth: h.depth,
            sender,
            content,
            inert: false,
        })
    }

    /// The state at `parents`: the current state when they are the current
    /// heads (the usual case), else the resolution of their ancestors.
    pub fn state_at(&self, parents: &[EventId]) -> RoomState {
        if self.late.is_empty()
            && parents.len() == self.heads.len()
            && parents.iter().all(|p| self.heads.contains(p))
        {
            return self.resolved.state.clone();
        }
        let index: HashMap<EventId, &RoomEvent> = self.events.iter().map(|e| (e.id, e)).collect();
        let mut keep: HashMap<EventId, &RoomEvent> = HashMap::new();
        let mut stack: Vec<EventId> = parents.to_vec();
        while let Some(id) = stack.pop() {
            if let Some(e) = index.get(&id)
                && keep.insert(id, e).is_none()
            {
                stack.extend(e.parents.iter().copied());
            }
        }
        let subset: Vec<RoomEvent> = keep.into_values().cloned().collect();
        resolve(&subset).state
    }

    /// The state at `parents` with inert events counted as they say (what
    /// the device that wrote an event built on them could have seen).
    fn state_at_structure(&self, parents: &[EventId]) -> RoomState {
        let index: HashMap<EventId, &RoomEvent> = self.events.iter().map(|e| (e.id, e)).collect();
        let mut keep: HashMap<EventId, RoomEvent> = HashMap::new();
        let mut stack: Vec<EventId> = parents.to_vec();
        while let Some(id) = stack.pop() {
            if keep.contains_key(&id) {
                continue;
            }
            if let Some(e) = index.get(&id) {
                stack.extend(e.parents.iter().copied());
                keep.insert(
                    id,
                    RoomEvent {
                        inert: false,
                        ..(*e).clone()
                    },
                );
            }
        }
        let subset: Vec<RoomEvent> = keep.into_values().collect();
        resolve(&subset).state
    }
}

impl Rules for RoomLog {
    fn authorize(&self, event: &Event, _dag: &Dag) -> Result<(), String> {
        let e = self.decode(event)?;
        match e.content {
            RoomContent::Create { .. } => {
                return match (e.parents.is_empty(), self.events.is_empty()) {
                    (true, true) => Ok(()),
                    _ => Err("a room has one create event, its first".into()),
                };
            }
            RoomContent::Confirm(id) if !e.parents.contains(&id) => {
                return Err("a confirmation must cite the event it confirms".into());
            }
            _ => {}
        }
        let refused = match self.state_at(&e.parents).authorize(e.sender, &e.content) {
            Ok(()) => return Ok(()),
            Err(err) => err.to_string(),
        };
        // An event another device wrote while it still trusted what is
        // inert here is taken as structure (resolution, which leaves the
        // inert out, decides what it does), so a room never stops for
        // want of it.
        if self.events.iter().any(|e| e.inert)
            && self
                .state_at_structure(&e.parents)
                .authorize(e.sender, &e.content)
                .is_ok()
        {
            return Ok(());
        }
        Err(refused)
    }

    fn accepted(&mut self, event: &Event, status: Status) {
        let Ok(mut e) = self.decode(event) else {
            // Authorised a moment ago, so decodable; nothing to do if not.
            return;
        };
        // A create event names the room (its id is the room's): a thief
        // cannot mint one for a room that exists, so it is never inert.
        if status == Status::SoftFailed && !matches!(e.content, RoomContent::Create { .. }) {
            // Structure only: what builds on it resolves; it says nothing,
            // and (as in the DAG) nothing new builds on it.
            e.inert = true;
            self.depths.insert(e.id, e.depth);
            self.events.push(e);
            return;
        }
        let extends_heads =
            e.parents.len() == self.heads.len() && e.parents.iter().all(|p| self.heads.contains(p));
        let deepest_head = self.heads.iter().filter_map(|h| self.depth_of(h)).max();
        let deepest_parent = e.parents.iter().filter_map(|p| self.depth_of(p)).max();
        // Joining or leaving oneself places nothing in anyone else's past
        // (and an invitee's join is often written long before it spreads,
        // while a room fills): not held. Nor is what staff write when
        // history is admin-trusted (asked only for events placed far back).
        let own_membership =
            matches!(&e.content, RoomContent::Member { target, .. } if *target == e.sender);
        if let (Some(head), Some(parent)) = (deepest_head, deepest_parent)
            && head.saturating_sub(parent) > self.rule.depth_gap
            && !own_membership
            && !(self.admin_trusted() && self.resolved.state.power_of(&e.sender) >= MODERATOR)
        {
            self.late.insert(e.id);
        }
        for p in &e.parents {
            self.heads.remove(p);
        }
        self.heads.insert(e.id);
        let message = e.content.is_shown();
        let (id, sender) = (e.id, e.sender);
        let allowed = self.resolved.state.authorize(sender, &e.content).is_ok();
        self.depths.insert(e.id, e.depth);
        self.events.push(e);
        let confirmed = self.confirm_late();
        if self.late.contains(&id) {
            // Held out of the resolution until confirmed.
        } else if message && extends_heads && self.late.is_empty() && !confirmed {
            // Last in the order, and it changes no state: the resolution
            // from scratch would give the same plus this message.
            if allowed {
                self.resolved.shown.push(id);
            } else {
                self.resolved.refused.push(id);
            }
        } else {
            self.resolve_without_late();
        }
    }
}

impl RoomLog {
    /// Whether the room is large or public: its history is admin-trusted
    /// (see [`LateRule::large_room`]).
    pub fn admin_trusted(&self) -> bool {
        let state = &self.resolved.state;
        match state.history.map(|h| h.trust).unwrap_or_default() {
            Trust::Admins => true,
            Trust::Members => false,
            Trust::Auto => state.public || state.joined().count() > self.rule.large_room,
        }
    }

    /// How many other members' citations release a late event (while
    /// members' citations count): the room's setting, else the rule's.
    pub fn confirmations(&self) -> usize {
        self.resolved
            .state
            .history
            .map_or(self.rule.confirmations, |h| usize::from(h.confirmations))
    }

    /// Whether `id` is held as arrived late.
    pub fn is_late(&self, id: &EventId) -> bool {
        self.late.contains(id)
    }

    /// The parents a new event of `kind` with `body` should have: the
    /// buildable heads (see [`RoomLog::buildable_heads`]); a confirmation
    /// also cites the late event it confirms (and leaves out heads that
    /// are its ancestors).
    pub fn parents_for(&self, dag: &Dag, kind: u16, body: &[u8]) -> Vec<(EventId, u64)> {
        let heads = self.buildable_heads(dag);
        if kind != kind::CONFIRM {
            return heads;
        }
        let Ok(RoomContent::Confirm(late)) = RoomContent::decode(kind, body) else {
            return heads;
        };
        let Some(depth) = self.depth_of(&late).filter(|_| self.is_late(&late)) else {
            return heads;
        };
        // Heads below the late event are cited through it.
        let above: std::collections::HashSet<EventId> =
            dag.not_below(&[late]).into_iter().collect();
        let mut parents: Vec<(EventId, u64)> = heads
            .into_iter()
            .filter(|(id, _)| above.contains(id))
            .collect();
        crate::log::cap_parents(&mut parents, crate::log::MAX_PARENTS - 1);
        parents.push((late, depth));
        parents
    }

    /// The parents a new event should have: the DAG's heads, unless some
    /// are (or build on) events held as arrived late; then the newest
    /// events that do not.
    pub fn buildable_heads(&self, dag: &Dag) -> Vec<(EventId, u64)> {
        let heads: Vec<(EventId, u64)> = dag.heads().collect();
        if self.late.is_empty() {
            return heads;
        }
        let mut excluded: std::collections::HashSet<EventId> = self.late.iter().copied().collect();
        // Events are kept parents first.
        for e in &self.events {
            if e.parents.iter().any(|p| excluded.contains(p)) {
                excluded.insert(e.id);
            }
        }
        let mut has_child: std::collections::HashSet<EventId> = std::collections::HashSet::new();
        for e in self
            .events
            .iter()
            .filter(|e| !excluded.contains(&e.id) && !e.inert)
        {
            has_child.extend(e.parents.iter().copied());
        }
        self.events
            .iter()
            .filter(|e| !excluded.contains(&e.id) && !e.inert && !has_child.contains(&e.id))
            .map(|e| (e.id, e.depth))
            .collect()
    }

    /// The accounts a room event names as the target of a membership
    /// change (read without knowing its author).
    pub fn named_account(event: &Event) -> Option<AccountId> {
        if event.header().kind != kind::MEMBER {
            return None;
        }
        match RoomContent::decode(kind::MEMBER, event.body()?) {
            Ok(RoomContent::Member { target, .. }) => Some(target),
            _ => None,
        }
    }

    /// The account a device belongs to, as told by the owner.
    pub fn account_of(&self, device: &DeviceId) -> Option<AccountId> {
        self.devices.get(device).copied()
    }

    fn depth_of(&self, id: &EventId) -> Option<u64> {
        self.depths.get(id).copied()
    }

    fn resolve_without_late(&mut self) {
        let held: Vec<RoomEvent> = self
            .events
            .iter()
            .filter(|e| !self.late.contains(&e.id))
            .cloned()
            .collect();
        self.resolved = resolve(&held);
    }

    /// Releases late events that enough others now cite; `true` if any.
    fn confirm_late(&mut self) -> bool {
        if self.late.is_empty() {
            return false;
        }
        let mut children: HashMap<EventId, Vec<&RoomEvent>> = HashMap::new();
        for e in &self.events {
            for p in &e.parents {
                children.entry(*p).or_default().push(e);
            }
        }
        let trusted = self.admin_trusted();
        let confirmations = self.confirmations();
        let sender_of: HashMap<EventId, AccountId> =
            self.events.iter().map(|e| (e.id, e.sender)).collect();
        let mut released = Vec::new();
        for late in &self.late {
            let Some(author) = sender_of.get(late) else {
                continue;
            };
            // Everything that cites it: its descendants.
            let mut confirmers = BTreeSet::new();
            let mut seen = std::collections::HashSet::new();
            let mut stack = vec![*late];
            while let Some(id) = stack.pop() {
                for c in children.get(&id).into_iter().flatten() {
                    if seen.insert(c.id) {
                        if c.sender != *author && !c.inert {
                            confirmers.insert(c.sender);
                        }
                        stack.push(c.id);
                    }
                }
            }
            let by_staff = confirmers
                .iter()
                .any(|a| self.resolved.state.power_of(a) >= MODERATOR);
            if by_staff || (!trusted && confirmers.len() >= confirmations) {
                released.push(*late);
            }
        }
        for id in &released {
            self.late.remove(id);
        }
        !released.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_round_trip() {
        let a = AccountId::from_bytes([1; 32]);
        for content in [
            RoomContent::Create {
                name: "r".into(),
                public: true,
            },
            RoomContent::Power {
                users: BTreeMap::from([(a, 50)]),
            },
            RoomContent::Member {
                target: a,
                membership: Membership::Ban,
            },
            RoomContent::JoinRule { public: false },
            RoomContent::Name("n".into()),
            RoomContent::Topic("t".into()),
            RoomContent::Message("hi".into()),
            RoomContent::History(History {
                confirmations: 3,
                trust: Trust::Admins,
            }),
            RoomContent::Confirm(EventId::from_bytes([7; 32])),
        ] {
            let bytes = content.encode();
            assert_eq!(
                RoomContent::decode(content.kind(), &bytes).unwrap(),
                content
            );
        }
        assert!(RoomContent::decode(kind::MEMBER, &[0; 33]).is_err());
        assert!(RoomContent::decode(99, &[]).is_err());
        assert!(RoomContent::decode(kind::HISTORY, &[0, 0]).is_err());
        assert!(RoomContent::decode(kind::HISTORY, &[33, 0]).is_err());
        assert!(RoomContent::decode(kind::HISTORY, &[2, 3]).is_err());
    }
}
