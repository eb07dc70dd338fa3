//! Room gossip: the ring each room's devices are placed on (who dials
//! whom, who gets new events at once), and the device hints that let
//! members find each other.

use super::*;

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

pub(super) fn ring_around(
    room: &LogId,
    me: DeviceId,
    devices: &[DeviceId],
    both: bool,
) -> Vec<DeviceId> {
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

impl Node {
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
    pub(in crate::node) fn room_devices(&self, state: &RoomState) -> Vec<DeviceId> {
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
    pub(in crate::node) async fn place_stashed_hints(&mut self) -> Result<(), NodeError> {
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
