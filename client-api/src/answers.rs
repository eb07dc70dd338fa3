//! What the daemon answers, one type per request (see [`crate::Client`]'s
//! methods for which). The daemon builds its answers from these same
//! types, so the two sides cannot drift apart; the JSON they make is what
//! `kith … --json` prints (`shared/CLI.md`).

use node_core::{AccountId, DeviceId, EventId};
use serde::{Deserialize, Serialize};

pub use node_core::node::contacts::ContactInfo;
pub use node_core::node::devices::DeviceInfo;
pub use node_core::node::files::FileInfo;
pub use node_core::node::messages::MessageInfo;
pub use node_core::node::requests::RequestInfo;
pub use node_core::node::rooms::{HeldInfo, HistoryInfo, MemberInfo, RoomInfo};

/// The id of what a request made: an event written (a message, a room
/// change, a file offer), a contact added (`Id<AccountId>`) or a room
/// created or joined (`Id<LogId>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Id<T> {
    /// The id.
    pub id: T,
}

/// A bridge, as `kith bridge list --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeInfo {
    /// Its id.
    pub id: String,
    /// `xmpp`.
    pub network: String,
    /// The account there.
    pub account: String,
    /// The own device that carries it.
    pub device: DeviceId,
    /// That device's name.
    pub device_name: String,
    /// Whether its session is up (known on the device that carries it;
    /// elsewhere false).
    pub online: bool,
    /// Its state in words (`online`, `offline: …; next try in N s`,
    /// `refused: …`, or, asked from another device, where it runs).
    pub status: String,
}

/// A conversation opened through a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgedChat {
    /// Its log id (a TARGET for `send` and `log`).
    pub id: node_core::LogId,
    /// The address there.
    pub address: String,
}

/// `status` as printed by `kith status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Account id.
    pub account: String,
    /// This device's id.
    pub device: String,
    /// Device name.
    pub name: String,
    /// Addresses the transport listens on.
    pub listening: Vec<String>,
    /// Connected peer devices.
    pub peers: Vec<String>,
    /// Events waiting to be delivered.
    pub outbox: u64,
    /// Whether the profile is protected by a passphrase.
    pub protected: bool,
    /// Warnings the user should see (e.g. an unprotected profile).
    pub warnings: Vec<String>,
    /// The relay this device is reachable through, once connected to it.
    #[serde(default)]
    pub relay: Option<String>,
    /// How each link's packets travel now: `direct`, `relay` or `unknown`.
    #[serde(default)]
    pub paths: std::collections::BTreeMap<String, String>,
    /// The peer's address on each direct link (IPv6 is preferred when
    /// both devices have it).
    #[serde(default)]
    pub direct_addrs: std::collections::BTreeMap<String, String>,
    /// Events stored (all logs).
    #[serde(default)]
    pub events: u64,
    /// Events kept while they wait for their parents (bounded).
    #[serde(default)]
    pub held: u64,
    /// Contact requests waiting for an answer.
    #[serde(default)]
    pub requests: u64,
    /// LAN discovery.
    #[serde(default)]
    pub lan: LanStatus,
    /// Address lookup in the DHT (opt-in).
    #[serde(default)]
    pub dht: DhtStatus,
}

/// DHT lookup, as `status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhtStatus {
    /// Whether the DHT client runs (the account's setting is on).
    pub on: bool,
    /// Records this device published since it started.
    pub published: u64,
    /// Lookups that found a record.
    pub found: u64,
    /// How long the last of them took, in milliseconds.
    #[serde(default)]
    pub last_lookup_ms: Option<u64>,
}

/// The answer to `lookup dht`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupSet {
    /// Whether DHT lookup is on for the account now.
    pub dht: bool,
}

/// LAN discovery, as `status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanStatus {
    /// Whether it runs (the daemon listens beyond loopback, no `--no-lan`).
    pub on: bool,
    /// Devices (own and contacts') whose beacons it would recognise now.
    pub known: u64,
    /// Devices found on the local network lately.
    pub found: u64,
    /// Beacons ignored: malformed, or from no device it knows.
    pub ignored: u64,
}

/// A `kith:` URI: the account's card, or a room's link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uri {
    /// The URI.
    pub uri: String,
}

/// The answer to `card` (its older name).
pub type CardReply = Uri;

/// A contact's safety number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyNumber {
    /// The contact.
    pub contact: AccountId,
    /// The 60 digits.
    pub digits: String,
    /// The same in groups of five, as shown.
    pub grouped: String,
}

/// A contact's trust, as just set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustSet {
    /// The contact.
    pub contact: AccountId,
    /// `unvalidated`, `validated` or `compromised`.
    pub trust: String,
}

/// A file saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSaved {
    /// The file's offer.
    pub id: EventId,
    /// Where it was saved.
    pub saved: String,
}

/// The size up to which files are fetched by every own device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncLimit {
    /// Bytes.
    pub bytes: u64,
}

/// Done; nothing to say (`{}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Done {}

/// A signed name record for a nameserver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRecord {
    /// The handle, normalised.
    pub handle: String,
    /// The record, base64.
    pub record: String,
}

/// A mailbox this device uses, as just set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxSet {
    /// The server.
    pub url: String,
    /// The mailbox's id on it.
    pub mailbox: Option<String>,
}

/// A contact's mailbox this device may deposit into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxGrant {
    /// The contact.
    pub contact: AccountId,
    /// Its mailbox server.
    pub url: String,
}

/// `mailbox status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxStatus {
    /// The account's mailbox server, if any.
    pub url: Option<String>,
    /// The mailbox's id on it.
    pub mailbox: Option<String>,
    /// Contacts' mailboxes granted to this account.
    pub contacts: Vec<MailboxGrant>,
}

/// A helper server setting turned off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// The server it was set to (`None`: it was off already).
    pub url: Option<String>,
    /// Whether the server confirmed the removal (best effort).
    pub removed: bool,
}

/// A push relay registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSet {
    /// The relay.
    pub url: String,
    /// Whether it accepted the registration.
    pub registered: bool,
}

/// A contact's device that this device may wake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushGrant {
    /// The contact.
    pub contact: AccountId,
    /// Its device.
    pub device: DeviceId,
    /// The relay that wakes it.
    pub url: String,
}

/// `push status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushStatus {
    /// This device's relay, if any.
    pub url: Option<String>,
    /// Whether it is registered there.
    pub registered: bool,
    /// Contacts' devices this device may wake.
    pub contacts: Vec<PushGrant>,
}

/// The account's relay, as just set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaySet {
    /// The relay URL (`None`: none).
    pub relay: Option<String>,
}

/// A one-time code that joins a new device to the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCode {
    /// The code.
    pub code: String,
}

/// Messages deleted on all own devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// How many.
    pub deleted: usize,
}

/// The answer that opens a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    /// Always true.
    pub subscribed: bool,
}

/// A call on this device, as `kith call status --json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    /// The call's id (32 hex digits).
    pub id: String,
    /// The contact at the other end (account id).
    pub target: String,
    /// `ringing` (calling out), `incoming`, `active`,
    /// `answered-elsewhere` or `ended`.
    pub state: String,
    /// The other end's device once answered (or, answered elsewhere, the
    /// own device that took it).
    pub device: Option<String>,
    /// The devices in the call besides this one.
    pub participants: Vec<String>,
    /// How the call's packets travel: `direct`, `relay` or `unknown`.
    pub path: Option<String>,
    /// Round-trip time on the call's path.
    pub rtt_ms: Option<u64>,
    /// Share of media packets lost (once media flows).
    pub loss: Option<f64>,
    /// Audio bitrate sent (once media flows).
    pub audio_kbps: Option<u64>,
    /// Video bitrate sent (once media flows).
    pub video_kbps: Option<u64>,
    /// Whether the caller offered video.
    #[serde(default)]
    pub video: bool,
    /// Whether media flows now.
    #[serde(default)]
    pub media: bool,
    /// The longest stretch of audio concealed so far (nothing came in
    /// time, not even FEC), in milliseconds.
    #[serde(default)]
    pub longest_gap_ms: Option<u64>,
    /// Whether this device's sound is muted.
    #[serde(default)]
    pub muted: bool,
    /// Times the call came back after its connection was lost.
    #[serde(default)]
    pub resumed: u64,
    /// The peer's media datagrams refused (malformed, oversized, not
    /// audio) and dropped.
    #[serde(default)]
    pub bad_datagrams: u64,
    /// The caller was marked compromised when it rang: answering takes
    /// `--anyway`.
    #[serde(default)]
    pub compromised: bool,
    /// The sound card the call uses here (none: files, or silent).
    #[serde(default)]
    pub audio_device: Option<String>,
    /// Video frames this device coded and sent.
    #[serde(default)]
    pub video_frames_sent: u64,
    /// The peer's video frames decoded here.
    #[serde(default)]
    pub video_frames_shown: u64,
    /// The peer's video frames lost (or dropped waiting for a key frame).
    #[serde(default)]
    pub video_frames_lost: u64,
    /// Key frames this device asked of the peer.
    #[serde(default)]
    pub video_keys_asked: u64,
    /// Why it ended, once it did: `hung-up`, `they-hung-up`, `no-answer`,
    /// `declined`, `busy`, `cancelled`, `answered-elsewhere`, `link-lost`
    /// (a room's call: `hung-up`, `call-ended`, `removed`).
    #[serde(default)]
    pub ended: Option<String>,
    /// A room's call: the room (`target` is the room too).
    #[serde(default)]
    pub room: Option<String>,
    /// A room's call: sender keys this device made (one at the start and
    /// one each time the participants it is linked with change).
    #[serde(default)]
    pub keys_made: u64,
    /// A room's call: frames refused as replayed.
    #[serde(default)]
    pub frames_replayed: u64,
    /// A room's call: frames under a key not held here (never given, or
    /// retired by a rotation).
    #[serde(default)]
    pub frames_stale_key: u64,
    /// A room's call: frames that do not open under the key they name.
    #[serde(default)]
    pub frames_forged: u64,
    /// A room's call: the participant speaking now (the loudest over the
    /// last few hundred milliseconds, if any is loud enough), by device.
    #[serde(default)]
    pub speaking: Option<String>,
    /// A room's call: the participants' accounts, in the order of
    /// `participants`.
    #[serde(default)]
    pub participant_accounts: Vec<String>,
    /// A room's call beyond a mesh: the participant that forwards this
    /// device's frames to the others, by device.
    #[serde(default)]
    pub forwarder: Option<String>,
    /// A room's call: participants whose frames this device forwards.
    #[serde(default)]
    pub forwarding_for: u64,
    /// A room's call: the uplink this device measured and said in the
    /// room, kbit/s (0 while no limit was seen); a participant whose
    /// uplink cannot carry a copy for every other sends through a
    /// forwarder.
    #[serde(default)]
    pub uplink_kbps: u64,
    /// A room's call: this device said in the room it is its account's
    /// always-on device (`kith daemon --always-on`).
    #[serde(default)]
    pub always_on: bool,
    /// A room's call with video: each participant whose video this device
    /// takes, the simulcast layer taken and the frames decoded at it.
    #[serde(default)]
    pub video_from: Vec<VideoFrom>,
}

/// One participant's video as a device in a room's call takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoFrom {
    /// The participant's device.
    pub device: String,
    /// The simulcast layer taken: 0 the small one, 1 the full one.
    pub layer: u8,
    /// Its frames decoded here at that layer.
    pub frames: u64,
}
