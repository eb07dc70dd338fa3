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
    /// The member account that lists `device`: `Ok(None)` if none does,
    /// `Err` if two do (a key joined to a second account, by a thief who
    /// holds it, speaks for neither).
    fn account_listing(&self, device: &DeviceId) -> Result<Option<&AccountState>, String> {
        let mut listing = self
            .accounts
            .iter()
            .filter(|a| a.devices.contains_key(device));
        let first = listing.next();
        match listing.next() {
            None => Ok(first),
            Some(_) => Err(format!(
                "author {device} is claimed by more than one member account"
            )),
        }
    }

    /// The account a device belongs to, if it is one member's.
    pub fn account_of(&self, event: &Event) -> Option<AccountId> {
        self.account_listing(&event.header().author)
            .ok()
            .flatten()
            .map(|a| a.account)
    }
}

impl Rules for Members {
    fn authorize(&self, event: &Event, _dag: &Dag) -> Result<(), String> {
        let h = event.header();
        let account = self
            .account_listing(&h.author)?
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
