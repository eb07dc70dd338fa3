//! Cuts: after a device is revoked, which of its events a log still takes
//! (`identity::members`). This device writes a cut for a revoked own
//! device in every self, conversation and room log: before revoking it, and
//! later in any log it writes in or receives from that has none yet (a log
//! that began after the revocation, or one a device revoked before cuts
//! existed wrote in).

use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, LogId};
use crate::identity::{CUT, Cut, encode_cut};
use crate::log::Event;
use crate::rooms::Membership;
use std::collections::HashSet;

impl Node {
    /// Remembers the cuts among `events` of `log`.
    pub(super) fn index_cuts<'e>(&mut self, log: LogId, events: impl Iterator<Item = &'e Event>) {
        for cut in events.filter_map(Cut::of) {
            self.cuts.entry(log).or_default().insert(cut);
        }
    }

    /// The cuts stored in `log`.
    pub(super) fn cuts_in(&self, log: &LogId) -> impl Iterator<Item = &Cut> {
        self.cuts.get(log).into_iter().flatten()
    }

    /// Writes a cut for `device` in every log this device can write in
    /// (before revoking it, while it is still active).
    pub(super) async fn write_cuts_for(
        &mut self,
        device: DeviceId,
        now: i64,
    ) -> Result<(), NodeError> {
        let logs: Vec<LogId> = self
            .logs
            .keys()
            .filter(|l| self.account_of_log(**l).is_none())
            .copied()
            .collect();
        for log in logs {
            self.write_cut(log, device, now).await?;
        }
        Ok(())
    }

    /// Writes a cut in `log` for every revoked device of this account that
    /// has none there yet from an active own device.
    pub(super) async fn ensure_cuts(&mut self, log: LogId, now: i64) -> Result<(), NodeError> {
        if self.account_of_log(log).is_some() || !self.logs.contains_key(&log) {
            return Ok(());
        }
        let Ok(own) = self.account_state() else {
            return Ok(());
        };
        if !own.is_active(&self.device()) {
            return Ok(());
        }
        let missing: Vec<DeviceId> = {
            let have: HashSet<DeviceId> = self
                .cuts_in(&log)
                .filter(|c| own.is_active(&c.author))
                .map(|c| c.device)
                .collect();
            own.devices
                .iter()
                .filter(|(d, r)| r.revoked.is_some() && !have.contains(*d))
                .map(|(d, _)| *d)
                .collect()
        };
        for device in missing {
            self.write_cut(log, device, now).await?;
        }
        Ok(())
    }

    /// Writes one cut for `device` in `log`, queued for the log's other
    /// member accounts; `false` if this device cannot write there (a room
    /// this account was never in, or whose history has not arrived).
    async fn write_cut(
        &mut self,
        log: LogId,
        device: DeviceId,
        now: i64,
    ) -> Result<bool, NodeError> {
        let recipients: Vec<AccountId> = if log == LogId::self_log(self.account) {
            vec![]
        } else if let Some(contact) = self.contact_of_conversation(log) {
            vec![contact]
        } else if let Some(state) = self.room_state(&log) {
            if state.creator.is_none()
                || !matches!(
                    state.members.get(&self.account),
                    Some(Membership::Join | Membership::Leave)
                )
            {
                return Ok(false);
            }
            state
                .members
                .iter()
                .filter(|(a, m)| {
                    **a != self.account && matches!(m, Membership::Join | Membership::Invite)
                })
                .map(|(a, _)| *a)
                .collect()
        } else {
            return Ok(false);
        };
        self.append_many_inner(log, CUT, vec![encode_cut(&device)], now, &recipients)
            .await?;
        Ok(true)
    }
}
