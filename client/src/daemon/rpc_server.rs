//! Answers the CLI's requests on the local socket.

use super::Daemon;
use crate::rpc::{self, Request, Response};
use anyhow::{Context, Result};
use kith_client::answers::{self as a, Id, Status};
use node_core::node::Node;
use node_core::node::rooms::Target;
use tokio::net::UnixStream;
use tracing::warn;

/// The self-log setting naming the account's relay (empty: none).
pub(super) const RELAY_SETTING: &str = "relay";

impl Daemon {
    /// `kith mailbox use URL`: checks the server answers as a mailbox, then
    /// sets it for the account; the mailbox loop registers it.
    async fn mailbox_use(&self, url: &str) -> Result<serde_json::Value> {
        let url = url.trim_end_matches('/');
        node_core::node::mailbox::check_url(url)?;
        super::mailbox::probe(url).await?;
        let id = self
            .node
            .lock()
            .await
            .set_mailbox(Some(url), crate::now_ms())
            .await?;
        self.mailbox_notify.notify_one();
        answer(a::MailboxSet {
            url: url.to_owned(),
            mailbox: id.map(|i| i.to_string()),
        })
    }

    /// `kith mailbox off`: removes the mailbox from its server (best
    /// effort: an unreachable server only keeps it until it expires), then
    /// turns the setting off, which withdraws the contacts' grants.
    async fn mailbox_off(&self) -> Result<serde_json::Value> {
        let current = self.node.lock().await.mailbox();
        let Some(current) = current else {
            return answer(a::Removed {
                url: None,
                removed: false,
            });
        };
        let removed = match super::mailbox::remove_mailbox(&current.url, &current.key).await {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "mailbox: removing it from its server failed");
                false
            }
        };
        self.node
            .lock()
            .await
            .set_mailbox(None, crate::now_ms())
            .await?;
        self.mailbox_notify.notify_one();
        answer(a::Removed {
            url: Some(current.url),
            removed,
        })
    }

    /// `kith push use`: registers with the relay now (so a refusal is the
    /// command's error), then keeps the setting; the push loop tells
    /// contacts.
    async fn push_use(&self, url: &str, target: serde_json::Value) -> Result<serde_json::Value> {
        use node_core::node::push::PushSetting;
        let url = url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.contains(char::is_whitespace)
        {
            anyhow::bail!("`{url}` is not a push relay URL (http(s)://HOST[:PORT])");
        }
        if !target.is_object() || target.get("platform").is_none() {
            anyhow::bail!("the push target needs a platform");
        }
        let mut setting = PushSetting {
            url: url.to_owned(),
            target: target.to_string(),
            handle: None,
        };
        let senders = self.node.lock().await.push_senders();
        let http = super::push::client()?;
        let handle = super::push::register(self, &http, &setting, &senders).await?;
        setting.handle = Some(handle);
        self.node.lock().await.set_push(Some(&setting)).await?;
        self.push_notify.notify_one();
        answer(a::PushSet {
            url: url.to_owned(),
            registered: true,
        })
    }

    /// `kith push off`: unregisters (best effort) and withdraws the grants.
    async fn push_off(&self) -> Result<serde_json::Value> {
        let current = self.node.lock().await.push_setting().await?;
        let Some(current) = current else {
            return answer(a::Removed {
                url: None,
                removed: false,
            });
        };
        let removed = match super::push::unregister(self, &current.url).await {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "push: unregistering failed");
                false
            }
        };
        self.node.lock().await.set_push(None).await?;
        self.push_notify.notify_one();
        answer(a::Removed {
            url: Some(current.url),
            removed,
        })
    }

    pub(super) async fn handle_client(&self, stream: UnixStream) {
        let (mut read, write) = stream.into_split();
        let resp = match rpc::read_request(&mut read)
            .await
            .map_err(anyhow::Error::from)
        {
            Ok(Request::Subscribe) => return self.subscription(read, write).await,
            Ok(req) => {
                let writes = self.durable.writes();
                let mut answer = self.answer(req).await;
                // A request that wrote is answered once its writes are on
                // the disk (what `kith send` returned for survives a crash
                // of the machine too). A read waits only if something else
                // wrote meanwhile (one sync round at most).
                if self.durable.writes() != writes
                    && let Err(e) = self.durable_now().await
                {
                    answer = Err(e);
                }
                match answer {
                    Ok(v) => Response::Ok(v),
                    Err(e) => rpc::failed(&e),
                }
            }
            Err(e) => rpc::failed(&e),
        };
        if let Err(e) = rpc::write_line(write, &resp).await {
            warn!(error = %e, "answering a client failed");
        }
    }

    /// Serves a subscriber: a [`rpc::Notice`] line for each change (new
    /// events coalesced per log), until the client closes its side or the
    /// daemon stops.
    async fn subscription(
        &self,
        mut read: tokio::net::unix::OwnedReadHalf,
        mut write: tokio::net::unix::OwnedWriteHalf,
    ) {
        use tokio::io::AsyncReadExt as _;
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let mut events = self.node.lock().await.subscribe();
        let mut notices = self.notices.subscribe();
        let ok = match serde_json::to_value(a::Subscribed { subscribed: true }) {
            Ok(v) => Response::Ok(v),
            Err(_) => return,
        };
        if rpc::write_line(&mut write, &ok).await.is_err() {
            return;
        }
        let mut buf = [0u8; 256];
        loop {
            let out: Vec<rpc::Notice> = tokio::select! {
                ev = events.recv() => match ev {
                    Ok(first) => {
                        let mut counts: std::collections::BTreeMap<node_core::LogId, u64> =
                            Default::default();
                        *counts.entry(first.log).or_default() += 1;
                        let mut lagged = false;
                        for _ in 0..4096 {
                            match events.try_recv() {
                                Ok(ev) => *counts.entry(ev.log).or_default() += 1,
                                Err(TryRecvError::Lagged(_)) => lagged = true,
                                Err(_) => break,
                            }
                        }
                        let mut out: Vec<rpc::Notice> = counts
                            .into_iter()
                            .map(|(log, count)| rpc::Notice::Stored { log: log.to_string(), count })
                            .collect();
                        if lagged {
                            out.push(rpc::Notice::Lagged);
                        }
                        out
                    }
                    Err(RecvError::Lagged(_)) => vec![rpc::Notice::Lagged],
                    Err(RecvError::Closed) => return,
                },
                n = notices.recv() => match n {
                    Ok(n) => vec![n],
                    Err(RecvError::Lagged(_)) => vec![rpc::Notice::Lagged],
                    Err(RecvError::Closed) => return,
                },
                // The client closed its side (anything it writes is ignored).
                r = read.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                },
            };
            for n in out {
                if rpc::write_line(&mut write, &n).await.is_err() {
                    return;
                }
            }
        }
    }

    async fn answer(&self, req: Request) -> Result<serde_json::Value> {
        let now = crate::now_ms();
        if let Request::FileSend { target, path } = req {
            return self.file_send(&target, &path).await;
        }
        if let Request::FileSave { id, dest } = req {
            let (id, offer, files) = {
                let node = self.node.lock().await;
                let id = find_file(&node, &id).await?;
                let (_, offer) = node.file_offer(id).await?.context("no such file")?;
                (id, offer, node.file_store())
            };
            files.save(id, &offer, std::path::Path::new(&dest)).await?;
            return answer(a::FileSaved { id, saved: dest });
        }
        if let Request::RoomJoin { uri, wait_secs } = req {
            return self.room_join(&uri, wait_secs).await;
        }
        match req {
            Request::MailboxUse { url } => return self.mailbox_use(&url).await,
            Request::MailboxOff => return self.mailbox_off().await,
            Request::PushUse { url, target } => return self.push_use(&url, target).await,
            Request::PushOff => return self.push_off().await,
            _ => {}
        }
        let mut node = self.node.lock().await;
        let value = match req {
            Request::Status => serde_json::to_value(self.status(&node).await?)?,
            Request::Card => {
                let hints = self.own_hints();
                answer(a::Uri {
                    uri: node.card(hints, now)?,
                })?
            }
            Request::ContactAdd { card, alias } => {
                let id = node.add_contact(&card, alias.as_deref(), now).await?;
                answer(Id { id })?
            }
            Request::ContactList => serde_json::to_value(node.contacts())?,
            Request::Send { target, text } => {
                let id = match node.resolve_any(&target)? {
                    Target::Contact(to) => node.send_message(to, &text, now).await?,
                    Target::Room(room) => node.room_send(room, &text, now).await?,
                };
                answer(Id { id })?
            }
            Request::Log { target, limit } => match node.resolve_any(&target)? {
                Target::Contact(with) => {
                    serde_json::to_value(node.conversation(with, limit).await?)?
                }
                Target::Room(room) => serde_json::to_value(node.room_log(room, limit).await?)?,
            },
            Request::RoomCreate { name, public } => {
                let id = node.create_room(&name, public, now).await?;
                answer(Id { id })?
            }
            Request::RoomInvite { room, contact } => {
                let room = node.resolve_room(&room)?;
                let contact = node.resolve_target(&contact)?;
                let id = node.room_invite(room, contact, now).await?;
                answer(Id { id })?
            }
            Request::RoomLink { room } => {
                let room = node.resolve_room(&room)?;
                let uri = node.room_link(room, self.own_hints())?;
                answer(a::Uri { uri })?
            }
            Request::RoomJoin { .. } => anyhow::bail!("handled above"),
            Request::RoomMembers { room } => {
                let room = node.resolve_room(&room)?;
                serde_json::to_value(node.room_member_list(room)?)?
            }
            Request::RoomRole {
                room,
                account,
                role,
            } => {
                let room = node.resolve_room(&room)?;
                let account = node.resolve_member(room, &account)?;
                let id = node.room_set_role(room, account, &role, now).await?;
                answer(Id { id })?
            }
            Request::RoomKick { room, account, ban } => {
                let room = node.resolve_room(&room)?;
                let account = node.resolve_member(room, &account)?;
                let id = node.room_remove(room, account, ban, now).await?;
                answer(Id { id })?
            }
            Request::RoomLeave { room } => {
                let room = node.resolve_room(&room)?;
                let id = node.room_leave(room, now).await?;
                answer(Id { id })?
            }
            Request::RoomSet { room, topic, text } => {
                let room = node.resolve_room(&room)?;
                let id = node.room_set_text(room, topic, &text, now).await?;
                answer(Id { id })?
            }
            Request::RoomList => serde_json::to_value(node.rooms())?,
            Request::RoomHistory {
                room,
                confirmations,
                trust,
            } => {
                let room = node.resolve_room(&room)?;
                let trust = trust
                    .map(|t| {
                        node_core::rooms::Trust::parse(&t)
                            .with_context(|| format!("no trust {t:?}: use auto, members or admins"))
                    })
                    .transpose()?;
                if confirmations.is_some() || trust.is_some() {
                    node.room_set_history(room, confirmations, trust, now)
                        .await?;
                }
                serde_json::to_value(node.room_history(room)?)?
            }
            Request::RoomHeld { room } => {
                let room = node.resolve_room(&room)?;
                serde_json::to_value(node.room_held(room).await?)?
            }
            Request::RoomConfirm { room, event } => {
                let room = node.resolve_room(&room)?;
                let id = node.room_confirm(room, &event, now).await?;
                answer(Id { id })?
            }
            Request::ContactSafetyNumber { contact } => {
                let id = node.resolve_target(&contact)?;
                let digits = node.safety_number(id)?;
                answer(a::SafetyNumber {
                    contact: id,
                    grouped: node_core::node::trust::group_digits(&digits),
                    digits,
                })?
            }
            Request::ContactVerify { contact, number } => {
                let id = node.resolve_target(&contact)?;
                node.verify_contact(id, &number, now).await?;
                answer(a::TrustSet {
                    contact: id,
                    trust: "validated".into(),
                })?
            }
            Request::ContactTrust { contact, state } => {
                let id = node.resolve_target(&contact)?;
                let trust: node_core::node::trust::Trust = state.parse()?;
                node.set_trust(id, trust, "set by hand", now).await?;
                answer(a::TrustSet {
                    contact: id,
                    trust: trust.as_str().into(),
                })?
            }
            Request::ContactShare { contact, with } => {
                let what = node.resolve_target(&contact)?;
                let to = node.resolve_target(&with)?;
                let id = node.share_contact(what, to, now).await?;
                answer(Id { id })?
            }
            Request::FileSend { .. } | Request::FileSave { .. } => {
                anyhow::bail!("handled above")
            }
            Request::FileList { target } => {
                let log = node.target_log(node.resolve_any(&target)?);
                serde_json::to_value(node.files(log).await?)?
            }
            Request::FileStatus { id } => {
                let id = find_file(&node, &id).await?;
                let (log, _) = node.file_offer(id).await?.context("no such file")?;
                let info = node.files(log).await?.into_iter().find(|f| f.id == id);
                serde_json::to_value(info.context("no such file")?)?
            }
            Request::FileFetch { id } => {
                let id = find_file(&node, &id).await?;
                self.wanted_files
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id);
                self.files_wake();
                answer(Id { id })?
            }
            Request::FileSyncLimit { bytes } => {
                if let Some(b) = bytes {
                    node.set_setting(
                        node_core::node::read::SETTING_AUTO_FETCH,
                        &b.to_be_bytes(),
                        now,
                    )
                    .await?;
                    self.files_wake();
                }
                let limit = node.auto_fetch_setting().unwrap_or(self.auto_fetch_limit);
                answer(a::SyncLimit { bytes: limit })?
            }
            Request::MarkRead { target } => {
                let with = node.resolve_target(&target)?;
                node.mark_read(with, now).await?;
                answer(a::Done {})?
            }
            Request::NameRecord { handle, release } => {
                let handle: node_core::names::Handle = handle
                    .parse()
                    .map_err(|e| anyhow::anyhow!("bad handle: {e}"))?;
                let record = node.name_record(&handle, release, self.own_hints(), now)?;
                answer(a::NameRecord {
                    handle: handle.to_string(),
                    record: data_encoding::BASE64.encode(&record),
                })?
            }
            Request::MailboxStatus => {
                let mailbox = node.mailbox();
                let contacts = node
                    .contacts()
                    .into_iter()
                    .filter_map(|c| {
                        let grant = node.grant_from(c.id)?;
                        Some(a::MailboxGrant {
                            contact: c.id,
                            url: grant.url.clone(),
                        })
                    })
                    .collect();
                answer(a::MailboxStatus {
                    url: mailbox.as_ref().map(|m| m.url.clone()),
                    mailbox: mailbox.as_ref().map(|m| m.key.id().to_string()),
                    contacts,
                })?
            }
            Request::MailboxUse { .. }
            | Request::MailboxOff
            | Request::PushUse { .. }
            | Request::PushOff => unreachable!("answered above"),
            Request::PushStatus => {
                let setting = node.push_setting().await?;
                let contacts = node
                    .uncompromised_contacts()
                    .iter()
                    .flat_map(|c| node.contact_devices(c).into_iter().map(move |d| (*c, d)))
                    .filter_map(|(contact, device)| {
                        node.push_grant_of(&device).map(|g| a::PushGrant {
                            contact,
                            device,
                            url: g.url.clone(),
                        })
                    })
                    .collect();
                answer(a::PushStatus {
                    url: setting.as_ref().map(|s| s.url.clone()),
                    registered: setting.as_ref().is_some_and(|s| s.handle.is_some()),
                    contacts,
                })?
            }
            Request::Relay { url } => {
                let url = url.map(|u| u.trim_end_matches('/').to_owned());
                if let Some(u) = &url {
                    node_core::transport::parse_relay(u)?;
                }
                let value = url.clone().unwrap_or_default();
                node.set_setting(RELAY_SETTING, value.as_bytes(), now)
                    .await?;
                self.mailbox_notify.notify_one();
                answer(a::RelaySet { relay: url })?
            }
            Request::DeviceInvite => {
                let code = node.invite(self.transport.hints(), now)?;
                answer(a::InviteCode { code })?
            }
            Request::DeviceList => serde_json::to_value(node.devices()?)?,
            Request::DeviceRevoke { device, recovery } => {
                let id = match recovery.map(zeroize::Zeroizing::new) {
                    Some(words) => {
                        let code = node_core::node::RecoveryCode::parse(&words)?;
                        node.revoke_device_with_recovery(&device, &code, now)
                            .await?
                    }
                    None => node.revoke_device(&device, now).await?,
                };
                answer(Id { id })?
            }
            Request::Delete { target, messages } => {
                let log = node.target_log(node.resolve_any(&target)?);
                let count = node.delete(log, &messages, now).await?;
                answer(a::Deleted { deleted: count })?
            }
            // Answered before this point (the connection stays open).
            Request::Subscribe => anyhow::bail!("subscribe opens its own connection"),
        };
        Ok(value)
    }

    /// Joins a room from its link: holds it, then waits (without holding
    /// the node) until a member's device gave its log and this account
    /// joined.
    async fn room_join(&self, uri: &str, wait_secs: u64) -> Result<serde_json::Value> {
        let room = self
            .node
            .lock()
            .await
            .room_join_link(uri, crate::now_ms())
            .await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_secs);
        loop {
            {
                let node = self.node.lock().await;
                let me = node.account();
                if node.room_state(&room).is_some_and(|s| s.is_joined(&me)) {
                    return answer(Id { id: room });
                }
            }
            if std::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "no member of room {} could be reached within {wait_secs} s; this device keeps trying while the daemon runs",
                    room.short(12)
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Hashes and encrypts the file without holding the node (it may be
    /// large), then writes the offer.
    async fn file_send(&self, target: &str, path: &str) -> Result<serde_json::Value> {
        let (to, dir) = {
            let node = self.node.lock().await;
            let to = node.resolve_any(target)?;
            (to, node_core::files::files_dir(node.profile().dir()))
        };
        let path = std::path::PathBuf::from(path);
        let max = self.max_file_size;
        let prepared = tokio::task::spawn_blocking(move || {
            node_core::files::prepare(&dir, &path, max, &mut |_, _| {})
        })
        .await
        .context("preparing the file")??;
        let id = self
            .node
            .lock()
            .await
            .offer_file(to, &prepared, crate::now_ms())
            .await?;
        answer(Id { id })
    }

    async fn status(&self, node: &Node) -> Result<Status> {
        let mut warnings = Vec::new();
        if !node.is_protected() {
            warnings.push(
                "profile is unprotected: it has no passphrase, so anyone who can read its files can read your messages"
                    .to_owned(),
            );
        }
        Ok(Status {
            account: node.account().to_string(),
            device: node.device().to_string(),
            name: node.name().to_owned(),
            listening: self
                .transport
                .local_addrs()
                .iter()
                .map(ToString::to_string)
                .collect(),
            peers: self.connected().iter().map(ToString::to_string).collect(),
            outbox: node.outbox_len().await?,
            protected: node.is_protected(),
            warnings,
            relay: self.transport.home_relay(),
            paths: self.link_paths(),
            events: node.event_count().await?,
            held: node.held_count().await?,
        })
    }
}

/// A file by id or unique prefix (at least four characters).
async fn find_file(node: &Node, id: &str) -> Result<node_core::EventId> {
    let want = id.trim().to_lowercase();
    let mut found = Vec::new();
    for id in node.file_ids().await? {
        if id.matches_prefix(&want) {
            found.push(id);
        }
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => anyhow::bail!("no file {want:?}"),
        _ => anyhow::bail!("{want:?} matches several files; give more of the id"),
    }
}

/// An answer as the socket carries it.
fn answer<T: serde::Serialize>(value: T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(value)?)
}
