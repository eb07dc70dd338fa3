//! Files in conversations and rooms: offering a prepared file, recording
//! offers that arrive, listing, and finding an offer by id.

use super::messages::conversation_kind;
use super::rooms::Target;
use super::{Node, NodeError};
use crate::files::{FileOffer, FileStore, Prepared};
use crate::id::{EventId, LogId};
use crate::log::LogKind;
use crate::rooms::{RoomContent, kind as room_kind};
use crate::wire::to_base32;

/// A file as `kith file list --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FileInfo {
    /// File id (the offer's event id).
    pub id: EventId,
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Content hash (base32).
    pub hash: String,
    /// `offered`, `partial` or `complete`.
    pub state: String,
    /// Chunks in all.
    pub chunks: u32,
    /// Chunks held.
    pub have: u32,
    /// Why the last chunk could not be written here (e.g. the disk is
    /// full); the transfer goes on once it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Node {
    /// The profile's file content store (a handle to the one instance).
    pub fn file_store(&self) -> FileStore {
        self.files.clone()
    }

    /// Offers a prepared file to a contact or a room; returns the file id.
    pub async fn offer_file(
        &mut self,
        to: Target,
        prepared: &Prepared,
        now: i64,
    ) -> Result<EventId, NodeError> {
        // Our own offers are not recorded as wanted when stored (see
        // `register_offers`); the content is recorded as held right after.
        let (id, log) = match to {
            Target::Contact(to) => {
                self.require_contact(to)?;
                let log = LogId::conversation(self.account, to);
                let id = self
                    .append_for(
                        log,
                        conversation_kind::FILE_OFFER,
                        prepared.offer.encode(),
                        now,
                        &[to],
                    )
                    .await?;
                (id, log)
            }
            Target::Room(room) => {
                let id = self
                    .room_write(room, RoomContent::File(prepared.offer.clone()), now)
                    .await?;
                (id, room)
            }
            Target::Bridged(_) => {
                return Err(NodeError::Invalid(
                    "files do not go through bridges (yet)".into(),
                ));
            }
        };
        self.file_store()
            .register_prepared(id, log, prepared)
            .await
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        Ok(id)
    }

    /// Whether the message `id` of `log` was deleted on own devices.
    pub fn is_deleted(&self, log: LogId, id: &EventId) -> bool {
        self.deletions.get(&log).is_some_and(|d| d.contains(id))
    }

    /// Files this device should fetch: incomplete, not deleted, and at most
    /// `limit` bytes or asked for (`wanted`).
    pub async fn files_to_fetch(
        &self,
        limit: u64,
        wanted: &std::collections::HashSet<EventId>,
    ) -> Result<Vec<(EventId, LogId, FileOffer)>, NodeError> {
        let mut out = Vec::new();
        for r in self.store.files(None).await? {
            if r.complete || self.is_deleted(r.log, &r.id) {
                continue;
            }
            let Some((log, offer)) = self.file_offer(r.id).await? else {
                continue;
            };
            if offer.size > limit && !wanted.contains(&r.id) {
                continue;
            }
            out.push((r.id, log, offer));
        }
        Ok(out)
    }

    /// The ids of every file this device knows of (offers in any log).
    pub async fn file_ids(&self) -> Result<Vec<EventId>, NodeError> {
        Ok(self
            .store
            .files(None)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    /// A file's offer and its log.
    pub async fn file_offer(&self, id: EventId) -> Result<Option<(LogId, FileOffer)>, NodeError> {
        let events = self.store.events_by_id(&[id]).await?;
        Ok(events.into_iter().find_map(|e| {
            let h = e.event.header();
            if !is_file_offer(h.log_kind, h.kind) {
                return None;
            }
            let offer = FileOffer::decode(e.event.body()?).ok()?;
            Some((e.event.log_id(), offer))
        }))
    }

    /// Files offered in a conversation or room.
    pub async fn files(&self, log: LogId) -> Result<Vec<FileInfo>, NodeError> {
        let rows = self.store.files(Some(log)).await?;
        let mut out = Vec::new();
        for r in rows {
            let Some((_, offer)) = self.file_offer(r.id).await? else {
                continue;
            };
            let have = crate::files::held_chunks(&r.have, r.chunks);
            let state = if r.complete {
                "complete"
            } else if have > 0 {
                "partial"
            } else {
                "offered"
            };
            out.push(FileInfo {
                id: r.id,
                name: r.name,
                size: r.size,
                hash: to_base32(&offer.hash),
                state: state.into(),
                chunks: r.chunks,
                have,
                error: self.files.last_error(r.id),
            });
        }
        Ok(out)
    }

    /// Records file offers among newly stored events of `log` (other
    /// devices' offers: content to fetch).
    pub(super) async fn register_offers(
        &self,
        log: LogId,
        rows: &[crate::store::StoredEvent],
    ) -> Result<(), NodeError> {
        if self.contact_of_conversation(log).is_none() && !self.is_room(&log) {
            return Ok(());
        }
        let me = self.device();
        for r in rows {
            let h = r.event.header();
            if !is_file_offer(h.log_kind, h.kind)
                || h.author == me
                || r.info.status != crate::log::Status::Accepted
            {
                continue;
            }
            let Some(Ok(offer)) = r.event.body().map(FileOffer::decode) else {
                continue;
            };
            self.file_store()
                .register(r.event.id(), log, &offer)
                .await
                .map_err(|e| NodeError::Invalid(e.to_string()))?;
        }
        Ok(())
    }
}

/// Whether an event of `kind` in a log of `log_kind` is a file offer.
fn is_file_offer(log_kind: LogKind, kind: u16) -> bool {
    match log_kind {
        LogKind::Conversation => kind == conversation_kind::FILE_OFFER,
        LogKind::Room => kind == room_kind::FILE,
        _ => false,
    }
}
