//! Read markers and settings, shared by all own devices through the self
//! log. A read marker names an event; markers merge by taking the deepest
//! named event (ties by id), so the merged marker never moves back,
//! whatever the arrival order. A setting is a register per name: the entry
//! with the highest (depth, author, id) wins.

use super::contacts::self_kind;
use super::{Node, NodeError};
use crate::id::{AccountId, EventId, LogId};
use crate::log::Event;
use crate::wire::{Reader, Writer};

/// The setting: files up to this many bytes are fetched by every device.
pub const SETTING_AUTO_FETCH: &str = "files.auto_fetch_up_to";

impl Node {
    /// Marks a conversation's or a room's log read up to its newest event
    /// (on every own device, through the self log).
    pub async fn mark_read(&mut self, log: LogId, now: i64) -> Result<(), NodeError> {
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
                n.status == crate::log::Status::Accepted
                    && theirs.contains(&n.author)
                    && marker.is_none_or(|m| (n.depth, **id) > m)
            })
            .count()
    }

    /// Messages and files in `room` from other accounts that came after
    /// the read marker (what the room shows, in its order).
    pub fn room_unread(&self, room: LogId) -> usize {
        let (Some(log), Some(dag)) = (self.rooms.get(&room), self.logs.get(&room)) else {
            return 0;
        };
        let marker = self.read_markers.get(&room).copied();
        log.resolved()
            .shown
            .iter()
            .filter(|id| {
                dag.node(id).is_some_and(|n| {
                    log.account_of(&n.author) != Some(self.account)
                        && marker.is_none_or(|m| (n.depth, **id) > m)
                })
            })
            .count()
    }

    /// Whether notifications of `log` (a conversation or a room) are
    /// muted on every own device.
    pub fn muted(&self, log: LogId) -> bool {
        self.setting(&mute_setting(log)) == Some(&[1][..])
    }

    /// Mutes (or unmutes) the notifications of `log` on every own device.
    pub async fn set_muted(&mut self, log: LogId, on: bool, now: i64) -> Result<(), NodeError> {
        if self.muted(log) == on {
            return Ok(());
        }
        self.set_setting(&mute_setting(log), &[u8::from(on)], now)
            .await
    }
}

/// The setting that mutes one conversation's or room's notifications.
fn mute_setting(log: LogId) -> String {
    format!("mute.{log}")
}

impl Node {
    /// Sets a setting on every own device.
    pub async fn set_setting(
        &mut self,
        name: &str,
        value: &[u8],
        now: i64,
    ) -> Result<(), NodeError> {
        if name.is_empty() || name.len() > 64 || value.len() > 1024 {
            return Err(NodeError::Invalid("setting name or value too long".into()));
        }
        let mut w = Writer::new();
        w.str(name).bytes(value);
        self.append(
            LogId::self_log(self.account),
            self_kind::SETTING,
            w.finish(),
            now,
        )
        .await?;
        Ok(())
    }

    /// A setting's value, if set on any own device.
    pub fn setting(&self, name: &str) -> Option<&[u8]> {
        self.settings.get(name).map(|(_, v)| v.as_slice())
    }

    /// The size up to which files are fetched automatically, if set.
    pub fn auto_fetch_setting(&self) -> Option<u64> {
        let v: [u8; 8] = self.setting(SETTING_AUTO_FETCH)?.try_into().ok()?;
        Some(u64::from_be_bytes(v))
    }

    /// Records a stored self-log setting.
    pub(super) fn apply_setting_entry(&mut self, event: &Event) {
        let Some(body) = event.body() else { return };
        let mut r = Reader::new(body);
        let (Ok(name), Ok(value)) = (r.str(64, "name"), r.bytes(1024, "value")) else {
            return;
        };
        let h = event.header();
        let by = (h.depth, h.author, event.id());
        match self.settings.get(name) {
            Some((old, _)) if *old >= by => {}
            _ => {
                self.settings.insert(name.to_owned(), (by, value.to_vec()));
            }
        }
        self.apply_bridged_setting(name);
    }
}
