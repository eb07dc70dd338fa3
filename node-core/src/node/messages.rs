//! 1:1 messages: sending and the conversation as displayed.

use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::log::event::MAX_BODY;
use std::collections::HashSet;

/// Body kinds of conversation events.
pub mod conversation_kind {
    /// A text message (UTF-8).
    pub const MESSAGE: u16 = 1;
}

/// A message as `kith log --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MessageInfo {
    /// Event id.
    pub id: EventId,
    /// The author's account.
    pub author: AccountId,
    /// The author's device.
    pub device: DeviceId,
    /// The text (empty if deleted).
    pub text: String,
    /// Effective time, RFC 3339 UTC.
    pub time: String,
    /// Whether a device of every other member holds it.
    pub delivered: bool,
}

impl Node {
    /// Queues a text message to a contact; returns at once.
    pub async fn send_message(
        &mut self,
        to: AccountId,
        text: &str,
        now: i64,
    ) -> Result<EventId, NodeError> {
        if !self.contacts.contains_key(&to) {
            return Err(NodeError::Invalid(format!(
                "{} is not a contact",
                to.short(12)
            )));
        }
        if text.len() > MAX_BODY {
            return Err(NodeError::Invalid(format!(
                "message too long ({} bytes, limit {MAX_BODY})",
                text.len()
            )));
        }
        let log = LogId::conversation(self.account, to);
        self.append_for(
            log,
            conversation_kind::MESSAGE,
            text.as_bytes().to_vec(),
            now,
            &[to],
        )
        .await
    }

    /// Queues many text messages to a contact in one transaction.
    pub async fn send_messages(
        &mut self,
        to: AccountId,
        texts: &[String],
        now: i64,
    ) -> Result<Vec<EventId>, NodeError> {
        if !self.contacts.contains_key(&to) {
            return Err(NodeError::Invalid(format!(
                "{} is not a contact",
                to.short(12)
            )));
        }
        if texts.iter().any(|t| t.len() > MAX_BODY) {
            return Err(NodeError::Invalid(format!(
                "a message is longer than {MAX_BODY} bytes"
            )));
        }
        let log = LogId::conversation(self.account, to);
        let bodies = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
        self.append_many(log, conversation_kind::MESSAGE, bodies, now, &[to])
            .await
    }

    /// The conversation with a contact in display order (the last `limit`).
    pub async fn conversation(
        &self,
        with: AccountId,
        limit: Option<usize>,
    ) -> Result<Vec<MessageInfo>, NodeError> {
        let log = LogId::conversation(self.account, with);
        let dag = self.logs.get(&log).ok_or(NodeError::UnknownLog(log))?;
        let order = dag.display_order();
        let skip = limit.map_or(0, |l| order.len().saturating_sub(l));
        let ids = &order[skip..];
        let undelivered: HashSet<EventId> =
            self.store.undelivered(log).await?.into_iter().collect();
        let mut events = self.store.events_by_id(ids).await?;
        let pos: std::collections::HashMap<EventId, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        events.sort_by_key(|e| pos.get(&e.event.id()).copied().unwrap_or(usize::MAX));
        let own = self.account_state()?;
        Ok(events
            .into_iter()
            // Deleted messages keep only their header: not shown.
            .filter(|e| {
                e.event.header().kind == conversation_kind::MESSAGE && e.event.body().is_some()
            })
            .map(|e| {
                let h = e.event.header();
                let author = if own.devices.contains_key(&h.author) {
                    self.account
                } else {
                    with
                };
                MessageInfo {
                    id: e.event.id(),
                    author,
                    device: h.author,
                    text: e
                        .event
                        .body()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                    time: crate::wire::rfc3339(e.info.effective_time),
                    delivered: !undelivered.contains(&e.event.id()),
                }
            })
            .collect())
    }

    /// Events waiting for delivery.
    pub async fn outbox_len(&self) -> Result<u64, NodeError> {
        Ok(self.store.outbox_len().await?.max(0) as u64)
    }
}
