//! What a revocation leaves trusted: the node's side of `crate::log::cut`.
//!
//! A device revoked with cuts has its events at or below its cut-off kept
//! only as structure (status `SoftFailed`: stored and passed on, never
//! shown, applied or built on) unless a cut in the same log, by a device
//! of the account that revoked it, vouches for them (they are the cut's
//! ancestors). New events of such a device are soft-failed as they arrive
//! (see `Members::soft_fail`); this module settles what was stored before: when
//! a revocation becomes known, and when a cut arrives after the events it
//! vouches for. Statuses are a function of the stored events alone, so
//! every device that holds the same events shows the same, in whatever
//! order they came.

use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::log::{CUT_KIND, Cut, Event, LogKind, Status};
use crate::store::StoredEvent;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most passes settling one log: a cut by a distrusted device counts only
/// once a cut vouches for it, so each pass follows one more link of such
/// a chain (past this many, what is left stays structure: the safe side).
const MAX_PASSES: usize = 8;
/// Most cuts kept per named device and author per log (an honest
/// revocation writes one; more would only let a peer make the log settle
/// again and again, and a per-author bound lets no one crowd out another's).
const MAX_CUTS: usize = 2;

/// Devices whose past events only a cut can vouch for: each with the
/// account whose devices' cuts count (`None` when more than one followed
/// account lists the key: then no cut counts, as such a key speaks for
/// neither).
pub(super) type Distrusted = BTreeMap<DeviceId, Option<AccountId>>;

impl Node {
    /// The distrusted devices as the followed account logs say now.
    /// A device that only a discarded entry added (a thief's addition
    /// its revoker never saw) is distrusted with no cut counting, even if
    /// another followed account lists it (a join signature names its
    /// account, so only the key's holder, the thief, made both).
    fn distrusted_now(&self) -> Distrusted {
        let mut listed: HashMap<DeviceId, usize> = HashMap::new();
        let mut revoked: Vec<(DeviceId, AccountId)> = Vec::new();
        let mut dropped: BTreeSet<DeviceId> = BTreeSet::new();
        for (account, log) in self.accounts.iter() {
            let Ok(state) = log.state_ref() else { continue };
            for (device, rec) in &state.devices {
                *listed.entry(*device).or_default() += 1;
                if rec.revoked.is_some_and(|r| r.cuts) {
                    revoked.push((*device, *account));
                }
            }
            dropped.extend(state.dropped.iter().copied());
        }
        let mut distrusted: Distrusted = revoked
            .into_iter()
            .map(|(d, a)| (d, (listed.get(&d) == Some(&1)).then_some(a)))
            .collect();
        for device in dropped {
            distrusted.insert(device, None);
        }
        distrusted
    }

    /// Remembers a stored cut (its status and author decide whether it
    /// counts). At most [`MAX_CUTS`] per named device and author per log.
    pub(super) fn index_cut(&mut self, log: LogId, event: &Event) {
        let h = event.header();
        if h.kind != CUT_KIND || h.log_kind == LogKind::Account {
            return;
        }
        if let Some(Ok(cut)) = event.body().map(Cut::decode) {
            let cuts = self.cuts.entry(log).or_default();
            let same = cuts
                .iter()
                .filter(|(_, author, c)| c.device == cut.device && *author == h.author)
                .count();
            if same < MAX_CUTS && !cuts.iter().any(|(id, _, _)| *id == event.id()) {
                cuts.push((event.id(), h.author, cut));
            }
        }
    }

    /// After stored rows: a revocation may have become known or gone, or a
    /// key may be listed by one more account (account logs); or a cut may
    /// vouch for events kept as structure.
    pub(super) async fn settle_after(
        &mut self,
        log: LogId,
        rows: &[StoredEvent],
    ) -> Result<(), NodeError> {
        if self.account_of_log(log).is_some() {
            let now = self.distrusted_now();
            if now == self.distrusted {
                return Ok(());
            }
            let mut changed: BTreeSet<DeviceId> = BTreeSet::new();
            for (d, a) in now.iter() {
                if self.distrusted.get(d) != Some(a) {
                    changed.insert(*d);
                }
            }
            changed.extend(self.distrusted.keys().filter(|d| !now.contains_key(d)));
            self.distrusted = now;
            // Only logs holding events of a device whose standing changed.
            let mut logs: Vec<LogId> = self
                .logs
                .iter()
                .filter(|(_, d)| d.kind() != LogKind::Account)
                .filter(|(_, d)| changed.iter().any(|c| d.latest_by(c).is_some()))
                .map(|(l, _)| *l)
                .collect();
            logs.sort();
            for log in logs {
                self.settle_log(log, &changed).await?;
            }
            return Ok(());
        }
        let stored_cut = rows.iter().any(|r| {
            r.event.header().kind == CUT_KIND
                && r.info.status == Status::Accepted
                && self.cuts.get(&log).is_some_and(|c| {
                    c.iter().any(|(id, _, c)| {
                        *id == r.event.id() && self.distrusted.contains_key(&c.device)
                    })
                })
        });
        if stored_cut {
            self.settle_log(log, &BTreeSet::new()).await?;
        }
        Ok(())
    }

    /// Settles every log at start-up: the events of distrusted devices,
    /// and those kept as structure whose author is no longer distrusted
    /// (a revocation that conflict resolution dropped).
    pub(super) async fn settle_all(&mut self) -> Result<(), NodeError> {
        self.distrusted = self.distrusted_now();
        let mut logs: Vec<LogId> = self
            .logs
            .iter()
            .filter(|(_, d)| d.kind() != LogKind::Account)
            .map(|(l, _)| *l)
            .collect();
        logs.sort();
        for log in logs {
            let Some(dag) = self.logs.get(&log) else {
                continue;
            };
            let extra = dag.soft_failed_authors();
            if !extra.is_empty() || self.distrusted.keys().any(|d| dag.latest_by(d).is_some()) {
                self.settle_log(log, &extra).await?;
            }
        }
        Ok(())
    }

    /// Brings the statuses in `log` in line with the revocations and the
    /// log's cuts, for every distrusted device and for `extra` devices
    /// (whose standing just changed): a distrusted device's events are
    /// accepted only where a counted cut vouches for them (they are its
    /// ancestors), anyone else's are accepted. Reloads the log if any
    /// changed, and applies what events that are now accepted mean.
    async fn settle_log(
        &mut self,
        log: LogId,
        extra: &BTreeSet<DeviceId>,
    ) -> Result<(), NodeError> {
        let Some(dag) = self.logs.get(&log) else {
            return Ok(());
        };
        let mut devices: BTreeSet<DeviceId> = extra.clone();
        devices.extend(
            self.distrusted
                .keys()
                .filter(|d| dag.latest_by(d).is_some())
                .copied(),
        );
        let mine = dag.by_authors(&devices);
        if mine.is_empty() {
            return Ok(());
        }
        // A cut counts if its author is a device of the account that
        // distrusts the device it names (`Distrusted`).
        let counted: Vec<(EventId, DeviceId)> = self
            .cuts
            .get(&log)
            .into_iter()
            .flatten()
            .filter(|(_, author, c)| {
                self.distrusted
                    .get(&c.device)
                    .copied()
                    .flatten()
                    .and_then(|a| self.accounts.get(&a))
                    .and_then(|l| l.state_ref().ok())
                    .is_some_and(|s| s.devices.contains_key(author))
            })
            .map(|(id, _, c)| (*id, c.device))
            .collect();
        // The least fixed point, from nothing vouched for: a cut counts
        // once its own event is accepted (its author may be distrusted
        // too), so statuses never depend on what they were before.
        let mut status: HashMap<EventId, Status> = mine
            .iter()
            .flat_map(|(device, ids)| {
                let want = if self.distrusted.contains_key(device) {
                    Status::SoftFailed
                } else {
                    Status::Accepted
                };
                ids.iter().map(move |id| (*id, want))
            })
            .collect();
        for _ in 0..MAX_PASSES {
            let accepted = |id: &EventId| {
                status
                    .get(id)
                    .copied()
                    .or_else(|| dag.node(id).map(|n| n.status))
                    == Some(Status::Accepted)
            };
            let mut live: HashMap<DeviceId, Vec<EventId>> = HashMap::new();
            for (cut, device) in &counted {
                if accepted(cut) {
                    live.entry(*device).or_default().push(*cut);
                }
            }
            let mut changed = false;
            for (device, cuts) in &live {
                let Some(ids) = mine.get(device) else {
                    continue;
                };
                // One walk down from all of a device's live cuts at once.
                let below = dag.ancestors_of_all(cuts);
                for id in ids.iter().filter(|id| below.contains(id)) {
                    if status.insert(*id, Status::Accepted) != Some(Status::Accepted) {
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let changes: Vec<(EventId, Status)> = status
            .into_iter()
            .filter(|(id, s)| dag.node(id).is_some_and(|n| n.status != *s))
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        tracing::info!(
            log = %log.short(12),
            changed = changes.len(),
            "a revocation's cuts changed which events are trusted"
        );
        self.store.set_status(&changes).await?;
        self.reload(log).await?;
        let promoted: Vec<EventId> = changes
            .iter()
            .filter(|(_, s)| *s == Status::Accepted)
            .map(|(id, _)| *id)
            .collect();
        if !promoted.is_empty() {
            let rows = self.store.events_by_id(&promoted).await?;
            self.register_offers(log, &rows).await?;
            self.apply_rows(log, &rows);
        }
        // What a room refused while its state lacked these may now fit:
        // links sync again.
        if self.rooms.contains_key(&log) {
            self.scope += 1;
        }
        Ok(())
    }
}
