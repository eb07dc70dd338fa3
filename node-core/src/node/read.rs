//! Read markers: how far the user has read each conversation, shared by
//! all own devices through the self log. A marker names an event; markers
//! merge by taking the deepest named event (ties by id), so the merged
//! marker never moves back, whatever the arrival order.

use super::contacts::self_kind;
use super::{Node, NodeError};
use crate::id::{AccountId, EventId, LogId};
use crate::log::Event;
use crate::wire::{Reader, Writer};

impl Node {
    /// Marks the conversation with `contact` read up to its newest event.
    pub async fn mark_read(&mut self, contact: AccountId, now: i64) -> Result<(), NodeError> {
        let log = LogId::conversation(self.account, contact);
        let dag = self.logs.get(&log).ok_or(NodeError::UnknownLog(log))?;
        let Some((head, depth)) = dag.heads().max_by_key(|(id, d)| (*d, *id)) else {
            return Ok(());
        };
        if self
            .read_markers
            .get(&log)
            .is_some_and(|m| *m >= (depth, head))
        {
            return Ok(());
        }
        let mut w = Writer::new();
        w.fixed(log.as_bytes()).fixed(head.as_bytes()).u64(depth);
        self.append(
            LogId::self_log(self.account),
            self_kind::READ,
            w.finish(),
            now,
        )
        .await?;
        Ok(())
    }

    /// Records a stored self-log read marker.
    pub(super) fn apply_read_entry(&mut self, event: &Event) {
        let Some(body) = event.body() else { return };
        let mut r = Reader::new(body);
        let (Ok(log), Ok(id), Ok(depth)) = (r.array("log"), r.array("event"), r.u64("depth"))
        else {
            return;
        };
        let marker = (depth, EventId::from_bytes(id));
        let slot = self
            .read_markers
            .entry(LogId::from_bytes(log))
            .or_insert(marker);
        if marker > *slot {
            *slot = marker;
        }
    }

    /// Messages from `contact` that came after the read marker.
    pub fn unread(&self, contact: AccountId) -> usize {
        let log = LogId::conversation(self.account, contact);
        let Some(dag) = self.logs.get(&log) else {
            return 0;
        };
        let marker = self.read_markers.get(&log).copied();
        let theirs = self.contact_devices(&contact);
        dag.ids()
            .filter_map(|id| dag.node(id).map(|n| (id, n)))
            .filter(|(id, n)| {
                theirs.contains(&n.author) && marker.is_none_or(|m| (n.depth, **id) > m)
            })
            .count()
    }
}
