//! What a revocation leaves trusted: the node's side of `crate::log::cut`.
//!
//! A device revoked with cuts has its events at or below its cut-off kept
//! only as structure (status `SoftFailed`: stored and passed on, never
//! shown, applied or built on) unless a cut in the same log vouches for
//! them. New events of such a device are soft-failed as they arrive (see
//! `Members::soft_fail`); this module settles what was stored before: when
//! a revocation becomes known, and when a cut arrives after the events it
//! vouches for. Statuses are a function of the stored events alone, so
//! every device that holds the same events shows the same, in whatever
//! order they came.

use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::log::{CUT_KIND, Cut, Event, LogKind, Status};
use crate::store::StoredEvent;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Most passes settling one log (a cut's author may itself be revoked).
const MAX_PASSES: usize = 4;
/// Most cuts kept per device per log (an honest revocation writes one;
/// more would only let a peer make the log settle again and again).
const MAX_CUTS: usize = 4;

impl Node {
    /// The devices, of any account followed here, whose events only a cut
    /// can vouch for.
    fn distrusted_now(&self) -> BTreeSet<DeviceId> {
        self.accounts
            .values()
            .filter_map(|log| log.state_ref().ok())
            .flat_map(|s| {
                s.devices
                    .iter()
                    .filter(|(_, d)| d.revoked.is_some_and(|r| r.cuts))
                    .map(|(id, _)| *id)
            })
            .collect()
    }

    /// The one followed account that lists `device`, if exactly one does.
    fn sole_account_of(&self, device: &DeviceId) -> Option<AccountId> {
        let mut listing = self
            .accounts
            .iter()
            .filter(|(_, log)| {
                log.state_ref()
                    .is_ok_and(|s| s.devices.contains_key(device))
            })
            .map(|(a, _)| *a);
        let first = listing.next();
        match listing.next() {
            None => first,
            Some(_) => None,
        }
    }

    /// Remembers a stored cut (its status decides whether it counts). At
    /// most [`MAX_CUTS`] per device per log are kept: an honest revocation
    /// writes one.
    pub(super) fn index_cut(&mut self, log: LogId, event: &Event) {
        let h = event.header();
        if h.kind != CUT_KIND || h.log_kind == LogKind::Account {
            return;
        }
        if let Some(Ok(cut)) = event.body().map(Cut::decode) {
            let cuts = self.cuts.entry(log).or_default();
            let same = cuts.iter().filter(|(_, c)| c.device == cut.device).count();
            if same < MAX_CUTS && !cuts.iter().any(|(id, _)| *id == event.id()) {
                cuts.push((event.id(), cut));
            }
        }
    }

    /// After stored rows: a revocation may have become known or gone
    /// (account logs), or a cut may vouch for events kept as structure.
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
            let changed: BTreeSet<DeviceId> = now
                .symmetric_difference(&self.distrusted)
                .copied()
                .collect();
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
        let Some(dag) = self.logs.get(&log) else {
            return Ok(());
        };
        // A cut that vouches for an event kept as structure (one that is
        // indexed: at most a few per device per log).
        let vouching: BTreeSet<DeviceId> = rows
            .iter()
            .filter(|r| r.event.header().kind == CUT_KIND && r.info.status == Status::Accepted)
            .filter(|r| {
                self.cuts
                    .get(&log)
                    .is_some_and(|c| c.iter().any(|(id, _)| *id == r.event.id()))
            })
            .filter_map(|r| r.event.body().and_then(|b| Cut::decode(b).ok()))
            .filter(|c| self.distrusted.contains(&c.device))
            .filter(|c| {
                dag.node(&c.head)
                    .is_some_and(|n| n.status == Status::SoftFailed)
            })
            .map(|c| c.device)
            .collect();
        if !vouching.is_empty() {
            self.settle_log(log, &vouching).await?;
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
            let mut devices: BTreeSet<DeviceId> = self
                .distrusted
                .iter()
                .filter(|d| dag.latest_by(d).is_some())
                .copied()
                .collect();
            devices.extend(dag.soft_failed_authors());
            if !devices.is_empty() {
                self.settle_log(log, &devices).await?;
            }
        }
        Ok(())
    }

    /// Brings the statuses of `devices`' events in `log` in line with the
    /// revocations and the log's cuts: a distrusted device's events are
    /// accepted only where a cut vouches for them, anyone else's are
    /// accepted. Reloads the log if any changed, and applies what events
    /// that are now accepted mean.
    async fn settle_log(
        &mut self,
        log: LogId,
        devices: &BTreeSet<DeviceId>,
    ) -> Result<(), NodeError> {
        let Some(dag) = self.logs.get(&log) else {
            return Ok(());
        };
        let mine: HashMap<DeviceId, Vec<EventId>> = devices
            .iter()
            .filter(|d| dag.latest_by(d).is_some())
            .map(|d| (*d, dag.by_author(d)))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        // Cuts whose author's account is the only one listing the device
        // they name (checked again: an account may list it since).
        let cuts: Vec<(EventId, Cut)> = self
            .cuts
            .get(&log)
            .into_iter()
            .flatten()
            .filter(|(id, c)| {
                let author = dag.node(id).map(|n| n.author);
                author.is_some_and(|a| {
                    let account = self.sole_account_of(&c.device);
                    account.is_some() && self.sole_account_of(&a) == account
                })
            })
            .copied()
            .collect();
        let mut status: HashMap<EventId, Status> = mine
            .values()
            .flatten()
            .filter_map(|id| dag.node(id).map(|n| (*id, n.status)))
            .collect();
        // A cut's author may itself be distrusted: a few passes settle
        // chains of those.
        for _ in 0..MAX_PASSES {
            let counts = |id: &EventId| {
                status
                    .get(id)
                    .copied()
                    .or_else(|| dag.node(id).map(|n| n.status))
                    == Some(Status::Accepted)
            };
            let mut vouched: HashMap<DeviceId, HashSet<EventId>> = HashMap::new();
            for (cut_id, cut) in &cuts {
                if mine.contains_key(&cut.device) && counts(cut_id) {
                    vouched
                        .entry(cut.device)
                        .or_default()
                        .extend(dag.author_chain(&cut.head));
                }
            }
            let mut changed = false;
            for (device, ids) in &mine {
                let distrusted = self.distrusted.contains(device);
                let ok = vouched.get(device);
                for id in ids {
                    let want = if !distrusted || ok.is_some_and(|v| v.contains(id)) {
                        Status::Accepted
                    } else {
                        Status::SoftFailed
                    };
                    if status.insert(*id, want) != Some(want) {
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
