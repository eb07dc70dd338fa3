//! Room links (`kith:room/…`): making one, joining from one (kept
//! across restarts until joined), and the strangers a public room lets
//! dial in.

use super::*;

/// The prefix of room links.
pub const ROOM_LINK_PREFIX: &str = "kith:room/";
/// Most devices a room link names.
pub(super) const MAX_LINK_DEVICES: usize = 8;
/// Most addresses per device in a room link.
pub(super) const MAX_LINK_ADDRS: usize = 8;
/// Most accounts followed only because they dialled in for a public room
/// (until they join): bounds what strangers can make this device keep.
pub(super) const MAX_STRANGERS: usize = 1024;
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
    pub(super) async fn save_joining(&self) -> Result<(), NodeError> {
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
    pub(in crate::node) async fn restore_joining(&mut self) -> Result<(), NodeError> {
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
    pub(in crate::node) async fn join_if_wanted(
        &mut self,
        room: LogId,
        now: i64,
    ) -> Result<(), NodeError> {
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
    pub(in crate::node) fn room_join_targets(&self) -> Vec<(DeviceId, Vec<SocketAddr>)> {
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
            || self.is_blocked(account)
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
