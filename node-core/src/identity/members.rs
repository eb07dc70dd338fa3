//! Who may write a log: the devices of its member accounts, each up to its
//! revocation cut-off.

use super::account::AccountState;
use crate::id::{AccountId, DeviceId};
use crate::log::{CUT_KIND, Cut, Dag, Event, LogKind, Rules};

/// Rules for self and conversation logs: the author must be a device of a
/// member account, not revoked before this event's sequence number.
#[derive(Debug, Clone, Default)]
pub struct Members {
    accounts: Vec<AccountState>,
    /// Devices distrusted by any account the node follows (not only
    /// these members: a key another account also claims counts too).
    distrusted: std::collections::BTreeSet<crate::id::DeviceId>,
}

impl Members {
    /// Members given by their resolved account states.
    pub fn new(accounts: Vec<AccountState>) -> Self {
        Self {
            accounts,
            distrusted: Default::default(),
        }
    }

    /// Also soft-fails the events of `devices` (see `soft_fail`).
    pub fn distrusting(mut self, devices: std::collections::BTreeSet<crate::id::DeviceId>) -> Self {
        self.distrusted = devices;
        self
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
    fn authorize(&self, event: &Event, dag: &Dag) -> Result<(), String> {
        let h = event.header();
        let account = self
            .account_listing(&h.author)?
            .ok_or_else(|| format!("author {} is not a device of a member account", h.author))?;
        if !account.may_author(&h.author, h.seq) {
            return Err(format!(
                "author {} was revoked before sequence number {}",
                h.author, h.seq
            ));
        }
        if h.kind == CUT_KIND && h.log_kind != LogKind::Account {
            self.check_cut(event, account, dag)?;
        }
        Ok(())
    }

    /// A revoked device's events (at or below its cut-off; later ones are
    /// refused) are kept only as structure when they arrive: a cut that
    /// vouches for them is always written after them (see `crate::log::cut`).
    fn soft_fail(&self, event: &Event, _dag: &Dag) -> bool {
        let author = event.header().author;
        self.distrusted.contains(&author)
            || matches!(self.account_listing(&author), Ok(Some(a)) if a.distrusts(&author))
    }
}

impl Members {
    /// A cut names another device of its author's account and cites that
    /// device's event it vouches for. (Whether it counts is decided when
    /// statuses are settled, by which account revoked that device: a thief
    /// who joins the stolen key to an account of its own vouches for
    /// nothing. Refusing it here would depend on what this device follows,
    /// and whatever builds on the cut would wait for it.)
    fn check_cut(&self, event: &Event, account: &AccountState, dag: &Dag) -> Result<(), String> {
        let h = event.header();
        let body = event.body().ok_or("a cut has no body")?;
        let cut = Cut::decode(body).map_err(|e| e.to_string())?;
        if cut.device == h.author || !account.devices.contains_key(&cut.device) {
            return Err("a cut names another device of its author's account".into());
        }
        if !h.parents.contains(&cut.head) {
            return Err("a cut cites the event it vouches for".into());
        }
        match dag.node(&cut.head) {
            Some(n) if n.author == cut.device => Ok(()),
            _ => Err("a cut vouches for an event of the device it names".into()),
        }
    }
}
