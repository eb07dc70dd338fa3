//! Room commands: create, write, send, invite, roles, kick, leave, name
//! and topic, the late-history setting and confirmations, and receipts
//! for room messages.

use super::*;

impl Node {
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
            .set_meta(&[(crate::node::META_NEXT_SEQ, &self.next_seq.to_be_bytes())])
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
    pub(in crate::node) fn note_room_invite(&mut self, contact: AccountId, event: &Event) {
        if let Some(Ok((room, held))) = event.body().map(decode_room_entry)
            && held.via == contact
        {
            self.room_invites.push((room, held));
        }
    }

    /// Holds rooms contacts invited this account to (not from compromised
    /// contacts), and joins rooms where this account is invited.
    pub(in crate::node) async fn accept_room_invites(&mut self, now: i64) -> Result<(), NodeError> {
        for (room, held) in std::mem::take(&mut self.room_invites) {
            let trusted = self
                .contacts
                .get(&held.via)
                .is_some_and(|c| c.trust != crate::node::trust::Trust::Compromised);
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
        let id = crate::node::contacts::only_match(&found, event.trim(), "no held event", |id| {
            id.short(12)
        })?;
        self.room_write(room, RoomContent::Confirm(id), now).await
    }

    /// The message events of a room (for deleting the whole room's
    /// messages: its state stays, or the room could not be read).
    pub(in crate::node) fn room_message_ids(&self, room: &LogId) -> Vec<EventId> {
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
    pub(in crate::node) async fn room_receipts(
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
}

pub(super) fn check_room_text(text: &str, what: &str) -> Result<(), NodeError> {
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

impl Node {
    /// The room's conference as its events say, keeping only participants
    /// that are active devices of the joined member that said they joined
    /// (a member cannot put another account's device in the call).
    pub fn room_conference(&self, room: &LogId) -> Option<crate::call::conf::Conference> {
        let state = &self.rooms.get(room)?.resolved().state;
        let mut call = state.call.clone()?;
        call.participants.retain(|device, account| {
            state.is_joined(account)
                && self
                    .accounts
                    .get(account)
                    .and_then(|l| l.state_ref().ok())
                    .is_some_and(|s| s.active_devices().any(|(d, _)| d == device))
        });
        let participants = &call.participants;
        call.standing.retain(|d, _| participants.contains_key(d));
        Some(call)
    }

    /// The account of `device` if it may take part in `room`'s conference
    /// `call` now: an active device of a joined member that was not
    /// removed from it.
    pub fn conference_member(
        &self,
        room: &LogId,
        call: crate::call::CallId,
        device: &DeviceId,
    ) -> Option<AccountId> {
        let state = &self.rooms.get(room)?.resolved().state;
        let conf = state.call.as_ref().filter(|c| c.id == call)?;
        let account = self.account_of_device(device)?;
        let active = self
            .accounts
            .get(&account)
            .and_then(|l| l.state_ref().ok())
            .is_some_and(|s| s.active_devices().any(|(d, _)| d == device));
        (active
            && state.is_joined(&account)
            && !conf.removed.contains(&account)
            && !state.call_removed.contains(&account))
        .then_some(account)
    }

    /// Writes a conference event to the room (checked like any room event).
    pub async fn room_call(
        &mut self,
        room: LogId,
        event: crate::call::conf::RoomCall,
        now: i64,
    ) -> Result<EventId, NodeError> {
        self.room_write(room, RoomContent::Call(event), now).await
    }
}

impl Node {
    /// The account of `device` if it is in `room`'s conference `call` now:
    /// it may be ([`Node::conference_member`]) and the room's events say
    /// it joined, for that account.
    pub fn conference_participant(
        &self,
        room: &LogId,
        call: crate::call::CallId,
        device: &DeviceId,
    ) -> Option<AccountId> {
        let account = self.conference_member(room, call, device)?;
        let conf = self.room_conference(room)?;
        (conf.participants.get(device) == Some(&account)).then_some(account)
    }
}
