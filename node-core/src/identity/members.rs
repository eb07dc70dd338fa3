//! Who may write a log: the devices of its member accounts, each up to its
//! revocation cut-off.

use super::account::{AccountState, Genuine};
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
    /// Whether a revoked device's event here must not count: its
    /// revocation's cut for this log is stored already (so every event of
    /// the device that counts is stored too, and this new one is not one of
    /// them), or the revocation names no cut for this log. Such an event is
    /// kept only as structure (soft-failed): never shown, applied or built
    /// on, while a device that took it before it heard of the revocation
    /// can still pass on its own events written on top of it. When the cut
    /// has not arrived yet the event is taken, and checked again once it
    /// has ([`Members::not_genuine`]).
    pub fn revoked_out(&self, event: &Event, dag: &Dag) -> bool {
        let h = event.header();
        let Some(account) = self
            .accounts
            .iter()
            .find(|a| a.devices.contains_key(&h.author))
        else {
            return false;
        };
        match account.genuine(&h.author, &event.log_id()) {
            Genuine::BySeq => false,
            Genuine::Nothing => true,
            Genuine::UpTo(cut) => cut != event.id() && dag.node(&cut).is_some(),
        }
    }

    /// The stored events in `dag` that must not count (see
    /// [`Members::revoked_out`]) but are still accepted: a revoked device's
    /// events that are not its cut or an ancestor of it, once the cut is
    /// stored, and all its events in a log its revocation names no cut for.
    pub fn not_genuine(&self, dag: &Dag) -> Vec<crate::id::EventId> {
        let mut out = Vec::new();
        for account in &self.accounts {
            for (device, _) in account.devices.iter().filter(|(_, d)| d.revoked.is_some()) {
                if dag.latest_by(device).is_none() {
                    continue;
                }
                let keep = match account.genuine(device, &dag.log()) {
                    Genuine::BySeq => continue,
                    Genuine::Nothing => Default::default(),
                    Genuine::UpTo(cut) if dag.node(&cut).is_none() => continue,
                    Genuine::UpTo(cut) => dag.ancestors_by(&cut, device),
                };
                out.extend(dag.accepted_by(device).filter(|id| !keep.contains(id)));
            }
        }
        out
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

    fn soft_fail(&self, event: &Event, dag: &Dag) -> bool {
        self.revoked_out(event, dag)
    }
}
