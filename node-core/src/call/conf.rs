//! Conferences in rooms: the room event that says a call is on and who is
//! in it ([`RoomCall`], folded into the room's state as a [`Conference`]),
//! the control messages on a conference connection ([`ConfMsg`]), and the
//! sender keys every participant encrypts its media frames under
//! ([`SenderKey`], opened with [`SenderKeys`]).
//!
//! Media never enters the room's log: the log says only that a call is on,
//! which devices joined and left it, and a moderator's mute or removal
//! (all checked against the room's power like any room event). The frames
//! go device to device on conference connections (ALPN `kith/conf/1`): a
//! full mesh up to [`MESH_SIZE`], beyond it through forwarding
//! participants ([`plan`], [`Datagram`]). Each frame is sealed under its
//! sender's key, so a relay sees sizes and timing, never the voice; a
//! forwarder is a participant and holds the keys as every participant
//! does (see `docs/calls.md` for what it can still do).
//!
//! **Frame format** (SFrame-shaped, RFC 9605 §4.3, with libsodium's
//! XChaCha20-Poly1305 as the AEAD): the media packet's 12-byte header stays
//! in the clear (kind, flags, layer, sequence number, media clock: what a
//! forwarder needs) and is authenticated; its payload becomes
//!
//! ```text
//! kid (u32 BE) ‖ ctr (u64 BE) ‖ ciphertext ‖ tag (16)
//! ```
//!
//! under the sender's current key `kid`, with nonce `kid ‖ stream ‖ 0¹¹ ‖
//! ctr` (24 bytes; the stream is audio or video). `ctr` counts the frames
//! of one stream sealed under that key from 0, so no nonce repeats under
//! a key; a receiver refuses a counter it has seen in that stream (a
//! window of 128 behind the highest).
//!
//! **Keys.** Each participant draws a fresh random 32-byte key whenever
//! the set of participants it is linked with changes (someone joins,
//! leaves, or is removed), sends it on the control stream of each link
//! (already end to end: QUIC's TLS 1.3 between the two devices), and seals
//! with it a moment later. A receiver keeps a sender's current and
//! previous key; the first frame under the current key retires the
//! previous one, and a frame under a retired key is refused. A device
//! that left (or was never linked) never receives the keys made after it
//! went, so it cannot open what is sent after.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::CallId;
use crate::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, AeadKey, HashDomain, SecretBytes, aead_decrypt_with_nonce,
    aead_encrypt_with_nonce, hash,
};
use crate::id::{AccountId, DeviceId, LogId};
use crate::wire::{Reader, WireError, Writer};

/// What a room's call event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomCall {
    /// A conference begins in the room (only while none is on).
    Start(CallId),
    /// The sender's device joined the conference (the device must be the
    /// event's author: a room refuses any other).
    Join {
        /// The conference.
        call: CallId,
        /// The device (one of the sender's).
        device: DeviceId,
    },
    /// The sender's device left it (the event's author, as for `Join`).
    Leave {
        /// The conference.
        call: CallId,
        /// The device (one of the sender's).
        device: DeviceId,
    },
    /// The conference is over (written by the last to leave).
    End(CallId),
    /// A moderator mutes (or unmutes) a member in the conference: the
    /// others stop playing its audio, its devices stop sending it.
    Mute {
        /// The conference.
        call: CallId,
        /// Whom.
        target: AccountId,
        /// Muted (or no longer).
        on: bool,
    },
    /// A moderator removes a member from the conference: the others drop
    /// its links and make new keys; it may not join this conference again.
    Remove {
        /// The conference.
        call: CallId,
        /// Whom.
        target: AccountId,
    },
    /// What the sender's device (a participant, the event's author as for
    /// `Join`) says of its own links, for the choice of forwarders
    /// ([`plan`]). A participant that wrote none stands as
    /// [`Standing::default`].
    Standing {
        /// The conference.
        call: CallId,
        /// The device (one of the sender's).
        device: DeviceId,
        /// What it says.
        standing: Standing,
    },
}

/// What a participant says of its own links ([`RoomCall::Standing`]): the
/// shared inputs every participant's [`plan`] reads besides the call's
/// order. Self-declared (see `docs/calls.md` for what a liar gains).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The uplink it measured in this call, kbit/s, once its links could
    /// not carry what it sent (most of them losing a fifth or more of it);
    /// 0 while no limit was seen.
    pub uplink_kbps: u32,
    /// It is its account's always-on device (`kith daemon --always-on`).
    pub always_on: bool,
    /// Its links in this call are direct (none through a relay).
    pub direct: bool,
}

impl Default for Standing {
    fn default() -> Self {
        Standing {
            uplink_kbps: 0,
            always_on: false,
            direct: true,
        }
    }
}

impl Standing {
    /// It could not send a copy of its frames to each of `others`.
    pub fn weak(&self, others: usize) -> bool {
        self.uplink_kbps != 0 && (self.uplink_kbps as usize) < others * STREAM_KBPS
    }

    /// It can send its own frames and one client's to each of `others`.
    fn strong(&self, others: usize) -> bool {
        self.uplink_kbps == 0 || (self.uplink_kbps as usize) >= 2 * others * STREAM_KBPS
    }
}

impl RoomCall {
    fn tag(&self) -> u8 {
        match self {
            RoomCall::Start(_) => 1,
            RoomCall::Join { .. } => 2,
            RoomCall::Leave { .. } => 3,
            RoomCall::End(_) => 4,
            RoomCall::Mute { .. } => 5,
            RoomCall::Remove { .. } => 6,
            RoomCall::Standing { .. } => 7,
        }
    }

    /// The device a join, leave or standing names (it must be the event's
    /// author).
    pub fn device(&self) -> Option<DeviceId> {
        match self {
            RoomCall::Join { device, .. }
            | RoomCall::Leave { device, .. }
            | RoomCall::Standing { device, .. } => Some(*device),
            _ => None,
        }
    }

    /// The conference it is about.
    pub fn call(&self) -> CallId {
        match self {
            RoomCall::Start(c) | RoomCall::End(c) => *c,
            RoomCall::Join { call, .. }
            | RoomCall::Leave { call, .. }
            | RoomCall::Mute { call, .. }
            | RoomCall::Remove { call, .. }
            | RoomCall::Standing { call, .. } => *call,
        }
    }

    /// The event body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.tag()).fixed(&self.call().0);
        match self {
            RoomCall::Start(_) | RoomCall::End(_) => {}
            RoomCall::Join { device, .. } | RoomCall::Leave { device, .. } => {
                w.fixed(device.as_bytes());
            }
            RoomCall::Mute { target, on, .. } => {
                w.fixed(target.as_bytes()).u8(u8::from(*on));
            }
            RoomCall::Remove { target, .. } => {
                w.fixed(target.as_bytes());
            }
            RoomCall::Standing {
                device, standing, ..
            } => {
                w.fixed(device.as_bytes())
                    .u32(standing.uplink_kbps)
                    .u8(u8::from(standing.always_on) | u8::from(standing.direct) << 1);
            }
        }
        w.finish()
    }

    /// Reads an event body (strictly: no unknown action, no trailing byte).
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let tag = r.u8("call action")?;
        let call = CallId(r.array("call id")?);
        let out = match tag {
            1 => RoomCall::Start(call),
            2 => RoomCall::Join {
                call,
                device: DeviceId::from_bytes(r.array("device")?),
            },
            3 => RoomCall::Leave {
                call,
                device: DeviceId::from_bytes(r.array("device")?),
            },
            4 => RoomCall::End(call),
            5 => RoomCall::Mute {
                call,
                target: AccountId::from_bytes(r.array("target")?),
                on: match r.u8("mute")? {
                    0 => false,
                    1 => true,
                    _ => {
                        return Err(WireError::Invalid {
                            what: "mute",
                            why: "not 0 or 1",
                        });
                    }
                },
            },
            6 => RoomCall::Remove {
                call,
                target: AccountId::from_bytes(r.array("target")?),
            },
            7 => {
                let device = DeviceId::from_bytes(r.array("device")?);
                let uplink_kbps = r.u32("uplink")?;
                let flags = r.u8("standing flags")?;
                if flags > 3 {
                    return Err(WireError::Invalid {
                        what: "standing flags",
                        why: "unknown bits",
                    });
                }
                RoomCall::Standing {
                    call,
                    device,
                    standing: Standing {
                        uplink_kbps,
                        always_on: flags & 1 != 0,
                        direct: flags & 2 != 0,
                    },
                }
            }
            _ => {
                return Err(WireError::Invalid {
                    what: "call action",
                    why: "unknown",
                });
            }
        };
        r.finish("room call event")?;
        Ok(out)
    }
}

/// Most devices in one conference (a full mesh: every participant links
/// with every other).
pub const MAX_PARTICIPANTS: usize = 32;

/// Most devices of one account in one conference.
pub const MAX_DEVICES_EACH: usize = 8;

/// A room's conference as its events say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    /// The conference.
    pub id: CallId,
    /// Who started it.
    pub started_by: AccountId,
    /// Devices that joined and have not left, with the account that said
    /// so (the caller checks the device is that account's).
    pub participants: BTreeMap<DeviceId, AccountId>,
    /// Members a moderator muted.
    pub muted: BTreeSet<AccountId>,
    /// Members a moderator removed (they may not join again).
    pub removed: BTreeSet<AccountId>,
    /// What participants said of their links (the last word of each; a
    /// participant absent here stands as [`Standing::default`]).
    pub standing: BTreeMap<DeviceId, Standing>,
    /// How many standings each device wrote in this call (at most
    /// [`MAX_STANDINGS`]: each may change who forwards, and so the keys).
    pub standings_said: BTreeMap<DeviceId, u32>,
}

/// Most standings one device may write in one call (an honest one writes
/// a few: when it joins always-on, when it measures a limit, when its
/// links move to a relay and back).
pub const MAX_STANDINGS: u32 = 16;

impl Conference {
    /// Why `sender` may not write `event` while this conference (or none)
    /// is on; `None` if it may. Power and membership are the room's part.
    pub fn refuse(
        on: Option<&Conference>,
        removed: &BTreeSet<AccountId>,
        (sender, moderator): (AccountId, bool),
        event: &RoomCall,
    ) -> Option<&'static str> {
        if removed.contains(&sender) && !matches!(event, RoomCall::Leave { .. }) {
            return Some("you were removed from this room's calls");
        }
        match (event, on) {
            // A removal is the room's, whatever call is on (or none).
            (RoomCall::Remove { .. }, _) => None,
            (RoomCall::Start(_), Some(_)) => Some("a call is on in this room already"),
            (RoomCall::Start(_), None) => None,
            (_, None) => Some("no call is on in this room"),
            (e, Some(c)) if e.call() != c.id => Some("that call is over"),
            (RoomCall::Join { device, .. }, Some(c)) => match c.participants.get(device) {
                Some(a) if *a != sender => Some("that device is another account's"),
                Some(_) => None,
                None if c.participants.values().filter(|a| **a == sender).count()
                    >= MAX_DEVICES_EACH =>
                {
                    Some("too many of your devices are in the call")
                }
                None if c.participants.len() >= MAX_PARTICIPANTS => Some("this call is full"),
                None => None,
            },
            (RoomCall::Standing { device, .. }, Some(c))
                if c.standings_said.get(device).copied().unwrap_or(0) >= MAX_STANDINGS =>
            {
                Some("that device said its standing too often in this call")
            }
            (RoomCall::Leave { device, .. } | RoomCall::Standing { device, .. }, Some(c)) => {
                (c.participants.get(device) != Some(&sender))
                    .then_some("that device is not in the call")
            }
            // Whoever started it, a moderator, or the last one in it.
            (RoomCall::End(_), Some(c)) => (!moderator
                && c.started_by != sender
                && c.participants.values().any(|a| *a != sender))
            .then_some("others are still in the call"),
            (RoomCall::Mute { .. }, Some(_)) => None,
        }
    }

    /// Applies an allowed event; `removed` (the room's members removed
    /// from its calls) grows with a removal.
    pub fn apply(
        on: &mut Option<Conference>,
        removed: &mut BTreeSet<AccountId>,
        sender: AccountId,
        event: &RoomCall,
    ) {
        if let RoomCall::Remove { target, .. } = event {
            removed.insert(*target);
        }
        match event {
            RoomCall::Start(id) => {
                *on = Some(Conference {
                    id: *id,
                    started_by: sender,
                    participants: BTreeMap::new(),
                    muted: BTreeSet::new(),
                    removed: removed.clone(),
                    standing: BTreeMap::new(),
                    standings_said: BTreeMap::new(),
                });
            }
            RoomCall::End(_) => *on = None,
            _ => {
                let Some(c) = on.as_mut() else {
                    return;
                };
                match event {
                    RoomCall::Join { device, .. } => {
                        // A device new to the call starts afresh (one that
                        // joins again while in it keeps what it said: a
                        // join is no way round the cap on standings).
                        if c.participants.insert(*device, sender).is_none() {
                            c.standing.remove(device);
                        }
                    }
                    RoomCall::Leave { device, .. } => {
                        c.participants.remove(device);
                        c.standing.remove(device);
                    }
                    RoomCall::Standing {
                        device, standing, ..
                    } => {
                        c.standing.insert(*device, *standing);
                        *c.standings_said.entry(*device).or_default() += 1;
                    }
                    RoomCall::Mute { target, on, .. } => {
                        if *on {
                            c.muted.insert(*target);
                        } else {
                            c.muted.remove(target);
                        }
                    }
                    RoomCall::Remove { target, .. } => {
                        c.participants.retain(|_, a| a != target);
                        let participants = &c.participants;
                        c.standing.retain(|d, _| participants.contains_key(d));
                        c.removed.insert(*target);
                    }
                    RoomCall::Start(_) | RoomCall::End(_) => {}
                }
            }
        }
    }

    /// A member left the room (or was kicked or banned): its devices are
    /// no longer in the call.
    pub fn drop_member(on: &mut Option<Conference>, account: &AccountId) {
        if let Some(c) = on.as_mut() {
            c.participants.retain(|_, a| a != account);
            let participants = &c.participants;
            c.standing.retain(|d, _| participants.contains_key(d));
        }
    }
}

/// Longest control frame on a conference connection.
pub const MAX_CONF_FRAME: usize = 128;

/// A control message on a conference connection.
pub enum ConfMsg {
    /// The dialling participant's first frame: this room's conference.
    Hello {
        /// The room.
        room: LogId,
        /// Its conference.
        call: CallId,
    },
    /// The dialled participant takes the link.
    Welcome(CallId),
    /// The sender's new key (it seals with it from a moment later on).
    Key {
        /// Its id (unique among the sender's keys in this call).
        kid: u32,
        /// The key.
        key: SecretBytes<32>,
    },
    /// The sender leaves the conference.
    Bye(CallId),
    /// Forward my frames to every other participant (`true`), or stop.
    Forward(bool),
    /// My frames come to you through this forwarder (or directly): a
    /// relayed frame of mine is taken only from the one named.
    Via(Option<DeviceId>),
    /// Send me your video at this simulcast layer (below
    /// [`VIDEO_LAYERS`]), or none.
    Layer(Option<u8>),
    /// Pass me this participant's video at this simulcast layer, or none:
    /// sent to the forwarder the participant's frames come through (it
    /// passes each of its clients' layers on only to those that asked).
    Pass(DeviceId, Option<u8>),
}

/// Simulcast layers of a room call's video: 0 the small one, 1 the full
/// one.
pub const VIDEO_LAYERS: u8 = 2;

impl fmt::Debug for ConfMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfMsg::Hello { room, call } => write!(f, "Hello({room:?}, {call})"),
            ConfMsg::Welcome(c) => write!(f, "Welcome({c})"),
            ConfMsg::Key { kid, .. } => write!(f, "Key({kid}, ..)"),
            ConfMsg::Bye(c) => write!(f, "Bye({c})"),
            ConfMsg::Forward(on) => write!(f, "Forward({on})"),
            ConfMsg::Via(v) => write!(f, "Via({v:?})"),
            ConfMsg::Layer(l) => write!(f, "Layer({l:?})"),
            ConfMsg::Pass(d, l) => write!(f, "Pass({}, {l:?})", d.short(8)),
        }
    }
}

impl ConfMsg {
    /// The frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            ConfMsg::Hello { room, call } => w.u8(1).fixed(room.as_bytes()).fixed(&call.0),
            ConfMsg::Welcome(call) => w.u8(2).fixed(&call.0),
            ConfMsg::Key { kid, key } => w.u8(3).u32(*kid).fixed(key.as_bytes()),
            ConfMsg::Bye(call) => w.u8(4).fixed(&call.0),
            ConfMsg::Forward(on) => w.u8(5).u8(u8::from(*on)),
            ConfMsg::Via(None) => w.u8(6),
            ConfMsg::Via(Some(d)) => w.u8(6).fixed(d.as_bytes()),
            ConfMsg::Layer(None) => w.u8(7),
            ConfMsg::Layer(Some(l)) => w.u8(7).u8(*l),
            ConfMsg::Pass(d, None) => w.u8(8).fixed(d.as_bytes()),
            ConfMsg::Pass(d, Some(l)) => w.u8(8).fixed(d.as_bytes()).u8(*l),
        };
        w.finish()
    }

    /// Reads a frame (strictly).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let msg = match r.u8("conference message")? {
            1 => ConfMsg::Hello {
                room: LogId::from_bytes(r.array("room")?),
                call: CallId(r.array("call id")?),
            },
            2 => ConfMsg::Welcome(CallId(r.array("call id")?)),
            3 => {
                let kid = r.u32("key id")?;
                let mut bytes: [u8; 32] = r.array("key")?;
                let key = SecretBytes::new(bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                ConfMsg::Key { kid, key }
            }
            4 => ConfMsg::Bye(CallId(r.array("call id")?)),
            5 => match r.u8("forward")? {
                0 => ConfMsg::Forward(false),
                1 => ConfMsg::Forward(true),
                _ => {
                    return Err(WireError::Invalid {
                        what: "forward",
                        why: "neither 0 nor 1",
                    });
                }
            },
            6 if r.is_empty() => ConfMsg::Via(None),
            6 => ConfMsg::Via(Some(DeviceId::from_bytes(r.array("forwarder")?))),
            7 if r.is_empty() => ConfMsg::Layer(None),
            7 => ConfMsg::Layer(Some(layer(&mut r)?)),
            8 => {
                let of = DeviceId::from_bytes(r.array("participant")?);
                if r.is_empty() {
                    ConfMsg::Pass(of, None)
                } else {
                    ConfMsg::Pass(of, Some(layer(&mut r)?))
                }
            }
            _ => {
                return Err(WireError::Invalid {
                    what: "conference message",
                    why: "unknown",
                });
            }
        };
        r.finish("conference message")?;
        Ok(msg)
    }
}

/// A simulcast layer's number (below [`VIDEO_LAYERS`]).
fn layer(r: &mut Reader<'_>) -> Result<u8, WireError> {
    match r.u8("layer")? {
        l if l < VIDEO_LAYERS => Ok(l),
        _ => Err(WireError::Invalid {
            what: "layer",
            why: "no such simulcast layer",
        }),
    }
}

/// Participants a call carries as a full mesh (every participant sends
/// its frames to every other); beyond this, some forward for others.
pub const MESH_SIZE: usize = 8;

/// Participants per forwarder (itself included) in a forwarded call.
pub const PER_FORWARDER: usize = 8;

/// How this device sends its frames in a call (see [`plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// To every other participant.
    Mesh,
    /// To every other participant, and it forwards the frames of the
    /// participants that ask it to (with [`ConfMsg::Forward`]).
    Forwarder,
    /// Only to one forwarder: the first of these it is linked with (its
    /// own first, the others after, in the call's order).
    Client(Vec<DeviceId>),
}

/// The call's participants in its order: by
/// `BLAKE2b(conf-order, call id ‖ device id)`, the same on every device
/// and not chosen by anyone (a device id is a public key; a participant
/// cannot place itself without making keys until one hashes low, and a
/// forwarder sees no more than any participant).
pub fn order(call: CallId, participants: impl IntoIterator<Item = DeviceId>) -> Vec<DeviceId> {
    let mut keyed: Vec<([u8; 32], DeviceId)> = participants
        .into_iter()
        .map(|d| {
            let mut data = call.0.to_vec();
            data.extend_from_slice(d.as_bytes());
            (hash(HashDomain::CONF_ORDER, &data), d)
        })
        .collect();
    keyed.sort();
    keyed.dedup_by(|a, b| a.1 == b.1);
    keyed.into_iter().map(|(_, d)| d).collect()
}

/// Kbit/s of one participant's audio stream as QUIC sends it (50 frames a
/// second of Opus at up to 48 kbit/s with in-band FEC, the media header,
/// the key id, counter and tag, and QUIC's own bytes; measured: a tone
/// takes 60–68 kbit/s with UDP and IP): what an uplink needs for each copy
/// it sends.
pub const STREAM_KBPS: usize = 64;

/// How `me` sends in call `call` of `participants` (as this device sees
/// them, each with what it said of its links; the same on every device
/// once the room's events have reached it, so there is no election):
///
/// - a mesh up to [`MESH_SIZE`], unless a participant's measured uplink
///   cannot carry a copy of its frames for every other: then those
///   participants send through a forwarder (one for every
///   `PER_FORWARDER - 1` of them), the others still to everyone;
/// - beyond, ⌈n / 8⌉ participants forward and every other sends through
///   one of them (spread evenly, the next ones in turn if its own is not
///   reachable).
///
/// Forwarders are taken in this order: able to send a copy of two streams
/// to every other (no limit seen, or enough measured), then a member's
/// always-on device, then direct links, then the larger measured uplink,
/// then the call's [`order`]. A device that sees the participants
/// differently for a moment still asks its forwarder, which forwards for
/// whoever asks.
pub fn plan(call: CallId, participants: &[(DeviceId, Standing)], me: DeviceId) -> Plan {
    let standing: BTreeMap<DeviceId, Standing> = participants.iter().copied().collect();
    if !standing.contains_key(&me) {
        return Plan::Mesh;
    }
    let order = order(call, standing.keys().copied());
    let n = order.len();
    let others = n.saturating_sub(1);
    let of = |d: &DeviceId| standing.get(d).copied().unwrap_or_default();
    let weak: Vec<DeviceId> = order
        .iter()
        .filter(|d| of(d).weak(others))
        .copied()
        .collect();
    if n <= MESH_SIZE && weak.is_empty() {
        return Plan::Mesh;
    }
    // A stable sort: the call's order decides among equals.
    let mut ranked = order.clone();
    ranked.sort_by_key(|d| {
        let s = of(d);
        let uplink = match s.uplink_kbps {
            0 => u32::MAX,
            kbps => kbps,
        };
        (
            s.weak(others),
            !s.strong(others),
            !s.always_on,
            !s.direct,
            std::cmp::Reverse(uplink),
        )
    });
    let (forwarders, clients): (Vec<DeviceId>, Vec<DeviceId>) = if n > MESH_SIZE {
        let forwarders = ranked[..n.div_ceil(PER_FORWARDER)].to_vec();
        let clients = order
            .iter()
            .filter(|d| !forwarders.contains(d))
            .copied()
            .collect();
        (forwarders, clients)
    } else {
        let k = weak.len().div_ceil(PER_FORWARDER - 1);
        let forwarders: Vec<DeviceId> = ranked
            .iter()
            .filter(|d| !weak.contains(d))
            .take(k)
            .copied()
            .collect();
        (forwarders, weak)
    };
    if forwarders.is_empty() {
        return Plan::Mesh;
    }
    if forwarders.contains(&me) {
        return Plan::Forwarder;
    }
    let Some(i) = clients.iter().position(|d| *d == me) else {
        return Plan::Mesh;
    };
    let first = i % forwarders.len();
    Plan::Client(
        forwarders[first..]
            .iter()
            .chain(&forwarders[..first])
            .copied()
            .collect(),
    )
}

/// A conference datagram's first byte when a forwarder passes a frame
/// on: then the first [`ORIGIN_TAG`] bytes of its sender's device id, then
/// the frame as its sender sealed it. (A frame sent directly starts with
/// the media header, whose first byte is never `0xF_`.)
pub const RELAYED: u8 = 0xF1;
/// A forwarder's beat (this one byte) to each participant it forwards
/// for, every 100 ms, so a participant knows its forwarder is there when
/// no one speaks.
pub const BEAT: u8 = 0xF0;
/// Bytes of the sender's device id a relayed frame carries.
pub const ORIGIN_TAG: usize = 8;

/// A datagram on a conference link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// A frame from the participant at the other end.
    Own(&'a [u8]),
    /// A frame the participant at the other end forwards, from the
    /// participant whose device id starts with `origin`. The tag is not
    /// authenticated: the frame opens only under its real sender's key.
    Relayed {
        /// The first bytes of its sender's device id.
        origin: [u8; ORIGIN_TAG],
        /// The frame.
        frame: &'a [u8],
    },
    /// A forwarder's beat.
    Beat,
}

impl<'a> Datagram<'a> {
    /// Reads a datagram's framing (the frame inside is checked by its
    /// reader).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let bad = |why| WireError::Invalid {
            what: "conference datagram",
            why,
        };
        match bytes.split_first() {
            Some((&BEAT, [])) => Ok(Datagram::Beat),
            Some((&RELAYED, rest)) => {
                let (origin, frame) = rest
                    .split_first_chunk::<ORIGIN_TAG>()
                    .ok_or(bad("too short"))?;
                if frame.is_empty() {
                    return Err(bad("no frame"));
                }
                Ok(Datagram::Relayed {
                    origin: *origin,
                    frame,
                })
            }
            Some((first, _)) if first & 0xF0 != 0xF0 => Ok(Datagram::Own(bytes)),
            Some(_) => Err(bad("unknown")),
            None => Err(bad("empty")),
        }
    }

    /// The datagram that passes `frame` on from `origin`.
    pub fn relay(origin: &DeviceId, frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + ORIGIN_TAG + frame.len());
        out.push(RELAYED);
        out.extend_from_slice(&tag_of(origin));
        out.extend_from_slice(frame);
        out
    }
}

/// The tag a relayed frame from `dev` carries.
pub fn tag_of(dev: &DeviceId) -> [u8; ORIGIN_TAG] {
    let mut t = [0u8; ORIGIN_TAG];
    t.copy_from_slice(&dev.as_bytes()[..ORIGIN_TAG]);
    t
}

/// Bytes a sealed frame adds to its payload: key id, counter and tag.
pub const FRAME_OVERHEAD: usize = 4 + 8 + AEAD_TAG_LEN;

/// A sender's streams under one key: each counts its frames on its own
/// and has a nonce space of its own (the stream's number is the nonce's
/// fifth byte), so a frame of one never opens as a frame of another, and
/// each has its own replay window at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Audio frames.
    Audio = 0,
    /// Pieces of video frames (every simulcast layer).
    Video = 1,
}

/// How many [`Stream`]s there are.
const STREAMS: usize = 2;

fn nonce(kid: u32, stream: Stream, ctr: u64) -> [u8; AEAD_NONCE_LEN] {
    let mut n = [0u8; AEAD_NONCE_LEN];
    n[..4].copy_from_slice(&kid.to_be_bytes());
    n[4] = stream as u8;
    n[16..].copy_from_slice(&ctr.to_be_bytes());
    n
}

fn aad(header: &[u8], kid: u32, ctr: u64) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + 12);
    a.extend_from_slice(header);
    a.extend_from_slice(&kid.to_be_bytes());
    a.extend_from_slice(&ctr.to_be_bytes());
    a
}

/// Key ids a participant starts from are below this, so they can rise
/// for as long as any call lasts without wrapping.
pub const FIRST_KID_BELOW: u32 = 1 << 31;

/// One of this device's sender keys. Zeroized on drop; no `Debug` of the
/// key.
pub struct SenderKey {
    kid: u32,
    key: AeadKey,
    /// Each stream's next counter.
    next: [u64; STREAMS],
}

impl fmt::Debug for SenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SenderKey({}, ..)", self.kid)
    }
}

impl SenderKey {
    /// A fresh random key with id `kid`.
    pub fn generate(kid: u32) -> Self {
        SenderKey {
            kid,
            key: AeadKey::generate(),
            next: [0; STREAMS],
        }
    }

    /// Its id.
    pub fn kid(&self) -> u32 {
        self.kid
    }

    /// The message that gives it to a participant.
    pub fn announce(&self) -> ConfMsg {
        ConfMsg::Key {
            kid: self.kid,
            key: self.key.as_secret().clone(),
        }
    }

    /// Seals one frame's payload, authenticating `header` (the media
    /// packet's clear header) too: `kid ‖ ctr ‖ ciphertext ‖ tag`.
    pub fn seal(&mut self, header: &[u8], payload: &[u8]) -> Vec<u8> {
        self.seal_stream(Stream::Audio, header, payload)
    }

    /// Seals one frame of `stream` (see [`SenderKey::seal`]).
    pub fn seal_stream(&mut self, stream: Stream, header: &[u8], payload: &[u8]) -> Vec<u8> {
        let next = &mut self.next[stream as usize];
        let ctr = *next;
        *next += 1;
        let sealed = aead_encrypt_with_nonce(
            &self.key,
            &nonce(self.kid, stream, ctr),
            &aad(header, self.kid, ctr),
            payload,
        );
        let mut out = Vec::with_capacity(12 + sealed.len());
        out.extend_from_slice(&self.kid.to_be_bytes());
        out.extend_from_slice(&ctr.to_be_bytes());
        out.extend_from_slice(&sealed);
        out
    }
}

/// Why a sealed frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than the key id, counter and tag.
    #[error("a sealed frame of {0} bytes is too short")]
    Short(usize),
    /// Under a key this receiver does not hold (never given, or retired
    /// by a rotation).
    #[error("a frame under a key not held here")]
    UnknownKey,
    /// Under a key newer than any given yet (its key message may still be
    /// on its way: not the sender's fault).
    #[error("a frame under a key not given yet")]
    EarlyKey,
    /// Under a key older than the first this receiver was given (the
    /// sender sealed with it before this receiver was linked, and never
    /// gives a key it used to a newcomer): not the sender's fault.
    #[error("a frame under a key from before this receiver's first")]
    BeforeFirstKey,
    /// A counter already seen (or too far behind).
    #[error("a replayed frame")]
    Replayed,
    /// It does not open under the key it names.
    #[error("a frame that does not open")]
    Forged,
}

/// How far behind the highest counter seen a frame may still come.
const WINDOW: u64 = 128;

struct Held {
    kid: u32,
    key: AeadKey,
    /// Each stream's replay window.
    windows: [Window; STREAMS],
}

impl Held {
    fn new(kid: u32, key: SecretBytes<32>) -> Self {
        Held {
            kid,
            key: AeadKey::from_bytes(key),
            windows: [Window::default(), Window::default()],
        }
    }
}

/// One stream's counters seen under one key.
#[derive(Default)]
struct Window {
    /// The highest counter opened, and which of the [`WINDOW`] below it
    /// were (bit i: `highest - i`).
    highest: Option<u64>,
    seen: u128,
}

impl Window {
    fn fresh(&self, ctr: u64) -> bool {
        match self.highest {
            None => true,
            Some(h) if ctr > h => true,
            Some(h) => {
                let back = h - ctr;
                back < WINDOW && self.seen & (1u128 << back) == 0
            }
        }
    }

    fn mark(&mut self, ctr: u64) {
        match self.highest {
            Some(h) if ctr <= h => self.seen |= 1u128 << (h - ctr),
            Some(h) => {
                let shift = ctr - h;
                self.seen = if shift >= WINDOW {
                    0
                } else {
                    self.seen << shift
                };
                self.seen |= 1;
                self.highest = Some(ctr);
            }
            None => {
                self.seen = 1;
                self.highest = Some(ctr);
            }
        }
    }
}

/// Most keys of one sender a receiver holds at once (a sender that makes
/// new keys quickly, several within the time it waits before using one,
/// still has its frames opened).
pub const KEYS_HELD: usize = 4;

/// One sender's keys as a receiver holds them: the last [`KEYS_HELD`]
/// given, oldest first; a frame under one of them retires every older one.
#[derive(Default)]
pub struct SenderKeys {
    held: Vec<Held>,
    /// Keys given so far (a sender that floods keys is cut off by the
    /// caller).
    given: u64,
    /// The last key id given: ids only rise.
    last_kid: Option<u32>,
    /// The first key id given.
    first_kid: Option<u32>,
}

impl fmt::Debug for SenderKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<u32> = self.held.iter().map(|h| h.kid).collect();
        write!(f, "SenderKeys({kids:?})")
    }
}

impl SenderKeys {
    /// Takes the sender's new key. Key ids only rise: a key id not above
    /// the last one given is refused (false), so no key message can bring
    /// a retired key back.
    pub fn add(&mut self, kid: u32, key: SecretBytes<32>) -> bool {
        if self.last_kid.is_some_and(|last| kid <= last) {
            return false;
        }
        self.last_kid = Some(kid);
        self.first_kid.get_or_insert(kid);
        self.given += 1;
        if self.held.len() >= KEYS_HELD {
            self.held.remove(0);
        }
        self.held.push(Held::new(kid, key));
        true
    }

    /// Keys given so far.
    pub fn given(&self) -> u64 {
        self.given
    }

    /// The newest key id given, if any.
    pub fn current_kid(&self) -> Option<u32> {
        self.held.last().map(|h| h.kid)
    }

    /// Opens a sealed payload (`kid ‖ ctr ‖ ciphertext ‖ tag`) whose clear
    /// header is `header`.
    pub fn open(&mut self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, FrameError> {
        self.open_stream(Stream::Audio, header, sealed)
    }

    /// Opens a sealed frame of `stream` (see [`SenderKeys::open`]).
    pub fn open_stream(
        &mut self,
        stream: Stream,
        header: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, FrameError> {
        if sealed.len() < FRAME_OVERHEAD {
            return Err(FrameError::Short(sealed.len()));
        }
        let mut kid = [0u8; 4];
        kid.copy_from_slice(&sealed[..4]);
        let kid = u32::from_be_bytes(kid);
        let mut ctr = [0u8; 8];
        ctr.copy_from_slice(&sealed[4..12]);
        let ctr = u64::from_be_bytes(ctr);
        if self.last_kid.is_none_or(|last| kid > last) {
            return Err(FrameError::EarlyKey);
        }
        if self.first_kid.is_some_and(|first| kid < first) {
            return Err(FrameError::BeforeFirstKey);
        }
        let at = self
            .held
            .iter()
            .position(|h| h.kid == kid)
            .ok_or(FrameError::UnknownKey)?;
        let held = &mut self.held[at];
        if !held.windows[stream as usize].fresh(ctr) {
            return Err(FrameError::Replayed);
        }
        let plain = aead_decrypt_with_nonce(
            &held.key,
            &nonce(kid, stream, ctr),
            &aad(header, kid, ctr),
            &sealed[12..],
        )
        .map_err(|_| FrameError::Forged)?;
        held.windows[stream as usize].mark(ctr);
        // The sender uses this key: the older ones are retired.
        self.held.drain(..at);
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(k: &SenderKey) -> SecretBytes<32> {
        match k.announce() {
            ConfMsg::Key { key, .. } => key,
            _ => unreachable!(),
        }
    }

    #[test]
    fn room_call_events_round_trip_and_refuse_junk() {
        let call = CallId([7; 16]);
        let events = [
            RoomCall::Start(call),
            RoomCall::Join {
                call,
                device: DeviceId::from_bytes([1; 32]),
            },
            RoomCall::Leave {
                call,
                device: DeviceId::from_bytes([1; 32]),
            },
            RoomCall::End(call),
            RoomCall::Mute {
                call,
                target: AccountId::from_bytes([2; 32]),
                on: true,
            },
            RoomCall::Remove {
                call,
                target: AccountId::from_bytes([2; 32]),
            },
            RoomCall::Standing {
                call,
                device: DeviceId::from_bytes([1; 32]),
                standing: Standing {
                    uplink_kbps: 96,
                    always_on: true,
                    direct: false,
                },
            },
        ];
        for e in events {
            let bytes = e.encode();
            assert_eq!(RoomCall::decode(&bytes).unwrap(), e);
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(RoomCall::decode(&longer).is_err());
            assert!(RoomCall::decode(&bytes[..bytes.len() - 1]).is_err());
        }
        assert!(RoomCall::decode(&[9; 17]).is_err());
        let mut bad_mute = RoomCall::Mute {
            call,
            target: AccountId::from_bytes([2; 32]),
            on: false,
        }
        .encode();
        *bad_mute.last_mut().unwrap() = 2;
        assert!(RoomCall::decode(&bad_mute).is_err());
        let mut bad_flags = RoomCall::Standing {
            call,
            device: DeviceId::from_bytes([1; 32]),
            standing: Standing::default(),
        }
        .encode();
        *bad_flags.last_mut().unwrap() = 4;
        assert!(RoomCall::decode(&bad_flags).is_err());
    }

    #[test]
    fn control_messages_round_trip_and_hide_keys() {
        let key = SenderKey::generate(5);
        let msgs = [
            ConfMsg::Hello {
                room: LogId::from_bytes([3; 32]),
                call: CallId([4; 16]),
            },
            ConfMsg::Welcome(CallId([4; 16])),
            key.announce(),
            ConfMsg::Bye(CallId([4; 16])),
            ConfMsg::Forward(true),
            ConfMsg::Forward(false),
            ConfMsg::Via(None),
            ConfMsg::Via(Some(DeviceId::from_bytes([6; 32]))),
            ConfMsg::Layer(None),
            ConfMsg::Layer(Some(0)),
            ConfMsg::Layer(Some(VIDEO_LAYERS - 1)),
            ConfMsg::Pass(DeviceId::from_bytes([7; 32]), None),
            ConfMsg::Pass(DeviceId::from_bytes([7; 32]), Some(0)),
            ConfMsg::Pass(DeviceId::from_bytes([7; 32]), Some(VIDEO_LAYERS - 1)),
        ];
        for m in msgs {
            let bytes = m.encode();
            assert!(bytes.len() <= MAX_CONF_FRAME);
            assert_eq!(ConfMsg::decode(&bytes).unwrap().encode(), bytes);
            assert!(ConfMsg::decode(&[&bytes[..], &[0xFF]].concat()).is_err());
        }
        assert_eq!(format!("{:?}", key.announce()), "Key(5, ..)");
        assert!(ConfMsg::decode(&[0]).is_err());
        assert!(ConfMsg::decode(&[5, 2]).is_err());
        assert!(ConfMsg::decode(&[5]).is_err());
        assert!(ConfMsg::decode(&[6, 1, 2]).is_err());
        // No such layer.
        assert!(ConfMsg::decode(&[7, VIDEO_LAYERS]).is_err());
        assert!(ConfMsg::decode(&[&[8u8][..], &[7; 32], &[VIDEO_LAYERS]].concat()).is_err());
        assert!(ConfMsg::decode(&[8, 7, 7]).is_err());
        assert!(ConfMsg::decode(&[7, 0, 0]).is_err());
    }

    #[test]
    fn a_frame_of_one_stream_never_opens_as_another_and_each_has_its_own_window() {
        let mut key = SenderKey::generate(3);
        let mut keys = SenderKeys::default();
        let ConfMsg::Key { kid, key: secret } = key.announce() else {
            unreachable!()
        };
        assert!(keys.add(kid, secret));
        let audio = key.seal(b"h", b"audio");
        let video = key.seal_stream(Stream::Video, b"h", b"video");
        // Both start at counter 0, in nonce spaces of their own.
        assert_eq!(audio[4..12], video[4..12]);
        assert_eq!(
            keys.open_stream(Stream::Video, b"h", &audio),
            Err(FrameError::Forged)
        );
        assert_eq!(keys.open(b"h", &video), Err(FrameError::Forged));
        assert_eq!(keys.open(b"h", &audio).unwrap(), b"audio");
        assert_eq!(
            keys.open_stream(Stream::Video, b"h", &video).unwrap(),
            b"video"
        );
        // Replays are refused within each stream.
        assert_eq!(keys.open(b"h", &audio), Err(FrameError::Replayed));
        assert_eq!(
            keys.open_stream(Stream::Video, b"h", &video),
            Err(FrameError::Replayed)
        );
        // Many video pieces do not push audio out of its window.
        let next_audio = key.seal(b"h", b"a2");
        for _ in 0..500 {
            let v = key.seal_stream(Stream::Video, b"h", b"v");
            assert!(keys.open_stream(Stream::Video, b"h", &v).is_ok());
        }
        assert_eq!(keys.open(b"h", &next_audio).unwrap(), b"a2");
    }

    #[test]
    fn a_frame_under_a_key_from_before_the_first_given_is_not_held_against_its_sender() {
        let (mut before, first) = (SenderKey::generate(2), SenderKey::generate(3));
        let mut keys = SenderKeys::default();
        assert!(keys.add(3, key_of(&first)));
        assert_eq!(
            keys.open(b"h", &before.seal(b"h", b"x")),
            Err(FrameError::BeforeFirstKey)
        );
        // A key retired after it was given is another matter.
        let mut second = SenderKey::generate(4);
        assert!(keys.add(4, key_of(&second)));
        let mut first = first;
        keys.open(b"h", &second.seal(b"h", b"y")).unwrap();
        assert_eq!(
            keys.open(b"h", &first.seal(b"h", b"z")),
            Err(FrameError::UnknownKey)
        );
    }

    fn devices(n: u8) -> Vec<DeviceId> {
        (0..n).map(|i| DeviceId::from_bytes([i + 1; 32])).collect()
    }

    /// Participants that said nothing of their links.
    fn plain(devices: &[DeviceId]) -> Vec<(DeviceId, Standing)> {
        devices.iter().map(|d| (*d, Standing::default())).collect()
    }

    #[test]
    fn small_calls_are_a_mesh_and_larger_ones_agree_on_their_forwarders() {
        let call = CallId([9; 16]);
        let eight = devices(8);
        for d in &eight {
            assert_eq!(plan(call, &plain(&eight), *d), Plan::Mesh);
        }
        for n in [9u8, 12, 16, 17, 32] {
            let all = devices(n);
            let mut reversed = all.clone();
            reversed.reverse();
            let k = usize::from(n).div_ceil(PER_FORWARDER);
            let mut forwarders = Vec::new();
            let mut served: BTreeMap<DeviceId, usize> = BTreeMap::new();
            for d in &all {
                // The same whatever order the room lists them in.
                let p = plan(call, &plain(&all), *d);
                assert_eq!(p, plan(call, &plain(&reversed), *d));
                match p {
                    Plan::Forwarder => forwarders.push(*d),
                    Plan::Client(via) => {
                        assert_eq!(via.len(), k);
                        *served.entry(via[0]).or_default() += 1;
                    }
                    Plan::Mesh => panic!("{n} participants: a mesh"),
                }
            }
            assert_eq!(forwarders.len(), k, "{n} participants");
            let mut first: Vec<DeviceId> = order(call, all.iter().copied())[..k].to_vec();
            first.sort();
            assert_eq!(first, forwarders, "{n} participants");
            // Spread evenly: each forwarder serves at most one more than
            // any other, and at most PER_FORWARDER - 1.
            let (lo, hi) = (served.values().min(), served.values().max());
            assert!(hi.unwrap() - lo.unwrap() <= 1, "{n}: {served:?}");
            assert!(*hi.unwrap() < PER_FORWARDER, "{n}: {served:?}");
        }
        // Another call orders them otherwise.
        let twelve = devices(12);
        assert_ne!(
            order(call, twelve.iter().copied()),
            order(CallId([8; 16]), twelve.iter().copied())
        );
        // A device not in the call sends to no one through anyone.
        assert_eq!(
            plan(call, &plain(&twelve), DeviceId::from_bytes([99; 32])),
            Plan::Mesh
        );
    }

    /// Every participant's plan, as each computes it (with the room
    /// listing them in reverse for half of them: the same either way).
    fn plans(call: CallId, all: &[(DeviceId, Standing)]) -> BTreeMap<DeviceId, Plan> {
        let mut reversed = all.to_vec();
        reversed.reverse();
        all.iter()
            .map(|(d, _)| {
                let p = plan(call, all, *d);
                assert_eq!(p, plan(call, &reversed, *d));
                (*d, p)
            })
            .collect()
    }

    #[test]
    fn what_participants_say_of_their_links_picks_the_forwarders() {
        let call = CallId([9; 16]);
        let twelve = devices(12);
        let last = order(call, twelve.iter().copied())[11];
        // A member's always-on device forwards, however its id hashes.
        let mut all = plain(&twelve);
        for (d, s) in &mut all {
            s.always_on = *d == last;
        }
        assert_eq!(plans(call, &all)[&last], Plan::Forwarder);
        // Unless its measured uplink cannot carry two streams to everyone.
        for (d, s) in &mut all {
            if *d == last {
                s.uplink_kbps = (11 * STREAM_KBPS) as u32;
            }
        }
        assert!(matches!(plans(call, &all)[&last], Plan::Client(_)));
        // A relayed participant gives way to direct ones; a measured
        // uplink that carries it comes after the ones with no limit seen.
        let first = order(call, twelve.iter().copied())[..2].to_vec();
        let mut all = plain(&twelve);
        for (d, s) in &mut all {
            if *d == first[0] {
                s.direct = false;
            }
            if *d == first[1] {
                s.uplink_kbps = 10_000;
            }
        }
        let p = plans(call, &all);
        assert!(matches!(p[&first[0]], Plan::Client(_)));
        assert!(matches!(p[&first[1]], Plan::Client(_)));
        assert_eq!(p.values().filter(|p| **p == Plan::Forwarder).count(), 2);

        // In a call the mesh would carry, a participant whose uplink
        // cannot send a copy to each other sends through a forwarder; the
        // others stay a mesh, one of them forwarding for it.
        let four = devices(4);
        let weak = four[2];
        let mut all = plain(&four);
        for (d, s) in &mut all {
            if *d == weak {
                s.uplink_kbps = (2 * STREAM_KBPS) as u32;
            }
        }
        let p = plans(call, &all);
        let Plan::Client(via) = &p[&weak] else {
            panic!("{p:?}");
        };
        assert_eq!(via.len(), 1);
        assert_eq!(p[&via[0]], Plan::Forwarder);
        assert_eq!(p.values().filter(|p| **p == Plan::Mesh).count(), 2);
        // Enough measured for three copies: a mesh.
        for (d, s) in &mut all {
            if *d == weak {
                s.uplink_kbps = (3 * STREAM_KBPS) as u32;
            }
        }
        assert!(plans(call, &all).values().all(|p| *p == Plan::Mesh));
        // No one able to forward: a mesh (the best there is).
        for (_, s) in &mut all {
            s.uplink_kbps = 50;
        }
        assert!(plans(call, &all).values().all(|p| *p == Plan::Mesh));
    }

    #[test]
    fn datagrams_are_frames_relayed_frames_or_beats() {
        let dev = DeviceId::from_bytes([7; 32]);
        let frame = [0x10, 0, 0, 0, 1, 2, 3];
        assert_eq!(Datagram::parse(&frame), Ok(Datagram::Own(&frame)));
        let relayed = Datagram::relay(&dev, &frame);
        assert_eq!(
            Datagram::parse(&relayed),
            Ok(Datagram::Relayed {
                origin: tag_of(&dev),
                frame: &frame
            })
        );
        assert_eq!(Datagram::parse(&[BEAT]), Ok(Datagram::Beat));
        for junk in [
            &[][..],
            &[BEAT, 0],
            &[RELAYED],
            &relayed[..1 + ORIGIN_TAG],
            &[0xF2, 1, 2],
            &[0xFF],
        ] {
            assert!(Datagram::parse(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn frames_open_once_under_the_key_they_name() {
        let mut mine = SenderKey::generate(1);
        let mut theirs = SenderKeys::default();
        assert!(theirs.add(1, key_of(&mine)));
        let header = [1u8; 12];
        let a = mine.seal(&header, b"frame one");
        let b = mine.seal(&header, b"frame two");
        assert_eq!(a.len(), 9 + FRAME_OVERHEAD);
        assert_eq!(theirs.open(&header, &b).unwrap(), b"frame two");
        assert_eq!(theirs.open(&header, &a).unwrap(), b"frame one");
        // Replays, under either order.
        assert_eq!(theirs.open(&header, &a), Err(FrameError::Replayed));
        assert_eq!(theirs.open(&header, &b), Err(FrameError::Replayed));
        // The clear header is authenticated; so is every byte sealed.
        let c = mine.seal(&header, b"frame three");
        assert_eq!(theirs.open(&[2u8; 12], &c), Err(FrameError::Forged));
        let mut flipped = c.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(theirs.open(&header, &flipped), Err(FrameError::Forged));
        // A forged frame does not use up its counter.
        assert_eq!(theirs.open(&header, &c).unwrap(), b"frame three");
        assert_eq!(theirs.open(&header, &c[..10]), Err(FrameError::Short(10)));
        // Far behind the window: refused.
        let mut late = Vec::new();
        for i in 0..200 {
            let f = mine.seal(&header, b"x");
            if i == 0 {
                late = f;
            } else {
                theirs.open(&header, &f).unwrap();
            }
        }
        assert_eq!(theirs.open(&header, &late), Err(FrameError::Replayed));
    }

    #[test]
    fn a_rotation_retires_the_old_key_once_the_new_one_is_used() {
        let mut old = SenderKey::generate(10);
        let mut new = SenderKey::generate(11);
        let mut theirs = SenderKeys::default();
        theirs.add(10, key_of(&old));
        let header = [0u8; 12];
        let before = old.seal(&header, b"old");
        let straggler = old.seal(&header, b"old, late");
        theirs.open(&header, &before).unwrap();
        theirs.add(11, key_of(&new));
        assert_eq!(theirs.current_kid(), Some(11));
        // Frames in flight under the old key still open until the new one
        // is used (also after further keys: a sender rotating quickly)...
        let in_flight = old.seal(&header, b"in flight");
        let mut newer = SenderKey::generate(12);
        theirs.add(12, key_of(&newer));
        assert_eq!(theirs.open(&header, &in_flight).unwrap(), b"in flight");
        theirs.open(&header, &new.seal(&header, b"new")).unwrap();
        // ...then never.
        assert_eq!(
            theirs.open(&header, &straggler),
            Err(FrameError::UnknownKey)
        );
        // No key message can bring it back (key ids only rise).
        assert!(!theirs.add(10, key_of(&old)));
        assert!(!theirs.add(11, key_of(&new)));
        assert_eq!(
            theirs.open(&header, &straggler),
            Err(FrameError::UnknownKey)
        );
        // The newest retires the one before.
        theirs
            .open(&header, &newer.seal(&header, b"newer"))
            .unwrap();
        assert_eq!(
            theirs.open(&header, &new.seal(&header, b"new again")),
            Err(FrameError::UnknownKey)
        );
        // At most KEYS_HELD are held: the oldest go first.
        for kid in 20..20 + KEYS_HELD as u32 + 2 {
            theirs.add(kid, key_of(&SenderKey::generate(kid)));
        }
        assert_eq!(
            theirs.open(&header, &newer.seal(&header, b"?")),
            Err(FrameError::UnknownKey)
        );
        // A key never given opens nothing.
        let mut stranger = SenderKey::generate(13);
        assert_eq!(
            theirs.open(&header, &stranger.seal(&header, b"?")),
            Err(FrameError::UnknownKey)
        );
        // One above every key given is early (its key may be on its way),
        // and opens once it comes.
        let mut next = SenderKey::generate(1000);
        let early = next.seal(&header, b"early");
        assert_eq!(theirs.open(&header, &early), Err(FrameError::EarlyKey));
        theirs.add(1000, key_of(&next));
        assert_eq!(theirs.open(&header, &early).unwrap(), b"early");
        // The same key id with another key (a forger guessing the id).
        let kid = theirs.current_kid().unwrap();
        let mut forger = SenderKey::generate(kid);
        let forged = (0..5).map(|_| forger.seal(&header, b"?")).last().unwrap();
        assert_eq!(theirs.open(&header, &forged), Err(FrameError::Forged));
    }

    #[test]
    fn the_conference_follows_its_events() {
        let (a, b) = (
            AccountId::from_bytes([1; 32]),
            AccountId::from_bytes([2; 32]),
        );
        let (da, db) = (
            DeviceId::from_bytes([11; 32]),
            DeviceId::from_bytes([12; 32]),
        );
        let call = CallId([5; 16]);
        let c = AccountId::from_bytes([3; 32]);
        let mut on = None;
        let mut removed = BTreeSet::new();
        let refuse = |on: &Option<Conference>, removed: &BTreeSet<AccountId>, who, e: &RoomCall| {
            Conference::refuse(on.as_ref(), removed, (who, false), e)
        };
        let join_a = RoomCall::Join { call, device: da };
        assert!(refuse(&on, &removed, a, &join_a).is_some());
        Conference::apply(&mut on, &mut removed, a, &RoomCall::Start(call));
        assert!(refuse(&on, &removed, b, &RoomCall::Start(CallId([6; 16]))).is_some());
        Conference::apply(&mut on, &mut removed, a, &join_a);
        // Another account cannot take a device that is in the call.
        assert_eq!(
            refuse(&on, &removed, b, &join_a),
            Some("that device is another account's")
        );
        Conference::apply(
            &mut on,
            &mut removed,
            b,
            &RoomCall::Join { call, device: db },
        );
        assert_eq!(on.as_ref().unwrap().participants.len(), 2);
        // At most MAX_DEVICES_EACH devices of one account.
        for i in 0..MAX_DEVICES_EACH as u8 - 1 {
            let e = RoomCall::Join {
                call,
                device: DeviceId::from_bytes([100 + i; 32]),
            };
            assert!(refuse(&on, &removed, b, &e).is_none());
            Conference::apply(&mut on, &mut removed, b, &e);
        }
        let one_more = RoomCall::Join {
            call,
            device: DeviceId::from_bytes([99; 32]),
        };
        assert!(refuse(&on, &removed, b, &one_more).is_some());
        // Only the device's own account takes it out.
        let leave_a = RoomCall::Leave { call, device: da };
        assert!(refuse(&on, &removed, b, &leave_a).is_some());
        assert!(refuse(&on, &removed, a, &leave_a).is_none());
        // Only a participant's own account says what its links are; the
        // last word stands, and goes with the device.
        let says = |uplink_kbps| RoomCall::Standing {
            call,
            device: da,
            standing: Standing {
                uplink_kbps,
                ..Standing::default()
            },
        };
        assert!(refuse(&on, &removed, b, &says(1)).is_some());
        assert!(refuse(&on, &removed, a, &says(1)).is_none());
        Conference::apply(&mut on, &mut removed, a, &says(1));
        Conference::apply(&mut on, &mut removed, a, &says(2));
        assert_eq!(on.as_ref().unwrap().standing[&da].uplink_kbps, 2);
        // At most MAX_STANDINGS in a call.
        for k in 3..=MAX_STANDINGS {
            assert!(refuse(&on, &removed, a, &says(k)).is_none());
            Conference::apply(&mut on, &mut removed, a, &says(k));
        }
        assert!(refuse(&on, &removed, a, &says(99)).is_some());
        // A join while in the call keeps what it said (a join is no way
        // round the cap).
        Conference::apply(
            &mut on,
            &mut removed,
            a,
            &RoomCall::Join { call, device: da },
        );
        assert!(on.as_ref().unwrap().standing.contains_key(&da));
        // A member who neither started it nor is the last in it cannot end
        // it; the one who started it, or a moderator, can.
        assert!(refuse(&on, &removed, c, &RoomCall::End(call)).is_some());
        assert!(refuse(&on, &removed, a, &RoomCall::End(call)).is_none());
        assert!(
            Conference::refuse(on.as_ref(), &removed, (c, true), &RoomCall::End(call)).is_none()
        );
        Conference::apply(
            &mut on,
            &mut removed,
            a,
            &RoomCall::Remove { call, target: b },
        );
        assert_eq!(on.as_ref().unwrap().participants.len(), 1);
        assert!(on.as_ref().unwrap().standing.contains_key(&da));
        Conference::apply(&mut on, &mut removed, a, &leave_a);
        assert!(on.as_ref().unwrap().standing.is_empty());
        Conference::apply(
            &mut on,
            &mut removed,
            a,
            &RoomCall::Join { call, device: da },
        );
        assert!(on.as_ref().unwrap().standing.is_empty());
        let again = RoomCall::Join { call, device: db };
        assert_eq!(
            refuse(&on, &removed, b, &again),
            Some("you were removed from this room's calls")
        );
        assert!(
            refuse(
                &on,
                &removed,
                a,
                &RoomCall::Join {
                    call: CallId([9; 16]),
                    device: da
                }
            )
            .is_some()
        );
        // A removal is taken with no call on too.
        assert!(
            refuse(
                &None,
                &removed,
                a,
                &RoomCall::Remove {
                    call: CallId([0; 16]),
                    target: c
                }
            )
            .is_none()
        );
        // A removal outlives the call: no new call, no joining one.
        Conference::apply(&mut on, &mut removed, a, &RoomCall::End(call));
        assert!(on.is_none());
        assert!(refuse(&on, &removed, b, &RoomCall::Start(CallId([7; 16]))).is_some());
        Conference::apply(&mut on, &mut removed, a, &RoomCall::Start(CallId([7; 16])));
        let join_new = RoomCall::Join {
            call: CallId([7; 16]),
            device: db,
        };
        assert!(refuse(&on, &removed, b, &join_new).is_some());
    }
}
