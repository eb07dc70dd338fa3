//! Who may write a log: the devices of its member accounts, each up to its
//! revocation cut-off; and which of a revoked device's events still count.
//!
//! Sequence numbers are per device across logs, so below a revoked device's
//! cut-off most logs have numbers it never used there, which a thief holding
//! its key could still sign. So a revoked device's events count in a log
//! only where a *cut* covers them: an event of kind [`CUT`] that another
//! device of the same account writes in that log when it revokes the device
//! (on top of everything it holds there). The revoked device's events among
//! the cut's ancestors count; the rest are soft-failed — kept as structure,
//! so that honest events written on top of them still pass, but never shown
//! or applied. A cut counts only if its own author's events count, so a
//! thief's cut (by the revoked device, or by another device revoked later
//! that wrote it afterwards) blesses nothing.

use super::account::AccountState;
use crate::id::{AccountId, DeviceId, EventId};
use crate::log::{Dag, Event, Rules, Status};
use crate::wire::{Reader, WireError, Writer};
use std::collections::{HashMap, HashSet};

/// The body kind of a cut in self, conversation and room logs: one byte
/// range no log kind uses for anything else.
pub const CUT: u16 = 0x7f00;

/// Rounds of "a cut counts if its author's events count" (a chain of
/// revoked devices cutting each other); more are not followed.
const MAX_CUT_ROUNDS: usize = 8;

/// A cut stored in a log: the event, its author, and the device it cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The cut event.
    pub id: EventId,
    /// Who wrote it.
    pub author: DeviceId,
    /// The revoked device whose events below it count.
    pub device: DeviceId,
}

impl Cut {
    /// The cut an event is, if it is one (any log kind but account logs).
    pub fn of(event: &Event) -> Option<Cut> {
        let h = event.header();
        if h.kind != CUT {
            return None;
        }
        let device = decode_cut(event.body()?).ok()?;
        Some(Cut {
            id: event.id(),
            author: h.author,
            device,
        })
    }
}

/// A cut's body: the revoked device.
pub fn encode_cut(device: &DeviceId) -> Vec<u8> {
    Writer::new().fixed(device.as_bytes()).finish()
}

/// Reads a cut's body.
pub fn decode_cut(body: &[u8]) -> Result<DeviceId, WireError> {
    let mut r = Reader::new(body);
    let device = DeviceId::from_bytes(r.array("cut device")?);
    r.finish("cut")?;
    Ok(device)
}

/// Rules for self and conversation logs: the author must be a device of
/// exactly one member account, not revoked before this event's sequence
/// number; a revoked device's events are soft-failed on arrival (a cut
/// makes those it covers count again, see [`Members::not_counting`]).
#[derive(Debug, Clone, Default)]
pub struct Members {
    accounts: Vec<AccountState>,
}

impl Members {
    /// Members given by their resolved account states.
    pub fn new(accounts: Vec<AccountState>) -> Self {
        Self { accounts }
    }

    /// The one member account that lists `device` (none if two do: a key
    /// another account also claims speaks for neither).
    fn account_listing(&self, device: &DeviceId) -> Option<&AccountState> {
        let mut listing = self
            .accounts
            .iter()
            .filter(|a| a.devices.contains_key(device));
        let first = listing.next()?;
        listing.next().is_none().then_some(first)
    }

    /// The account a device belongs to, if it is a member's.
    pub fn account_of(&self, event: &Event) -> Option<AccountId> {
        self.account_listing(&event.header().author)
            .map(|a| a.account)
    }

    /// Whether `device` is a revoked device of a member account.
    pub fn is_revoked(&self, device: &DeviceId) -> bool {
        self.account_listing(device)
            .is_some_and(|a| !a.is_active(device))
    }

    /// Whether any member account has a revoked device.
    pub fn any_revoked(&self) -> bool {
        self.accounts
            .iter()
            .any(|a| a.devices.values().any(|d| d.revoked.is_some()))
    }

    /// The stored events of `dag` that must not count: a revoked device's
    /// events that no counting cut among `cuts` covers. Everything else
    /// counts. The same stored events and account states give the same
    /// answer whatever order they came in.
    pub fn not_counting(&self, dag: &Dag, cuts: &[Cut]) -> HashSet<EventId> {
        let revoked: HashSet<DeviceId> = dag
            .authors()
            .filter(|d| self.is_revoked(d))
            .copied()
            .collect();
        if revoked.is_empty() {
            return HashSet::new();
        }
        let same_account = |a: &DeviceId, b: &DeviceId| {
            matches!(
                (self.account_listing(a), self.account_listing(b)),
                (Some(x), Some(y)) if x.account == y.account
            )
        };
        let mut covered: HashMap<DeviceId, HashSet<EventId>> = HashMap::new();
        let mut used: HashSet<EventId> = HashSet::new();
        for _ in 0..MAX_CUT_ROUNDS {
            let mut changed = false;
            for cut in cuts {
                let counts = !revoked.contains(&cut.author)
                    || covered
                        .get(&cut.author)
                        .is_some_and(|c| c.contains(&cut.id));
                if used.contains(&cut.id)
                    || !counts
                    || cut.author == cut.device
                    || !revoked.contains(&cut.device)
                    || !same_account(&cut.author, &cut.device)
                    || dag.node(&cut.id).is_none()
                {
                    continue;
                }
                used.insert(cut.id);
                covered
                    .entry(cut.device)
                    .or_default()
                    .extend(dag.ancestors_by(&cut.id, &cut.device));
                changed = true;
            }
            if !changed {
                break;
            }
        }
        dag.ids()
            .filter(|id| {
                dag.node(id).is_some_and(|n| {
                    revoked.contains(&n.author)
                        && !covered.get(&n.author).is_some_and(|c| c.contains(id))
                })
            })
            .copied()
            .collect()
    }
}

impl Rules for Members {
    fn authorize(&self, event: &Event, _dag: &Dag) -> Result<(), String> {
        let h = event.header();
        let listing = self
            .accounts
            .iter()
            .filter(|a| a.devices.contains_key(&h.author))
            .count();
        if listing > 1 {
            return Err(format!(
                "author {} is claimed by more than one member account",
                h.author
            ));
        }
        let account = self
            .account_listing(&h.author)
            .ok_or_else(|| format!("author {} is not a device of a member account", h.author))?;
        if account.may_author(&h.author, h.seq) {
            Ok(())
        } else {
            Err(format!(
                "author {} was revoked before sequence number {}",
                h.author, h.seq
            ))
        }
    }

    /// A revoked device's event is soft-failed on arrival: nothing stored
    /// can cover it yet (a cut covering it is written on top of it).
    fn soft_fail(&self, event: &Event, _dag: &Dag) -> bool {
        self.is_revoked(&event.header().author)
    }
}

/// The soft-failed events of `dag` (to compare with what should be).
pub fn soft_failed(dag: &Dag) -> HashSet<EventId> {
    dag.ids()
        .filter(|id| dag.node(id).is_some_and(|n| n.status == Status::SoftFailed))
        .copied()
        .collect()
}
