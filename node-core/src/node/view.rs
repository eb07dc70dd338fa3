//! The node as the sync session sees it, and the store work a sync driver
//! asks for.

use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::sync::View;

impl View for Node {
    fn shared_logs(&self, account: AccountId, peer: DeviceId) -> Vec<LogId> {
        if !self.device_active(account, peer) {
            return self.proof_logs(account);
        }
        let mut logs = Vec::new();
        let mut third: std::collections::BTreeSet<AccountId> = Default::default();
        let mut rooms = Vec::new();
        if account == self.account {
            logs.extend([LogId::account(self.account), LogId::self_log(self.account)]);
            for c in self.contacts.keys() {
                logs.push(LogId::account(*c));
                logs.push(LogId::conversation(self.account, *c));
            }
            for room in self.rooms.keys() {
                third.extend(self.room_accounts(room));
                rooms.push(*room);
            }
        } else {
            if self.contacts.contains_key(&account) {
                logs.extend([
                    LogId::account(self.account),
                    LogId::account(account),
                    LogId::conversation(self.account, account),
                ]);
            }
            for room in self.rooms.keys() {
                if self.room_shared_with(room, account) {
                    third.extend(self.room_accounts(room));
                    rooms.push(*room);
                }
            }
            if logs.is_empty() && !rooms.is_empty() {
                logs.extend([LogId::account(self.account), LogId::account(account)]);
            }
        }
        // Account logs before the logs whose authors they prove.
        let listed: std::collections::HashSet<LogId> = logs.iter().copied().collect();
        let mut ordered: Vec<LogId> = third
            .into_iter()
            .rev()
            .map(LogId::account)
            .filter(|l| !listed.contains(l) && self.logs.contains_key(l))
            .collect();
        ordered.append(&mut logs);
        rooms.sort();
        ordered.extend(rooms);
        ordered
    }

    /// Account logs go to any device of a contact or room member (they
    /// prove who is active); every other shared log only to active
    /// devices, checked against the current account log at every message.
    fn entitled(&self, account: AccountId, peer: DeviceId, log: &LogId) -> bool {
        let is_account_log = self.is_account_log(log);
        let shared = if self.rooms.contains_key(log) {
            self.room_shared_with(log, account)
        } else {
            self.shared_logs(account, peer).contains(log)
        };
        shared && (is_account_log || self.device_active(account, peer))
    }

    fn is_shared_once(&self, log: &LogId) -> bool {
        self.rooms.contains_key(log)
    }

    fn is_account_log(&self, log: &LogId) -> bool {
        self.account_of_log(*log).is_some()
    }

    fn device_active(&self, account: AccountId, peer: DeviceId) -> bool {
        self.account_log_state(account)
            .is_ok_and(|s| s.is_active(&peer))
    }

    fn heads(&self, log: &LogId) -> Vec<EventId> {
        // The DAG keeps its heads sorted.
        self.logs
            .get(log)
            .map(|dag| dag.heads().map(|(id, _)| id).collect())
            .unwrap_or_default()
    }

    fn not_below(&self, log: &LogId, known: &[EventId]) -> Vec<EventId> {
        self.logs
            .get(log)
            .map(|dag| dag.not_below(known))
            .unwrap_or_default()
    }

    fn has(&self, log: &LogId, id: &EventId) -> bool {
        self.logs.get(log).is_some_and(|dag| dag.node(id).is_some())
    }

    fn items(&self, log: &LogId) -> Vec<(u64, EventId)> {
        match self.logs.get(log) {
            Some(dag) => dag
                .ids()
                .filter_map(|id| dag.node(id).map(|n| (n.depth, *id)))
                .collect(),
            None => vec![],
        }
    }
}

impl Node {
    /// What a device that is not (yet) listed by the account log we hold
    /// of the account it claims may sync: only the logs that can prove it,
    /// ours and its account's, and only if that account is one we share
    /// something with. Nothing else (no contact list, no third-party
    /// account, no conversation, no room) until it is proven.
    fn proof_logs(&self, account: AccountId) -> Vec<LogId> {
        if account == self.account {
            return vec![LogId::account(self.account)];
        }
        let known = self.contacts.contains_key(&account)
            || self.rooms.keys().any(|r| self.room_shared_with(r, account));
        if known && self.accounts.contains_key(&account) {
            vec![LogId::account(self.account), LogId::account(account)]
        } else {
            vec![]
        }
    }

    /// Events of `log` by id, in wire form, parents first (ids of other
    /// logs are ignored: a peer only gets what it asked for in a log it is
    /// entitled to).
    pub async fn serve(&self, log: LogId, ids: &[EventId]) -> Result<Vec<Vec<u8>>, NodeError> {
        serve_from(&self.store, log, ids).await
    }

    /// Of the events of `log` waiting in the outbox, those `heads` cover
    /// (the heads and everything below them). Unknown heads cover nothing.
    pub async fn outbox_below(
        &self,
        log: LogId,
        heads: &[EventId],
    ) -> Result<Vec<EventId>, NodeError> {
        let waiting = self.store.undelivered(log).await?;
        let Some(dag) = self.logs.get(&log) else {
            return Ok(vec![]);
        };
        if waiting.is_empty() {
            return Ok(vec![]);
        }
        let above: std::collections::HashSet<EventId> = dag.not_below(heads).into_iter().collect();
        Ok(waiting
            .into_iter()
            .filter(|id| dag.node(id).is_some() && !above.contains(id))
            .collect())
    }

    /// A handle that records deliveries without holding the node.
    pub fn receipts(&self) -> Receipts {
        Receipts {
            store: self.store.clone(),
        }
    }
}

/// Records which events other accounts hold (they leave the outbox). Used
/// without the node, so receipts never wait behind other node work.
#[derive(Debug, Clone)]
pub struct Receipts {
    store: crate::store::Store,
}

impl Receipts {
    /// The account holds these events.
    pub async fn delivered(&self, account: AccountId, ids: &[EventId]) -> Result<(), NodeError> {
        Ok(self.store.delivered(account, ids).await?)
    }
}

/// Reads stored events without the node (a link serving a peer's request
/// never holds up other node work): [`Node::event_reader`].
#[derive(Debug, Clone)]
pub struct EventReader(crate::store::Store);

impl EventReader {
    /// [`Node::serve`], without the node.
    pub async fn serve(&self, log: LogId, ids: &[EventId]) -> Result<Vec<Vec<u8>>, NodeError> {
        serve_from(&self.0, log, ids).await
    }
}

impl Node {
    /// A handle that reads stored events without the node.
    pub fn event_reader(&self) -> EventReader {
        EventReader(self.store.clone())
    }

    /// How many events are stored (all logs).
    pub async fn event_count(&self) -> Result<u64, NodeError> {
        Ok(u64::try_from(self.store.event_count().await?).unwrap_or(0))
    }

    /// How many held events are kept at rest (all logs).
    pub async fn held_count(&self) -> Result<u64, NodeError> {
        Ok(self.store.pending_rows().await? as u64)
    }
}

async fn serve_from(
    store: &crate::store::Store,
    log: LogId,
    ids: &[EventId],
) -> Result<Vec<Vec<u8>>, NodeError> {
    let events = store.events_by_id(ids).await?;
    Ok(events
        .into_iter()
        .filter(|e| e.event.log_id() == log)
        .map(|e| e.event.encode())
        .collect())
}
