//! kith's client library: a typed handle on the daemon of a profile.
//!
//! A [`Client`] names a profile folder; each method sends one request over
//! the daemon's owner-only Unix socket and returns its typed answer
//! ([`answers`]), or a [`ClientError`] whose [`ErrorKind`] a program can
//! match on (the message is the one line for people). [`Client::subscribe`]
//! keeps a connection open and yields a [`Notice`] per change (new
//! events, deliveries) instead of polling. The daemon's socket server is
//! one adapter over the same [`Request`] and answer types; the CLI and the
//! terminal UI use this library, and it is what app bindings export.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kith_client::ClientError> {
//! let kith = kith_client::Client::new("/home/me/.local/share/kith");
//! let sent = kith.send("alice", "hello").await?;
//! println!("sent {}", sent.id);
//! for m in kith.log("alice", Some(10)).await? {
//!     println!("{}: {}", m.author.short(8), m.text);
//! }
//! # Ok(()) }
//! ```

pub mod answers;
pub mod wire;

pub use answers::*;
pub use wire::{
    ClientError, ErrorKind, MAX_ANSWER, MAX_LINE, Notice, Request, Response, SecretText,
};

use node_core::{AccountId, EventId, LogId};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// Longest notice line a subscriber reads.
const MAX_NOTICE: usize = 64 << 10;

/// The daemon of one profile.
#[derive(Debug, Clone)]
pub struct Client {
    home: PathBuf,
}

type Result<T> = std::result::Result<T, ClientError>;

fn protocol(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::new(ErrorKind::Protocol, format!("{what}: {e}"))
}

impl Client {
    /// The daemon of the profile in `home` (the folder `kith --home`
    /// names). Nothing is connected until a method is called.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self { home: home.into() }
    }

    /// The profile folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    async fn connect(&self) -> Result<UnixStream> {
        UnixStream::connect(self.home.join("kith.sock"))
            .await
            .map_err(|e| {
                ClientError::new(
                    ErrorKind::NoDaemon,
                    format!(
                        "no kith daemon is running for {} (start one with `kith daemon`): {e}",
                        self.home.display()
                    ),
                )
            })
    }

    /// Sends any request; the answer as JSON (what `--json` prints).
    pub async fn call(&self, req: &Request) -> Result<serde_json::Value> {
        let (value, _, _) = ask(self.connect().await?, req, MAX_ANSWER).await?;
        Ok(value)
    }

    async fn typed<T: DeserializeOwned>(&self, req: Request) -> Result<T> {
        let value = self.call(&req).await?;
        serde_json::from_value(value).map_err(|e| protocol("the daemon's answer is not valid", e))
    }

    /// Hears the daemon's notices until the subscription is dropped.
    pub async fn subscribe(&self) -> Result<Subscription> {
        let (_, reader, write) =
            ask(self.connect().await?, &Request::Subscribe, MAX_NOTICE).await?;
        Ok(Subscription {
            reader,
            _write: write,
        })
    }

    /// The daemon's state.
    pub async fn status(&self) -> Result<Status> {
        self.typed(Request::Status).await
    }

    /// Stops the daemon (it answers first, then closes links and the
    /// store, as on SIGTERM).
    pub async fn stop(&self) -> Result<Done> {
        self.typed(Request::Stop).await
    }

    /// The account's signed contact card.
    pub async fn card(&self) -> Result<Uri> {
        self.typed(Request::Card).await
    }

    /// Adds a contact from its card (it starts unvalidated).
    pub async fn contact_add(&self, card: &str, alias: Option<&str>) -> Result<Id<AccountId>> {
        self.contact_add_found(card, alias, None).await
    }

    /// Adds a contact from the card a nameserver gave for `handle` (the
    /// contact request it is sent says how it was found).
    pub async fn contact_add_found(
        &self,
        card: &str,
        alias: Option<&str>,
        handle: Option<&str>,
    ) -> Result<Id<AccountId>> {
        self.typed(Request::ContactAdd {
            card: card.into(),
            alias: alias.map(Into::into),
            handle: handle.map(Into::into),
        })
        .await
    }

    /// Requests from accounts that added this one, newest first.
    pub async fn contact_requests(&self) -> Result<Vec<RequestInfo>> {
        self.typed(Request::ContactRequests).await
    }

    /// Answers a request (`accept`, `decline` or `block`); gives the
    /// requesting account.
    pub async fn contact_answer(&self, id: &str, answer: &str) -> Result<Id<AccountId>> {
        self.typed(Request::ContactAnswer {
            id: id.into(),
            answer: answer.into(),
        })
        .await
    }

    /// The contacts.
    pub async fn contact_list(&self) -> Result<Vec<ContactInfo>> {
        self.typed(Request::ContactList).await
    }

    /// A contact's safety number.
    pub async fn safety_number(&self, contact: &str) -> Result<SafetyNumber> {
        self.typed(Request::ContactSafetyNumber {
            contact: contact.into(),
        })
        .await
    }

    /// Marks the contact validated if `number` is its safety number.
    pub async fn contact_verify(&self, contact: &str, number: &str) -> Result<TrustSet> {
        self.typed(Request::ContactVerify {
            contact: contact.into(),
            number: number.into(),
        })
        .await
    }

    /// Sets a contact's trust by hand.
    pub async fn contact_trust(&self, contact: &str, state: &str) -> Result<TrustSet> {
        self.typed(Request::ContactTrust {
            contact: contact.into(),
            state: state.into(),
        })
        .await
    }

    /// Introduces `contact` to `with`.
    pub async fn contact_share(&self, contact: &str, with: &str) -> Result<Id<EventId>> {
        self.typed(Request::ContactShare {
            contact: contact.into(),
            with: with.into(),
        })
        .await
    }

    /// Sends a message to a contact or a room; answers once it is on the
    /// disk.
    pub async fn send(&self, target: &str, text: &str) -> Result<Id<EventId>> {
        self.typed(Request::Send {
            target: target.into(),
            text: text.into(),
        })
        .await
    }

    /// A conversation's or room's messages in display order (the last
    /// `limit`).
    pub async fn log(&self, target: &str, limit: Option<usize>) -> Result<Vec<MessageInfo>> {
        self.typed(Request::Log {
            target: target.into(),
            limit,
        })
        .await
    }

    /// Marks a conversation or room read up to its newest message.
    pub async fn mark_read(&self, target: &str) -> Result<Done> {
        self.typed(Request::MarkRead {
            target: target.into(),
        })
        .await
    }

    /// Logs this device in to another network for the account; the
    /// password stays in this device's store.
    pub async fn bridge_add(
        &self,
        network: &str,
        account: &str,
        server: Option<String>,
        ca_pem: Option<String>,
        password: String,
    ) -> Result<Id<String>> {
        self.typed(Request::BridgeAdd {
            network: network.into(),
            account: account.into(),
            server,
            ca_pem,
            password: wire::SecretText(password),
        })
        .await
    }

    /// The account's bridges.
    pub async fn bridge_list(&self) -> Result<Vec<BridgeInfo>> {
        self.typed(Request::BridgeList).await
    }

    /// Removes a bridge.
    pub async fn bridge_remove(&self, id: &str) -> Result<Done> {
        self.typed(Request::BridgeRemove { id: id.into() }).await
    }

    /// Opens a conversation (or, with `group`, joins a group chat) through
    /// a bridge.
    pub async fn bridge_chat(
        &self,
        bridge: &str,
        address: &str,
        group: bool,
    ) -> Result<BridgedChat> {
        self.typed(Request::BridgeChat {
            bridge: bridge.into(),
            address: address.into(),
            group,
        })
        .await
    }

    /// Mutes (or unmutes) a conversation's or room's notifications on all
    /// own devices.
    pub async fn mute(&self, target: &str, on: bool) -> Result<Done> {
        self.typed(Request::Mute {
            target: target.into(),
            on,
        })
        .await
    }

    /// The messages of a conversation or room whose text holds `text`
    /// (case-insensitive), oldest first.
    pub async fn search(&self, target: &str, text: &str) -> Result<Vec<MessageInfo>> {
        self.typed(Request::Search {
            target: target.into(),
            text: text.into(),
        })
        .await
    }

    /// Deletes messages (or, with `all`, the conversation) on all own
    /// devices.
    pub async fn delete(&self, target: &str, messages: Vec<String>) -> Result<Deleted> {
        self.typed(Request::Delete {
            target: target.into(),
            messages,
        })
        .await
    }

    /// Creates a room.
    pub async fn room_create(&self, name: &str, public: bool) -> Result<Id<LogId>> {
        self.typed(Request::RoomCreate {
            name: name.into(),
            public,
        })
        .await
    }

    /// Invites a contact to a room.
    pub async fn room_invite(&self, room: &str, contact: &str) -> Result<Id<EventId>> {
        self.typed(Request::RoomInvite {
            room: room.into(),
            contact: contact.into(),
        })
        .await
    }

    /// A room's join link.
    pub async fn room_link(&self, room: &str) -> Result<Uri> {
        self.typed(Request::RoomLink { room: room.into() }).await
    }

    /// Joins a room from its link, waiting up to `wait_secs` for a member.
    pub async fn room_join(&self, uri: &str, wait_secs: u64) -> Result<Id<LogId>> {
        self.typed(Request::RoomJoin {
            uri: uri.into(),
            wait_secs,
        })
        .await
    }

    /// A room's members and roles.
    pub async fn room_members(&self, room: &str) -> Result<Vec<MemberInfo>> {
        self.typed(Request::RoomMembers { room: room.into() }).await
    }

    /// Gives a member a role.
    pub async fn room_role(&self, room: &str, account: &str, role: &str) -> Result<Id<EventId>> {
        self.typed(Request::RoomRole {
            room: room.into(),
            account: account.into(),
            role: role.into(),
        })
        .await
    }

    /// Removes (or bans) a member.
    pub async fn room_kick(&self, room: &str, account: &str, ban: bool) -> Result<Id<EventId>> {
        self.typed(Request::RoomKick {
            room: room.into(),
            account: account.into(),
            ban,
        })
        .await
    }

    /// Leaves a room.
    pub async fn room_leave(&self, room: &str) -> Result<Id<EventId>> {
        self.typed(Request::RoomLeave { room: room.into() }).await
    }

    /// Sets a room's name (or, with `topic`, its topic).
    pub async fn room_set(&self, room: &str, topic: bool, text: &str) -> Result<Id<EventId>> {
        self.typed(Request::RoomSet {
            room: room.into(),
            topic,
            text: text.into(),
        })
        .await
    }

    /// The rooms held.
    pub async fn room_list(&self) -> Result<Vec<RoomInfo>> {
        self.typed(Request::RoomList).await
    }

    /// A room's late-history setting (changed first if either is given).
    pub async fn room_history(
        &self,
        room: &str,
        confirmations: Option<u8>,
        trust: Option<&str>,
    ) -> Result<HistoryInfo> {
        self.typed(Request::RoomHistory {
            room: room.into(),
            confirmations,
            trust: trust.map(Into::into),
        })
        .await
    }

    /// Events of a room held as arrived late.
    pub async fn room_held(&self, room: &str) -> Result<Vec<HeldInfo>> {
        self.typed(Request::RoomHeld { room: room.into() }).await
    }

    /// Confirms a late event (moderators).
    pub async fn room_confirm(&self, room: &str, event: &str) -> Result<Id<EventId>> {
        self.typed(Request::RoomConfirm {
            room: room.into(),
            event: event.into(),
        })
        .await
    }

    /// Offers a file (a path the daemon reads) in a conversation or room.
    pub async fn file_send(&self, target: &str, path: &str) -> Result<Id<EventId>> {
        self.typed(Request::FileSend {
            target: target.into(),
            path: path.into(),
        })
        .await
    }

    /// Files offered in a conversation or room.
    pub async fn file_list(&self, target: &str) -> Result<Vec<FileInfo>> {
        self.typed(Request::FileList {
            target: target.into(),
        })
        .await
    }

    /// One file's state.
    pub async fn file_status(&self, id: &str) -> Result<FileInfo> {
        self.typed(Request::FileStatus { id: id.into() }).await
    }

    /// Saves a fetched file to `dest`.
    pub async fn file_save(&self, id: &str, dest: &str) -> Result<FileSaved> {
        self.typed(Request::FileSave {
            id: id.into(),
            dest: dest.into(),
        })
        .await
    }

    /// Fetches a file whatever its size.
    pub async fn file_fetch(&self, id: &str) -> Result<Id<EventId>> {
        self.typed(Request::FileFetch { id: id.into() }).await
    }

    /// The automatic fetch limit (set first if `bytes` is given).
    pub async fn file_sync_limit(&self, bytes: Option<u64>) -> Result<SyncLimit> {
        self.typed(Request::FileSyncLimit { bytes }).await
    }

    /// Uses a mailbox server.
    pub async fn mailbox_use(&self, url: &str) -> Result<MailboxSet> {
        self.typed(Request::MailboxUse { url: url.into() }).await
    }

    /// Stops using the mailbox.
    pub async fn mailbox_off(&self) -> Result<Removed> {
        self.typed(Request::MailboxOff).await
    }

    /// The mailbox setting and contacts' grants.
    pub async fn mailbox_status(&self) -> Result<MailboxStatus> {
        self.typed(Request::MailboxStatus).await
    }

    /// Registers with a push relay for `target` (the platform's token).
    pub async fn push_use(&self, url: &str, target: serde_json::Value) -> Result<PushSet> {
        self.typed(Request::PushUse {
            url: url.into(),
            target,
        })
        .await
    }

    /// Stops push wake-ups.
    pub async fn push_off(&self) -> Result<Removed> {
        self.typed(Request::PushOff).await
    }

    /// The push setting and contacts' devices this device may wake.
    pub async fn push_status(&self) -> Result<PushStatus> {
        self.typed(Request::PushStatus).await
    }

    /// A signed record binding `handle` to this account (or releasing it).
    pub async fn name_record(&self, handle: &str, release: bool) -> Result<NameRecord> {
        self.typed(Request::NameRecord {
            handle: handle.into(),
            release,
        })
        .await
    }

    /// Turns DHT address lookup on or off for the account.
    pub async fn lookup_dht(&self, on: bool) -> Result<LookupSet> {
        self.typed(Request::LookupDht { on }).await
    }

    /// Sets (or with `None` clears) the account's relay.
    pub async fn relay(&self, url: Option<&str>) -> Result<RelaySet> {
        self.typed(Request::Relay {
            url: url.map(Into::into),
        })
        .await
    }

    /// A code that joins a new device to the account.
    pub async fn device_invite(&self) -> Result<InviteCode> {
        self.typed(Request::DeviceInvite).await
    }

    /// The account's devices.
    pub async fn device_list(&self) -> Result<Vec<DeviceInfo>> {
        self.typed(Request::DeviceList).await
    }

    /// Rings every online device of a contact; returns the call's id once
    /// one rings (the call goes on in the daemon).
    pub async fn call_start(&self, target: &str, options: &CallOptions) -> Result<Id<String>> {
        self.typed(Request::CallStart {
            target: target.into(),
            video: options.video,
            audio_in: options.audio_in.clone(),
            audio_out: options.audio_out.clone(),
            video_in: options.video_in.clone(),
            video_out: options.video_out.clone(),
        })
        .await
    }

    /// Answers a ringing call on this device.
    pub async fn call_answer(&self, call: Option<&str>, options: &CallOptions) -> Result<Done> {
        self.typed(Request::CallAnswer {
            call: call.map(Into::into),
            video: options.video,
            audio_in: options.audio_in.clone(),
            audio_out: options.audio_out.clone(),
            video_in: options.video_in.clone(),
            video_out: options.video_out.clone(),
            anyway: options.anyway,
        })
        .await
    }

    /// Declines a ringing call (every own device stops ringing).
    pub async fn call_decline(&self, call: Option<&str>) -> Result<Done> {
        self.typed(Request::CallDecline {
            call: call.map(Into::into),
        })
        .await
    }

    /// Leaves a call, or stops ringing the other side.
    pub async fn call_hangup(&self, call: Option<&str>) -> Result<Done> {
        self.typed(Request::CallHangup {
            call: call.map(Into::into),
        })
        .await
    }

    /// Mutes this device's sound in a call (`on: false` unmutes).
    pub async fn call_mute(&self, call: Option<&str>, on: bool) -> Result<Done> {
        self.typed(Request::CallMute {
            call: call.map(Into::into),
            off: !on,
            member: None,
        })
        .await
    }

    /// In a room's call, mutes `member` for everyone (or, `on` false,
    /// unmutes them): a moderator's room event.
    pub async fn call_mute_member(
        &self,
        call: Option<&str>,
        member: &str,
        on: bool,
    ) -> Result<Done> {
        self.typed(Request::CallMute {
            call: call.map(Into::into),
            off: !on,
            member: Some(member.into()),
        })
        .await
    }

    /// Ends `room`'s call for everyone (its starter, a moderator, or the
    /// last one in it).
    pub async fn call_end(&self, room: &str) -> Result<Done> {
        self.typed(Request::CallEnd { room: room.into() }).await
    }

    /// Removes `member` from a room's call: a moderator's room event.
    pub async fn call_remove(&self, call: Option<&str>, member: &str) -> Result<Done> {
        self.typed(Request::CallRemove {
            call: call.map(Into::into),
            member: member.into(),
        })
        .await
    }

    /// Hands this device's side of a call to own device `device` (id,
    /// unique prefix or name) without hanging up.
    pub async fn call_move(&self, device: &str, call: Option<&str>) -> Result<Done> {
        self.typed(Request::CallMove {
            device: device.into(),
            call: call.map(Into::into),
        })
        .await
    }

    /// The calls this device knows (going on and recently ended).
    pub async fn call_status(&self) -> Result<Vec<CallInfo>> {
        self.typed(Request::CallStatus).await
    }

    /// Revokes a device (with the recovery code when this device cannot
    /// sign for the account alone).
    pub async fn device_revoke(
        &self,
        device: &str,
        recovery: Option<String>,
    ) -> Result<Id<EventId>> {
        self.typed(Request::DeviceRevoke {
            device: device.into(),
            recovery,
        })
        .await
    }
}

/// How this device takes part in a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Send video too.
    pub video: bool,
    /// A 48 kHz mono 16-bit WAV file (a path the daemon reads) to send
    /// instead of the microphone.
    pub audio_in: Option<String>,
    /// A path where the daemon writes what was heard as a WAV file, when
    /// the call ends.
    pub audio_out: Option<String>,
    /// A Y4M file (4:2:0, a path the daemon reads) to send instead of the
    /// camera; implies video.
    pub video_in: Option<String>,
    /// A path where the daemon writes the video shown, as a Y4M file at
    /// 30 frames a second, while the call runs.
    pub video_out: Option<String>,
    /// Answer a call from a contact marked compromised (otherwise
    /// refused with an explanation).
    pub anyway: bool,
}

/// Sends `req` and reads the daemon's answer (a line of at most `limit`
/// bytes): its value, and the connection, for what may follow.
async fn ask(
    stream: UnixStream,
    req: &Request,
    limit: usize,
) -> Result<(serde_json::Value, BufReader<OwnedReadHalf>, OwnedWriteHalf)> {
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(req).map_err(|e| protocol("encoding the request", e))?;
    line.push(b'\n');
    write
        .write_all(&line)
        .await
        .map_err(|e| protocol("sending to the daemon", e))?;
    let mut reader = BufReader::new(read);
    let mut answer = String::new();
    (&mut reader)
        .take(limit as u64)
        .read_line(&mut answer)
        .await
        .map_err(|e| protocol("reading the daemon's answer", e))?;
    if answer.is_empty() {
        return Err(ClientError::new(
            ErrorKind::Protocol,
            "the daemon closed the connection without answering",
        ));
    }
    let response = serde_json::from_str::<Response>(&answer)
        .map_err(|e| protocol("the daemon's answer is not valid", e))?;
    let value = match response {
        Response::Ok(v) => v,
        Response::Error(message) => return Err(ClientError::new(ErrorKind::Other, message)),
        Response::Failed { kind, message } => return Err(ClientError { kind, message }),
    };
    Ok((value, reader, write))
}

/// A subscription to the daemon's notices ([`Client::subscribe`]); the
/// daemon stops sending when it is dropped.
#[derive(Debug)]
pub struct Subscription {
    reader: BufReader<OwnedReadHalf>,
    // Closing it ends the subscription on the daemon's side.
    _write: OwnedWriteHalf,
}

impl Subscription {
    /// The next notice; `None` once the daemon closed the subscription.
    /// Lines of kinds this client does not know are skipped.
    pub async fn next(&mut self) -> Result<Option<Notice>> {
        loop {
            let mut line = String::new();
            let n = (&mut self.reader)
                .take(MAX_NOTICE as u64)
                .read_line(&mut line)
                .await
                .map_err(|e| protocol("reading a notice", e))?;
            if n == 0 {
                return Ok(None);
            }
            if !line.ends_with('\n') {
                return Err(ClientError::new(
                    ErrorKind::Protocol,
                    "a notice from the daemon is too long",
                ));
            }
            if let Ok(notice) = serde_json::from_str::<Notice>(&line) {
                return Ok(Some(notice));
            }
        }
    }
}
