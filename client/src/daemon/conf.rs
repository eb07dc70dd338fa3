//! Conferences in rooms on this device: `kith call ROOM` starts the room's
//! conference (a room event) or joins the one on (another), and links with
//! every other participant on a connection of its own (ALPN
//! `kith/conf/1`). Each participant seals its frames under its own sender
//! key (`node_core::call::conf`), gives the key to each linked participant
//! on that link's control stream, and makes a new one whenever the
//! participants it is linked with change. Up to eight participants every
//! one sends its frames to every other (a full mesh); beyond, it sends
//! them to one forwarder, which passes them on (`node_core::call::conf::plan`).
//! Every receiver mixes what the others send.
//!
//! One task per conference owns the links and the keys; the media runs on
//! the audio thread (`media::media_runtime`): one task sends a sealed
//! frame per 20 ms to every linked participant, one reads each link's
//! datagrams into that participant's jitter buffer, and one mixes them on
//! its own 20 ms clock. None of the media tasks touches the node or the
//! store; the conference task looks at the room's state twice a second
//! (who is in the call, who was removed or muted, whether it ended).
//!
//! An incoming conference connection is checked before a byte of media is
//! read: its first frame must name a conference this device is in, and
//! the dialling device must be an active device of a member of that room
//! who was not removed from the call. See `docs/calls.md`.

mod video;

use super::Daemon;
use super::files::AbortOnDrop;
use super::media::{Counts, Heard};
use anyhow::{Result, bail};
use kith_media::codec::{FRAME_SAMPLES, VoiceDecoder, VoiceEncoder};
use kith_media::jitter::{Config, FRAME, JitterBuffer, Playout};
use kith_media::packet::{HEADER, Kind, MAX_PAYLOAD, Packet};
use node_core::call::CallId;
use node_core::call::conf::{
    BEAT, ConfMsg, Datagram, FIRST_KID_BELOW, FRAME_OVERHEAD, FrameError, MAX_CONF_FRAME, Plan,
    RoomCall, STREAM_KBPS, SenderKey, SenderKeys, Standing, Stream, VIDEO_LAYERS, tag_of,
};
use node_core::transport::{FrameReader, FrameWriter, Link};
use node_core::{AccountId, DeviceId, LogId};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

/// How long dialling one participant may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// How long an incoming conference connection has to say which it is.
const HELLO_WAIT: Duration = Duration::from_secs(3);
/// Most incoming conference connections being checked at once (one per
/// device).
const MAX_SERVING: usize = 32;
/// The least time between giving a key out and sealing with it.
const MIN_LEAD: Duration = Duration::from_millis(60);
/// Most bad datagrams (that do not open, replayed, under keys not held)
/// one participant may send in a second before its link is dropped.
const MAX_BAD_PER_SECOND: u32 = 100;
/// How long one control frame may take to leave.
const SEND_WAIT: Duration = Duration::from_secs(2);
/// How often the conference looks at the room's state.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// How long after giving out a new key this device seals with it (so the
/// key is there before the first frame under it).
const KEY_SWITCH: Duration = Duration::from_millis(200);
/// Longest wait between two dials of a participant that cannot be reached.
const MAX_REDIAL: Duration = Duration::from_secs(60);
/// How long a participant that others say are in the call stays with no
/// link to any of them before it gives up (a kicked member hears nothing
/// from the room, and everyone refuses it).
const ALONE_FOR: Duration = Duration::from_secs(20);
/// Most participants linked at once (every participant links with every
/// other, forwarded call or not: the links carry the keys).
const MAX_LINKED: usize = 32;
/// How long an incoming link waits for the room to say its device joined
/// (the joiner writes `Join` before it dials; the event may still be on
/// its way here).
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// Most links one device may bring up per minute (each makes every
/// participant make a new key).
const UPS_PER_MINUTE: usize = 6;
/// Most control messages per second on one link.
const MESSAGES_PER_SECOND: u32 = 50;
/// The level (mean absolute sample) above which a participant counts as
/// speaking: about −50 dBFS, above Opus's comfort noise.
const SPEAKING_LEVEL: f32 = 100.0;
/// How far a participant's level moves toward each frame's (about
/// 300 ms to follow a change; a frame not decoded counts as silent).
const LEVEL_FOLLOW: f32 = 0.07;
/// Most keys one participant may give in a minute (a participant that
/// floods keys is dropped).
const KEYS_PER_MINUTE: u64 = 60;
/// Times a weak device asks its only forwarder again before it leaves it
/// for [`FORWARDER_FAILED_FOR`] (and sends to everyone meanwhile).
const MAX_REASKS: u32 = 5;
/// How long a link of this device's must go through a relay before it
/// says its links are not direct (a new link may start on a relay until a
/// direct path is found).
const RELAYED_FOR: Duration = Duration::from_secs(10);
/// How long a directly sending participant's link may bring no frame that
/// opens (frames under a lost key, say) before it is dialled again.
const NO_FRAME_FOR: Duration = Duration::from_secs(10);
/// How long each measure of this device's uplink in a call runs.
const MEASURE_EVERY: Duration = Duration::from_secs(1);
/// How long a directly sending participant's link may bring nothing at all (no frame,
/// not even one under a key still on its way) before it counts as lost
/// and is dialled again. Longer than a two-person call's 1.5 s: a
/// participant whose uplink cannot carry the mesh loses much for the
/// seconds it takes to measure that and turn to a forwarder, and a link
/// dropped then comes back slowly over the same uplink.
const NOTHING_FOR: Duration = Duration::from_secs(3);
/// The share of what a link sent that its loss detection declared lost
/// from which the link counts as unable to carry it (the random loss of
/// a usable path stays below; an uplink a fifth short of what is sent is
/// above). Random loss above it on most links also counts: such a device
/// does better sending one stream.
const LIMITED_LOSS: f64 = 0.12;
/// Measures in a row with most links limited before this device says its
/// uplink is what got through.
const LIMITED_MEASURES: u32 = 2;
/// The least time between two standings this device writes in the room
/// (each is a room event).
const SAY_EVERY: Duration = Duration::from_secs(5);
/// Most conferences kept for `call status` (ended ones included).
const MAX_CONFS: usize = 8;
/// Inputs queued per conference.
const INPUTS: usize = 256;
/// Control frames queued per link.
const OUTGOING: usize = 32;
/// How long a forwarder may send no beat before the participants it
/// forwards for turn to the next one.
const FORWARDER_SILENT: Duration = Duration::from_millis(400);
/// How long a forwarder just asked has to send its first beat (the ask
/// travels on the control stream, which a busy link may hold up).
const FORWARDER_FIRST_BEAT: Duration = Duration::from_secs(1);
/// How long a forwarder given up on is not asked again.
const FORWARDER_FAILED_FOR: Duration = Duration::from_secs(10);
/// How often the conference checks its forwarder is there.
const ROUTE_EVERY: Duration = Duration::from_millis(100);
/// A forwarder beats every this many 20 ms ticks (100 ms).
const BEAT_TICKS: u64 = 5;
/// Most participants one forwarder forwards for.
const MAX_CLIENTS: usize = 2 * node_core::call::conf::PER_FORWARDER;
/// Most participants whose full video layer a forwarder passes on to one
/// receiver (the one speaking, and the one before while it changes).
const MAX_FULL_PASSES: usize = 2;
/// Most frames a second a forwarder passes on for one participant (one
/// 20 ms stream and its catch-up).
const RELAY_PER_SECOND: u32 = 60;

/// What a conference task is told.
enum Input {
    /// A new link with a participant (dialled or accepted).
    Up {
        dev: DeviceId,
        account: AccountId,
        link: Link,
        writer: FrameWriter,
        reader: FrameReader,
        /// This device dialled it.
        dialled: bool,
    },
    /// A control message from a participant on `link`.
    Msg(DeviceId, Link, ConfMsg),
    /// `link` to a participant ended (or its media stopped coming).
    Lost(DeviceId, Link),
    /// A dial came to nothing.
    Unreached(DeviceId),
    /// Ask a participant for this layer of its video (from the shower).
    Layer(DeviceId, Option<u8>),
    /// The user leaves.
    Hangup(oneshot::Sender<()>),
}

/// Counts only conferences have: frames refused by their sealing.
#[derive(Debug, Default)]
pub(super) struct SealCounts {
    /// Frames replayed (a counter seen before).
    pub replayed: AtomicU64,
    /// Frames under a key not held (never given, or retired).
    pub stale_key: AtomicU64,
    /// Frames that do not open under the key they name.
    pub forged: AtomicU64,
    /// Keys this device made.
    pub keys_made: AtomicU64,
}

/// One linked participant, as the media tasks see it.
struct Peer {
    link: Link,
    account: AccountId,
    keys: SenderKeys,
    jitter: JitterBuffer,
    decoder: VoiceDecoder,
    heard_from: Instant,
    /// When its link last brought a beat (it forwards for this device).
    beat_at: Instant,
    /// When its link last brought anything.
    heard_at: Instant,
    /// The forwarder it says its frames come through (a relayed frame of
    /// its is taken only from that one).
    via: Option<DeviceId>,
    /// Frames of its relayed in the current second, and when that began.
    relayed: (Instant, u32),
    /// A moderator muted its account: not played.
    silenced: bool,
    /// How loud its last frames were (a slow average of each frame's
    /// mean absolute sample).
    level: f32,
    /// The layer of this device's video it asked for.
    wants: Option<u8>,
    /// Bytes of each layer of its video that came in the current second,
    /// and when that began.
    video_in: [(Instant, u64); VIDEO_LAYERS as usize],
    /// The layer of its video this device asked for.
    asked: Option<u8>,
    /// The forwarder this device asked to pass that layer on (its video
    /// comes through one), if any.
    asked_via: Option<DeviceId>,
    /// Video of other participants it asked this device to pass on (this
    /// device forwarding their frames): the layer of each (at most
    /// [`MAX_LINKED`]).
    passes: HashMap<DeviceId, u8>,
    /// The most room its link's datagram queue had (what is queued on it
    /// now is how far below that it is): a forwarder passes no more of a
    /// video frame to a link backed up.
    roomiest: usize,
    /// The video frame (sender, layer, media time) a forwarder stopped
    /// passing on to it, its link backed up: none of its other pieces go.
    cut: Option<(DeviceId, u8, u32)>,
    /// Its last frame was silence (DTX): not decoded, nor are frames
    /// missing after it concealed, until it speaks again (a call of 32 has
    /// 31 such streams to mix most of the time; comfort noise from each is
    /// not worth two cores).
    quiet: bool,
    /// Its datagram reader.
    _reader: AbortOnDrop,
}

/// What the conference task and its media tasks share (never the node).
pub(super) struct Shared {
    id: CallId,
    /// This device.
    me: DeviceId,
    /// The audio thread its media tasks run on.
    rt: tokio::runtime::Handle,
    room: LogId,
    /// The key frames are sealed under now.
    key: Mutex<SenderKey>,
    /// A key given out, sealed with from the instant named (the send task
    /// switches; newer keys made before then replace it, the instant
    /// stays).
    pending: Mutex<Option<(SenderKey, Instant)>>,
    peers: Mutex<HashMap<DeviceId, Peer>>,
    /// When each participant's recent links were kept.
    ups: Mutex<HashMap<DeviceId, std::collections::VecDeque<Instant>>>,
    /// The user muted this device.
    muted: Arc<AtomicBool>,
    /// A moderator muted this device's account.
    forced_mute: AtomicBool,
    counts: Arc<Counts>,
    seal: SealCounts,
    /// Media bytes sent (this device's frames, to every participant it
    /// sends to), received, and forwarded for others: datagrams' payloads
    /// with our header (benchmarks).
    bytes: [AtomicU64; 3],
    /// This device's measured uplink cannot carry a copy of its frames
    /// for every other participant: it sends no video.
    weak: AtomicBool,
    /// This device is one of the call's forwarders (it forwards for those
    /// that ask; no one else does).
    forwarder: AtomicBool,
    /// Participants whose frames this device forwards to every other.
    clients: Mutex<HashSet<DeviceId>>,
    /// The participant that forwards this device's frames (in a call
    /// beyond a mesh), if any.
    via: Mutex<Option<DeviceId>>,
    /// What this device said of its links in the room (the default until
    /// it says otherwise).
    said: Mutex<Standing>,
    ended: Mutex<Option<String>>,
    /// The participant speaking now, if any.
    speaking: Mutex<Option<DeviceId>>,
    /// What was heard (written to `--audio-out` on leaving).
    heard: Arc<Heard>,
    /// The call's video here (`--video`), if on.
    video: Option<Arc<video::ConfVideo>>,
    /// Tests only: this device also sends replayed, forged and stale
    /// frames (`kith daemon --danger-conf-hostile`).
    hostile: bool,
    /// Benchmarks and tests: a copy of every key given to this device
    /// and of sealed frames received (see `kith daemon
    /// --danger-conf-dump`).
    dump: Option<std::path::PathBuf>,
}

impl Shared {
    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, Peer>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a link with `dev` may be kept now: fewer than
    /// [`UPS_PER_MINUTE`] kept in the last minute, and room for it.
    fn may_link(&self, dev: DeviceId) -> bool {
        let now = Instant::now();
        let mut ups = self.ups.lock().unwrap_or_else(|p| p.into_inner());
        let recent = ups.entry(dev).or_default();
        recent.retain(|at| now.duration_since(*at) < Duration::from_secs(60));
        let full = {
            let peers = self.peers();
            peers.len() >= MAX_LINKED && !peers.contains_key(&dev)
        };
        recent.len() < UPS_PER_MINUTE && !full
    }

    /// Counts a link kept with `dev`.
    fn linked_now(&self, dev: DeviceId) {
        let mut ups = self.ups.lock().unwrap_or_else(|p| p.into_inner());
        ups.entry(dev).or_default().push_back(Instant::now());
    }

    /// Whether a replay of `from`'s frame on its own link may be a copy
    /// that also came through its forwarder (named, linked, and not this
    /// device): while it turns from the forwarder to sending to everyone,
    /// the forwarder (it is still a client there until its `Forward(false)`
    /// comes) passes on a frame this device also gets directly, sometimes
    /// first. Such a replay is counted but not held against the link.
    fn relayed_too(&self, peers: &HashMap<DeviceId, Peer>, from: DeviceId) -> bool {
        peers
            .get(&from)
            .and_then(|p| p.via)
            .is_some_and(|f| f != self.me && f != from && peers.contains_key(&f))
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashSet<DeviceId>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn via(&self) -> Option<DeviceId> {
        *self.via.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn linked(&self) -> Vec<DeviceId> {
        let mut v: Vec<DeviceId> = self.peers().keys().copied().collect();
        v.sort();
        v
    }
}

struct Entry {
    tx: mpsc::Sender<Input>,
    shared: Arc<Shared>,
    ended_at: Option<Instant>,
}

impl Entry {
    /// Not over, nor ending (its task may still be saying so in the room).
    fn is_live(&self) -> bool {
        self.ended_at.is_none()
            && self
                .shared
                .ended
                .lock()
                .map(|e| e.is_none())
                .unwrap_or(false)
    }
}

/// The conferences of a daemon.
#[derive(Default)]
pub(super) struct Confs {
    table: Mutex<HashMap<CallId, Entry>>,
    /// Devices whose incoming conference connection is being checked now.
    serving: Mutex<std::collections::HashSet<DeviceId>>,
}

/// A device's place among the connections being checked; freed on drop.
struct Serving<'a>(&'a Confs, DeviceId);

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0
            .serving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

impl std::fmt::Debug for Confs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Confs({})", self.lock().len())
    }
}

impl Confs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place to check `dev`'s incoming connection: one per device, at
    /// most [`MAX_SERVING`] at once.
    fn serve_slot(&self, dev: DeviceId) -> Option<Serving<'_>> {
        let taken = {
            let mut s = self.serving.lock().unwrap_or_else(|p| p.into_inner());
            s.len() < MAX_SERVING && s.insert(dev)
        };
        // Made only when taken (a `Serving` dropped frees its device's
        // place, and takes the lock to do it).
        taken.then(|| Serving(self, dev))
    }

    /// The conference this device is in now, if any.
    fn live(&self) -> Option<(CallId, LogId, mpsc::Sender<Input>, Arc<Shared>)> {
        let t = self.lock();
        let (id, e) = t.iter().find(|(_, e)| e.is_live())?;
        Some((*id, e.shared.room, e.tx.clone(), Arc::clone(&e.shared)))
    }

    /// Whether this device is in a conference now.
    pub(super) fn busy(&self) -> bool {
        self.lock().values().any(Entry::is_live)
    }

    /// The conference (not over) a call id names or, without one, the one
    /// this device is in.
    fn find(&self, id: Option<&str>) -> Option<(CallId, mpsc::Sender<Input>, Arc<Shared>)> {
        let t = self.lock();
        let mut live = t.iter().filter(|(cid, e)| {
            e.is_live() && id.is_none_or(|p| cid.to_string().starts_with(&p.to_lowercase()))
        });
        let (cid, e) = live.next()?;
        Some((*cid, e.tx.clone(), Arc::clone(&e.shared)))
    }

    fn insert(&self, id: CallId, entry: Entry) -> bool {
        let mut t = self.lock();
        if t.values().any(Entry::is_live) {
            return false;
        }
        while t.len() >= MAX_CONFS {
            let oldest = t
                .iter()
                .filter_map(|(id, e)| e.ended_at.map(|at| (at, *id)))
                .min();
            match oldest {
                Some((_, id)) => t.remove(&id),
                None => return false,
            };
        }
        t.insert(id, entry);
        true
    }
}

/// `kith call ROOM`: starts the room's conference, or joins the one on.
pub(super) async fn start(
    d: &Arc<Daemon>,
    room: LogId,
    video: bool,
    audio: super::media::Audio,
) -> Result<CallId> {
    if d.calls.busy() {
        bail!("this device is already in a call (see `kith call status`)");
    }
    let now = crate::now_ms();
    let mut node = d.node.lock().await;
    let (id, started) = match node.room_conference(&room) {
        Some(c) => (c.id, false),
        None => (CallId::random(), true),
    };
    let rt = d.conf_audio()?;
    let shared = Arc::new(Shared {
        rt,
        id,
        me: d.device,
        room,
        key: Mutex::new(SenderKey::generate(
            u32::from_be_bytes(node_core::crypto::random_bytes()) % FIRST_KID_BELOW,
        )),
        pending: Mutex::new(None),
        peers: Mutex::new(HashMap::new()),
        ups: Mutex::new(HashMap::new()),
        muted: Arc::new(AtomicBool::new(false)),
        forced_mute: AtomicBool::new(false),
        counts: Arc::new(Counts::default()),
        seal: SealCounts::default(),
        bytes: Default::default(),
        weak: AtomicBool::new(false),
        forwarder: AtomicBool::new(false),
        clients: Mutex::new(HashSet::new()),
        via: Mutex::new(None),
        said: Mutex::new(Standing::default()),
        ended: Mutex::new(None),
        speaking: Mutex::new(None),
        heard: Arc::default(),
        video: (video || audio.video.send)
            .then(|| Arc::new(video::ConfVideo::new(audio.video.clone()))),
        dump: d.conf_dump.get().cloned(),
        hostile: d.conf_hostile.load(Ordering::Relaxed),
    });
    let (tx, rx) = mpsc::channel(INPUTS);
    // The place in the table first (two commands at once: one wins), then
    // the room's events; nothing is left behind if either fails.
    if !d.confs.insert(
        id,
        Entry {
            tx: tx.clone(),
            shared: Arc::clone(&shared),
            ended_at: None,
        },
    ) {
        bail!("this device is already in a call (see `kith call status`)");
    }
    let join = RoomCall::Join {
        call: id,
        device: d.device,
    };
    if started && let Err(e) = node.room_call(room, RoomCall::Start(id), now).await {
        d.confs.lock().remove(&id);
        return Err(e.into());
    }
    if let Err(e) = node.room_call(room, join, now).await {
        d.confs.lock().remove(&id);
        if started {
            let _ = node.room_call(room, RoomCall::End(id), now).await;
        }
        return Err(e.into());
    }
    let media = match start_media(d, &shared, &audio, tx.clone()) {
        Ok(m) => m,
        Err(e) => {
            d.confs.lock().remove(&id);
            let leave = RoomCall::Leave {
                call: id,
                device: d.device,
            };
            let _ = node.room_call(room, leave, now).await;
            if started {
                let _ = node.room_call(room, RoomCall::End(id), now).await;
            }
            return Err(e);
        }
    };
    drop(node);
    info!(call = %id, room = %room.short(12), started, "in the room's call");
    let task = Task {
        d: Arc::clone(d),
        shared,
        tx,
        writers: HashMap::new(),
        dialling: HashMap::new(),
        next_kid: 0,
        keys_given: HashMap::new(),
        audio,
        media: Some(media),
        alone_since: None,
        plan: Plan::Mesh,
        uplink: Uplink::new(),
        said_at: None,
        reasked: 0,
        relayed_since: None,
        failed: HashMap::new(),
        asked_at: Instant::now(),
    };
    d.spawn(tracing::Instrument::instrument(
        task.run(rx),
        span(&d.device),
    ));
    Ok(id)
}

/// The span of one device's conference work: its lines say which device
/// wrote them (several daemons may share a process's log: tests,
/// benchmarks).
pub(super) fn span(me: &DeviceId) -> tracing::Span {
    tracing::info_span!("conf", me = %me.short(8))
}

/// Serves an incoming conference connection. Before anything is read,
/// the dialling device must be in the conference this device is in: an
/// active device of a member of the room, not removed from the call,
/// whose joining the room's events say (waited for up to [`JOIN_WAIT`]:
/// the joiner writes it before it dials). Its first frame must then name
/// that very conference.
pub(super) async fn serve(d: Arc<Daemon>, link: Link) {
    let peer = link.peer();
    let Some((call, room, tx, shared)) = d.confs.live() else {
        link.close("not in a call");
        return;
    };
    if peer == d.device {
        link.close("not in the call");
        return;
    }
    let Some(_slot) = d.confs.serve_slot(peer) else {
        link.close("busy");
        return;
    };
    let deadline = Instant::now() + JOIN_WAIT;
    let account = loop {
        let (member, listed) = {
            let node = d.node.lock().await;
            (
                node.conference_member(&room, call, &peer),
                node.conference_participant(&room, call, &peer),
            )
        };
        match (member, listed) {
            (_, Some(account)) => break account,
            (Some(_), None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            (member, _) => {
                debug!(peer = %peer.short(8), member = member.is_some(), "conference connection from a device not in the call: refused");
                link.close("not in the call");
                return;
            }
        }
    };
    if !shared.may_link(peer) {
        link.close("too many links");
        return;
    }
    let opened = tokio::time::timeout(HELLO_WAIT, async {
        let (writer, mut reader) = link.accept().await.ok()?;
        let frame = reader.recv_max(MAX_CONF_FRAME).await.ok()??;
        Some((writer, reader, frame))
    })
    .await;
    let Ok(Some((mut writer, reader, frame))) = opened else {
        link.close("no conference named");
        return;
    };
    match ConfMsg::decode(&frame) {
        Ok(ConfMsg::Hello { room: r, call: c }) if r == room && c == call => {}
        _ => {
            debug!(peer = %peer.short(8), "a conference connection that does not name this call");
            link.close("not that call");
            return;
        }
    }
    if tokio::time::timeout(SEND_WAIT, writer.send(&ConfMsg::Welcome(call).encode()))
        .await
        .map_or(true, |r| r.is_err())
    {
        link.close("no welcome");
        return;
    }
    if tx
        .try_send(Input::Up {
            dev: peer,
            account,
            link: link.clone(),
            writer,
            reader,
            dialled: false,
        })
        .is_err()
    {
        link.close("call busy");
    }
}

/// After a restart (a crash, a kill): this device is in no call, so where
/// a room still says it joined one, it leaves (and ends the call if it may
/// and no one else is in it), so no call stays on for a device gone.
pub(super) async fn recover(d: Arc<Daemon>) {
    let now = crate::now_ms();
    let mut node = d.node.lock().await;
    // A call started here since (the command socket may be first).
    let live = d.confs.live().map(|(id, ..)| id);
    let rooms: Vec<LogId> = node.rooms().into_iter().map(|r| r.id).collect();
    for room in rooms {
        let Some(conf) = node.room_conference(&room) else {
            continue;
        };
        if !conf.participants.contains_key(&d.device) || Some(conf.id) == live {
            continue;
        }
        let leave = RoomCall::Leave {
            call: conf.id,
            device: d.device,
        };
        if let Err(e) = node.room_call(room, leave, now).await {
            debug!(error = %e, "could not leave a call after a restart");
            continue;
        }
        info!(call = %conf.id, room = %room.short(12), "left a call this device was in before it restarted");
        if !conf.participants.keys().any(|dev| *dev != d.device) {
            let _ = node.room_call(room, RoomCall::End(conf.id), now).await;
        }
    }
}

/// Dials `dev` for conference `id` of `room`.
async fn dial(
    d: Arc<Daemon>,
    room: LogId,
    id: CallId,
    dev: DeviceId,
    account: AccountId,
    tx: mpsc::Sender<Input>,
) {
    let (addrs, relay) = {
        let node = d.node.lock().await;
        let mut addrs = node.hints_of(&dev);
        if let Some((_, more)) = node.dial_targets().into_iter().find(|(x, _)| *x == dev) {
            addrs.extend(more);
        }
        addrs.sort();
        addrs.dedup();
        (addrs, node.relay_of(&dev))
    };
    let up = tokio::time::timeout(CONNECT_WAIT, async {
        let link = d
            .transport
            .connect_conf(dev, &addrs, relay.as_deref())
            .await
            .ok()?;
        let (mut writer, mut reader) = link.open().await.ok()?;
        writer
            .send(&ConfMsg::Hello { room, call: id }.encode())
            .await
            .ok()?;
        match reader.recv_max(MAX_CONF_FRAME).await.ok()?? {
            f if matches!(ConfMsg::decode(&f), Ok(ConfMsg::Welcome(c)) if c == id) => {
                Some((link, writer, reader))
            }
            _ => {
                link.close("no welcome");
                None
            }
        }
    })
    .await
    .ok()
    .flatten();
    // Still in the call now that the link is up (the dial took a while).
    let up = match up {
        Some((link, writer, reader)) => {
            let still = d.node.lock().await.conference_participant(&room, id, &dev);
            if still == Some(account) {
                Some((link, writer, reader))
            } else {
                link.close("not in the call");
                None
            }
        }
        None => None,
    };
    let input = match up {
        Some((link, writer, reader)) => Input::Up {
            dev,
            account,
            link,
            writer,
            reader,
            dialled: true,
        },
        None => {
            debug!(peer = %dev.short(8), "could not reach a participant");
            Input::Unreached(dev)
        }
    };
    let _ = tx.send(input).await;
}

/// A link's control frames queued for its writer task, and its writer
/// and reader tasks (stopped when this is dropped).
type Writer = (mpsc::Sender<Zeroizing<Vec<u8>>>, AbortOnDrop, AbortOnDrop);

/// The conference's own task: links, keys, the room's word.
struct Task {
    d: Arc<Daemon>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Input>,
    /// Each link's control frames, sent by a task of its own.
    writers: HashMap<DeviceId, Writer>,
    /// Participants being dialled or not reached: when to try next, and
    /// how long to wait after that.
    dialling: HashMap<DeviceId, (Instant, Duration)>,
    next_kid: u32,
    /// Keys each participant gave in the current minute (across its
    /// links), and when that minute began.
    keys_given: HashMap<DeviceId, (Instant, u64)>,
    audio: super::media::Audio,
    media: Option<Media>,
    /// Since when no participant is linked while others are in the call.
    alone_since: Option<Instant>,
    /// How this device sends, from the room's participants.
    plan: Plan,
    /// Forwarders given up on (silent), and when.
    failed: HashMap<DeviceId, Instant>,
    /// When this device last asked a forwarder to forward.
    asked_at: Instant,
    /// What this device's uplink measures now.
    uplink: Uplink,
    /// When this device last said what its links are in the room.
    said_at: Option<Instant>,
    /// Times a weak device asked a forwarder again since one last beat.
    reasked: u32,
    /// Since when some link of this device's goes through a relay.
    relayed_since: Option<Instant>,
}

/// Measures this device's uplink in a call from its links' own loss
/// detection: when two thirds of the links (two at least) lose a fifth or
/// more of what they send, for [`LIMITED_MEASURES`] measures in a row, the
/// uplink is what got through. One link losing is that peer's downlink or
/// path (or that peer withholding acknowledgements), not this device's
/// uplink.
struct Uplink {
    /// Each link's bytes (sent, lost) at the last measure, by connection.
    last: HashMap<usize, (u64, u64)>,
    at: Instant,
    /// Measures in a row with most links limited.
    limited: u32,
    /// The uplink measured (kbit/s), 0 while no limit was seen.
    kbps: u32,
}

impl Uplink {
    fn new() -> Self {
        Uplink {
            last: HashMap::new(),
            at: Instant::now(),
            limited: 0,
            kbps: 0,
        }
    }

    /// One measure over `links` (each connection's id and bytes sent and
    /// lost so far), if one is due.
    fn measure(&mut self, links: &[(usize, (u64, u64))]) {
        let secs = self.at.elapsed().as_secs_f64();
        if secs < MEASURE_EVERY.as_secs_f64() {
            return;
        }
        self.at = Instant::now();
        let (mut busy, mut losing, mut through) = (0usize, 0usize, 0u64);
        for (id, (sent, lost)) in links {
            let Some((sent0, lost0)) = self.last.get(id) else {
                continue;
            };
            // A sum that fell: a path dropped; no measure.
            let (Some(s), Some(l)) = (sent.checked_sub(*sent0), lost.checked_sub(*lost0)) else {
                continue;
            };
            // Links that carry less than half of one stream say nothing.
            if (s as f64) < STREAM_KBPS as f64 * 125.0 * secs / 2.0 {
                continue;
            }
            busy += 1;
            if l as f64 >= s as f64 * LIMITED_LOSS {
                losing += 1;
            }
            through += s.saturating_sub(l);
        }
        self.last = links.iter().copied().collect();
        if busy >= 2 && losing * 3 >= busy * 2 {
            self.limited += 1;
        } else {
            self.limited = 0;
        }
        if self.limited >= LIMITED_MEASURES {
            let kbps = ((through as f64 * 8.0 / secs / 1000.0) as u32).max(1);
            // The lowest seen stands for the call: sending through a
            // forwarder, it no longer sends enough to see more.
            self.kbps = match self.kbps {
                0 => kbps,
                k => k.min(kbps),
            };
        }
    }
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        self.next_kid = self
            .shared
            .key
            .lock()
            .map(|k| k.kid())
            .unwrap_or(0)
            .saturating_add(1);
        let mut look = tokio::time::interval(LOOK_EVERY);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut route = tokio::time::interval(ROUTE_EVERY);
        route.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let why = loop {
            tokio::select! {
                input = rx.recv() => match input {
                    Some(Input::Hangup(done)) => {
                        self.finish("hung-up").await;
                        let _ = done.send(());
                        return;
                    }
                    Some(input) => self.input(input),
                    None => break "hung-up",
                },
                _ = look.tick() => {
                    if let Some(why) = self.look().await {
                        break why;
                    }
                }
                _ = route.tick() => self.route(),
            }
        };
        self.finish(why).await;
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Up {
                dev,
                account,
                link,
                writer,
                reader,
                dialled,
            } => self.up(dev, account, link, (writer, reader), dialled),
            Input::Msg(dev, link, msg) => {
                let mut peers = self.shared.peers();
                let Some(peer) = peers.get_mut(&dev).filter(|p| p.link.same_as(&link)) else {
                    return;
                };
                let now = Instant::now();
                let (since, given) = self.keys_given.entry(dev).or_insert((now, 0));
                if now.duration_since(*since) >= Duration::from_secs(60) {
                    (*since, *given) = (now, 0);
                }
                let wrong = match msg {
                    ConfMsg::Key { kid, key } => {
                        if let Some(dir) = &self.shared.dump {
                            dump_key(dir, dev, kid, &key);
                        }
                        *given += 1;
                        if *given > KEYS_PER_MINUTE {
                            Some("too many keys")
                        } else if !peer.keys.add(kid, key) {
                            Some("a key id that does not rise")
                        } else {
                            None
                        }
                    }
                    ConfMsg::Bye(call) if call == self.shared.id => {
                        info!(peer = %dev.short(8), "a participant left the call");
                        Some("left")
                    }
                    // Only a forwarder forwards, for at most MAX_CLIENTS (an
                    // asker it refuses hears no beat and turns elsewhere).
                    ConfMsg::Forward(on) => {
                        let mut clients = self.shared.clients();
                        if !on {
                            clients.remove(&dev);
                        } else if self.shared.forwarder.load(Ordering::Relaxed)
                            && clients.len() < MAX_CLIENTS
                            && clients.insert(dev)
                        {
                            debug!(peer = %dev.short(8), "forwarding a participant's frames");
                        }
                        None
                    }
                    ConfMsg::Via(via) => {
                        peer.via = via;
                        None
                    }
                    // What it takes of this device's video (nothing is
                    // sent unless this device has video on).
                    // A new taker of a layer gets a key frame (at most three
                    // a second per layer, as asked ones).
                    ConfMsg::Layer(layer) => {
                        if layer != peer.wants
                            && let (Some(l), Some(v)) = (layer, &self.shared.video)
                        {
                            v.want_key(l);
                        }
                        peer.wants = layer;
                        None
                    }
                    // What it takes of another participant's video that
                    // this device forwards (passed on only while that one
                    // is a client here, and only the layer named): at most
                    // MAX_LINKED choices, of participants linked here, the
                    // full layer of at most MAX_FULL_PASSES (a receiver
                    // takes the full layer of the participant speaking
                    // only, beyond a mesh); others are left as they were.
                    ConfMsg::Pass(of, layer) => {
                        let linked = of != dev && of != self.d.device && peers.contains_key(&of);
                        let peer = peers.get_mut(&dev);
                        match (layer, peer) {
                            (None, Some(peer)) => {
                                peer.passes.remove(&of);
                            }
                            (Some(l), Some(peer)) if linked => {
                                let full = peer
                                    .passes
                                    .iter()
                                    .filter(|(d, pl)| **d != of && **pl == VIDEO_LAYERS - 1)
                                    .count();
                                let room =
                                    peer.passes.len() < MAX_LINKED || peer.passes.contains_key(&of);
                                if room && (l < VIDEO_LAYERS - 1 || full < MAX_FULL_PASSES) {
                                    peer.passes.insert(of, l);
                                }
                            }
                            _ => {}
                        }
                        None
                    }
                    // Hello and Welcome only open a link; a bye for another
                    // call is not this one's.
                    _ => Some("a message out of place"),
                };
                drop(peers);
                if let Some(why) = wrong {
                    if why != "left" {
                        debug!(peer = %dev.short(8), why, "conference link dropped");
                    }
                    self.drop_peer(dev, why);
                }
            }
            Input::Lost(dev, link) => {
                let current = self
                    .shared
                    .peers()
                    .get(&dev)
                    .is_some_and(|p| p.link.same_as(&link));
                link.close("lost");
                if current {
                    info!(peer = %dev.short(8), "lost a participant's link");
                    self.drop_peer(dev, "lost");
                    self.dialling
                        .insert(dev, (Instant::now(), Duration::from_secs(1)));
                }
            }
            Input::Unreached(dev) => {
                if let Some((next, wait)) = self.dialling.get_mut(&dev) {
                    *next = Instant::now() + *wait;
                    *wait = (*wait * 2).min(MAX_REDIAL);
                }
            }
            Input::Layer(dev, layer) => {
                // Asked of the sender (it codes what is taken, and honours
                // requests for key frames of it), and of the forwarder its
                // frames come through, if any (it passes each layer on only
                // to those that asked).
                let (via, before) = {
                    let mut peers = self.shared.peers();
                    let via = peers
                        .get(&dev)
                        .and_then(|p| p.via)
                        .filter(|f| peers.contains_key(f));
                    match peers.get_mut(&dev) {
                        Some(p) => {
                            // A new layer's budget starts afresh.
                            if let Some(l) = layer
                                && p.asked != layer
                                && let Some(b) = p.video_in.get_mut(usize::from(l))
                            {
                                *b = (Instant::now(), 0);
                            }
                            p.asked = layer;
                            (via, p.asked_via)
                        }
                        None => (None, None),
                    }
                };
                self.tell(dev, &ConfMsg::Layer(layer));
                if let Some(old) = before
                    && before != via
                {
                    self.tell(old, &ConfMsg::Pass(dev, None));
                }
                // Kept as asked only once the ask is on its way (else
                // asked again).
                let asked_via = match via {
                    Some(f) => self.tell(f, &ConfMsg::Pass(dev, layer)).then_some(f),
                    None => None,
                };
                if let Some(p) = self.shared.peers().get_mut(&dev) {
                    p.asked_via = asked_via;
                }
            }
            Input::Hangup(_) => {}
        }
    }

    /// A link with `dev` is up. If one is up already, the one dialled by
    /// the lower device id is kept (both sides choose the same).
    fn up(
        &mut self,
        dev: DeviceId,
        account: AccountId,
        link: Link,
        (writer, reader): (FrameWriter, FrameReader),
        dialled_here: bool,
    ) {
        if self
            .shared
            .ended
            .lock()
            .map(|e| e.is_some())
            .unwrap_or(true)
        {
            link.close("the call is over here");
            return;
        }
        let replaces = match self.shared.peers().get(&dev) {
            Some(old) => {
                let keep_new = dialled_here == (self.d.device < dev);
                if !keep_new {
                    link.close("duplicate");
                    return;
                }
                Some(old.link.clone())
            }
            None => None,
        };
        if !self.shared.may_link(dev) {
            debug!(peer = %dev.short(8), "a participant links too often, or the call is full here: refused");
            link.close("too many links");
            // Not dialled again for a while.
            self.dialling
                .insert(dev, (Instant::now() + Duration::from_secs(30), MAX_REDIAL));
            return;
        }
        self.dialling.remove(&dev);
        if let Some(old) = replaces {
            old.close("duplicate");
        }
        self.shared.linked_now(dev);
        let Ok(decoder) = VoiceDecoder::new() else {
            link.close("no decoder");
            return;
        };
        let reader_task = spawn_datagram_reader(&self.shared, dev, link.clone(), self.tx.clone());
        let Some(reader_task) = reader_task else {
            link.close("no media thread");
            return;
        };
        self.shared.peers().insert(
            dev,
            Peer {
                link: link.clone(),
                account,
                keys: SenderKeys::default(),
                jitter: JitterBuffer::new(Config::default()),
                decoder,
                heard_from: Instant::now(),
                beat_at: Instant::now(),
                heard_at: Instant::now(),
                via: None,
                relayed: (Instant::now(), 0),
                silenced: false,
                level: 0.0,
                wants: None,
                video_in: [(Instant::now(), 0); VIDEO_LAYERS as usize],
                asked: None,
                asked_via: None,
                passes: HashMap::new(),
                roomiest: 0,
                cut: None,
                quiet: false,
                _reader: reader_task,
            },
        );
        // What it was asked to pass on went with the old link: asked again.
        for p in self.shared.peers().values_mut() {
            if p.asked_via == Some(dev) {
                p.asked_via = None;
            }
        }
        // Its control frames: read by one task, written by another.
        let (out_tx, out_rx) = mpsc::channel(OUTGOING);
        let write = tokio::spawn(write_frames(writer, out_rx, link.clone()));
        let read = tokio::spawn(read_frames(reader, dev, link.clone(), self.tx.clone()));
        self.writers
            .insert(dev, (out_tx, AbortOnDrop(write), AbortOnDrop(read)));
        info!(peer = %dev.short(8), "linked with a participant");
        // A new link: where this device's frames come from; with its
        // forwarder (the old link, and what was asked on it, is gone):
        // asked again.
        self.tell(dev, &ConfMsg::Via(self.shared.via()));
        if self.shared.hostile {
            hostile_passes(self, dev);
        }
        if self.shared.via() == Some(dev) {
            self.tell(dev, &ConfMsg::Forward(true));
            self.asked_at = Instant::now();
        }
        // A newcomer gets the key waiting to be used, if one is (nothing
        // was sealed under it yet); else everyone gets a new one.
        let waiting = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(key, _)| Zeroizing::new(key.announce().encode()));
        match (waiting, self.writers.get(&dev)) {
            (Some(frame), Some((out, ..))) => {
                let _ = out.try_send(frame);
            }
            _ => self.rotate(),
        }
    }

    fn drop_peer(&mut self, dev: DeviceId, why: &str) {
        let passing = {
            let mut peers = self.shared.peers();
            let gone = peers.remove(&dev);
            if let Some(p) = &gone {
                p.link.close(why);
            }
            for p in peers.values_mut() {
                p.passes.remove(&dev);
                // A forwarder that passed its video on to `dev` asked
                // again when linked again (its choices went with the link).
                if p.asked_via == Some(dev) {
                    p.asked_via = None;
                }
            }
            gone.and_then(|p| p.asked_via)
        };
        // The forwarder that passed on its video to this device stops.
        if let Some(f) = passing {
            self.tell(f, &ConfMsg::Pass(dev, None));
        }
        self.writers.remove(&dev);
        self.shared.clients().remove(&dev);
        self.rotate();
        if self.shared.via() == Some(dev) {
            self.failed.insert(dev, Instant::now());
            self.route();
        }
    }

    /// Sends one control message to a linked participant: false if it
    /// could not be queued.
    fn tell(&self, dev: DeviceId, msg: &ConfMsg) -> bool {
        self.writers
            .get(&dev)
            .is_some_and(|(out, ..)| out.try_send(Zeroizing::new(msg.encode())).is_ok())
    }

    /// Beyond a mesh, sends through a forwarder: keeps the one it has
    /// while it is heard from, else asks the first of its plan's
    /// forwarders that is linked and not given up on. With none, sends to
    /// everyone it is linked with.
    fn route(&mut self) {
        let now = Instant::now();
        self.failed
            .retain(|_, at| now.duration_since(*at) < FORWARDER_FAILED_FOR);
        let current = self.shared.via();
        let mut gave_up = None;
        let mut reasking = false;
        let want = match &self.plan {
            Plan::Client(forwarders) => {
                let peers = self.shared.peers();
                let mut keep = current.filter(|f| forwarders.contains(f) && peers.contains_key(f));
                // Its beats alone say it forwards (its own frames come
                // whether it forwards or not).
                let silent = |p: &Peer| {
                    if p.beat_at > self.asked_at {
                        now.duration_since(p.beat_at) >= FORWARDER_SILENT
                    } else {
                        now.duration_since(self.asked_at) >= FORWARDER_FIRST_BEAT
                    }
                };
                if let Some(f) = keep
                    && peers.get(&f).is_some_and(silent)
                {
                    info!(forwarder = %f.short(8), "the forwarder went silent: turning to the next");
                    self.failed.insert(f, now);
                    gave_up = Some(f);
                    keep = None;
                }
                // A forwarder that beats since it was asked: asked again
                // no more.
                if let Some(f) = keep
                    && peers.get(&f).is_some_and(|p| p.beat_at > self.asked_at)
                {
                    self.reasked = 0;
                }
                let reask = self.shared.weak.load(Ordering::Relaxed) && self.reasked < MAX_REASKS;
                keep.or_else(|| {
                    forwarders
                        .iter()
                        .find(|f| peers.contains_key(f) && !self.failed.contains_key(f))
                        .copied()
                })
                // With every forwarder given up on, a device whose uplink
                // cannot carry a copy for everyone asks its first one
                // again, a few times (sending to everyone would only lose
                // more; a forwarder that never beats is left after that).
                .or_else(|| {
                    reasking = reask;
                    reask
                        .then(|| forwarders.iter().find(|f| peers.contains_key(f)).copied())
                        .flatten()
                })
            }
            Plan::Mesh | Plan::Forwarder => None,
        };
        if reasking && want.is_some() {
            self.reasked += 1;
        }
        if want == current {
            // The one given up on asked again (the only one there is).
            if let Some(f) = want.filter(|f| gave_up == Some(*f)) {
                self.tell(f, &ConfMsg::Forward(true));
                self.asked_at = now;
            }
            return;
        }
        if let Some(old) = current {
            self.tell(old, &ConfMsg::Forward(false));
        }
        if let Some(new) = want {
            self.tell(new, &ConfMsg::Forward(true));
            self.asked_at = now;
            info!(forwarder = %new.short(8), "sending through a forwarder");
        }
        *self.shared.via.lock().unwrap_or_else(|p| p.into_inner()) = want;
        // Everyone learns where this device's frames come from.
        let via = ConfMsg::Via(want);
        let devs: Vec<DeviceId> = self.writers.keys().copied().collect();
        for dev in devs {
            self.tell(dev, &via);
        }
        // And gets a new key with it (whatever any of them missed, none
        // misses the next), sealed with a moment later.
        self.rotate();
    }

    /// A new sender key, given to every linked participant now and sealed
    /// with a moment later.
    fn rotate(&mut self) {
        let key = SenderKey::generate(self.next_kid);
        self.next_kid = self.next_kid.saturating_add(1);
        let frame = Zeroizing::new(key.announce().encode());
        for (out, ..) in self.writers.values() {
            // A link whose queue is full is too slow to keep: its writer
            // closes it when a frame takes too long.
            let _ = out.try_send(frame.clone());
        }
        self.shared.seal.keys_made.fetch_add(1, Ordering::Relaxed);
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // A key already waiting keeps its instant (keys made quickly one
        // after another never hold the switch off), but each gets at
        // least MIN_LEAD to arrive.
        let now = Instant::now();
        let at = pending
            .as_ref()
            .map_or(now + KEY_SWITCH, |(_, at)| (*at).max(now + MIN_LEAD));
        *pending = Some((key, at));
    }

    /// Follows the room: the call ended or this device was removed (the
    /// reason to leave), participants to link with or to drop, mutes.
    async fn look(&mut self) -> Option<&'static str> {
        let (conf, members, me_ok) = {
            let node = self.d.node.lock().await;
            let conf = node.room_conference(&self.shared.room);
            let linked: Vec<(DeviceId, AccountId)> = self
                .shared
                .peers()
                .iter()
                .map(|(d, p)| (*d, p.account))
                .collect();
            let members: Vec<(DeviceId, bool)> = linked
                .iter()
                .map(|(d, a)| {
                    let ok = node.conference_participant(&self.shared.room, self.shared.id, d)
                        == Some(*a);
                    (*d, ok)
                })
                .collect();
            let me_ok = node
                .conference_member(&self.shared.room, self.shared.id, &self.d.device)
                .is_some();
            (conf, members, me_ok)
        };
        let Some(conf) = conf.filter(|c| c.id == self.shared.id) else {
            return Some("call-ended");
        };
        if !me_ok {
            return Some("removed");
        }
        let participants: Vec<(DeviceId, Standing)> = conf
            .participants
            .iter()
            .filter(|(_, a)| !conf.removed.contains(a))
            .map(|(d, _)| (*d, conf.standing.get(d).copied().unwrap_or_default()))
            .collect();
        let plan = node_core::call::conf::plan(self.shared.id, &participants, self.d.device);
        let weak = participants
            .iter()
            .find(|(d, _)| *d == self.d.device)
            .is_some_and(|(_, s)| s.weak(participants.len().saturating_sub(1)));
        self.shared.weak.store(weak, Ordering::Relaxed);
        if plan != self.plan {
            debug!(?plan, "the call's plan changed");
            self.reasked = 0;
            self.shared
                .forwarder
                .store(plan == Plan::Forwarder, Ordering::Relaxed);
            if plan != Plan::Forwarder {
                self.shared.clients().clear();
            }
            self.plan = plan;
        }
        self.route();
        for (dev, ok) in members {
            if !ok {
                info!(peer = %dev.short(8), "a participant may no longer be in the call: dropped");
                self.drop_peer(dev, "not in the call");
            }
        }
        let forced = conf.muted.contains(&self.d.account);
        self.shared.forced_mute.store(forced, Ordering::Relaxed);
        {
            let mut peers = self.shared.peers();
            for p in peers.values_mut() {
                p.silenced = conf.muted.contains(&p.account);
            }
        }
        // Participants not linked: dialled (a joiner dials everyone on its
        // first look; later, whoever is due).
        let linked: BTreeSet<DeviceId> = self.shared.linked().into_iter().collect();
        let now = Instant::now();
        for (dev, account) in &conf.participants {
            if *dev == self.d.device || linked.contains(dev) || conf.removed.contains(account) {
                continue;
            }
            let due = self.dialling.get(dev).is_none_or(|(next, _)| *next <= now)
                && linked.len() < MAX_LINKED;
            if !due {
                continue;
            }
            let wait = self
                .dialling
                .get(dev)
                .map_or(Duration::from_secs(3), |(_, w)| *w);
            // Not again until this dial ends (it sets the next try).
            self.dialling.insert(*dev, (now + CONNECT_WAIT * 2, wait));
            let (d, room, id, tx) = (
                Arc::clone(&self.d),
                self.shared.room,
                self.shared.id,
                self.tx.clone(),
            );
            tokio::spawn(tracing::Instrument::in_current_span(dial(
                d, room, id, *dev, *account, tx,
            )));
        }
        self.dialling
            .retain(|dev, _| conf.participants.contains_key(dev));
        self.keys_given
            .retain(|dev, _| conf.participants.contains_key(dev));
        self.shared
            .ups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|dev, _| conf.participants.contains_key(dev));
        self.say_standing(&conf).await;
        let others = conf.participants.keys().any(|dev| *dev != self.d.device);
        if linked.is_empty() && others {
            if self.alone_since.get_or_insert(now).elapsed() >= ALONE_FOR {
                return Some("link-lost");
            }
        } else {
            self.alone_since = None;
        }
        None
    }

    /// Measures this device's uplink, and says in the room what its links
    /// are when that changed (at most every [`SAY_EVERY`]): the shared
    /// inputs of every participant's plan. A device that says nothing
    /// stands as the default (no limit seen, direct, not always on), so a
    /// call on good links writes no such event.
    async fn say_standing(&mut self, conf: &node_core::call::conf::Conference) {
        let (links, relayed) = {
            let peers = self.shared.peers();
            let links: Vec<(usize, (u64, u64))> = peers
                .values()
                .map(|p| (p.link.id(), p.link.sent_and_lost()))
                .collect();
            let relayed = peers
                .values()
                .any(|p| p.link.path() == node_core::transport::LinkPath::Relay);
            (links, relayed)
        };
        self.uplink.measure(&links);
        if !relayed {
            self.relayed_since = None;
        } else if self.relayed_since.is_none() {
            self.relayed_since = Some(Instant::now());
        }
        let said = *self.shared.said.lock().unwrap_or_else(|p| p.into_inner());
        let now_standing = Standing {
            uplink_kbps: self.uplink.kbps,
            always_on: self.d.always_on.load(Ordering::Relaxed),
            // With no link yet, what it said before stands; a link that
            // starts on a relay (before a direct path is found) counts
            // only after RELAYED_FOR.
            direct: if links.is_empty() {
                said.direct
            } else {
                self.relayed_since
                    .is_none_or(|at| at.elapsed() < RELAYED_FOR)
            },
        };
        let in_room = conf
            .standing
            .get(&self.d.device)
            .copied()
            .unwrap_or_default();
        if now_standing == in_room || self.said_at.is_some_and(|at| at.elapsed() < SAY_EVERY) {
            return;
        }
        self.said_at = Some(Instant::now());
        let event = RoomCall::Standing {
            call: self.shared.id,
            device: self.d.device,
            standing: now_standing,
        };
        let written = {
            let mut node = self.d.node.lock().await;
            node.room_call(self.shared.room, event, crate::now_ms())
                .await
        };
        match written {
            Ok(_) => {
                info!(
                    uplink_kbps = now_standing.uplink_kbps,
                    always_on = now_standing.always_on,
                    direct = now_standing.direct,
                    "said in the room what this device's links are"
                );
                *self.shared.said.lock().unwrap_or_else(|p| p.into_inner()) = now_standing;
            }
            Err(e) => warn!(error = %e, "could not say in the room what this device's links are"),
        }
    }

    /// Leaves: tells the participants, stops the media, writes the sound
    /// out, says so in the room (and ends the call there if no one else is
    /// in it).
    async fn finish(&mut self, why: &str) {
        let bye = Zeroizing::new(ConfMsg::Bye(self.shared.id).encode());
        for (out, ..) in self.writers.values() {
            let _ = out.try_send(bye.clone());
        }
        // A moment for the byes to leave.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.media = None;
        let peers: Vec<Peer> = self.shared.peers().drain().map(|(_, p)| p).collect();
        for p in peers {
            p.link.close("left the call");
        }
        self.writers.clear();
        if let Some(path) = &self.audio.output {
            self.shared.heard.write(path);
        }
        // Over here once what was heard is written (a script reading
        // `--audio-out` after `call status` says ended finds it whole).
        *self.shared.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_owned());
        let now = crate::now_ms();
        let (room, id, me) = (self.shared.room, self.shared.id, self.d.device);
        let mut node = self.d.node.lock().await;
        let on = node.room_conference(&room).filter(|c| c.id == id);
        if let Some(conf) = on {
            if conf.participants.contains_key(&me)
                && let Err(e) = node
                    .room_call(
                        room,
                        RoomCall::Leave {
                            call: id,
                            device: me,
                        },
                        now,
                    )
                    .await
            {
                warn!(error = %e, "could not say this device left the call");
            }
            let others = conf.participants.keys().any(|dev| *dev != me);
            if !others
                && why != "removed"
                && let Err(e) = node.room_call(room, RoomCall::End(id), now).await
            {
                debug!(error = %e, "could not end the call");
            }
        }
        drop(node);
        if let Some(e) = self.d.confs.lock().get_mut(&id) {
            e.ended_at = Some(Instant::now());
        }
        info!(call = %id, why, "left the room's call");
    }
}

/// Writes a link's control frames, each within [`SEND_WAIT`]; a link that
/// takes longer is closed.
async fn write_frames(
    mut writer: FrameWriter,
    mut rx: mpsc::Receiver<Zeroizing<Vec<u8>>>,
    link: Link,
) {
    while let Some(frame) = rx.recv().await {
        if !matches!(
            tokio::time::timeout(SEND_WAIT, writer.send(&frame)).await,
            Ok(Ok(()))
        ) {
            link.close("too slow");
            return;
        }
    }
}

/// Reads a link's control frames into the conference task.
async fn read_frames(mut reader: FrameReader, dev: DeviceId, link: Link, tx: mpsc::Sender<Input>) {
    let (mut window, mut count) = (Instant::now(), 0u32);
    loop {
        let frame = match reader.recv_max(MAX_CONF_FRAME).await {
            Ok(Some(f)) => Zeroizing::new(f),
            _ => break,
        };
        if window.elapsed() >= Duration::from_secs(1) {
            (window, count) = (Instant::now(), 0);
        }
        count += 1;
        if count > MESSAGES_PER_SECOND {
            debug!(peer = %dev.short(8), "too many conference messages: link dropped");
            break;
        }
        match ConfMsg::decode(&frame) {
            Ok(msg) => {
                if tx.send(Input::Msg(dev, link.clone(), msg)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                debug!(peer = %dev.short(8), error = %e, "a bad conference frame: link dropped");
                break;
            }
        }
    }
    let _ = tx.send(Input::Lost(dev, link)).await;
}

/// Reads a participant's datagrams: each opened under its sender key and
/// put in its jitter buffer; anything else is counted and dropped.
fn spawn_datagram_reader(
    shared: &Arc<Shared>,
    dev: DeviceId,
    link: Link,
    tx: mpsc::Sender<Input>,
) -> Option<AbortOnDrop> {
    let rt = shared.rt.clone();
    let shared = Arc::clone(shared);
    Some(AbortOnDrop(rt.spawn(async move {
        let mut dumped = 0u32;
        let (mut window, mut bad) = (Instant::now(), 0u32);
        loop {
            let Ok(bytes) = link.read_datagram().await else {
                let _ = tx.send(Input::Lost(dev, link)).await;
                return;
            };
            if window.elapsed() >= Duration::from_secs(1) {
                (window, bad) = (Instant::now(), 0);
            }
            if let Some(dir) = &shared.dump
                && dumped < 2000
            {
                dumped += 1;
                dump_frame(dir, dev, &bytes);
            }
            if !receive(&shared, dev, &bytes) {
                bad += 1;
                if bad > MAX_BAD_PER_SECOND {
                    debug!(peer = %dev.short(8), "too many bad frames: link dropped");
                    let _ = tx.send(Input::Lost(dev, link)).await;
                    return;
                }
            }
        }
    })))
}

/// What became of a frame.
#[derive(PartialEq)]
enum Taken {
    /// Opened and kept for playing.
    Opened,
    /// Left aside, not bad (its sender is not linked here, or its key has
    /// not come yet).
    Ignored,
    /// Seen before: counted (bad if it came from its sender itself).
    Replayed,
    /// Bad: counted.
    Bad,
}

/// Takes one datagram from the participant at the other end of a link
/// (`from`): its own frame, one it forwards from another participant, or
/// a forwarder's beat; false if it was bad. A frame of a participant this
/// device forwards for is passed on, once it opened here, to every other
/// participant linked.
fn receive(shared: &Shared, from: DeviceId, bytes: &[u8]) -> bool {
    shared.bytes[1].fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let datagram = match Datagram::parse(bytes) {
        Ok(d) => d,
        Err(_) => {
            shared.counts.bad.fetch_add(1, Ordering::Relaxed);
            return false;
        }
    };
    let mut peers = shared.peers();
    // A frame of its own or one it forwards (a beat counts only as a beat).
    if !matches!(datagram, Datagram::Beat)
        && let Some(p) = peers.get_mut(&from)
    {
        p.heard_at = Instant::now();
    }
    match datagram {
        Datagram::Beat => {
            if let Some(p) = peers.get_mut(&from) {
                p.beat_at = Instant::now();
            }
            true
        }
        Datagram::Own(frame) => {
            // Decoded once: video goes to its own path, audio is taken.
            let packet = match Packet::decode(frame) {
                Ok(p) if p.kind != Kind::Audio => {
                    let (ok, relay) = video::receive(shared, &mut peers, from, frame, p);
                    // Passed on once the lock is released.
                    drop(peers);
                    relay.send(shared);
                    return ok;
                }
                other => other.ok(),
            };
            let relayed_too = shared.relayed_too(&peers, from);
            let mut taken = take(shared, &mut peers, from, frame, packet);
            if taken == Taken::Replayed && !relayed_too {
                taken = Taken::Bad;
            }
            let mut relay = taken == Taken::Opened && shared.clients().contains(&from);
            if relay && let Some(p) = peers.get_mut(&from) {
                let (since, count) = &mut p.relayed;
                if since.elapsed() >= Duration::from_secs(1) {
                    (*since, *count) = (Instant::now(), 0);
                }
                *count += 1;
                relay = *count <= RELAY_PER_SECOND;
            }
            if relay {
                let links = peers
                    .iter()
                    .filter(|(dev, _)| **dev != from)
                    .map(|(_, p)| p.link.clone())
                    .collect();
                drop(peers);
                Relay {
                    bytes: Datagram::relay(&from, frame),
                    links,
                }
                .send(shared);
            }
            taken != Taken::Bad
        }
        // Taken only from the forwarder its sender named to this device
        // (on their own link), so no other participant can pass frames off
        // as another's. What fails to open is counted but never held
        // against the forwarder: it checked the frame under its own copy
        // of the sender's key, and the sender may have given this device
        // another (or not yet its newest).
        Datagram::Relayed { origin, frame } => {
            let sender = peers
                .iter()
                .find(|(d, p)| **d != from && tag_of(d) == origin && p.via == Some(from))
                .map(|(d, _)| *d);
            if let Some(sender) = sender {
                match Packet::decode(frame) {
                    Ok(p) if p.kind == Kind::Video => {
                        video::receive_relayed(shared, &mut peers, sender, frame, p);
                    }
                    packet => {
                        take(shared, &mut peers, sender, frame, packet.ok());
                    }
                }
            }
            true
        }
    }
}

/// A frame a forwarder passes on, and the links it goes to (sent once the
/// participants' lock is released: the mixer waits for it every 20 ms).
#[derive(Default)]
pub(super) struct Relay {
    pub(super) bytes: Vec<u8>,
    pub(super) links: Vec<Link>,
}

impl Relay {
    fn send(self, shared: &Shared) {
        for link in &self.links {
            if link.send_datagram(self.bytes.clone()).is_ok() {
                shared.bytes[2].fetch_add(self.bytes.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Opens one frame of participant `dev` (`bytes`, decoded as `packet` if
/// it decodes) into its jitter buffer.
fn take(
    shared: &Shared,
    peers: &mut HashMap<DeviceId, Peer>,
    dev: DeviceId,
    bytes: &[u8],
    packet: Option<Packet>,
) -> Taken {
    let counts = &shared.counts;
    let packet = match packet {
        Some(p) if p.kind == Kind::Audio => p,
        _ => {
            counts.bad.fetch_add(1, Ordering::Relaxed);
            return Taken::Bad;
        }
    };
    let Some(peer) = peers.get_mut(&dev) else {
        return Taken::Ignored;
    };
    match peer.keys.open(&bytes[..HEADER], &packet.payload) {
        Ok(opus) => {
            peer.heard_from = Instant::now();
            peer.jitter
                .push(packet.seq, packet.ts, opus, peer.heard_from);
            counts.received.fetch_add(1, Ordering::Relaxed);
            Taken::Opened
        }
        Err(e) => refused(shared, e),
    }
}

/// Counts a frame that did not open: a frame under a key still on its
/// way, or under one the sender used before this device was linked (it
/// never gives those out), is not bad.
fn refused(shared: &Shared, e: FrameError) -> Taken {
    let c = match e {
        FrameError::EarlyKey | FrameError::BeforeFirstKey => return Taken::Ignored,
        FrameError::Replayed => {
            shared.seal.replayed.fetch_add(1, Ordering::Relaxed);
            return Taken::Replayed;
        }
        FrameError::UnknownKey => &shared.seal.stale_key,
        FrameError::Forged => &shared.seal.forged,
        FrameError::Short(_) => &shared.counts.bad,
    };
    c.fetch_add(1, Ordering::Relaxed);
    Taken::Bad
}

/// The conference's media tasks; they stop when this is dropped.
struct Media {
    _send: AbortOnDrop,
    _mix: AbortOnDrop,
    _video: Option<video::VideoThreads>,
}

fn start_media(
    d: &Daemon,
    shared: &Arc<Shared>,
    audio: &super::media::Audio,
    tx: mpsc::Sender<Input>,
) -> Result<Media> {
    let card = (audio.input.is_none() && audio.output.is_none()).then(|| d.sound_card());
    let device = super::media::open_card(card, &shared.counts);
    let encoder = VoiceEncoder::new(super::media::START_BITRATE, super::media::START_LOSS)?;
    let rt = d.conf_audio()?;
    let epoch = *shared
        .counts
        .clocks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .epoch
        .get_or_insert_with(Instant::now);
    let heard = Arc::clone(&shared.heard);
    let source = super::media::FrameSource {
        input: audio.input.clone(),
        device: Arc::clone(&device),
        mic: [0; FRAME_SAMPLES],
        from: Arc::new(AtomicU64::new(0)),
        muted: Arc::clone(&shared.muted),
    };
    let out = super::media::Outgoing::new(encoder, source, epoch, Arc::clone(&shared.counts));
    let video = match &shared.video {
        Some(v) => Some(video::start(shared, v, tx.clone())?),
        None => None,
    };
    let send = rt.spawn(send(Arc::clone(shared), out));
    let mix = rt.spawn(mix(Arc::clone(shared), device, heard, epoch, tx));
    Ok(Media {
        _send: AbortOnDrop(send),
        _mix: AbortOnDrop(mix),
        _video: video,
    })
}

/// Sends one sealed frame per 20 ms to every linked participant (the same
/// bytes to each: sealed once).
async fn send(shared: Arc<Shared>, mut out: super::media::Outgoing) {
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let counts = &shared.counts;
    let mut rate = super::media::Rate::new();
    // The key used before the current one (tests: a hostile sender's
    // frames under it), and the tick count.
    let mut retired: Option<SenderKey> = None;
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        ticks += 1;
        rate.roll(&counts.sent_bps);
        let now = Instant::now();
        {
            let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
            if pending.as_ref().is_some_and(|(_, at)| *at <= now)
                && let Some((key, _)) = pending.take()
            {
                let old = std::mem::replace(
                    &mut *shared.key.lock().unwrap_or_else(|p| p.into_inner()),
                    key,
                );
                // Kept only to play a hostile sender (tests).
                if shared.hostile {
                    retired = Some(old);
                }
            }
        }
        // Beyond a mesh, to the forwarder only (while it is linked); else
        // to everyone. A forwarder beats to those it forwards for.
        let (links, beats) = {
            let peers = shared.peers();
            let via = shared.via().and_then(|f| peers.get(&f));
            let links: Vec<Link> = match via {
                Some(p) => vec![p.link.clone()],
                None => peers.values().map(|p| p.link.clone()).collect(),
            };
            let beats: Vec<Link> = if ticks.is_multiple_of(BEAT_TICKS) {
                shared
                    .clients()
                    .iter()
                    .filter_map(|d| peers.get(d).map(|p| p.link.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            (links, beats)
        };
        for link in beats {
            let _ = link.send_datagram(vec![BEAT]);
        }
        let forced = shared.forced_mute.load(Ordering::Relaxed);
        for mut packet in out.due(now, forced) {
            if packet.payload.len() + FRAME_OVERHEAD > MAX_PAYLOAD {
                continue;
            }
            let header = packet.header();
            let payload = std::mem::take(&mut packet.payload);
            packet.payload = shared
                .key
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .seal(&header, &payload);
            let Ok(bytes) = packet.encode() else {
                continue;
            };
            for link in &links {
                if link.send_datagram(bytes.clone()).is_ok() {
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    rate.add(bytes.len());
                    shared.bytes[0].fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
            }
            if shared.hostile && ticks.is_multiple_of(10) {
                hostile_frames(&links, &bytes, &header, &payload, retired.as_mut());
                let mut key = shared.key.lock().unwrap_or_else(|p| p.into_inner());
                hostile_video(&links, &mut key, ticks);
            }
        }
    }
}

/// Tests only (`kith daemon --danger-conf-hostile`): besides each good
/// frame, a replay of it, a forged copy, one under the key used before
/// the current one, junk, and the frame passed off as another
/// participant's (relayed with its tag).
fn hostile_frames(
    links: &[Link],
    bytes: &[u8],
    header: &[u8; HEADER],
    payload: &[u8],
    retired: Option<&mut SenderKey>,
) {
    // A counter not used yet, so it is the sealing that fails.
    let mut forged = bytes.to_vec();
    if let Some(ctr) = forged.get_mut(HEADER + 4..HEADER + 12) {
        let next = u64::from_be_bytes(ctr.try_into().unwrap_or([0; 8])) + 1_000_000;
        ctr.copy_from_slice(&next.to_be_bytes());
    }
    let mut out = vec![bytes.to_vec(), forged, vec![0x10, 0, 0, 0, 1, 2, 3]];
    if let Some(old) = retired {
        let mut frame = header.to_vec();
        frame.extend_from_slice(&old.seal(header, payload));
        out.push(frame);
    }
    for link in links {
        for b in &out {
            let _ = link.send_datagram(b.clone());
        }
        if let Some(other) = links.iter().find(|l| l.peer() != link.peer()) {
            let _ = link.send_datagram(Datagram::relay(&other.peer(), bytes));
        }
    }
}

/// Tests only (`kith daemon --danger-conf-hostile`): asks a new link to
/// pass on the video of devices that are not in the call, of itself, and
/// of this device (fewer than its queue of control messages holds).
fn hostile_passes(task: &Task, dev: DeviceId) {
    for i in 0..24u8 {
        task.tell(dev, &ConfMsg::Pass(DeviceId::from_bytes([i; 32]), Some(0)));
    }
    task.tell(dev, &ConfMsg::Pass(dev, Some(1)));
    task.tell(dev, &ConfMsg::Pass(task.d.device, Some(1)));
}

/// Tests only (`kith daemon --danger-conf-hostile`): a piece of a video
/// frame sealed as audio (it must not open as video), one sealed as video
/// sent twice (the second a replay), a request for a key frame of a
/// layer there is not, and the piece passed off as another participant's
/// (relayed with its tag, by a device that forwards for no one).
fn hostile_video(links: &[Link], key: &mut SenderKey, ticks: u64) {
    let piece = |key: &mut SenderKey, stream| {
        let mut p = Packet {
            kind: Kind::Video,
            flags: kith_media::packet::FLAG_END,
            layer: node_core::call::conf::VIDEO_LAYERS - 1,
            seq: u32::try_from(ticks).unwrap_or(0),
            ts: 0,
            payload: vec![0, 1, 0, 0, 0, 1, 0x65],
        };
        let header = p.header();
        p.payload = key.seal_stream(stream, &header, &p.payload);
        p.encode().ok()
    };
    let as_audio = piece(key, Stream::Audio);
    let as_video = piece(key, Stream::Video);
    let bad_layer = kith_media::packet::key_request(9, 0).encode().ok();
    for link in links {
        for bytes in [&as_audio, &as_video, &as_video, &bad_layer]
            .into_iter()
            .flatten()
        {
            let _ = link.send_datagram(bytes.clone());
        }
        if let (Some(other), Some(piece)) =
            (links.iter().find(|l| l.peer() != link.peer()), &as_video)
        {
            let _ = link.send_datagram(Datagram::relay(&other.peer(), piece));
        }
    }
}

/// Mixes what every participant sends, one 20 ms frame per tick: each
/// participant's jitter buffer gives a frame (decoded, rebuilt from FEC or
/// concealed), a muted one's is left out, and the sum is what is heard. A
/// participant whose link brings nothing for [`NOTHING_FOR`] counts as lost.
async fn mix(
    shared: Arc<Shared>,
    device: super::media::Device,
    heard: Arc<Heard>,
    epoch: Instant,
    tx: mpsc::Sender<Input>,
) {
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let counts = Arc::clone(&shared.counts);
    let mut first = true;
    let mut gap = 0u64;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let expected =
            super::media::frames_since(epoch, now).saturating_sub(1) * FRAME_SAMPLES as u64;
        heard.pad_to(usize::try_from(expected).unwrap_or(usize::MAX));
        if first {
            first = false;
            let mut c = counts.clocks.lock().unwrap_or_else(|p| p.into_inner());
            c.play_started = Some(now);
            c.heard_from = heard.len() as u64;
        }
        let mut sum = [0i32; FRAME_SAMPLES];
        let mut silent_peers = Vec::new();
        let mut concealed_any = false;
        {
            let mut peers = shared.peers();
            for (dev, p) in peers.iter_mut() {
                if p.heard_from.elapsed() >= super::media::SILENT_FOR {
                    // Lost if nothing came for NOTHING_FOR (frames under a
                    // key still on its way on a congested control stream
                    // show the link is there), or no frame opened for
                    // NO_FRAME_FOR.
                    // A participant sending through a forwarder is not
                    // heard on its own link: its link's liveness decides.
                    if p.via.is_none()
                        && (p.heard_at.elapsed() >= NOTHING_FOR
                            || p.heard_from.elapsed() >= NO_FRAME_FOR)
                    {
                        silent_peers.push((*dev, p.link.clone()));
                    }
                    continue;
                }
                let frame = match p.jitter.pop(now) {
                    Playout::Waiting => continue,
                    Playout::Frame { payload, .. } if super::media::is_silence(&payload) => {
                        // Not decoded, but still one well-formed 20 ms
                        // frame, or counted as bad as a decode would.
                        if p.decoder.check(&payload).is_err() {
                            counts.bad.fetch_add(1, Ordering::Relaxed);
                        }
                        p.quiet = true;
                        p.level -= p.level * LEVEL_FOLLOW;
                        continue;
                    }
                    Playout::Frame { payload, .. } => {
                        p.quiet = false;
                        match p.decoder.decode(&payload) {
                            Ok(f) => f,
                            Err(_) => {
                                counts.bad.fetch_add(1, Ordering::Relaxed);
                                super::media::conceal(&mut p.decoder, &counts)
                            }
                        }
                    }
                    Playout::Fec { next, .. } if p.quiet && super::media::is_silence(&next) => {
                        p.level -= p.level * LEVEL_FOLLOW;
                        continue;
                    }
                    Playout::Fec { next, .. } => p
                        .decoder
                        .decode_fec(&next)
                        .unwrap_or_else(|_| super::media::conceal(&mut p.decoder, &counts)),
                    // A gap in silence is not heard.
                    // (Its level still falls: a participant whose frames
                    // stop coming after silence is not kept as speaking.)
                    Playout::Lost { .. } | Playout::Stretch if p.quiet => {
                        p.level -= p.level * LEVEL_FOLLOW;
                        continue;
                    }
                    Playout::Lost { .. } | Playout::Stretch => {
                        concealed_any = true;
                        super::media::conceal(&mut p.decoder, &counts)
                    }
                };
                if p.silenced {
                    p.level = 0.0;
                    continue;
                }
                let mean =
                    frame.iter().map(|x| f32::from(*x).abs()).sum::<f32>() / FRAME_SAMPLES as f32;
                p.level += (mean - p.level) * LEVEL_FOLLOW;
                for (s, x) in sum.iter_mut().zip(frame.iter()) {
                    *s += i32::from(*x);
                }
            }
            let loudest = peers
                .iter()
                .filter(|(_, p)| p.level > SPEAKING_LEVEL)
                .max_by(|a, b| a.1.level.total_cmp(&b.1.level))
                .map(|(d, _)| *d);
            *shared.speaking.lock().unwrap_or_else(|p| p.into_inner()) = loudest;
        }
        if concealed_any {
            gap += 1;
            counts.longest_gap.fetch_max(gap, Ordering::Relaxed);
        } else {
            gap = 0;
        }
        for (dev, link) in silent_peers {
            let _ = tx.try_send(Input::Lost(dev, link));
        }
        let frame: Vec<i16> = sum
            .iter()
            .map(|s| (*s).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
            .collect();
        if let Some(d) = device.get() {
            d.play(&frame);
        }
        heard.extend(&frame);
    }
}

fn dump_key(
    dir: &std::path::Path,
    from: DeviceId,
    kid: u32,
    key: &node_core::crypto::SecretBytes<32>,
) {
    use std::io::Write;
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("keys"))
    {
        let _ = writeln!(f, "{from} {kid} {hex}");
    }
}

fn dump_frame(dir: &std::path::Path, from: DeviceId, bytes: &[u8]) {
    use std::io::Write;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("frames"))
    {
        let _ = writeln!(f, "{from} {hex}");
    }
}

/// Each conference's media clocks (benchmarks).
pub(super) fn clocks(d: &Daemon) -> Vec<(String, super::media::Clocks)> {
    d.confs
        .lock()
        .iter()
        .map(|(id, e)| {
            let c = *e
                .shared
                .counts
                .clocks
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            (id.to_string(), c)
        })
        .collect()
}

/// Each conference's media bytes sent (this device's frames), received,
/// and forwarded for others so far (benchmarks).
pub(super) fn traffic(d: &Daemon) -> Vec<(String, u64, u64, u64)> {
    d.confs
        .lock()
        .iter()
        .map(|(id, e)| {
            let [s, r, f] = &e.shared.bytes;
            (
                id.to_string(),
                s.load(Ordering::Relaxed),
                r.load(Ordering::Relaxed),
                f.load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// `kith call hangup` for a conference; false if none fits.
pub(super) async fn hangup(d: &Daemon, id: Option<&str>) -> Result<bool> {
    let Some((_, tx, _)) = d.confs.find(id) else {
        return Ok(false);
    };
    let (done, wait) = oneshot::channel();
    if tx.send(Input::Hangup(done)).await.is_err() {
        return Ok(false);
    }
    let _ = tokio::time::timeout(Duration::from_secs(15), wait).await;
    Ok(true)
}

/// `kith call end ROOM`: ends the room's call for everyone (whoever
/// started it, a moderator or admin, or the last one in it); every
/// participant's side ends within half a second of the event arriving.
pub(super) async fn end(d: &Daemon, target: &str) -> Result<()> {
    let mut node = d.node.lock().await;
    let room = node.resolve_room(target)?;
    let Some(conf) = node.room_conference(&room) else {
        bail!("no call is on in this room");
    };
    node.room_call(room, RoomCall::End(conf.id), crate::now_ms())
        .await?;
    Ok(())
}

/// What a moderator does to a member in a room's call.
pub(super) enum Moderate {
    /// Mutes (true) or unmutes them for everyone.
    Mute(bool),
    /// Removes them from the room's calls.
    Remove,
}

/// `kith call mute --member` / `kith call remove`: a moderator's room
/// event about a member in the room's call this device is in.
pub(super) async fn moderate(
    d: &Daemon,
    id: Option<&str>,
    member: &str,
    action: Moderate,
) -> Result<()> {
    let Some((call, _, shared)) = d.confs.find(id) else {
        bail!("this device is in no room call (see `kith call status`)");
    };
    let mut node = d.node.lock().await;
    let target = node.resolve_member(shared.room, member)?;
    let event = match action {
        Moderate::Mute(on) => RoomCall::Mute { call, target, on },
        Moderate::Remove => RoomCall::Remove { call, target },
    };
    node.room_call(shared.room, event, crate::now_ms()).await?;
    Ok(())
}

/// `kith call mute` for a conference; false if none fits.
pub(super) fn mute(d: &Daemon, id: Option<&str>, on: bool) -> bool {
    match d.confs.find(id) {
        Some((_, _, shared)) => {
            shared.muted.store(on, Ordering::Relaxed);
            true
        }
        None => false,
    }
}

/// One of a conference's video counts (0 without video).
fn video_count(s: &Shared, which: impl Fn(&super::video::VideoCounts) -> &AtomicU64) -> u64 {
    s.video
        .as_ref()
        .map_or(0, |v| which(&v.counts).load(Ordering::Relaxed))
}

/// The conferences, for `kith call status`.
pub(super) fn status(d: &Daemon) -> Vec<kith_client::answers::CallInfo> {
    let entries: Vec<Arc<Shared>> = d
        .confs
        .lock()
        .values()
        .map(|e| Arc::clone(&e.shared))
        .collect();
    entries
        .into_iter()
        .map(|s| {
            let ended = s.ended.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let said = *s.said.lock().unwrap_or_else(|p| p.into_inner());
            let c = &s.counts;
            let linked = s.linked();
            let path = {
                let peers = s.peers();
                let paths: BTreeSet<&'static str> =
                    peers.values().map(|p| p.link.path().as_str()).collect();
                match paths.len() {
                    0 => None,
                    1 => paths.into_iter().next().map(str::to_owned),
                    _ => Some("mixed".to_owned()),
                }
            };
            // Each lock taken and let go on its own line: a guard kept
            // alive to the end of the literal below, while `peers` is taken
            // further on, once deadlocked against the mixer (which holds
            // `peers` and then takes `speaking`).
            let speaking = s
                .speaking
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|d| d.to_string());
            let audio_device = c
                .sound_device
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let participant_accounts = {
                let peers = s.peers();
                linked
                    .iter()
                    .map(|d| {
                        peers
                            .get(d)
                            .map(|p| p.account.to_string())
                            .unwrap_or_default()
                    })
                    .collect()
            };
            kith_client::answers::CallInfo {
                id: s.id.to_string(),
                target: s.room.to_string(),
                state: if ended.is_some() { "ended" } else { "active" }.into(),
                device: None,
                participants: linked.iter().map(|d| d.to_string()).collect(),
                path,
                rtt_ms: None,
                loss: c.loss(),
                audio_kbps: Some(c.sent_bps.load(Ordering::Relaxed) / 1000),
                video_kbps: s
                    .video
                    .as_ref()
                    .map(|v| v.counts.sent_bps.load(Ordering::Relaxed) / 1000),
                video: s.video.is_some(),
                media: ended.is_none(),
                longest_gap_ms: c.longest_gap_ms(),
                muted: s.muted.load(Ordering::Relaxed),
                resumed: 0,
                bad_datagrams: c.bad.load(Ordering::Relaxed)
                    + s.seal.replayed.load(Ordering::Relaxed)
                    + s.seal.stale_key.load(Ordering::Relaxed)
                    + s.seal.forged.load(Ordering::Relaxed),
                compromised: false,
                audio_device,
                video_frames_sent: video_count(&s, |c| &c.frames_sent),
                video_frames_shown: video_count(&s, |c| &c.frames_decoded),
                video_frames_lost: video_count(&s, |c| &c.frames_dropped),
                video_keys_asked: video_count(&s, |c| &c.keys_asked),
                video_from: s
                    .video
                    .as_ref()
                    .map(|v| {
                        v.from
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .iter()
                            .map(|(d, (layer, frames))| kith_client::answers::VideoFrom {
                                device: d.to_string(),
                                layer: *layer,
                                frames: *frames,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                ended,
                room: Some(s.room.to_string()),
                keys_made: s.seal.keys_made.load(Ordering::Relaxed),
                frames_replayed: s.seal.replayed.load(Ordering::Relaxed),
                frames_stale_key: s.seal.stale_key.load(Ordering::Relaxed),
                frames_forged: s.seal.forged.load(Ordering::Relaxed),
                speaking,
                participant_accounts,
                forwarder: s.via().map(|d| d.to_string()),
                forwarding_for: s.clients().len() as u64,
                uplink_kbps: u64::from(said.uplink_kbps),
                always_on: said.always_on,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a second connection from a device already being
    /// checked (both ends dial at once) made and dropped a place while
    /// the table's lock was held, and its drop took the same lock: the
    /// daemon's accept loop hung (found by the 32-party benchmark).
    #[test]
    fn a_second_connection_from_a_device_being_checked_is_refused_without_a_hang() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let confs = Confs::default();
            let (a, b) = (DeviceId::from_bytes([1; 32]), DeviceId::from_bytes([2; 32]));
            let first = confs.serve_slot(a);
            let again = confs.serve_slot(a);
            // The first keeps its place (a third is refused too); another
            // device gets one.
            let third = confs.serve_slot(a);
            let other = confs.serve_slot(b);
            let held = (
                first.is_some(),
                again.is_none() && third.is_none(),
                other.is_some(),
            );
            drop((third, again));
            drop((first, other));
            let freed = confs.serving.lock().unwrap().is_empty();
            let _ = done_tx.send((held, freed));
        });
        let got = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("serve_slot hung");
        assert_eq!(got, ((true, true, true), true));
    }

    #[test]
    fn no_more_than_max_serving_are_checked_at_once() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let confs = Confs::default();
            let places: Vec<_> = (0..MAX_SERVING as u8)
                .map(|i| confs.serve_slot(DeviceId::from_bytes([i; 32])))
                .collect();
            let all = places.iter().all(Option::is_some);
            let over = confs.serve_slot(DeviceId::from_bytes([255; 32])).is_none();
            drop(places);
            let after = confs.serve_slot(DeviceId::from_bytes([255; 32])).is_some();
            let _ = done_tx.send((all, over, after));
        });
        let got = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("serve_slot hung");
        assert_eq!(got, (true, true, true));
    }
}
