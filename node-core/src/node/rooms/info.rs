//! What rooms look like to the user: room, member, history and held
//! event descriptions, roles by name, and the room's messages in display
//! order.

use super::*;

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
    /// Messages and files from others not read yet (on any own device).
    #[serde(default)]
    pub unread: usize,
    /// Its notifications are muted (on every own device).
    #[serde(default)]
    pub muted: bool,
    /// The call on in the room (its id), if any.
    #[serde(default)]
    pub call: Option<String>,
    /// Devices in that call, as the room's events say.
    #[serde(default)]
    pub in_call: usize,
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
pub(super) fn describe(content: &RoomContent) -> (&'static str, String) {
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
        RoomContent::Call(event) => {
            use crate::call::conf::RoomCall;
            let text = match event {
                RoomCall::Start(c) => format!("call {c} started"),
                RoomCall::Join { call, device } => {
                    format!("{} joined call {call}", device.short(12))
                }
                RoomCall::Leave { call, device } => {
                    format!("{} left call {call}", device.short(12))
                }
                RoomCall::End(c) => format!("call {c} ended"),
                RoomCall::Mute { call, target, on } => format!(
                    "{} {} in call {call}",
                    target.short(12),
                    if *on { "muted" } else { "unmuted" }
                ),
                RoomCall::Remove { call, target } => {
                    format!("{} removed from call {call}", target.short(12))
                }
                RoomCall::Standing {
                    call,
                    device,
                    standing,
                } => format!(
                    "{} in call {call}: uplink {}, {}{}",
                    device.short(12),
                    match standing.uplink_kbps {
                        0 => "no limit seen".to_owned(),
                        k => format!("{k} kbit/s"),
                    },
                    if standing.direct { "direct" } else { "relayed" },
                    if standing.always_on {
                        ", always on"
                    } else {
                        ""
                    }
                ),
            };
            ("call", text)
        }
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

pub(super) fn membership_name(m: Option<Membership>) -> &'static str {
    match m {
        Some(Membership::Join) => "join",
        Some(Membership::Invite) => "invite",
        Some(Membership::Leave) => "leave",
        Some(Membership::Ban) => "ban",
        None => "unknown",
    }
}

impl Node {
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
                    unread: self.room_unread(*id),
                    muted: self.muted(*id),
                    call: self.room_conference(id).map(|c| c.id.to_string()),
                    in_call: self.room_conference(id).map_or(0, |c| c.participants.len()),
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
        crate::node::contacts::only_match(&found, who.trim(), "no account in this room", |a| {
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
                    insecure: false,
                    sender: None,
                    state: None,
                })
            })
            .collect();
        if let Some(l) = limit {
            let skip = out.len().saturating_sub(l);
            out.drain(..skip);
        }
        Ok(out)
    }
}
