//! Who may write a log: the devices of its member accounts, each up to its
//! revocation cut-off.

use super::account::AccountState;
use crate::id::{AccountId, DeviceId};
use crate::log::{Dag, Event, Rules};

/// Rules for self and conversation logs: the author must be a device of a
/// member account, not revoked before this event's sequence number.
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
    /// joined to a second account, by a thief who holds it, speaks for
    /// neither).
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
}
