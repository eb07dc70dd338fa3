//! Who may write a log: the devices of its member accounts, each up to its
//! revocation cut-off.

use super::account::AccountState;
use crate::id::AccountId;
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
    /// The account a device belongs to, if it is a member's.
    pub fn account_of(&self, event: &Event) -> Option<AccountId> {
        let author = event.header().author;
        self.accounts
            .iter()
            .find(|a| a.devices.contains_key(&author))
            .map(|a| a.account)
    }
}

impl Rules for Members {
    fn authorize(&self, event: &Event, _dag: &Dag) -> Result<(), String> {
        let h = event.header();
        let account = self
            .accounts
            .iter()
            .find(|a| a.devices.contains_key(&h.author))
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
