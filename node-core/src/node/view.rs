//! The node as the sync session sees it, and the store work a sync driver
//! asks for.

use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::sync::View;

impl View for Node {
    // Who may sync what is read from the sharing snapshot, rebuilt only
    // when contacts, followed account logs or rooms changed.
    fn shared_logs(&self, account: AccountId, peer: DeviceId) -> Vec<LogId> {
        self.sharing().shared_logs(account, peer)
    }

    fn entitled(&self, account: AccountId, peer: DeviceId, log: &LogId) -> bool {
        self.sharing().entitled(account, peer, log)
    }

    fn is_shared_once(&self, log: &LogId) -> bool {
        self.rooms.contains_key(log)
    }

    fn is_account_log(&self, log: &LogId) -> bool {
        self.account_of_log(*log).is_some()
    }

    fn device_active(&self, account: AccountId, peer: DeviceId) -> bool {
        self.sharing().device_active(account, peer)
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
        // Another account's account log holds no event of this device's
        // (only its own writes wait for receipts): no query for it, as a
        // round of a room's members' logs asks for each.
        if self.account_of_log(log).is_some_and(|a| a != self.account) {
            return Ok(vec![]);
        }
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
