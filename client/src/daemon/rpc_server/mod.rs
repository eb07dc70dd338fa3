//! Answers the CLI's requests on the local socket: one connection per
//! request (or a subscription that stays open), each request dispatched
//! to its handler. The handlers sit per domain, as `cmd/` does: `calls`,
//! `contacts`
//! (card, contacts, trust), `messages` (send, log, read, delete), `rooms`,
//! `files`, `devices` (status, devices) and `services` (mailbox, push,
//! relay, names). Each builds its answer from `kith-client`'s types.

mod calls;
mod contacts;
mod devices;
mod files;
mod messages;
mod rooms;
mod services;

use super::Daemon;
use crate::rpc::{self, Request, Response};
use anyhow::Result;
use kith_client::answers as a;
use node_core::call::machine::Command;
use tokio::net::UnixStream;
use tracing::warn;

pub(super) use services::RELAY_SETTING;

impl Daemon {
    pub(super) async fn handle_client(self: &std::sync::Arc<Self>, stream: UnixStream) {
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

    /// Runs one request. Requests that wait on the network or the disk
    /// without the node (file preparation, joining a room, helper servers)
    /// take the node only for their own steps; the others hold it for
    /// their whole handler.
    async fn answer(self: &std::sync::Arc<Self>, req: Request) -> Result<serde_json::Value> {
        let now = crate::now_ms();
        match req {
            Request::FileSend { target, path } => return self.file_send(&target, &path).await,
            Request::FileSave { id, dest } => return self.file_save(&id, dest).await,
            Request::RoomJoin { uri, wait_secs } => return self.room_join(&uri, wait_secs).await,
            Request::MailboxUse { url } => return self.mailbox_use(&url).await,
            Request::MailboxOff => return self.mailbox_off().await,
            Request::BridgeAdd {
                network,
                account,
                server,
                ca_pem,
                password,
            } => {
                let id = self
                    .bridge_add(&network, &account, server, ca_pem, &password.0)
                    .await?;
                return answer(a::Id { id });
            }
            Request::BridgeRemove { id } => {
                self.bridge_remove(&id).await?;
                return answer(a::Done {});
            }
            Request::PushUse { url, target } => return self.push_use(&url, target).await,
            Request::PushOff => return self.push_off().await,
            Request::CallStart {
                target,
                video,
                audio_in,
                audio_out,
                video_in,
                video_out,
            } => {
                let files = [audio_in, audio_out, video_in, video_out];
                return self.call_start(&target, video, files).await;
            }
            Request::CallAnswer {
                call,
                video,
                audio_in,
                audio_out,
                video_in,
                video_out,
                anyway,
            } => {
                let files = [audio_in, audio_out, video_in, video_out];
                return self.call_answer(call, (video, anyway), files).await;
            }
            Request::CallDecline { call } => {
                return self.call_command(call, Command::Decline).await;
            }
            Request::CallHangup { call } => return self.call_command(call, Command::Hangup).await,
            Request::CallStatus => return answer(super::calls::status(self)),
            Request::CallMove { device, call } => {
                super::calls::move_call(self, &device, call.as_deref()).await?;
                return answer(a::Done {});
            }
            Request::CallMute {
                call,
                off,
                member: Some(member),
            } => {
                let action = super::conf::Moderate::Mute(!off);
                super::conf::moderate(self, call.as_deref(), &member, action).await?;
                return answer(a::Done {});
            }
            Request::CallMute { call, off, .. } => {
                super::calls::mute(self, call.as_deref(), !off)?;
                return answer(a::Done {});
            }
            Request::CallEnd { room } => {
                super::conf::end(self, &room).await?;
                return answer(a::Done {});
            }
            Request::CallRemove { call, member } => {
                let action = super::conf::Moderate::Remove;
                super::conf::moderate(self, call.as_deref(), &member, action).await?;
                return answer(a::Done {});
            }
            // Answered before this point (the connection stays open).
            Request::Subscribe => anyhow::bail!("subscribe opens its own connection"),
            Request::Stop => {
                tracing::info!("stopping, as a client asked");
                self.shutdown();
                return answer(a::Done {});
            }
            _ => {}
        }
        let mut node = self.node.lock().await;
        let node = &mut *node;
        match req {
            Request::Status => answer(self.status(node).await?),
            Request::Card => self.card(node, now),
            Request::ContactAdd {
                card,
                alias,
                handle,
            } => self.contact_add(node, &card, alias, handle, now).await,
            Request::BridgeList => answer(self.bridge_list(node)),
            Request::BridgeChat {
                bridge,
                address,
                group,
            } => {
                let address = kith_bridge::xmpp::normalize_address(&address)?;
                let id = node.open_bridged(&bridge, &address, group, now).await?;
                self.bridges_changed();
                answer(a::BridgedChat {
                    id,
                    address: address.trim().to_owned(),
                })
            }
            Request::ContactList => {
                let mut all = node.contacts();
                all.extend(node.bridged_contacts());
                answer(all)
            }
            Request::ContactRequests => answer(node.contact_requests().await?),
            Request::ContactAnswer { id, answer } => {
                self.contact_answer(node, &id, &answer, now).await
            }
            Request::ContactSafetyNumber { contact } => contacts::safety_number(node, &contact),
            Request::ContactVerify { contact, number } => {
                contacts::verify(node, &contact, &number, now).await
            }
            Request::ContactTrust { contact, state } => {
                contacts::trust(node, &contact, &state, now).await
            }
            Request::ContactShare { contact, with } => {
                contacts::share(node, &contact, &with, now).await
            }
            Request::Send { target, text } => {
                let sent = messages::send(node, &target, &text, now).await;
                if sent.is_ok()
                    && let Ok(to) = node.resolve_target(&target)
                {
                    self.requests.wrote_to(to);
                }
                sent
            }
            Request::Log { target, limit } => messages::log(node, &target, limit).await,
            Request::MarkRead { target } => messages::mark_read(node, &target, now).await,
            Request::Mute { target, on } => messages::mute(node, &target, on, now).await,
            Request::Search { target, text } => messages::search(node, &target, &text).await,
            Request::Delete { target, messages } => {
                messages::delete(node, &target, &messages, now).await
            }
            Request::RoomCreate { name, public } => rooms::create(node, &name, public, now).await,
            Request::RoomInvite { room, contact } => {
                rooms::invite(node, &room, &contact, now).await
            }
            Request::RoomLink { room } => self.room_link(node, &room),
            Request::RoomMembers { room } => rooms::members(node, &room),
            Request::RoomRole {
                room,
                account,
                role,
            } => rooms::role(node, &room, &account, &role, now).await,
            Request::RoomKick { room, account, ban } => {
                rooms::kick(node, &room, &account, ban, now).await
            }
            Request::RoomLeave { room } => rooms::leave(node, &room, now).await,
            Request::RoomSet { room, topic, text } => {
                rooms::set_text(node, &room, topic, &text, now).await
            }
            Request::RoomList => answer(node.rooms()),
            Request::RoomHistory {
                room,
                confirmations,
                trust,
            } => rooms::history(node, &room, confirmations, trust, now).await,
            Request::RoomHeld { room } => rooms::held(node, &room).await,
            Request::RoomConfirm { room, event } => rooms::confirm(node, &room, &event, now).await,
            Request::FileList { target } => files::list(node, &target).await,
            Request::FileStatus { id } => files::status(node, &id).await,
            Request::FileFetch { id } => self.file_fetch(node, &id).await,
            Request::FileSyncLimit { bytes } => self.file_sync_limit(node, bytes, now).await,
            Request::NameRecord { handle, release } => {
                self.name_record(node, &handle, release, now)
            }
            Request::MailboxStatus => services::mailbox_status(node),
            Request::PushStatus => services::push_status(node).await,
            Request::Relay { url } => self.relay(node, url, now).await,
            Request::LookupDht { on } => {
                node.set_dht_lookup(on, now).await?;
                answer(a::LookupSet { dht: on })
            }
            Request::DeviceInvite => self.device_invite(node, now),
            Request::DeviceList => answer(node.devices()?),
            Request::DeviceRevoke { device, recovery } => {
                devices::revoke(node, &device, recovery, now).await
            }
            Request::FileSend { .. }
            | Request::FileSave { .. }
            | Request::RoomJoin { .. }
            | Request::MailboxUse { .. }
            | Request::MailboxOff
            | Request::BridgeAdd { .. }
            | Request::BridgeRemove { .. }
            | Request::PushUse { .. }
            | Request::PushOff
            | Request::CallStart { .. }
            | Request::CallAnswer { .. }
            | Request::CallDecline { .. }
            | Request::CallHangup { .. }
            | Request::CallStatus
            | Request::CallMove { .. }
            | Request::CallMute { .. }
            | Request::CallRemove { .. }
            | Request::CallEnd { .. }
            | Request::Subscribe
            | Request::Stop => anyhow::bail!("answered above"),
        }
    }
}

/// An answer as the socket carries it.
fn answer<T: serde::Serialize>(value: T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(value)?)
}
