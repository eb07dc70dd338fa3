//! Builders shared by the node-core integration tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use node_core::crypto::SigningKey;
use node_core::identity::entry::sign_join;
use node_core::identity::{AccountEntry, AccountLog};
use node_core::log::{Dag, DagConfig, Draft, Event, LogKind, Offer, Rejection};
use node_core::{AccountId, DeviceId, EventId, LogId};

/// A device that signs events, tracking its sequence number.
pub struct Dev {
    pub key: SigningKey,
    pub seq: u64,
    pub last: std::collections::HashMap<LogId, EventId>,
}

impl Dev {
    pub fn new() -> Self {
        Self {
            key: SigningKey::generate(),
            seq: 0,
            last: Default::default(),
        }
    }
    pub fn id(&self) -> DeviceId {
        self.key.verifying_key().into()
    }
    /// Signs an event on `parents` in `log` (None: a genesis).
    pub fn event(
        &mut self,
        log: Option<LogId>,
        kind: LogKind,
        parents: &[&Event],
        body_kind: u16,
        body: Vec<u8>,
        time: i64,
    ) -> Event {
        self.seq += 1;
        let prev = log.and_then(|l| self.last.get(&l).copied());
        let e = Event::sign(
            &self.key,
            Draft {
                log,
                log_kind: kind,
                seq: self.seq,
                prev,
                parents: parents.iter().map(|p| (p.id(), p.header().depth)).collect(),
                time,
                kind: body_kind,
                body,
            },
        );
        self.last.insert(e.log_id(), e.id());
        e
    }
    /// An account-log entry.
    pub fn entry(&mut self, account: AccountId, parents: &[&Event], entry: &AccountEntry) -> Event {
        self.event(
            Some(LogId::account(account)),
            LogKind::Account,
            parents,
            entry.kind(),
            entry.encode(),
            1000,
        )
    }
}

/// A genesis by `dev` (optionally naming a recovery key).
pub fn genesis(dev: &mut Dev, recovery: Option<&Dev>) -> (AccountId, Event) {
    let entry = AccountEntry::Genesis {
        account_name: "alice".into(),
        device_name: "laptop".into(),
        recovery: recovery.map(|r| r.key.verifying_key()),
    };
    let e = dev.event(
        None,
        LogKind::Account,
        &[],
        entry.kind(),
        entry.encode(),
        1000,
    );
    dev.last.insert(e.log_id(), e.id());
    (AccountId::from_bytes(*e.id().as_bytes()), e)
}

/// An add-device entry by `by` for `new`, with both signatures.
pub fn add_device(by: &mut Dev, account: AccountId, parents: &[&Event], new: &Dev) -> Event {
    let entry = AccountEntry::AddDevice {
        device: new.id(),
        name: "phone".into(),
        join: sign_join(&new.key, account, "phone"),
    };
    by.entry(account, parents, &entry)
}

/// A revocation of `target` by `by`.
pub fn revoke(
    by: &mut Dev,
    account: AccountId,
    parents: &[&Event],
    target: &Dev,
    cutoff_seq: u64,
) -> Event {
    let entry = AccountEntry::RevokeDevice {
        device: target.id(),
        cutoff_seq,
    };
    by.entry(account, parents, &entry)
}

/// An account log with its DAG, fed through the real pipeline.
pub struct Replica {
    pub dag: Dag,
    pub log: AccountLog,
}

impl Replica {
    pub fn new(account: AccountId) -> Self {
        Self {
            dag: Dag::new(
                LogId::account(account),
                LogKind::Account,
                DagConfig::default(),
            ),
            log: AccountLog::new(account),
        }
    }
    pub fn offer(&mut self, e: &Event) -> Result<(), Rejection> {
        self.dag
            .offer(e.clone(), 5000, &mut self.log)
            .map(|_: Offer| ())
    }
    pub fn offer_all(&mut self, events: &[&Event]) {
        for e in events {
            let _ = self.offer(e);
        }
    }
}
