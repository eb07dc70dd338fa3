//! The account log: which devices make up an account, resolved the same way
//! on every replica whatever order its events arrived in.
//!
//! Rules (DESIGN.md "Identity"): adding a device needs an active device and
//! the new device; revoking needs an active device or the recovery key. An
//! entry is valid when its author is allowed by the entries among its
//! ancestors. Concurrent conflicts are settled without clocks: recovery-key
//! revocations first, then revocations by more senior devices (added
//! earlier: lower depth, then lower event id); a revocation by a device that
//! is itself revoked counts only if it is an ancestor of that revocation;
//! whatever a revoked device signed concurrently with its revocation is
//! discarded. Invalid entries are filtered, never allowed to break the merge.

use super::entry::{AccountEntry, verify_join};
use crate::crypto::VerifyingKey;
use crate::id::{AccountId, DeviceId, EventId};
use crate::log::{Dag, Event, Rules, Status};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Largest account log accepted from anyone (devices come and go rarely).
pub const MAX_ACCOUNT_EVENTS: usize = 1024;
/// Entries kept beyond [`MAX_ACCOUNT_EVENTS`] for the recovery key and the
/// devices active now: a revoked device can sign entries on old heads at
/// will (they are stored, then discarded), and must not fill the log so
/// that the owner can no longer revoke or add anything.
pub const RESERVED_ACCOUNT_EVENTS: usize = 64;
/// Entries kept beyond those for the recovery key alone: a stolen device
/// that is still active can fill the rest, and the recovery key must
/// still be able to revoke it and what it revoked.
pub const RECOVERY_ACCOUNT_EVENTS: usize = 64;
const MAX_ROUNDS: usize = 8;

/// A device as the account log describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Its name.
    pub name: String,
    /// The entry that added it (the genesis for the first device).
    pub added_in: EventId,
    /// Seniority key: lower is more senior.
    pub seniority: (u64, EventId),
    /// Set once the device is revoked.
    pub revoked: Option<Revocation>,
}

/// How a device was revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The effective revocation entry (the first in resolution order).
    pub by: EventId,
    /// The revoked device's last valid sequence number.
    pub cutoff_seq: u64,
    /// Whether cuts vouch for its events (see `crate::log::cut`): then its
    /// events at or below the cut-off that no cut covers are kept only as
    /// structure.
    pub cuts: bool,
}

/// The resolved account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// The account id (the genesis event id).
    pub account: AccountId,
    /// Display name from the genesis.
    pub name: String,
    /// The recovery key, if the account has one.
    pub recovery: Option<VerifyingKey>,
    /// Every device ever validly added.
    pub devices: BTreeMap<DeviceId, DeviceRecord>,
    /// Entries stored but discarded by conflict resolution.
    pub discarded: Vec<EventId>,
    /// Devices that only discarded entries added (with their own join
    /// signature), where the entry's author is revoked with cuts: a
    /// distrusted device's additions its revoker never saw. They were
    /// never the account's, but others may have taken their events while
    /// the addition counted.
    pub dropped: BTreeSet<DeviceId>,
}

impl AccountState {
    /// Whether `device` is in the account and not revoked.
    pub fn is_active(&self, device: &DeviceId) -> bool {
        self.devices
            .get(device)
            .is_some_and(|d| d.revoked.is_none())
    }
    /// Whether an event by `device` with sequence number `seq` is acceptable:
    /// the device is active, or revoked with `seq` at or before its cut-off.
    pub fn may_author(&self, device: &DeviceId, seq: u64) -> bool {
        match self.devices.get(device) {
            None => false,
            Some(d) => d.revoked.is_none_or(|r| seq <= r.cutoff_seq),
        }
    }
    /// Whether an event by `device` with sequence number `seq`, if it is
    /// accepted at all, is kept only as structure: the device was revoked
    /// with cuts, and only a cut can vouch for its events (see
    /// `crate::log::cut`).
    pub fn distrusts(&self, device: &DeviceId) -> bool {
        self.devices
            .get(device)
            .and_then(|d| d.revoked)
            .is_some_and(|r| r.cuts)
    }
    /// The active devices.
    pub fn active_devices(&self) -> impl Iterator<Item = (&DeviceId, &DeviceRecord)> {
        self.devices.iter().filter(|(_, d)| d.revoked.is_none())
    }
}

/// Why an account log cannot be resolved at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The genesis event is missing or invalid.
    #[error("account {0}: genesis missing or invalid")]
    NoGenesis(AccountId),
}

/// An account log: its events (all verified) and the rules new ones follow.
#[derive(Debug, Clone)]
pub struct AccountLog {
    account: AccountId,
    events: BTreeMap<EventId, Event>,
    /// Whether each stored addition's join signature verifies (checked
    /// once at insert, not again for every entry a peer offers).
    joins: HashMap<EventId, bool>,
    /// The resolved state, until the next insert (resolving is the costly
    /// part, and the state is read far more often than the log changes).
    resolved: std::sync::OnceLock<Result<AccountState, AccountError>>,
}

impl AccountLog {
    /// An empty log for `account`.
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            events: BTreeMap::new(),
            joins: HashMap::new(),
            resolved: std::sync::OnceLock::new(),
        }
    }
    /// The account id.
    pub fn account(&self) -> AccountId {
        self.account
    }
    /// Adds an event the DAG accepted.
    pub fn insert(&mut self, event: Event) {
        let entry = event
            .body()
            .and_then(|b| AccountEntry::decode(event.header().kind, b).ok());
        self.joins
            .insert(event.id(), join_ok(self.account, entry.as_ref()));
        self.events.insert(event.id(), event);
        self.resolved = std::sync::OnceLock::new();
    }
    /// The events.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.values()
    }
    /// The entries a new entry should cite: the valid ones no valid entry
    /// cites. Discarded heads (a revoked device's entries on old heads)
    /// are left out: citing them would push the owner's own entries out
    /// of a new entry's capped parents, and with them what makes it valid.
    /// Empty if the log does not resolve.
    pub fn frontier(&self) -> Vec<EventId> {
        let Ok(state) = self.state_ref() else {
            return Vec::new();
        };
        let discarded: BTreeSet<&EventId> = state.discarded.iter().collect();
        let valid: Vec<&Event> = self
            .events
            .values()
            .filter(|e| !discarded.contains(&e.id()))
            .collect();
        let cited: BTreeSet<EventId> = valid
            .iter()
            .flat_map(|e| e.header().parents.iter().copied())
            .collect();
        valid
            .iter()
            .map(|e| e.id())
            .filter(|id| !cited.contains(id))
            .collect()
    }
    /// Resolves the current state.
    pub fn state(&self) -> Result<AccountState, AccountError> {
        self.state_ref().cloned().map_err(Clone::clone)
    }

    /// Whether conflict resolution settles (one more round would change
    /// nothing) within its bound of rounds; for tests and diagnostics.
    pub fn settles(&self) -> bool {
        Resolver::new(self.account, self.events.values(), &self.joins)
            .resolution()
            .2
    }

    /// The current state, without copying it (for frequent lookups).
    pub fn state_ref(&self) -> Result<&AccountState, &AccountError> {
        self.resolved
            .get_or_init(|| {
                Resolver::new(self.account, self.events.values(), &self.joins).resolve()
            })
            .as_ref()
    }
}

/// Account-log rules for the DAG: an entry must be valid at its parents.
impl Rules for AccountLog {
    fn authorize(&self, event: &Event, _dag: &Dag) -> Result<(), String> {
        if self.events.len() >= MAX_ACCOUNT_EVENTS {
            let author = event.header().author;
            let state = self.state_ref().ok();
            let recovery = state
                .and_then(|s| s.recovery)
                .is_some_and(|r| DeviceId::from(r) == author);
            let active = state.is_some_and(|s| s.is_active(&author));
            let bound = match (recovery, active) {
                (true, _) => MAX_ACCOUNT_EVENTS + RESERVED_ACCOUNT_EVENTS + RECOVERY_ACCOUNT_EVENTS,
                (false, true) => MAX_ACCOUNT_EVENTS + RESERVED_ACCOUNT_EVENTS,
                (false, false) => MAX_ACCOUNT_EVENTS,
            };
            if self.events.len() >= bound {
                return Err(format!(
                    "account log is full ({MAX_ACCOUNT_EVENTS} entries, {RESERVED_ACCOUNT_EVENTS} more for active devices and the recovery key, then {RECOVERY_ACCOUNT_EVENTS} for the recovery key)"
                ));
            }
        }
        // Resolved among its ancestors alone (so acceptance never depends
        // on arrival order), with conflict resolution: an entry that cites
        // a discarded revocation of its author (a thief's, signed with an
        // unused sequence number on old heads) is judged without it.
        let mut ancestry: Vec<&Event> = vec![event];
        let mut seen: BTreeSet<EventId> = BTreeSet::new();
        let mut next: Vec<EventId> = event.header().parents.clone();
        while let Some(id) = next.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(e) = self.events.get(&id) {
                next.extend(e.header().parents.iter().copied());
                ancestry.push(e);
            }
        }
        let r = Resolver::new(self.account, ancestry.into_iter(), &self.joins);
        let i = r.index[&event.id()];
        let (valid, excluded, _) = r.resolution();
        match valid[i] {
            true => Ok(()),
            false => Err(r.reason(i, &valid, &excluded)),
        }
    }

    fn accepted(&mut self, event: &Event, _status: Status) {
        self.insert(event.clone());
    }
}

struct Item {
    id: EventId,
    author: DeviceId,
    depth: u64,
    parents: Vec<usize>,
    entry: Option<AccountEntry>,
    /// For an addition: whether the new device's join signature verifies
    /// (checked once; resolution asks in every round).
    join_ok: bool,
}

struct Resolver {
    account: AccountId,
    items: Vec<Item>,
    index: HashMap<EventId, usize>,
    ancestors: Vec<Vec<bool>>,
    recovery: Option<DeviceId>,
}

impl Resolver {
    /// `joins`: join signatures already checked, by entry id (others are
    /// checked here).
    fn new<'a>(
        account: AccountId,
        events: impl Iterator<Item = &'a Event>,
        joins: &HashMap<EventId, bool>,
    ) -> Self {
        let mut sorted: Vec<&Event> = events.collect();
        sorted.sort_by_key(|e| (e.header().depth, e.id()));
        let index: HashMap<EventId, usize> = sorted
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id(), i))
            .collect();
        let items: Vec<Item> = sorted
            .iter()
            .map(|e| {
                let entry = e
                    .body()
                    .and_then(|b| AccountEntry::decode(e.header().kind, b).ok());
                let join_ok = match joins.get(&e.id()) {
                    Some(ok) => *ok,
                    None => join_ok(account, entry.as_ref()),
                };
                Item {
                    id: e.id(),
                    author: e.header().author,
                    depth: e.header().depth,
                    // A parent outside the set makes the entry invalid (usize::MAX).
                    parents: e
                        .header()
                        .parents
                        .iter()
                        .map(|p| index.get(p).copied().unwrap_or(usize::MAX))
                        .collect(),
                    entry,
                    join_ok,
                }
            })
            .collect();
        let ancestors = ancestor_sets(&items);
        let recovery = items
            .iter()
            .find(|it| it.id.as_bytes() == account.as_bytes())
            .and_then(|g| match &g.entry {
                Some(AccountEntry::Genesis { recovery, .. }) => recovery.map(DeviceId::from),
                _ => None,
            });
        Self {
            account,
            items,
            index,
            ancestors,
            recovery,
        }
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    /// Which entries are valid at their parents, ignoring `excluded` ones.
    /// An entry is judged by its valid ancestors alone: an invalid or
    /// excluded parent does not make it invalid (a device that cites a
    /// discarded head builds on what is valid below it). Otherwise one
    /// discarded entry, which a revoked device can sign at will, and any
    /// entry on it would void everything the account's devices write
    /// after them.
    fn validity(&self, excluded: &[bool]) -> Vec<bool> {
        let mut valid = vec![false; self.len()];
        for i in 0..self.len() {
            let parents_ok = self.items[i].parents.iter().all(|&p| p != usize::MAX);
            valid[i] = !excluded[i] && parents_ok && self.allowed(i, &valid);
        }
        valid
    }

    /// Devices added and revoked among the valid ancestors of `i`.
    fn membership_at(&self, i: usize, valid: &[bool]) -> (Vec<DeviceId>, Vec<DeviceId>) {
        let (mut members, mut revoked) = (Vec::new(), Vec::new());
        for (j, item) in self.items.iter().enumerate().take(i) {
            if !self.ancestors[i][j] || !valid[j] {
                continue;
            }
            match &item.entry {
                Some(AccountEntry::Genesis { .. }) => members.push(item.author),
                Some(AccountEntry::AddDevice { device, .. }) => members.push(*device),
                Some(AccountEntry::RevokeDevice { device, .. }) => revoked.push(*device),
                None => {}
            }
        }
        (members, revoked)
    }

    fn allowed(&self, i: usize, valid: &[bool]) -> bool {
        let item = &self.items[i];
        let (members, revoked) = self.membership_at(i, valid);
        let is_recovery = Some(item.author) == self.recovery;
        let author_ok =
            is_recovery || (members.contains(&item.author) && !revoked.contains(&item.author));
        match &item.entry {
            None => false,
            Some(AccountEntry::Genesis { .. }) => item.id.as_bytes() == self.account.as_bytes(),
            Some(AccountEntry::AddDevice { device, .. }) => {
                author_ok
                    && !members.contains(device)
                    && Some(*device) != self.recovery
                    && item.join_ok
            }
            // A device never revokes itself: the revoked device's key may
            // be a thief's, and a revocation of its own making could pick
            // its own cut-off before the owner's comes. A revoked device
            // may be revoked again: a thief who revoked a device it added,
            // with the highest cut-off, must not keep that key writing
            // (the lowest cut-off of the revocations that count holds).
            Some(AccountEntry::RevokeDevice { device, .. }) => {
                author_ok && *device != item.author && members.contains(device)
            }
        }
    }

    /// A precise reason why entry `i` is not valid at its parents.
    fn reason(&self, i: usize, valid: &[bool], excluded: &[bool]) -> String {
        let item = &self.items[i];
        if item.parents.contains(&usize::MAX) {
            return "a parent is not an entry of this account log".into();
        }
        if excluded[i] {
            return format!(
                "author {} is revoked, and this entry is not before its revocation",
                item.author
            );
        }
        let (members, revoked) = self.membership_at(i, valid);
        let author_known = Some(item.author) == self.recovery || members.contains(&item.author);
        match &item.entry {
            None => "body missing or not an account-log entry".into(),
            Some(AccountEntry::Genesis { .. }) => "a second genesis".into(),
            _ if !author_known => format!("author {} is not a device of this account", item.author),
            _ if revoked.contains(&item.author) => format!("author {} is revoked", item.author),
            Some(AccountEntry::AddDevice { device, .. }) if members.contains(device) => {
                format!("device {device} is already in the account")
            }
            Some(AccountEntry::AddDevice { .. }) => {
                "the new device's join signature is missing or invalid".into()
            }
            Some(AccountEntry::RevokeDevice { device, .. }) if *device == item.author => {
                format!("device {device} cannot revoke itself")
            }
            Some(AccountEntry::RevokeDevice { device, .. }) => {
                format!("device {device} is not a device of this account")
            }
        }
    }

    fn resolve(&self) -> Result<AccountState, AccountError> {
        let (valid, excluded, _) = self.resolution();
        self.state(&valid, &excluded)
    }

    /// Which entries are valid, which conflict resolution excluded, and
    /// whether it settled (a further round would change nothing).
    fn resolution(&self) -> (Vec<bool>, Vec<bool>, bool) {
        let mut excluded = vec![false; self.len()];
        let mut valid = self.validity(&excluded);
        for _ in 0..MAX_ROUNDS {
            let revocations = self.effective_revocations(&valid);
            let next = self.concurrent_with_revocation(&revocations);
            if next == excluded {
                return (valid, excluded, true);
            }
            excluded = next;
            valid = self.validity(&excluded);
        }
        let revocations = self.effective_revocations(&valid);
        let settled = self.concurrent_with_revocation(&revocations) == excluded;
        (valid, excluded, settled)
    }

    fn seniority(&self, valid: &[bool]) -> HashMap<DeviceId, (u64, EventId)> {
        let mut out: HashMap<DeviceId, (u64, EventId)> = HashMap::new();
        for (i, item) in self.items.iter().enumerate().filter(|(i, _)| valid[*i]) {
            let device = match &item.entry {
                Some(AccountEntry::Genesis { .. }) => item.author,
                Some(AccountEntry::AddDevice { device, .. }) => *device,
                _ => continue,
            };
            // Items are in (depth, id) order, so the first addition is the most senior.
            out.entry(device).or_insert((self.items[i].depth, item.id));
        }
        out
    }

    /// The revocations that take effect, per revoked device: (entry index,
    /// cut-off), in resolution order.
    fn effective_revocations(&self, valid: &[bool]) -> BTreeMap<DeviceId, Vec<(usize, u64)>> {
        let seniority = self.seniority(valid);
        let mut candidates: Vec<(usize, DeviceId, u64)> = Vec::new();
        for (i, item) in self.items.iter().enumerate().filter(|(i, _)| valid[*i]) {
            if let Some(AccountEntry::RevokeDevice {
                device, cutoff_seq, ..
            }) = &item.entry
            {
                candidates.push((i, *device, *cutoff_seq));
            }
        }
        let rank = |i: usize| {
            let item = &self.items[i];
            let by_recovery = Some(item.author) != self.recovery;
            let senior = seniority.get(&item.author).copied();
            (by_recovery, senior, item.depth, item.id)
        };
        candidates.sort_by_key(|c| rank(c.0));
        let mut revoked: BTreeMap<DeviceId, Vec<(usize, u64)>> = BTreeMap::new();
        for (i, target, cutoff) in candidates {
            let author = self.items[i].author;
            if let Some(against_author) = revoked.get(&author) {
                let before_own_revocation =
                    against_author.iter().any(|(r, _)| self.ancestors[*r][i]);
                if !before_own_revocation {
                    continue;
                }
            }
            revoked.entry(target).or_default().push((i, cutoff));
        }
        revoked
    }

    /// Entries by revoked devices that are not ancestors of any effective
    /// revocation of their author, except effective revocations: one taken
    /// before its author's own revocation (in resolution order) stands.
    /// (Excluding it too made resolution cycle: a senior device revokes a
    /// stolen one while a second stolen one revokes the senior one and the
    /// first revokes the second.)
    fn concurrent_with_revocation(
        &self,
        revoked: &BTreeMap<DeviceId, Vec<(usize, u64)>>,
    ) -> Vec<bool> {
        let effective: BTreeSet<usize> = revoked.values().flatten().map(|(i, _)| *i).collect();
        self.items
            .iter()
            .enumerate()
            .map(|(i, item)| match revoked.get(&item.author) {
                Some(revs) if Some(item.author) != self.recovery => {
                    !effective.contains(&i) && !revs.iter().any(|(r, _)| self.ancestors[*r][i])
                }
                _ => false,
            })
            .collect()
    }

    fn state(&self, valid: &[bool], excluded: &[bool]) -> Result<AccountState, AccountError> {
        let genesis = self
            .index
            .get(&EventId::from_bytes(*self.account.as_bytes()))
            .filter(|&&g| valid[g])
            .ok_or(AccountError::NoGenesis(self.account))?;
        let Some(AccountEntry::Genesis {
            account_name,
            device_name,
            recovery,
        }) = &self.items[*genesis].entry
        else {
            return Err(AccountError::NoGenesis(self.account));
        };
        let seniority = self.seniority(valid);
        let mut devices = BTreeMap::new();
        for (i, item) in self.items.iter().enumerate().filter(|(i, _)| valid[*i]) {
            let (device, name) = match &item.entry {
                Some(AccountEntry::Genesis { .. }) => (item.author, device_name.clone()),
                Some(AccountEntry::AddDevice { device, name, .. }) => (*device, name.clone()),
                _ => continue,
            };
            devices.entry(device).or_insert(DeviceRecord {
                name,
                added_in: self.items[i].id,
                seniority: seniority[&device],
                revoked: None,
            });
        }
        let revocations = self.effective_revocations(valid);
        for (device, revs) in &revocations {
            if let Some(rec) = devices.get_mut(device) {
                let cutoff = revs.iter().map(|(_, c)| *c).min().unwrap_or(0);
                rec.revoked = Some(Revocation {
                    by: self.items[revs[0].0].id,
                    cutoff_seq: cutoff,
                    cuts: false,
                });
            }
        }
        // A revocation with cuts makes its target's past events count only
        // where a cut vouches for them. One whose author the recovery key
        // revoked has no such power: the owner said that device was the
        // thief's, so what it revoked before is still cut off, but none of
        // its history is hidden. (A device retired by another device keeps
        // its revocations' cuts: they may be what keeps a thief out.)
        let in_good_standing = |author: DeviceId| {
            Some(author) == self.recovery
                || !revocations.get(&author).is_some_and(|revs| {
                    revs.iter()
                        .any(|(i, _)| Some(self.items[*i].author) == self.recovery)
                })
        };
        let with_cuts: Vec<DeviceId> = revocations
            .iter()
            .filter(|(_, revs)| {
                revs.iter().any(|(i, _)| {
                    let item = &self.items[*i];
                    matches!(
                        item.entry,
                        Some(AccountEntry::RevokeDevice { cuts: true, .. })
                    ) && in_good_standing(item.author)
                })
            })
            .map(|(d, _)| *d)
            .collect();
        for device in with_cuts {
            if let Some(r) = devices.get_mut(&device).and_then(|d| d.revoked.as_mut()) {
                r.cuts = true;
            }
        }
        // Devices a distrusted device added in entries conflict resolution
        // excluded, and those such a device added in turn (in depth order,
        // so one pass follows every generation).
        let mut dropped: BTreeSet<DeviceId> = BTreeSet::new();
        for (i, item) in self.items.iter().enumerate().filter(|(i, _)| !valid[*i]) {
            let Some(AccountEntry::AddDevice { device, .. }) = &item.entry else {
                continue;
            };
            let by_distrusted = excluded[i]
                && devices
                    .get(&item.author)
                    .is_some_and(|d| d.revoked.is_some_and(|r| r.cuts));
            if (by_distrusted || dropped.contains(&item.author))
                && !devices.contains_key(device)
                && item.join_ok
            {
                dropped.insert(*device);
            }
        }
        Ok(AccountState {
            account: self.account,
            name: account_name.clone(),
            recovery: *recovery,
            devices,
            dropped,
            discarded: (0..self.len())
                .filter(|&i| !valid[i])
                .map(|i| self.items[i].id)
                .collect(),
        })
    }
}

/// Whether `entry` is an addition whose new device's join signature
/// verifies.
fn join_ok(account: AccountId, entry: Option<&AccountEntry>) -> bool {
    match entry {
        Some(AccountEntry::AddDevice { device, name, join }) => {
            verify_join(account, *device, name, join)
        }
        _ => false,
    }
}

/// For each item (in depth order), which earlier items are its ancestors.
fn ancestor_sets(items: &[Item]) -> Vec<Vec<bool>> {
    let n = items.len();
    let mut anc: Vec<Vec<bool>> = Vec::with_capacity(n);
    for item in items {
        let mut set = vec![false; n];
        for &p in item.parents.iter().filter(|&&p| p < anc.len()) {
            set[p] = true;
            for (j, a) in anc[p].iter().enumerate() {
                if *a {
                    set[j] = true;
                }
            }
        }
        anc.push(set);
    }
    anc
}
