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
        cuts: false,
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

// ---- nodes over real stores ----

#[allow(unused_imports)]
pub use node_helpers::*;

mod node_helpers {
    use node_core::LogId;
    use node_core::crypto::SigningKey;
    use node_core::identity::entry::sign_join;
    use node_core::node::{Ingested, Node, NodeError};
    use node_core::store::Profile;
    use node_core::sync::join::Invite;

    pub const NOW: i64 = 1_800_000_000_000;

    pub async fn new_node(dir: &tempfile::TempDir, name: &str) -> Node {
        let (node, _) = Node::create(Profile::new(dir.path().join(name)), name, None, false, NOW)
            .await
            .unwrap();
        node
    }

    /// Joins a new device to `inviter`'s account through the real code path.
    pub async fn join(inviter: &mut Node, dir: &tempfile::TempDir, name: &str) -> Node {
        let code = inviter.invite(vec![], NOW).unwrap();
        let invite = Invite::parse(&code).unwrap();
        let key = SigningKey::generate();
        let device = node_core::DeviceId::from(key.verifying_key());
        let proof = sign_join(&key, invite.account, name);
        let snapshot = inviter
            .accept_join(device, &invite.secret, name, proof, NOW)
            .await
            .unwrap();
        Node::create_joined(
            Profile::new(dir.path().join(name)),
            name,
            None,
            key,
            &invite,
            snapshot,
            NOW,
        )
        .await
        .unwrap()
    }

    /// A device added to `node`'s account by hand at `now` (its key stays
    /// with the test: it signs events as that device, or as its thief).
    pub async fn hand_joined_device(node: &mut Node, now: i64) -> super::Dev {
        use node_core::identity::AccountEntry;
        use node_core::identity::entry::kind;
        let dev = super::Dev::new();
        let account = node.account();
        let entry = AccountEntry::AddDevice {
            device: dev.id(),
            name: "phone".into(),
            join: sign_join(&dev.key, account, "phone"),
        };
        node.append(
            LogId::account(account),
            kind::ADD_DEVICE,
            entry.encode(),
            now,
        )
        .await
        .unwrap();
        dev
    }

    /// Adds each node as the other's contact, and gives each the other's
    /// account log (it must hold it to accept their conversation events).
    #[allow(dead_code)]
    pub async fn befriend_synced(a: &mut Node, b: &mut Node) {
        let (ca, cb) = (a.card(vec![], NOW).unwrap(), b.card(vec![], NOW).unwrap());
        a.add_contact(&cb, None, NOW).await.unwrap();
        b.add_contact(&ca, None, NOW).await.unwrap();
        let (la, lb) = (LogId::account(a.account()), LogId::account(b.account()));
        deliver(b, la, events_of(a, la).await, 1).await;
        deliver(a, lb, events_of(b, lb).await, 2).await;
    }

    /// Every stored event of `log` at `node`, in wire form.
    pub async fn events_of(node: &Node, log: LogId) -> Vec<Vec<u8>> {
        let ids: Vec<_> = node.log(&log).unwrap().ids().copied().collect();
        node.serve(log, &ids).await.unwrap()
    }

    pub fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Delivers `events` to `node` one at a time in the order `seed` picks.
    pub async fn deliver(node: &mut Node, log: LogId, mut events: Vec<Vec<u8>>, mut seed: u64) {
        for i in (1..events.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            events.swap(i, (seed >> 33) as usize % (i + 1));
        }
        for e in events {
            match node
                .ingest_batch(log, &[e], NOW, 1, None)
                .await
                .unwrap()
                .remove(0)
            {
                Ok(Ingested::Stored(_) | Ingested::Held(_)) => {}
                Err(NodeError::Rejected(node_core::log::Rejection::Duplicate(_))) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}
