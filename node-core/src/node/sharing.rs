//! What this device shares with whom, as one immutable snapshot: contacts,
//! the devices each followed account lists as active, the rooms held and
//! who each is shared with, and each room's ring. It derives from the
//! node's contacts, followed account logs and room states, is rebuilt when
//! one of them may have changed (never per query), and is published
//! through a `watch` so links, dialling and (later) call media read it
//! without the node.

use super::Node;
use crate::id::{AccountId, DeviceId, LogId};
use crate::rooms::Membership;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What moves when the sharing may have changed: the node's scope, the
/// followed account logs' generation and the contacts' count.
pub(super) type Key = (u64, u64, usize);

/// Who a room is shared with (see `Node::room_shared_with`).
#[derive(Debug)]
enum Gate {
    /// The room's log (as far as our own invitation or join) has not
    /// arrived: fetched only from whoever made it or brought it here.
    Pending(Option<(AccountId, AccountId)>),
    /// Its state decides.
    Resolved {
        /// Joined or invited.
        present: HashSet<AccountId>,
        /// Public and joined by us: anyone but the banned.
        open: bool,
        banned: HashSet<AccountId>,
    },
}

#[derive(Debug)]
struct Room {
    gate: Gate,
    /// Every account the room names but ours (their logs travel with it).
    accounts: BTreeSet<AccountId>,
    /// This device's ring neighbours in the room.
    ring: Vec<DeviceId>,
}

/// The logs shared with one account's active device, in sync order, and
/// as a set.
#[derive(Debug)]
struct Shared {
    ordered: Vec<LogId>,
    set: HashSet<LogId>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Sharing {
    key: Key,
    account: AccountId,
    contacts: BTreeSet<AccountId>,
    /// Followed accounts.
    followed: HashSet<AccountId>,
    /// Followed accounts whose account log is held.
    held: HashSet<AccountId>,
    /// (account, device) for every device a followed account lists as
    /// active.
    active: HashSet<(AccountId, DeviceId)>,
    /// Which followed account lists each device.
    index: Arc<super::accounts::DeviceIndex>,
    rooms: BTreeMap<LogId, Room>,
    /// Bridged conversations: shared with own devices only.
    bridged: Vec<LogId>,
    /// Shared logs per account, computed once per snapshot when asked.
    memo: Mutex<HashMap<AccountId, Arc<Shared>>>,
}

impl Sharing {
    /// Shares nothing (before the node has loaded).
    pub(super) fn empty(account: AccountId) -> Self {
        Sharing {
            key: (u64::MAX, u64::MAX, usize::MAX),
            account,
            contacts: BTreeSet::new(),
            followed: HashSet::new(),
            held: HashSet::new(),
            active: HashSet::new(),
            index: Arc::default(),
            rooms: BTreeMap::new(),
            bridged: Vec::new(),
            memo: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `device` is an active device of `account`.
    pub fn device_active(&self, account: AccountId, device: DeviceId) -> bool {
        self.active.contains(&(account, device))
    }

    /// The account whose log lists `device`, revoked or not (the first in
    /// account order).
    pub fn account_of_device(&self, device: &DeviceId) -> Option<AccountId> {
        self.index.listing(device)
    }

    /// Whether `device` is listed by this account's own log.
    pub fn is_own_device(&self, device: &DeviceId) -> bool {
        self.account_of_device(device) == Some(self.account)
    }

    /// Whether `account` is a contact.
    pub fn is_contact(&self, account: &AccountId) -> bool {
        self.contacts.contains(account)
    }

    /// Whether `log` is the account log of a followed account.
    pub fn is_account_log(&self, log: &LogId) -> bool {
        self.followed
            .contains(&AccountId::from_bytes(*log.as_bytes()))
    }

    /// Whether `log` is a room held here.
    pub fn is_room(&self, log: &LogId) -> bool {
        self.rooms.contains_key(log)
    }

    /// Whether `room` is shared with `account` (see the node's rule).
    pub fn room_shared_with(&self, room: &LogId, account: AccountId) -> bool {
        if account == self.account {
            return true;
        }
        match self.rooms.get(room).map(|r| &r.gate) {
            None => false,
            Some(Gate::Pending(held)) => {
                held.is_some_and(|(creator, via)| creator == account || via == account)
            }
            Some(Gate::Resolved {
                present,
                open,
                banned,
            }) => present.contains(&account) || (*open && !banned.contains(&account)),
        }
    }

    /// Logs shared with `peer`, a device of `account`, account logs first.
    pub fn shared_logs(&self, account: AccountId, peer: DeviceId) -> Vec<LogId> {
        if !self.device_active(account, peer) {
            return self.proof_logs(account);
        }
        self.shared(account).ordered.clone()
    }

    /// Whether the peer may receive and write `log`: account logs go to any
    /// device of a contact or room member (they prove who is active), every
    /// other shared log only to active devices.
    pub fn entitled(&self, account: AccountId, peer: DeviceId, log: &LogId) -> bool {
        let is_account_log = self.is_account_log(log);
        let active = self.device_active(account, peer);
        let shared = if self.rooms.contains_key(log) {
            self.room_shared_with(log, account)
        } else if active {
            self.shared(account).set.contains(log)
        } else {
            self.proof_logs(account).contains(log)
        };
        shared && (is_account_log || active)
    }

    /// Whether new events of `room` go at once to `peer`: own devices and
    /// ring neighbours always, everyone while no ring neighbour is
    /// connected (see `Node::room_push_to`).
    pub fn room_push_to(&self, room: &LogId, peer: &DeviceId, connected: &[DeviceId]) -> bool {
        let Some(r) = self.rooms.get(room) else {
            return true;
        };
        if self.account_of_device(peer) == Some(self.account) {
            return true;
        }
        r.ring.contains(peer) || !r.ring.iter().any(|d| connected.contains(d))
    }

    /// What a device its account log does not (yet) list as active may
    /// sync: only the logs that can prove it, and only for an account we
    /// share something with.
    fn proof_logs(&self, account: AccountId) -> Vec<LogId> {
        if account == self.account {
            return vec![LogId::account(self.account)];
        }
        let known = self.contacts.contains(&account)
            || self.rooms.keys().any(|r| self.room_shared_with(r, account));
        if known && self.followed.contains(&account) {
            vec![LogId::account(self.account), LogId::account(account)]
        } else {
            vec![]
        }
    }

    fn shared(&self, account: AccountId) -> Arc<Shared> {
        let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = memo.get(&account) {
            return Arc::clone(s);
        }
        let ordered = self.compute_shared(account);
        let shared = Arc::new(Shared {
            set: ordered.iter().copied().collect(),
            ordered,
        });
        // Bounded: strangers asking for a public room each leave one
        // entry; past the bound the memo starts again.
        if memo.len() >= MEMO_BOUND {
            memo.clear();
        }
        memo.insert(account, Arc::clone(&shared));
        shared
    }

    /// The shared logs of an active device of `account`.
    fn compute_shared(&self, account: AccountId) -> Vec<LogId> {
        let mut logs = Vec::new();
        let mut third: BTreeSet<AccountId> = BTreeSet::new();
        let mut rooms = Vec::new();
        if account == self.account {
            logs.extend([LogId::account(self.account), LogId::self_log(self.account)]);
            logs.extend(self.bridged.iter().copied());
            for c in &self.contacts {
                logs.push(LogId::account(*c));
                logs.push(LogId::conversation(self.account, *c));
            }
            for (room, r) in &self.rooms {
                third.extend(r.accounts.iter().copied());
                rooms.push(*room);
            }
        } else {
            if self.contacts.contains(&account) {
                logs.extend([
                    LogId::account(self.account),
                    LogId::account(account),
                    LogId::conversation(self.account, account),
                ]);
            }
            for (room, r) in &self.rooms {
                if self.room_shared_with(room, account) {
                    third.extend(r.accounts.iter().copied());
                    rooms.push(*room);
                }
            }
            if logs.is_empty() && !rooms.is_empty() {
                logs.extend([LogId::account(self.account), LogId::account(account)]);
            }
        }
        // Account logs before the logs whose authors they prove.
        let listed: HashSet<LogId> = logs.iter().copied().collect();
        let mut ordered: Vec<LogId> = third
            .into_iter()
            .rev()
            .filter(|a| self.held.contains(a))
            .map(LogId::account)
            .filter(|l| !listed.contains(l))
            .collect();
        ordered.append(&mut logs);
        // `rooms` came in id order already (a BTreeMap).
        ordered.extend(rooms);
        ordered
    }
}

/// How many accounts' shared logs one snapshot remembers.
const MEMO_BOUND: usize = 4096;

impl Node {
    /// What moves when the sharing may have changed.
    pub(super) fn sharing_key(&self) -> Key {
        (self.scope, self.accounts.generation(), self.contacts.len())
    }

    /// The sharing snapshot for the node as it is now (rebuilt only if
    /// something it derives from changed since the last one).
    pub fn sharing(&self) -> Arc<Sharing> {
        let key = self.sharing_key();
        let mut cached = self.sharing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cached.as_ref().filter(|s| s.key == key) {
            return Arc::clone(s);
        }
        let s = Arc::new(self.build_sharing(key));
        *cached = Some(Arc::clone(&s));
        s
    }

    /// Publishes the current snapshot to [`Node::watch_sharing`] readers if
    /// it changed. Cheap when nothing did (three integers compared): the
    /// daemon calls it whenever it lets the node go after changing it.
    pub fn publish_sharing(&self) {
        let s = self.sharing();
        self.sharing_tx.send_if_modified(|old| {
            if Arc::ptr_eq(old, &s) {
                return false;
            }
            *old = s;
            true
        });
    }

    /// A handle that always sees the last published snapshot.
    pub fn watch_sharing(&self) -> tokio::sync::watch::Receiver<Arc<Sharing>> {
        self.publish_sharing();
        self.sharing_tx.subscribe()
    }

    fn build_sharing(&self, key: Key) -> Sharing {
        let mut active = HashSet::new();
        let (mut followed, mut held) = (HashSet::new(), HashSet::new());
        for (account, log) in self.accounts.iter() {
            followed.insert(*account);
            if self.logs.contains_key(&LogId::account(*account)) {
                held.insert(*account);
            }
            if let Ok(state) = log.state_ref() {
                active.extend(state.active_devices().map(|(d, _)| (*account, *d)));
            }
        }
        let me = self.device();
        let rooms = self
            .rooms
            .iter()
            .map(|(id, log)| {
                let state = &log.resolved().state;
                let gate = if state.creator.is_none() || state.membership(&self.account).is_none() {
                    Gate::Pending(self.held_rooms.get(id).map(|h| (h.creator, h.via)))
                } else {
                    let with = |m: Membership| {
                        state
                            .members
                            .iter()
                            .filter(move |(_, x)| **x == m)
                            .map(|(a, _)| *a)
                    };
                    Gate::Resolved {
                        present: with(Membership::Join)
                            .chain(with(Membership::Invite))
                            .collect(),
                        open: state.public && state.is_joined(&self.account),
                        banned: with(Membership::Ban).collect(),
                    }
                };
                let room = Room {
                    gate,
                    accounts: self.room_accounts(id),
                    ring: super::rooms::ring_neighbours(id, me, &self.room_devices(state)),
                };
                (*id, room)
            })
            .collect();
        Sharing {
            key,
            account: self.account,
            contacts: self.contacts.keys().copied().collect(),
            followed,
            held,
            active,
            index: self.accounts.index(),
            rooms,
            bridged: self
                .bridged()
                .into_iter()
                .map(|r| r.log)
                .filter(|l| self.logs.contains_key(l))
                .collect(),
            memo: Mutex::new(HashMap::new()),
        }
    }
}
