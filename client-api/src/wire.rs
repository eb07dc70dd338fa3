//! The daemon's socket protocol: one JSON request line, one JSON answer
//! line, over the profile's owner-only Unix socket; a subscription keeps
//! the connection and reads one notice line per change.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};

/// Longest request line the daemon accepts.
pub const MAX_LINE: usize = 1 << 20;
/// Longest answer line a client reads: the daemon is the owner's own
/// process (the socket is owner-only), and a long conversation's `log`
/// is larger than a request (100,000 messages are about 25 MB).
pub const MAX_ANSWER: usize = 256 << 20;

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Request {
    /// Daemon state.
    Status,
    /// Stop the daemon (as SIGTERM does); answered before it stops.
    Stop,
    /// Own contact card.
    Card,
    /// Add a contact from a card.
    ContactAdd {
        /// The `kith:` card URI.
        card: String,
        /// A local name for it.
        alias: Option<String>,
        /// The `name@domain` handle it was found by, if it was (the
        /// contact request says so).
        #[serde(default)]
        handle: Option<String>,
    },
    /// List contacts.
    ContactList,
    /// Requests from accounts that added this one and are not contacts.
    ContactRequests,
    /// Answer a request: `accept`, `decline` or `block`.
    ContactAnswer {
        /// The requesting account (its id, or a prefix of at least 12
        /// characters).
        id: String,
        /// `accept`, `decline` or `block`.
        answer: String,
    },
    /// Make a room.
    RoomCreate {
        /// Its name.
        name: String,
        /// Anyone with the link may join.
        public: bool,
    },
    /// Invite a contact to a room.
    RoomInvite {
        /// Room (id, prefix or name).
        room: String,
        /// Contact.
        contact: String,
    },
    /// A public room's link.
    RoomLink {
        /// Room.
        room: String,
    },
    /// Join a room from its link (waits up to `wait_secs` for the room).
    RoomJoin {
        /// The `kith:room/` URI.
        uri: String,
        /// How long to wait for a member's device.
        wait_secs: u64,
    },
    /// A room's members.
    RoomMembers {
        /// Room.
        room: String,
    },
    /// Set a member's role.
    RoomRole {
        /// Room.
        room: String,
        /// Member account (id, prefix, or contact name).
        account: String,
        /// `admin`, `moderator` or `member`.
        role: String,
    },
    /// Remove (or ban) a member.
    RoomKick {
        /// Room.
        room: String,
        /// Member account.
        account: String,
        /// Ban rather than only remove.
        ban: bool,
    },
    /// Leave a room.
    RoomLeave {
        /// Room.
        room: String,
    },
    /// Set a room's name or topic.
    RoomSet {
        /// Room.
        room: String,
        /// The topic rather than the name.
        topic: bool,
        /// The text.
        text: String,
    },
    /// Rooms.
    RoomList,
    /// A room's rule for late history; sets what is given (admins).
    RoomHistory {
        /// Room.
        room: String,
        /// Members' citations that release a late event.
        confirmations: Option<u8>,
        /// `auto`, `members` or `admins`.
        trust: Option<String>,
    },
    /// Events of a room held as arrived late.
    RoomHeld {
        /// Room.
        room: String,
    },
    /// Confirm an event held as arrived late (moderators and admins).
    RoomConfirm {
        /// Room.
        room: String,
        /// Event id or unique prefix.
        event: String,
    },
    /// Queue a message.
    Send {
        /// Contact (id, prefix, alias or name).
        target: String,
        /// The text.
        text: String,
    },
    /// A conversation in display order.
    Log {
        /// Contact (id, prefix, alias or name).
        target: String,
        /// Only the last N messages.
        limit: Option<usize>,
    },
    /// The safety number with a contact.
    ContactSafetyNumber {
        /// Contact (id, prefix, alias or name).
        contact: String,
    },
    /// Validate a contact if the number matches.
    ContactVerify {
        /// Contact.
        contact: String,
        /// The number the contact reads out.
        number: String,
    },
    /// Set a contact's trust state by hand.
    ContactTrust {
        /// Contact.
        contact: String,
        /// `unvalidated`, `validated` or `compromised`.
        state: String,
    },
    /// Introduce a contact to another contact.
    ContactShare {
        /// The contact whose card is sent.
        contact: String,
        /// The contact it is sent to.
        with: String,
    },
    /// Mark a conversation or room read (on all own devices).
    MarkRead {
        /// Contact or room.
        target: String,
    },
    /// Mute (or unmute) a conversation's or room's notifications on all
    /// own devices.
    Mute {
        /// Contact or room.
        target: String,
        /// Mute (true) or unmute.
        on: bool,
    },
    /// Log this device in to another network for the account (a bridge):
    /// it logs in once before anything is kept.
    BridgeAdd {
        /// `xmpp`.
        network: String,
        /// The account there (XMPP: `user@domain`).
        account: String,
        /// `HOST:PORT` of its server, if not the account's domain.
        #[serde(default)]
        server: Option<String>,
        /// Extra certificate authorities to trust for that server (PEM).
        #[serde(default)]
        ca_pem: Option<String>,
        /// The account's password: kept in this device's store only.
        password: SecretText,
    },
    /// The account's bridges, from any own device.
    BridgeList,
    /// Remove a bridge (its conversations stay, read only).
    BridgeRemove {
        /// Bridge id or unique prefix.
        id: String,
    },
    /// Open a conversation with an address through a bridge (with `group`,
    /// join a group chat there).
    BridgeChat {
        /// Bridge id or unique prefix.
        bridge: String,
        /// The address there.
        address: String,
        /// A group chat.
        #[serde(default)]
        group: bool,
    },
    /// Messages of a conversation or room whose text holds `text`
    /// (case-insensitive), oldest first.
    Search {
        /// Contact or room.
        target: String,
        /// What to look for.
        text: String,
    },
    /// Offer a file in a conversation.
    FileSend {
        /// Contact.
        target: String,
        /// Absolute path of the file.
        path: String,
    },
    /// Files of a conversation.
    FileList {
        /// Contact.
        target: String,
    },
    /// One file's state.
    FileStatus {
        /// File id (or unique prefix).
        id: String,
    },
    /// Write a complete file out.
    FileSave {
        /// File id (or unique prefix).
        id: String,
        /// Absolute destination path (must not exist).
        dest: String,
    },
    /// Fetch a file whatever its size.
    FileFetch {
        /// File id (or unique prefix).
        id: String,
    },
    /// Show or set (on every own device) the size up to which files are
    /// fetched automatically.
    FileSyncLimit {
        /// The new limit in bytes, or none to show it.
        bytes: Option<u64>,
    },
    /// Use a mailbox server for this account (all own devices follow).
    MailboxUse {
        /// The server, `http(s)://HOST[:PORT]`.
        url: String,
    },
    /// Stop using the mailbox (removes it from its server).
    MailboxOff,
    /// The account's mailbox and which contacts offer theirs.
    MailboxStatus,
    /// Register this device with a push relay for `target` (the relay's
    /// registration JSON: `{"platform", "token"}` or the WebPush fields).
    PushUse {
        /// The relay, `http(s)://HOST[:PORT]`.
        url: String,
        /// The platform target.
        target: serde_json::Value,
    },
    /// Unregister this device from its push relay.
    PushOff,
    /// This device's relay and which contact devices can be woken.
    PushStatus,
    /// A signed record binding `handle` to this account's card (or
    /// releasing it), for a nameserver: `{"record": base64}`.
    NameRecord {
        /// `name@domain`.
        handle: String,
        /// Release instead of bind.
        release: bool,
    },
    /// Publish and look up addresses in the Mainline DHT (all own devices
    /// follow), or stop.
    LookupDht {
        /// On or off.
        on: bool,
    },
    /// Use a relay (all own devices follow), or none with `None`.
    Relay {
        /// The relay, `http(s)://HOST[:PORT]`, or none to stop.
        url: Option<String>,
    },
    /// A one-time code for a new device of this account.
    DeviceInvite,
    /// This account's devices.
    DeviceList,
    /// Revoke one of this account's devices.
    DeviceRevoke {
        /// Device id, unique prefix or name.
        device: String,
        /// Sign with the account's recovery code instead of this device.
        #[serde(default)]
        recovery: Option<String>,
    },
    /// Keep the connection open and receive a [`Notice`] line whenever
    /// something a client shows changed (instead of polling).
    Subscribe,
    /// Rings every online device of a contact; answers once one rings.
    CallStart {
        /// The contact.
        target: String,
        /// Send video too.
        #[serde(default)]
        video: bool,
        /// A 48 kHz mono WAV file to send instead of the microphone.
        #[serde(default)]
        audio_in: Option<String>,
        /// Where to write what is heard, as a WAV file, instead of the
        /// speaker.
        #[serde(default)]
        audio_out: Option<String>,
        /// A Y4M file (4:2:0) to send instead of the camera.
        #[serde(default)]
        video_in: Option<String>,
        /// Where to write the video shown, as a Y4M file.
        #[serde(default)]
        video_out: Option<String>,
    },
    /// Answers a ringing call here.
    CallAnswer {
        /// The call (a unique prefix of its id; none: the one ringing).
        #[serde(default)]
        call: Option<String>,
        /// Send video too.
        #[serde(default)]
        video: bool,
        /// A 48 kHz mono WAV file to send instead of the microphone.
        #[serde(default)]
        audio_in: Option<String>,
        /// Where to write what is heard, as a WAV file.
        #[serde(default)]
        audio_out: Option<String>,
        /// A Y4M file (4:2:0) to send instead of the camera.
        #[serde(default)]
        video_in: Option<String>,
        /// Where to write the video shown, as a Y4M file.
        #[serde(default)]
        video_out: Option<String>,
        /// Answer even though the caller is marked compromised.
        #[serde(default)]
        anyway: bool,
    },
    /// Declines a ringing call (on all own devices).
    CallDecline {
        /// The call (none: the one ringing).
        #[serde(default)]
        call: Option<String>,
    },
    /// Leaves a call, or stops ringing the other side.
    CallHangup {
        /// The call (none: the one going on).
        #[serde(default)]
        call: Option<String>,
    },
    /// Mutes this device's sound in a call (or, with `off`, unmutes it).
    CallMute {
        /// The call (none: the one going on).
        #[serde(default)]
        call: Option<String>,
        /// Unmute instead.
        #[serde(default)]
        off: bool,
        /// A room call: the member muted for everyone (moderators).
        #[serde(default)]
        member: Option<String>,
    },
    /// Ends a room's call for everyone.
    CallEnd {
        /// The room (id, prefix or name).
        room: String,
    },
    /// Removes a member from a room's call (moderators).
    CallRemove {
        /// The member (account id, prefix or contact name).
        member: String,
        /// The call (none: the one going on).
        #[serde(default)]
        call: Option<String>,
    },
    /// Hands this device's side of a call to another own device without
    /// hanging up.
    CallMove {
        /// The own device to take the call (id, unique prefix or name).
        device: String,
        /// The call (none: the one going on).
        #[serde(default)]
        call: Option<String>,
    },
    /// The calls this device knows.
    CallStatus,
    /// Delete messages (or the whole conversation) on all own devices.
    Delete {
        /// Contact (id, prefix, alias or name).
        target: String,
        /// Message ids (or unique prefixes); empty: the whole conversation.
        messages: Vec<String>,
    },
}

/// The daemon's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Success, with the method's value.
    Ok(serde_json::Value),
    /// Failure, one line for the user (daemons before [`ErrorKind`]).
    Error(String),
    /// Failure: what kind, for programs, and one line for the user.
    Failed {
        /// What kind of failure.
        kind: ErrorKind,
        /// One line for the user.
        message: String,
    },
}

/// What kind of failure a request met: for programs to match on (the
/// message is for people). More kinds will come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// No daemon answers for the profile.
    NoDaemon,
    /// The request names something this device does not hold (a log).
    NotFound,
    /// The request does not make sense: a malformed card, a bad name, an
    /// unknown or ambiguous target, too long a message.
    Invalid,
    /// The rules refuse it: an event refused, a device revoked.
    Refused,
    /// The store or the disk failed.
    Storage,
    /// The connection to the daemon failed, or its answer was not what
    /// the request expects (a daemon of another version, say).
    Protocol,
    /// Anything else (the message says what).
    Other,
}

/// A request that failed: its kind and the line for the user. Every
/// [`crate::Client`] method fails with one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ClientError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// One line for the user.
    pub message: String,
}

impl ClientError {
    /// A failure of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// What a subscriber hears (one JSON line each, after the `ok` answer to
/// [`Request::Subscribe`]). Clients ignore kinds they do not know: more
/// will come (a call ringing, a contact request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Notice {
    /// New events were stored in a log (messages, room events, files...).
    Stored {
        /// The log's id.
        log: String,
        /// How many.
        count: u64,
    },
    /// Peers now hold own events they lacked (delivery marks changed).
    Delivered {
        /// How many events.
        count: u64,
    },
    /// Notices were lost (the subscriber read too slowly): refresh all.
    Lagged,
    /// A contact request was kept (see [`Request::ContactRequests`]).
    Request {
        /// The requesting account.
        account: String,
    },
}

/// A secret a request carries (a bridged account's password): never
/// printed by `Debug`, wiped when dropped.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Reads one request line (bounded by [`MAX_LINE`]) from a client.
pub async fn read_request<R: tokio::io::AsyncRead + Unpin>(
    read: R,
) -> Result<Request, std::io::Error> {
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    serde_json::from_str(&line).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed request: {e}"),
        )
    })
}

/// Writes one line: a [`Response`], or a [`Notice`] to a subscriber.
pub async fn write_line<W: tokio::io::AsyncWrite + Unpin, T: Serialize>(
    mut write: W,
    value: &T,
) -> Result<(), std::io::Error> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.flush().await
}
