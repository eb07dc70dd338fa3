//! The device's side of push wake-ups.
//!
//! - **Setting** (store metadata, this device only: every device has its own
//!   platform token): the relay URL, the platform target as the relay's
//!   registration JSON expects it, and the handle once registered.
//! - **Grants** (1:1 conversation, kind [`conversation_kind::PUSH_GRANT`],
//!   written by the device itself): the relay URL and the handle, so the
//!   contact's devices can wake this one. An empty URL withdraws. Per
//!   author device, the newest (by depth, author, id) counts.
//!
//! Not here: HTTP (the daemon's `push.rs`) and the relay protocol
//! (`crate::push`).

use std::collections::HashMap;

use super::contacts::RegisterKey;
use super::messages::conversation_kind;
use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, LogId};
use crate::log::Event;
use crate::push::PushHandle;
use crate::wire::{Reader, Writer};

/// Store metadata: this device's push setting.
const META_PUSH: &str = "push";
/// Longest relay URL.
pub const MAX_URL: usize = 512;
/// Longest platform target (JSON).
const MAX_TARGET: usize = 8192;

/// This device's registration with a push relay.
#[derive(Clone, PartialEq, Eq)]
pub struct PushSetting {
    /// The relay.
    pub url: String,
    /// The registration body's platform part (JSON object).
    pub target: String,
    /// The handle the relay gave, once registered.
    pub handle: Option<PushHandle>,
}

impl std::fmt::Debug for PushSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The target holds the platform token: not for logs.
        f.debug_struct("PushSetting")
            .field("url", &self.url)
            .field("registered", &self.handle.is_some())
            .finish_non_exhaustive()
    }
}

/// Where a device can be woken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushGrant {
    /// The relay.
    pub url: String,
    /// The device's handle there.
    pub handle: PushHandle,
}

/// Push grants by conversation and author device.
pub(super) type PushGrants = HashMap<(LogId, DeviceId), (RegisterKey, Vec<u8>)>;

fn encode_grant(grant: Option<&PushGrant>) -> Vec<u8> {
    let mut w = Writer::new();
    match grant {
        Some(g) => w.str(&g.url).fixed(g.handle.as_bytes()),
        None => w.str(""),
    };
    w.finish()
}

fn decode_grant(body: &[u8]) -> Option<PushGrant> {
    let mut r = Reader::new(body);
    let url = r.str(MAX_URL, "url").ok()?.to_owned();
    if url.is_empty() {
        return None;
    }
    let handle = PushHandle::from_bytes(r.array("handle").ok()?);
    r.finish("push grant").ok()?;
    Some(PushGrant { url, handle })
}

impl Node {
    /// This device's push setting.
    pub async fn push_setting(&self) -> Result<Option<PushSetting>, NodeError> {
        let Some(bytes) = self.store.meta(META_PUSH).await? else {
            return Ok(None);
        };
        let parsed = (|| {
            let mut r = Reader::new(&bytes);
            let url = r.str(MAX_URL, "url")?.to_owned();
            let target = r.str(MAX_TARGET, "target")?.to_owned();
            let handle = r.option("handle", |r| r.array("handle").map(PushHandle::from_bytes))?;
            r.finish("push setting")?;
            Ok::<_, crate::wire::WireError>((url, target, handle))
        })();
        match parsed {
            Ok((url, _, _)) if url.is_empty() => Ok(None),
            Ok((url, target, handle)) => Ok(Some(PushSetting {
                url,
                target,
                handle,
            })),
            Err(e) => Err(NodeError::Invalid(format!(
                "the stored push setting is damaged: {e}"
            ))),
        }
    }

    /// Stores this device's push setting (`None`: off).
    pub async fn set_push(&self, setting: Option<&PushSetting>) -> Result<(), NodeError> {
        let mut w = Writer::new();
        match setting {
            Some(s) => {
                if s.url.len() > MAX_URL || s.target.len() > MAX_TARGET {
                    return Err(NodeError::Invalid("push URL or target too long".into()));
                }
                w.str(&s.url).str(&s.target).option(s.handle, |w, h| {
                    w.fixed(h.as_bytes());
                });
            }
            None => {
                w.str("").str("").option(None::<PushHandle>, |_, _| {});
            }
        }
        self.store.set_meta(&[(META_PUSH, &w.finish())]).await?;
        Ok(())
    }

    /// Signs a request to a push relay with this device's key.
    pub fn sign_push_request(&self, method: &str, path: &str, body: &[u8]) -> String {
        crate::push::sign_request(&self.key, method, path, body)
    }

    /// Every device of every uncompromised contact: the senders this device
    /// asks its relay to accept wake-ups from at the higher rate.
    pub fn push_senders(&self) -> Vec<DeviceId> {
        let mut out: Vec<DeviceId> = self
            .uncompromised_contacts()
            .iter()
            .flat_map(|c| self.contact_devices(c))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Contacts whose latest grant from this device is not what they
    /// should have: the current one, or a withdrawal (push off, or the
    /// contact is marked compromised). Returns each with what to write.
    pub fn push_grants_due(
        &self,
        current: Option<&PushGrant>,
    ) -> Vec<(AccountId, Option<PushGrant>)> {
        let me = self.device();
        self.contacts
            .iter()
            .filter_map(|(c, info)| {
                let wanted = current.filter(|_| info.trust != super::trust::Trust::Compromised);
                let log = LogId::conversation(self.account, *c);
                let ours = self
                    .push_grants
                    .get(&(log, me))
                    .map(|(_, body)| body.as_slice());
                let due = match (ours, wanted) {
                    (None, None) => false,
                    (ours, wanted) => ours != Some(encode_grant(wanted).as_slice()),
                };
                due.then(|| (*c, wanted.cloned()))
            })
            .collect()
    }

    /// Writes this device's grant (or withdrawal) into the conversation with
    /// `contact`.
    pub async fn write_push_grant(
        &mut self,
        contact: AccountId,
        grant: Option<&PushGrant>,
        now: i64,
    ) -> Result<(), NodeError> {
        self.require_contact(contact)?;
        let log = LogId::conversation(self.account, contact);
        let body = encode_grant(grant);
        self.append_for(log, conversation_kind::PUSH_GRANT, body, now, &[contact])
            .await?;
        Ok(())
    }

    /// Where a contact's `device` can be woken, if it said.
    pub fn push_grant_of(&self, device: &DeviceId) -> Option<PushGrant> {
        let account = self.account_of_device(device)?;
        let log = LogId::conversation(self.account, account);
        self.push_grants
            .get(&(log, *device))
            .and_then(|(_, body)| decode_grant(body))
    }

    /// Whether something a person sent (a message, a file offer, an
    /// introduction) waits for delivery to `account`. Grants and other
    /// housekeeping do not count: they are no reason to wake a phone.
    pub async fn has_undelivered_messages_for(
        &self,
        account: AccountId,
    ) -> Result<bool, NodeError> {
        let mut ids = self.store.undelivered_to(account).await?;
        // The newest are the likeliest messages; a look at a few is enough.
        ids.reverse();
        ids.truncate(64);
        let events = self.store.events_by_id(&ids).await?;
        Ok(events.iter().any(|e| {
            let h = e.event.header();
            h.log_kind == crate::log::LogKind::Conversation
                && matches!(
                    h.kind,
                    conversation_kind::MESSAGE
                        | conversation_kind::FILE_OFFER
                        | conversation_kind::INTRODUCTION
                )
        }))
    }

    /// Records a stored push-grant event of the conversation `log`: only
    /// from a device of one of its two accounts.
    pub(super) fn apply_push_grant_entry(&mut self, log: LogId, event: &Event) {
        let Some(contact) = self.contact_of_conversation(log) else {
            return;
        };
        let h = event.header();
        match self.account_of_device(&h.author) {
            Some(a) if a == self.account || a == contact => {}
            _ => return,
        }
        let Some(body) = event.body() else { return };
        let by = (h.depth, h.author, event.id());
        match self.push_grants.get(&(log, h.author)) {
            Some((old, _)) if *old >= by => {}
            _ => {
                self.push_grants
                    .insert((log, h.author), (by, body.to_vec()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_round_trip_and_empty_withdraws() {
        let grant = PushGrant {
            url: "https://push.example".into(),
            handle: PushHandle::generate(),
        };
        assert_eq!(decode_grant(&encode_grant(Some(&grant))), Some(grant));
        assert_eq!(decode_grant(&encode_grant(None)), None);
        assert_eq!(decode_grant(b"garbage"), None);
    }
}
