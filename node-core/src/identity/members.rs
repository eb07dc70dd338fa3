//! Who may write a log: the devices of its member accounts, each up to its
//! revocation cut-off, and not after its cut.
//!
//! Sequence numbers are per device across logs, so below a revoked device's
//! cut-off most logs have numbers it never used there, which a thief holding
//! its key could still sign. So another device of the account writes a
//! *cut* (an event of kind [`CUT`] naming the device) in each log, on top of
//! everything it holds there: before revoking the device, and in any log it
//! writes in or receives from later that has none yet. A device that holds
//! a counting cut for a revoked device in a log holds every event of that
//! device that came before the cut, so it refuses any other one there. A
//! cut counts when an active device of the same account wrote it.

use super::account::AccountState;
use crate::id::{AccountId, DeviceId, EventId};
use crate::log::{Dag, Event, Rules};
use crate::wire::{Reader, WireError, Writer};
use std::collections::HashSet;

/// The body kind of a cut in self, conversation and room logs (a value no
/// log kind uses for anything else).
pub const CUT: u16 = 0x7f00;

/// A cut stored in a log: the event, its author, and the device it cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cut {
    /// The cut event.
    pub id: EventId,
    /// Who wrote it.
    pub author: DeviceId,
    /// The revoked device.
    pub device: DeviceId,
}

impl Cut {
    /// The cut an event is, if it is one.
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
    /// Revoked devices a counting cut in this log is stored for.
    cut: HashSet<DeviceId>,
}

impl Members {
    /// Members given by their resolved account states.
    pub fn new(accounts: Vec<AccountState>) -> Self {
        Self {
            accounts,
            cut: HashSet::new(),
        }
    }

    /// With the cuts stored in this log: those written by an active device
    /// of the same account as the (revoked) device they name count.
    pub fn with_cuts<'c>(mut self, cuts: impl IntoIterator<Item = &'c Cut>) -> Self {
        for c in cuts {
            let counts = self.account_listing(&c.author).is_some_and(|a| {
                a.is_active(&c.author)
                    && c.author != c.device
                    && a.devices.contains_key(&c.device)
                    && !a.is_active(&c.device)
            }) && self.account_listing(&c.device).is_some();
            if counts {
                self.cut.insert(c.device);
            }
        }
        self
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
        if self.cut.contains(&h.author) {
            // Every event of the device that came before its cut is stored
            // (the cut is written on top of them): this one came after.
            return Err(format!(
                "author {} was revoked, and its cut in this log is here",
                h.author
            ));
        }
        if account.may_author(&h.author, h.seq) {
            Ok(())
        } else {
            Err(format!(
                "author {} was revoked before sequence number {}",
                h.author, h.seq
            ))
        }
    }
}
