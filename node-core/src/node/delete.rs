//! Deleting messages on all own devices: a self-log entry names the
//! events (or a whole log up to its heads at the time); every own device
//! drops those bodies, keeps the headers as tombstones so the DAG stays
//! whole, and refuses the bodies if a peer offers them again.

use super::contacts::self_kind;
use super::{Node, NodeError};
use crate::id::{EventId, LogId};
use crate::log::Event;
use crate::store::StoredEvent;
use crate::wire::{Reader, WireError, Writer};
use std::collections::{BTreeSet, HashSet};

/// Most event ids in one delete entry (more are split over several).
const MAX_DELETE_IDS: usize = 1024;

/// What has been deleted in one log.
#[derive(Debug, Default)]
pub struct Deletions {
    /// Events whose bodies are gone (and refused).
    ids: HashSet<EventId>,
    /// Whole-log deletions: heads whose ancestry is deleted, not yet all
    /// applied (a head not held yet is applied when it arrives).
    heads: BTreeSet<EventId>,
    /// Heads already applied.
    applied: BTreeSet<EventId>,
    /// Something changed since the store was last brought in line.
    dirty: bool,
}

impl Deletions {
    /// Whether the body of `id` is deleted.
    pub fn contains(&self, id: &EventId) -> bool {
        self.ids.contains(id)
    }
}

/// A delete entry: either the listed events, or the log up to these heads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeleteEntry {
    log: LogId,
    whole: bool,
    ids: Vec<EventId>,
}

impl DeleteEntry {
    /// Entries naming these events of `log` (as many as the bound needs).
    fn for_events(log: LogId, ids: &[EventId]) -> Vec<Self> {
        ids.chunks(MAX_DELETE_IDS)
            .map(|c| DeleteEntry {
                log,
                whole: false,
                ids: c.to_vec(),
            })
            .collect()
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(self.log.as_bytes())
            .u8(u8::from(self.whole))
            .u16(self.ids.len() as u16);
        for id in &self.ids {
            w.fixed(id.as_bytes());
        }
        w.finish()
    }

    fn decode(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let log = LogId::from_bytes(r.array("log")?);
        let whole = match r.u8("mode")? {
            0 => false,
            1 => true,
            _ => {
                return Err(WireError::Invalid {
                    what: "delete mode",
                    why: "not 0 or 1",
                });
            }
        };
        let n = r.count(MAX_DELETE_IDS, "ids")?;
        let ids = (0..n)
            .map(|_| Ok(EventId::from_bytes(r.array("id")?)))
            .collect::<Result<_, WireError>>()?;
        r.finish("delete entry")?;
        Ok(Self { log, whole, ids })
    }
}

impl Node {
    /// Deletes messages of `log` on every own device: the events named by
    /// `messages` (ids or unique prefixes of at least four characters), or
    /// the whole log as it is now if `messages` is empty.
    pub async fn delete(
        &mut self,
        log: LogId,
        messages: &[String],
        now: i64,
    ) -> Result<usize, NodeError> {
        let dag = self.logs.get(&log).ok_or(NodeError::UnknownLog(log))?;
        // A room's state events keep their bodies (the room could not be
        // read without them): deleting a room deletes its messages.
        let room_messages: Option<HashSet<EventId>> = self
            .is_room(&log)
            .then(|| self.room_message_ids(&log).into_iter().collect());
        let entries: Vec<DeleteEntry> = if let Some(all) = room_messages.as_ref()
            && messages.is_empty()
        {
            let mut ids: Vec<EventId> = all.iter().copied().collect();
            ids.sort();
            DeleteEntry::for_events(log, &ids)
        } else if messages.is_empty() {
            let heads: Vec<EventId> = dag.heads().map(|(id, _)| id).collect();
            if heads.is_empty() {
                return Ok(0);
            }
            vec![DeleteEntry {
                log,
                whole: true,
                ids: heads,
            }]
        } else {
            let mut ids = Vec::new();
            for m in messages {
                let m = m.trim().to_lowercase();
                let found: Vec<EventId> = dag
                    .ids()
                    .filter(|id| id.matches_prefix(&m))
                    .copied()
                    .collect();
                match found.as_slice() {
                    [one] if room_messages.as_ref().is_some_and(|r| !r.contains(one)) => {
                        return Err(NodeError::Invalid(format!(
                            "{m:?} is not a message of this room"
                        )));
                    }
                    [one] => ids.push(*one),
                    [] => {
                        return Err(NodeError::Invalid(format!(
                            "no message {m:?} in this conversation"
                        )));
                    }
                    _ => {
                        return Err(NodeError::Invalid(format!(
                            "{m:?} matches several messages; give more of the id"
                        )));
                    }
                }
            }
            ids.sort();
            ids.dedup();
            DeleteEntry::for_events(log, &ids)
        };
        let count = if entries.iter().any(|e| e.whole) {
            dag.len()
        } else {
            entries.iter().map(|e| e.ids.len()).sum()
        };
        let bodies = entries.iter().map(DeleteEntry::encode).collect();
        self.append_many(
            LogId::self_log(self.account),
            self_kind::DELETE,
            bodies,
            now,
            &[],
        )
        .await?;
        Ok(count)
    }

    /// Records a stored self-log delete entry.
    pub(super) fn apply_delete_entry(&mut self, event: &Event) {
        let Some(Ok(entry)) = event.body().map(DeleteEntry::decode) else {
            return;
        };
        let d = self.deletions.entry(entry.log).or_default();
        if entry.whole {
            d.heads.extend(entry.ids);
        } else {
            d.ids.extend(entry.ids);
        }
        d.dirty = true;
    }

    /// Drops the bodies of deleted events from rows about to be stored.
    pub(super) fn strip_deleted(&self, log: LogId, rows: &mut [StoredEvent]) {
        let Some(d) = self.deletions.get(&log) else {
            return;
        };
        for r in rows.iter_mut() {
            if r.event.body().is_some() && d.contains(&r.event.id()) {
                r.event = r.event.clone().without_body();
            }
        }
    }

    /// Marks `log` for a check after new events: a whole-log deletion may
    /// name a head that has just arrived.
    pub(super) fn note_new_events(&mut self, log: LogId) {
        if let Some(d) = self.deletions.get_mut(&log)
            && d.heads.len() > d.applied.len()
        {
            d.dirty = true;
        }
    }

    /// Brings the store in line with the deletions: resolves whole-log
    /// deletions whose heads are now held, and removes deleted bodies.
    pub(super) async fn enforce_deletions(&mut self) -> Result<(), NodeError> {
        let dirty: Vec<LogId> = self
            .deletions
            .iter()
            .filter(|(_, d)| d.dirty)
            .map(|(l, _)| *l)
            .collect();
        for log in dirty {
            let Some(dag) = self.logs.get(&log) else {
                continue;
            };
            let Some(d) = self.deletions.get_mut(&log) else {
                continue;
            };
            let ready: Vec<EventId> = d
                .heads
                .iter()
                .filter(|h| !d.applied.contains(*h) && dag.node(h).is_some())
                .copied()
                .collect();
            if !ready.is_empty() {
                let above: HashSet<EventId> = dag.not_below(&ready).into_iter().collect();
                d.ids
                    .extend(dag.ids().filter(|id| !above.contains(*id)).copied());
                d.applied.extend(ready);
            }
            d.dirty = false;
            let ids: Vec<EventId> = d.ids.iter().copied().collect();
            self.store.drop_bodies(&ids).await?;
            // Deleted file messages take their content with them.
            let files = self.file_store();
            for f in self.store.files(Some(log)).await? {
                if self.is_deleted(log, &f.id) {
                    files
                        .remove_content(f.id)
                        .await
                        .map_err(|e| NodeError::Invalid(e.to_string()))?;
                }
            }
        }
        Ok(())
    }
}
