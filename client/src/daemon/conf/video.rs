//! A room call's video (`kith call ROOM --video`).
//!
//! Each sender codes its pictures in two simulcast layers, the full
//! 640×480 at 30 frames a second and a small 320×240 one at 15, and sends
//! every participant the one layer it asked for (`ConfMsg::Layer`); a
//! layer no one asks for is not coded. A sender whose frames go through a
//! forwarder (a call beyond a mesh) sends it one copy of each layer taken;
//! the forwarder opens each piece under the sender's key and passes it on
//! to each participant that asked it for that layer (`ConfMsg::Pass`), as
//! it was sealed. The pieces of a frame are sealed
//! under the sender's key like its audio, in a stream of their own
//! (`Stream::Video`: their own counters and replay window). A receiver
//! asks for the full layer of everyone in a call of at most
//! [`VIDEO_MESH`], else of the participant speaking only (changed at most
//! every [`FEATURE_FOR`]) and the small layer of the others; it steps down
//! to the small layer of a sender whose full one loses more than a tenth
//! of its frames in a second, for [`UP_AFTER`], and takes fewer senders
//! while the small layers still lose frames ([`Downlink`]). So each
//! receiver takes what its downlink carries, and a sender uploads at most
//! one full copy per receiver that features it.
//!
//! Two threads per conference, never on the audio's runtime: the sender
//! (pictures from `--video-in`, the camera or the test picture), and the
//! shower, which puts each sender's frames together, decodes them, asks
//! for key frames after a loss, and writes the featured participant's
//! picture (a small one doubled) to `--video-out` once per frame time.

use super::{Input, Peer, Relay, Shared, Taken};
use crate::daemon::video::{FRAME, Pacer, PictureSource, VideoCounts, VideoIo};
use kith_media::frames::{Assembler, PIECE_BYTES, pieces_of};
use kith_media::packet::{HEADER, Kind, Packet, key_request};
use kith_media::video::{FPS, HEIGHT, Picture, VideoDecoder, VideoEncoder, WIDTH};
use node_core::DeviceId;
use node_core::call::conf::{Datagram, FRAME_OVERHEAD, FrameError, Stream, VIDEO_LAYERS};
use node_core::transport::Link;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Participants whose full layer every receiver takes; in a call of more,
/// only the featured (speaking) participant's.
pub(super) const VIDEO_MESH: usize = 4;
/// The full layer's bitrate.
const FULL_BITRATE: u32 = 800_000;
/// The small layer's bitrate.
const SMALL_BITRATE: u32 = 150_000;
/// The small layer is coded every this many frames (15 a second).
const SMALL_EVERY: u32 = 2;
/// Bytes of a frame in one sealed piece.
const PIECE: usize = PIECE_BYTES - FRAME_OVERHEAD;
/// Bytes of datagrams queued on a link beyond which a frame is not sent
/// on it (its congestion window is holding them back).
const BACKLOG: usize = 48 << 10;
/// The least such limit, whatever the path.
const MIN_BACKLOG: usize = 8 << 10;
/// Least time between key frames of one layer made on request.
const KEY_EVERY: Duration = Duration::from_millis(330);
/// Least time between requests for a key frame of one sender.
const ASK_EVERY: Duration = Duration::from_millis(200);
/// Most frames of one sender's full layer decoded a second (half that
/// for its small one), with a second's burst.
const MAX_DECODES: u32 = FPS * 3 / 2;
/// Video packets waiting for the shower; more are dropped.
const QUEUE: usize = 2048;
/// How often the shower looks at who is linked and who speaks.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// Least time the featured participant stays featured.
const FEATURE_FOR: Duration = Duration::from_secs(2);
/// Frames of a sender's full layer lost in a second, per thousand,
/// beyond which the receiver steps down to its small layer.
const DOWN_AT: u32 = 100;
/// How long a receiver waits for the first picture of a sender's full
/// layer, its pieces coming, before it takes the small one.
const FIRST_PICTURE_WAIT: Duration = Duration::from_secs(3);
/// How long a layer no one takes keeps its encoder.
const IDLE_KEEP: Duration = Duration::from_secs(3);
/// How long a receiver that stepped down stays on the small layer.
const UP_AFTER: Duration = Duration::from_secs(10);
/// Least time between two asks for the same layer of one sender.
const ASK_AGAIN: Duration = Duration::from_secs(1);
/// Seconds in a row most senders' video loses more than [`DOWN_AT`] of
/// its frames before a receiver takes fewer senders (the step down to
/// small layers had its chance).
const CUT_AFTER: u32 = 3;
/// Frames lost per thousand at or below which a sender's second counts
/// as clean (a receiver that took fewer senders takes one more after
/// [`UP_AFTER`] of seconds in which every sender not losing much was).
const CLEAN_AT: u32 = 20;
/// Frames of one sender a second, at least, for its loss to count.
const COUNTED_FROM: u32 = 3;
/// How long a sender that lost much in a second is dropped before the
/// others at a cut; how long one with no frame counted is taken as
/// sending no video.
const LOSSY_FOR: Duration = Duration::from_secs(10);

/// How many senders' video a receiver takes: all of them while its
/// downlink carries them, fewer once most of their small layers lose
/// frames. At a cut, the featured one stays, and those sending no video
/// lately go first, then those whose own frames were lost lately (a
/// sender decides its own numbering: one leaving gaps in it drops out
/// before the honest ones); those dropped stay out until the receiver
/// takes one more. Between cuts the senders given places keep them (each
/// loss is met by the step down to the small layer), but for the featured
/// one, which takes a place when it speaks.
struct Downlink {
    /// Senders taken at most (`None`: every one).
    most: Option<usize>,
    /// When `most` last changed.
    changed: Instant,
    /// Frames of each sender decoded and lost this second, and when it
    /// began.
    seen: HashMap<DeviceId, (u32, u32)>,
    since: Instant,
    /// Seconds in a row that most senders lost more than [`DOWN_AT`];
    /// clean ones.
    lossy: u32,
    clean: u32,
    /// When each sender last lost more than [`DOWN_AT`] in a second.
    lost_at: HashMap<DeviceId, Instant>,
    /// When a frame of each sender was last counted (decoded or lost).
    active_at: HashMap<DeviceId, Instant>,
    /// The senders given places at the last look.
    placed: Vec<DeviceId>,
    /// Senders dropped at a cut: out until one more is taken (kept across
    /// their links; at most [`super::MAX_LINKED`]).
    dropped: HashSet<DeviceId>,
    /// When each participant was last heard speaking.
    spoke: HashMap<DeviceId, Instant>,
    /// Until when each sender's small layer is taken (its full one lost
    /// frames), kept across its links (a link made again under loss does
    /// not start at the full layer again).
    down: HashMap<DeviceId, Instant>,
}

impl Downlink {
    fn new() -> Self {
        Self {
            most: None,
            changed: Instant::now(),
            seen: HashMap::new(),
            since: Instant::now(),
            lossy: 0,
            clean: 0,
            lost_at: HashMap::new(),
            active_at: HashMap::new(),
            placed: Vec::new(),
            dropped: HashSet::new(),
            spoke: HashMap::new(),
            down: HashMap::new(),
        }
    }

    /// Counts frames of `dev`'s decoded and lost (`now`).
    fn count(&mut self, dev: DeviceId, decoded: u32, lost: u32, now: Instant) {
        if self.seen.len() < super::MAX_LINKED || self.seen.contains_key(&dev) {
            let e = self.seen.entry(dev).or_default();
            *e = (e.0.saturating_add(decoded), e.1.saturating_add(lost));
        }
        let room = self.active_at.len() < super::MAX_LINKED || self.active_at.contains_key(&dev);
        if decoded + lost > 0 && room {
            self.active_at.insert(dev, now);
        }
    }

    /// Ends a second (once one passed), `featured` the participant
    /// featured now, of `senders` there are. A second is lossy when more
    /// than half the senders counted (those with [`COUNTED_FROM`] frames
    /// or more) lost more than [`DOWN_AT`]; clean when it is not, and
    /// every sender counted that did not lose that much lost at most
    /// [`CLEAN_AT`] (or none was counted: nothing to judge by, so more
    /// are tried). [`CUT_AFTER`] lossy seconds in a row take a quarter
    /// fewer of those placed (at least one fewer, at least one kept);
    /// [`UP_AFTER`] of clean seconds since the last change take one more.
    fn second(&mut self, now: Instant, featured: Option<DeviceId>, senders: usize) {
        if now.duration_since(self.since) < Duration::from_secs(1) {
            return;
        }
        let over = |(d, l): (u32, u32), at: u32| {
            u64::from(l) * 1000 > u64::from(at) * (u64::from(d) + u64::from(l))
        };
        let counted: Vec<(DeviceId, (u32, u32))> = self
            .seen
            .iter()
            .filter(|(_, (d, l))| u64::from(*d) + u64::from(*l) >= u64::from(COUNTED_FROM))
            .map(|(dev, n)| (*dev, *n))
            .collect();
        let losing: Vec<DeviceId> = counted
            .iter()
            .filter(|(_, n)| over(*n, DOWN_AT))
            .map(|(d, _)| *d)
            .collect();
        for d in &losing {
            self.lost_at.insert(*d, now);
        }
        self.lost_at
            .retain(|_, at| now.duration_since(*at) < LOSSY_FOR);
        self.active_at
            .retain(|_, at| now.duration_since(*at) < LOSSY_FOR);
        let dirty = counted
            .iter()
            .any(|(_, n)| !over(*n, DOWN_AT) && over(*n, CLEAN_AT));
        if !counted.is_empty() && losing.len() * 2 > counted.len() {
            (self.lossy, self.clean) = (self.lossy.saturating_add(1), 0);
        } else if !dirty {
            (self.lossy, self.clean) = (0, self.clean.saturating_add(1));
        } else {
            (self.lossy, self.clean) = (0, 0);
        }
        if self.lossy >= CUT_AFTER && self.placed.len() > 1 {
            let mut order = self.placed.clone();
            let most = order.len() - (order.len() / 4).max(1);
            order.sort_by_key(|d| {
                (
                    Some(*d) != featured,
                    !self.active_at.contains_key(d),
                    self.lost_at.contains_key(d),
                    std::cmp::Reverse(self.spoke.get(d).copied()),
                    *d,
                )
            });
            debug!(
                placed = order.len(),
                most,
                losing = losing.len(),
                counted = counted.len(),
                "video loses frames from most senders: fewer senders taken"
            );
            for d in order.drain(most..) {
                if self.dropped.len() < super::MAX_LINKED {
                    self.dropped.insert(d);
                }
            }
            self.placed = order;
            (self.most, self.changed, self.lossy) = (Some(most), now, 0);
        } else if let Some(most) = self.most
            && self.clean >= UP_AFTER.as_secs() as u32
            && now.duration_since(self.changed) >= UP_AFTER
        {
            self.most = (most + 1 < senders).then_some(most + 1);
            self.dropped.clear();
            debug!(most = ?self.most, "video clean: one more sender taken");
            (self.changed, self.clean) = (now, 0);
        }
        self.seen.clear();
        self.since = now;
    }

    /// Gives places to senders of `linked` (those not muted by a
    /// moderator), at most [`Self::most`], none to one dropped at a cut:
    /// the featured one first, then those placed before, then the latest
    /// to speak, then by device. Returns those placed.
    fn place(&mut self, linked: &[DeviceId], featured: Option<DeviceId>) -> Vec<DeviceId> {
        let mut order: Vec<DeviceId> = linked
            .iter()
            .filter(|d| !self.dropped.contains(d))
            .copied()
            .collect();
        order.sort_by_key(|d| {
            (
                Some(*d) != featured,
                !self.placed.contains(d),
                std::cmp::Reverse(self.spoke.get(d).copied()),
                *d,
            )
        });
        order.truncate(self.most.unwrap_or(usize::MAX));
        self.placed.clone_from(&order);
        order
    }
}

/// A conference's video on this device.
pub(super) struct ConfVideo {
    io: VideoIo,
    pub(super) counts: Arc<VideoCounts>,
    /// A receiver asked for a key frame of this layer.
    key_wanted: [AtomicBool; VIDEO_LAYERS as usize],
    /// The shower's queue.
    show: Mutex<Option<SyncSender<(DeviceId, Packet)>>>,
    stop: Arc<AtomicBool>,
    /// Each sender's video as taken here: its layer, frames decoded.
    pub(super) from: Mutex<BTreeMap<DeviceId, (u8, u64)>>,
}

impl ConfVideo {
    pub(super) fn new(io: VideoIo) -> Self {
        Self {
            io,
            counts: Arc::default(),
            key_wanted: [AtomicBool::new(false), AtomicBool::new(false)],
            show: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            from: Mutex::new(BTreeMap::new()),
        }
    }

    /// Makes this device's next frame of `layer` a key frame (limited
    /// by [`KEY_EVERY`]).
    pub(super) fn want_key(&self, layer: u8) {
        if let Some(w) = self.key_wanted.get(usize::from(layer)) {
            w.store(true, Ordering::Relaxed);
        }
    }

    fn from(&self) -> std::sync::MutexGuard<'_, BTreeMap<DeviceId, (u8, u64)>> {
        self.from.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Stops a conference's video threads when dropped (and closes
/// `--video-out`).
pub(super) struct VideoThreads(Arc<ConfVideo>);

impl Drop for VideoThreads {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        *self.0.show.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(out) = &self.0.io.output {
            out.finish();
        }
    }
}

/// Starts the conference's video threads: the sender (if this device
/// sends) and the shower.
pub(super) fn start(
    shared: &Arc<Shared>,
    v: &Arc<ConfVideo>,
    tx: mpsc::Sender<Input>,
) -> anyhow::Result<VideoThreads> {
    let threads = VideoThreads(Arc::clone(v));
    let (show_tx, show_rx) = std::sync::mpsc::sync_channel(QUEUE);
    let (s, v2) = (Arc::clone(shared), Arc::clone(v));
    std::thread::Builder::new()
        .name("kith-conf-show".into())
        .spawn(move || show_loop(&s, &v2, &show_rx, &tx))?;
    *v.show.lock().unwrap_or_else(|p| p.into_inner()) = Some(show_tx);
    if v.io.send {
        let (s, v2) = (Arc::clone(shared), Arc::clone(v));
        std::thread::Builder::new()
            .name("kith-conf-video".into())
            .spawn(move || send_loop(&s, &v2))?;
    }
    Ok(threads)
}

/// Takes a video datagram (a piece of a frame, or a request for a key
/// frame) from the participant at the other end of a link, its own; false
/// if bad. Video is taken only at the layer asked of its sender, and only
/// by a device that takes video; a forwarder also opens its clients'
/// pieces of every layer and passes them on (the [`Relay`] returned, sent
/// by the caller once it let go of `peers`; see [`pass_on`]).
pub(super) fn receive(
    shared: &Shared,
    peers: &mut HashMap<DeviceId, Peer>,
    from: DeviceId,
    bytes: &[u8],
    packet: Packet,
) -> (bool, Relay) {
    // No video here: bad.
    let Some(v) = shared.video.as_ref() else {
        shared.counts.bad.fetch_add(1, Ordering::Relaxed);
        return (false, Relay::default());
    };
    match packet.kind {
        // Honoured only for the layer the asker takes (one that takes
        // another cannot make everyone's pictures key frames).
        Kind::KeyRequest => match v.key_wanted.get(usize::from(packet.layer)) {
            Some(w) => {
                if peers
                    .get(&from)
                    .is_some_and(|p| p.wants == Some(packet.layer))
                {
                    w.store(true, Ordering::Relaxed);
                }
                (true, Relay::default())
            }
            None => {
                v.counts.bad.fetch_add(1, Ordering::Relaxed);
                (false, Relay::default())
            }
        },
        Kind::Video => {
            let client = shared.clients().contains(&from);
            let relayed_too = shared.relayed_too(peers, from);
            let (layer, ts) = (packet.layer, packet.ts);
            let Some(peer) = peers.get_mut(&from) else {
                return (true, Relay::default());
            };
            // Not the layer asked (pieces of the one before may still be
            // on their way), nor one to pass on: left aside.
            if !client && peer.asked != Some(layer) {
                return (true, Relay::default());
            }
            // At most four times the layer's bitrate, before anything is
            // opened.
            let Some(got) = within_budget(peer, layer, bytes.len()) else {
                v.counts.bad.fetch_add(1, Ordering::Relaxed);
                return (false, Relay::default());
            };
            match open(v, peer, from, bytes, packet) {
                // Passed on once it opened here (sealed by its sender, not
                // a replay), within twice the layer's bitrate.
                Ok(()) => {
                    let relay = if client && got <= u64::from(bitrate(usize::from(layer))) / 4 {
                        pass_on(peers, from, bytes, layer, ts)
                    } else {
                        Relay::default()
                    };
                    (true, relay)
                }
                // A replay is bad here (this came from its sender itself),
                // unless its pieces may also come through a forwarder (see
                // `Shared::relayed_too`).
                Err(e) => match super::refused(shared, e) {
                    Taken::Bad => (false, Relay::default()),
                    Taken::Replayed => (relayed_too, Relay::default()),
                    Taken::Opened | Taken::Ignored => (true, Relay::default()),
                },
            }
        }
        Kind::Audio | Kind::Report => {
            shared.counts.bad.fetch_add(1, Ordering::Relaxed);
            (false, Relay::default())
        }
    }
}

/// Takes a piece of participant `sender`'s video that a forwarder passed
/// on (the caller checked it came from the forwarder `sender` named). What
/// does not open is counted, never held against the forwarder (it opened
/// the piece under its own copy of the sender's key).
pub(super) fn receive_relayed(
    shared: &Shared,
    peers: &mut HashMap<DeviceId, Peer>,
    sender: DeviceId,
    bytes: &[u8],
    packet: Packet,
) {
    let Some(v) = shared.video.as_ref() else {
        shared.counts.bad.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Some(peer) = peers.get_mut(&sender) else {
        return;
    };
    if peer.asked != Some(packet.layer) {
        return;
    }
    if within_budget(peer, packet.layer, bytes.len()).is_none() {
        v.counts.bad.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Err(e) = open(v, peer, sender, bytes, packet) {
        super::refused(shared, e);
    }
}

/// Counts `len` bytes of a sender's `layer` in the current second: the
/// second's bytes so far, or `None` beyond four times the layer's bitrate
/// (a flood is dropped before anything opens).
fn within_budget(peer: &mut Peer, layer: u8, len: usize) -> Option<u64> {
    let (since, got) = peer.video_in.get_mut(usize::from(layer))?;
    let now = Instant::now();
    if now.duration_since(*since) >= Duration::from_secs(1) {
        (*since, *got) = (now, 0);
    }
    *got += len as u64;
    (*got <= u64::from(bitrate(usize::from(layer))) / 2).then_some(*got)
}

/// Opens a piece of `from`'s video under its key; one of the layer this
/// device takes goes to the shower.
fn open(
    v: &ConfVideo,
    peer: &mut Peer,
    from: DeviceId,
    bytes: &[u8],
    packet: Packet,
) -> Result<(), FrameError> {
    let header = bytes.get(..HEADER).ok_or(FrameError::Short(bytes.len()))?;
    let plain = peer
        .keys
        .open_stream(Stream::Video, header, &packet.payload)?;
    if peer.asked == Some(packet.layer) {
        let opened = Packet {
            payload: plain,
            ..packet
        };
        let show = v.show.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = show.as_ref()
            && let Err(TrySendError::Full(_)) = tx.try_send((from, opened))
        {
            v.counts.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// A forwarder passes a piece of its client `from`'s video (`bytes`, as
/// its sender sealed it; frame `ts` of `layer`) on to each participant
/// that asked it for that layer — but not to one whose link is backed up
/// (more than 30 ms of what its window carries, as [`send_loop`] judges):
/// that one gets no more of the frame (it loses it and asks the sender for
/// a key frame; its audio does not wait behind video).
fn pass_on(
    peers: &mut HashMap<DeviceId, Peer>,
    from: DeviceId,
    bytes: &[u8],
    layer: u8,
    ts: u32,
) -> Relay {
    let mut links = Vec::new();
    for (dev, p) in peers.iter_mut() {
        if *dev == from || p.passes.get(&from) != Some(&layer) {
            continue;
        }
        if p.cut == Some((from, layer, ts)) {
            continue;
        }
        let room = p.link.datagram_room();
        p.roomiest = p.roomiest.max(room);
        if backed_up(p.roomiest, room, || backlog_limit(&p.link)) {
            p.cut = Some((from, layer, ts));
            continue;
        }
        links.push(p.link.clone());
    }
    Relay {
        bytes: Datagram::relay(&from, bytes),
        links,
    }
}

/// The layer a receiver takes of one sender: the full one in a call of at
/// most [`VIDEO_MESH`] participants, else the featured participant's
/// only; the small one while this receiver stepped down for that sender.
pub(super) fn choose(participants: usize, featured: bool, stepped_down: bool) -> u8 {
    if stepped_down || (participants > VIDEO_MESH && !featured) {
        0
    } else {
        VIDEO_LAYERS - 1
    }
}

/// Most pixels of a layer's pictures.
fn layer_pixels(layer: u8) -> usize {
    if layer == 0 {
        (WIDTH / 2) * (HEIGHT / 2)
    } else {
        WIDTH * HEIGHT
    }
}

fn bitrate(layer: usize) -> u32 {
    if layer == 0 {
        SMALL_BITRATE
    } else {
        FULL_BITRATE
    }
}

/// A picture of at most [`WIDTH`]×[`HEIGHT`] pixels: a larger one (a
/// `--video-in` file) halved until it fits.
fn fit(mut p: Picture) -> Picture {
    while p.width * p.height > WIDTH * HEIGHT && p.width >= 4 && p.height >= 4 {
        p = p.half();
    }
    p
}

/// Whether a link is backed up: its datagram room `room` is more than
/// `limit` (at least [`MIN_BACKLOG`]; looked up only past that) below
/// `most`, the most room it had while this frame or an earlier one was
/// sent on it.
fn backed_up(most: usize, room: usize, limit: impl FnOnce() -> usize) -> bool {
    let backlog = most.saturating_sub(room);
    backlog > MIN_BACKLOG && backlog > limit()
}

/// Bytes that may wait in a link's datagram queue before the rest of a
/// frame is not sent on it: what the path carries in 30 ms, between 8
/// and 48 kB (the audio waits behind whatever is queued).
fn backlog_limit(link: &Link) -> usize {
    let per_30ms = link.window_rate().map_or(BACKLOG, |bps| {
        usize::try_from(bps / 8 * 30 / 1000).unwrap_or(BACKLOG)
    });
    per_30ms.clamp(MIN_BACKLOG, BACKLOG)
}

/// The sender: one picture per frame time, coded in each layer some
/// linked participant asked for, sealed and sent to those. A layer no one
/// takes keeps its encoder for [`IDLE_KEEP`] (a participant flipping its
/// choice does not make a key frame each time).
fn send_loop(shared: &Shared, v: &ConfVideo) {
    let mut source = PictureSource::open(v.io.input.clone(), v.io.camera.clone(), 0);
    let mut encoders: [Option<VideoEncoder>; VIDEO_LAYERS as usize] = [None, None];
    let mut idle_since = [None::<Instant>; VIDEO_LAYERS as usize];
    let mut seq = [0u32; VIDEO_LAYERS as usize];
    let mut key_at = [None::<Instant>; VIDEO_LAYERS as usize];
    // Each link's datagram room when it was emptiest (its backlog is how
    // far below that it is).
    // (Keyed by device, kept with its link: a relink starts again.)
    let mut roomiest: HashMap<DeviceId, (Link, usize)> = HashMap::new();
    let mut pacer = Pacer::new();
    let mut rate = crate::daemon::media::Rate::new();
    let started = Instant::now();
    let mut n: u32 = 0;
    loop {
        crate::daemon::video::sleep_until(started + FRAME * n);
        let now = Instant::now();
        if v.stop.load(Ordering::Relaxed) {
            debug!("room call video: the sender stops");
            return;
        }
        n = n.wrapping_add(1);
        rate.roll(&v.counts.sent_bps);
        // Who takes which layer (a device a moderator muted, or whose
        // uplink cannot carry the mesh, sends none), copied out of the
        // lock; with a forwarder linked, it takes one copy of each layer
        // anyone takes.
        let takers: Vec<(DeviceId, Link, u8)> =
            if shared.weak.load(Ordering::Relaxed) || shared.forced_mute.load(Ordering::Relaxed) {
                Vec::new()
            } else {
                let peers = shared.peers();
                let takers = peers
                    .iter()
                    .filter_map(|(d, p)| Some((*d, p.link.clone(), p.wants?)));
                match shared
                    .via()
                    .and_then(|f| Some((f, peers.get(&f)?.link.clone())))
                {
                    Some((f, link)) => {
                        let mut layers: Vec<u8> = takers.map(|(.., l)| l).collect();
                        layers.sort_unstable();
                        layers.dedup();
                        layers.into_iter().map(|l| (f, link.clone(), l)).collect()
                    }
                    None => takers.collect(),
                }
            };
        roomiest.retain(|dev, _| takers.iter().any(|(d, ..)| d == dev));
        let mut to: [Vec<(DeviceId, Link)>; VIDEO_LAYERS as usize] = Default::default();
        for (dev, link, layer) in takers {
            let room = link.datagram_room();
            let entry = roomiest.entry(dev).or_insert_with(|| (link.clone(), room));
            if !entry.0.same_as(&link) {
                *entry = (link.clone(), room);
            }
            entry.1 = entry.1.max(room);
            if let Some(l) = to.get_mut(usize::from(layer)) {
                l.push((dev, link));
            }
        }
        for (layer, links) in to.iter().enumerate() {
            if !links.is_empty() {
                idle_since[layer] = None;
            } else if idle_since[layer].get_or_insert(now).elapsed() >= IDLE_KEEP {
                // Taken up again with a key frame.
                encoders[layer] = None;
            }
        }
        if to.iter().all(Vec::is_empty) {
            continue;
        }
        let full = fit(source.picture(u64::from(n)));
        for (layer, links) in to.iter().enumerate() {
            if links.is_empty() || (layer == 0 && !n.is_multiple_of(SMALL_EVERY)) {
                continue;
            }
            let small;
            let picture = if layer == 0 {
                small = full.half();
                &small
            } else {
                &full
            };
            if picture.width == 0 || picture.height == 0 {
                continue;
            }
            let encoder = match &mut encoders[layer] {
                Some(e) => e,
                slot => {
                    let fps = if layer == 0 { FPS / SMALL_EVERY } else { FPS };
                    match VideoEncoder::new(bitrate(layer), fps) {
                        Ok(e) => slot.insert(e),
                        Err(e) => {
                            warn!(error = %e, "the video encoder could not start");
                            return;
                        }
                    }
                }
            };
            if v.key_wanted[layer].swap(false, Ordering::Relaxed)
                && key_at[layer].is_none_or(|t| t.elapsed() >= KEY_EVERY)
            {
                encoder.request_key();
            }
            let encoded = match encoder.encode(picture) {
                Ok(Some(e)) => e,
                Ok(None) => {
                    v.counts.frames_skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, "coding a video frame failed");
                    continue;
                }
            };
            let ts = n.wrapping_mul(kith_media::video::FRAME_TICKS);
            let layer8 = u8::try_from(layer).unwrap_or(0);
            let pieces = pieces_of(
                &encoded.data,
                encoded.key,
                ts,
                layer8,
                &mut seq[layer],
                PIECE,
            );
            if pieces.is_empty() {
                v.counts.frames_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if encoded.key {
                key_at[layer] = Some(Instant::now());
                v.counts.keys_sent.fetch_add(1, Ordering::Relaxed);
            }
            // A link whose queue backs up gets no more of this frame (its
            // receiver asks for a key frame; the audio does not wait
            // behind the rest).
            let mut sending: Vec<(&Link, usize, usize)> = links
                .iter()
                .map(|(d, l)| {
                    let most = roomiest.get(d).map_or(0, |(_, most)| *most);
                    (l, most, backlog_limit(l))
                })
                .collect();
            // Each link at three times the layer's bitrate, at most what
            // the slowest link's window carries (a queue paced slower than
            // it drains does not grow, so a key frame on a slow path is
            // late rather than cut).
            let slowest = sending
                .iter()
                .filter_map(|(l, ..)| l.window_rate())
                .min()
                .map_or(f64::MAX, |bps| bps as f64 / 8.0 * 0.9);
            let per_link = (f64::from(bitrate(layer)) * 3.0 / 8.0).min(slowest.max(4_000.0));
            let mut cut = false;
            for mut p in pieces {
                sending.retain(|(l, most, limit)| !backed_up(*most, l.datagram_room(), || *limit));
                if sending.is_empty() {
                    cut = true;
                    break;
                }
                // Paced before it is sealed: sealed and sent together, so
                // no piece waits under a key the audio switched from.
                let sealed_len = p.payload.len() + HEADER + FRAME_OVERHEAD;
                pacer.wait(sealed_len * sending.len(), per_link * sending.len() as f64);
                let header = p.header();
                p.payload = shared
                    .key
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .seal_stream(Stream::Video, &header, &p.payload);
                let Ok(bytes) = p.encode() else { continue };
                for (link, ..) in &sending {
                    if link.send_datagram(bytes.clone()).is_ok() {
                        rate.add(bytes.len());
                        shared.bytes[0].fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    }
                }
            }
            if cut {
                v.counts.frames_skipped.fetch_add(1, Ordering::Relaxed);
            } else {
                v.counts.frames_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One sender's video as the shower takes it.
struct From {
    /// The layer asked of it, and when (and since when it is taken).
    layer: u8,
    asked_at: Instant,
    since: Instant,
    assembler: Assembler,
    decoder: VideoDecoder,
    latest: Option<Picture>,
    /// Until when its small layer is taken (its full one lost frames).
    down_until: Option<Instant>,
    /// Frames decoded and lost since `counted`.
    decoded: u32,
    lost: u32,
    counted: Instant,
    /// The decode bucket's level, and when it was last drained.
    decodes: (Instant, f64),
    /// When a key frame was last asked of it, and how many were.
    key_asked: Option<Instant>,
    asks: u32,
}

impl From {
    fn new(layer: u8) -> Option<Self> {
        Some(Self {
            layer,
            asked_at: Instant::now(),
            since: Instant::now(),
            assembler: Assembler::new(),
            decoder: VideoDecoder::new().ok()?,
            latest: None,
            down_until: None,
            decoded: 0,
            lost: 0,
            counted: Instant::now(),
            decodes: (Instant::now(), 0.0),
            key_asked: None,
            asks: 0,
        })
    }
}

/// The shower (see the module documentation).
fn show_loop(
    shared: &Shared,
    v: &ConfVideo,
    rx: &Receiver<(DeviceId, Packet)>,
    tx: &mpsc::Sender<Input>,
) {
    let mut senders: HashMap<DeviceId, From> = HashMap::new();
    let mut featured: Option<(DeviceId, Instant)> = None;
    let mut downlink = Downlink::new();
    let mut looked = Instant::now();
    let started = Instant::now();
    let mut shown: u64 = 0;
    let mut first_look = true;
    loop {
        if v.stop.load(Ordering::Relaxed) {
            return;
        }
        let due = started + FRAME * u32::try_from(shown + 1).unwrap_or(u32::MAX);
        let now = Instant::now();
        let mut outs = Vec::new();
        let got = if due > now {
            match rx.recv_timeout(due - now) {
                Ok(got) => Some(got),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            None
        };
        match got {
            Some((dev, p)) => {
                if let Some(s) = senders.get_mut(&dev).filter(|s| s.layer == p.layer) {
                    outs.push((dev, s.assembler.push(&p, Instant::now())));
                }
            }
            // A frame time with nothing new: frames waited for too long
            // count as lost.
            None => {
                let now = Instant::now();
                for (dev, s) in senders.iter_mut() {
                    outs.push((*dev, s.assembler.tick(now)));
                }
            }
        }
        for (dev, out) in outs {
            let Some(s) = senders.get_mut(&dev) else {
                continue;
            };
            take_frames(v, dev, s, out, &mut downlink);
        }
        if first_look || looked.elapsed() >= LOOK_EVERY {
            first_look = false;
            looked = Instant::now();
            look(shared, v, &mut senders, &mut featured, &mut downlink, tx);
        }
        if Instant::now() >= due {
            shown += 1;
            let pick = featured
                .and_then(|(d, _)| senders.get(&d))
                .and_then(|s| s.latest.as_ref())
                .or_else(|| {
                    let mut devs: Vec<&DeviceId> = senders.keys().collect();
                    devs.sort();
                    devs.into_iter()
                        .find_map(|d| senders.get(d).and_then(|s| s.latest.as_ref()))
                });
            if let (Some(out), Some(p)) = (v.io.output.as_ref(), pick) {
                match (p.width, p.height) {
                    (WIDTH, HEIGHT) => out.write(p),
                    (w, h) if w * 2 == WIDTH && h * 2 == HEIGHT => out.write(&p.double()),
                    // Another size (a file sent as it is): not shown in
                    // the call's one picture size.
                    _ => {}
                }
            }
        }
    }
}

/// Decodes what the assembler gave of one sender's frames, asks for a key
/// frame after a loss.
fn take_frames(
    v: &ConfVideo,
    dev: DeviceId,
    s: &mut From,
    out: kith_media::frames::Out,
    downlink: &mut Downlink,
) {
    let counts = &v.counts;
    counts.bad.fetch_add(u64::from(out.bad), Ordering::Relaxed);
    counts
        .frames_dropped
        .fetch_add(u64::from(out.dropped), Ordering::Relaxed);
    // Frames dropped before the first picture (waiting for the first key
    // frame) are not the path's loss.
    if s.latest.is_some() {
        s.lost += out.dropped;
    }
    // The downlink counts them all once the layer had time for its first
    // key frame: a layer whose key frames never come whole (the path
    // cannot carry them) shows no picture, only loss.
    let settled = s.since.elapsed() >= FIRST_PICTURE_WAIT;
    if settled {
        downlink.count(dev, 0, out.dropped, Instant::now());
    }
    // The layer's frame rate and a half, at most: a bucket of a second's
    // decodes, drained at that rate.
    let most = f64::from(if s.layer == 0 {
        MAX_DECODES / 2
    } else {
        MAX_DECODES
    });
    let now = Instant::now();
    let drained = now.duration_since(s.decodes.0).as_secs_f64() * most;
    s.decodes = (now, (s.decodes.1 - drained).max(0.0));
    for f in out.frames {
        if s.decodes.1 + 1.0 > most {
            counts.frames_dropped.fetch_add(1, Ordering::Relaxed);
            s.lost += 1;
            s.assembler.lose_sync();
            continue;
        }
        s.decodes.1 += 1.0;
        match s.decoder.decode(&f.data) {
            // Larger than the layer's size: refused, as a sender of ours
            // never sends (it costs the decoder more than it may).
            Ok(Some(p)) if p.width * p.height > layer_pixels(s.layer) => {
                counts.bad.fetch_add(1, Ordering::Relaxed);
                s.assembler.lose_sync();
            }
            Ok(Some(p)) => {
                counts.frames_decoded.fetch_add(1, Ordering::Relaxed);
                s.decoded += 1;
                if settled {
                    downlink.count(dev, 1, 0, Instant::now());
                }
                s.latest = Some(p);
                v.from().entry(dev).or_insert((s.layer, 0)).1 += 1;
            }
            Ok(None) => {}
            Err(_) => {
                counts.bad.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if out.need_key || s.assembler.waiting_for_key() {
        let now = Instant::now();
        s.key_asked = s
            .key_asked
            .or(Some(now.checked_sub(ASK_EVERY).unwrap_or(now)));
    }
}

/// Follows who is linked and who speaks: which layer to take of each
/// sender, asked of it through the conference task; key frames asked;
/// loss counted.
fn look(
    shared: &Shared,
    v: &ConfVideo,
    senders: &mut HashMap<DeviceId, From>,
    featured: &mut Option<(DeviceId, Instant)>,
    downlink: &mut Downlink,
    tx: &mpsc::Sender<Input>,
) {
    let now = Instant::now();
    // Each linked participant: its link, the layer asked of it, muted by a
    // moderator, whether the forwarder its video comes through (if linked
    // here) is the one that was asked for it.
    let linked: Vec<(DeviceId, Link, Option<u8>, bool, bool)> = {
        let peers = shared.peers();
        peers
            .iter()
            .map(|(d, p)| {
                let via = p.via.filter(|f| peers.contains_key(f));
                (*d, p.link.clone(), p.asked, p.silenced, via == p.asked_via)
            })
            .collect()
    };
    senders.retain(|d, _| linked.iter().any(|(l, ..)| l == d));
    v.from().retain(|d, _| senders.contains_key(d));
    let speaking = *shared.speaking.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(sp) = speaking
        && featured.is_none_or(|(f, at)| f != sp && now.duration_since(at) >= FEATURE_FOR)
    {
        *featured = Some((sp, now));
    }
    // As many senders as the downlink carries: the featured one, then the
    // latest to speak.
    if let Some(sp) = speaking {
        downlink.spoke.insert(sp, now);
    }
    downlink
        .spoke
        .retain(|d, _| linked.iter().any(|(l, ..)| l == d));
    downlink.down.retain(|_, until| *until > now);
    let candidates: Vec<DeviceId> = linked
        .iter()
        .filter(|(.., silenced, _)| !silenced)
        .map(|(d, ..)| *d)
        .collect();
    let featured_now = featured.map(|(f, _)| f);
    downlink.second(now, featured_now, candidates.len());
    let taken = downlink.place(&candidates, featured_now);
    let participants = linked.len() + 1;
    for (dev, link, asked, silenced, routed) in linked {
        // None of a participant a moderator muted, nor of one beyond what
        // the downlink carries.
        if silenced || !taken.contains(&dev) {
            senders.remove(&dev);
            v.from().remove(&dev);
            if asked.is_some() {
                let _ = tx.try_send(Input::Layer(dev, None));
            }
            continue;
        }
        // Loss over the last second: a full layer losing much steps down.
        if let Some(s) = senders.get_mut(&dev)
            && s.counted.elapsed() >= Duration::from_secs(1)
        {
            let total = s.decoded + s.lost;
            if s.layer == VIDEO_LAYERS - 1
                && total > 0
                && u64::from(s.lost) * 1000 / u64::from(total) > u64::from(DOWN_AT)
            {
                debug!(peer = %dev.short(8), lost = s.lost, total, "a sender's full layer loses frames: its small one taken");
                s.down_until = Some(now + UP_AFTER);
                downlink.down.insert(dev, now + UP_AFTER);
            }
            (s.decoded, s.lost, s.counted) = (0, 0, now);
        }
        // Pieces of a full layer come, but no picture for a while (its key
        // frames do not get through whole): the small layer.
        if let Some(s) = senders.get_mut(&dev)
            && s.layer == VIDEO_LAYERS - 1
            && s.latest.is_none()
            && s.key_asked.is_some()
            && now.duration_since(s.since) >= FIRST_PICTURE_WAIT
            && s.down_until.is_none()
        {
            debug!(peer = %dev.short(8), "no picture of a sender's full layer: its small one taken");
            s.down_until = Some(now + UP_AFTER);
            downlink.down.insert(dev, now + UP_AFTER);
        }
        let down_until = senders
            .get(&dev)
            .and_then(|s| s.down_until)
            .or_else(|| downlink.down.get(&dev).copied());
        let down = down_until.is_some_and(|until| until > now);
        let want = choose(participants, featured.is_some_and(|(f, _)| f == dev), down);
        if senders.get(&dev).is_none_or(|s| s.layer != want) {
            let Some(mut fresh) = From::new(want) else {
                continue;
            };
            fresh.down_until = down_until.filter(|until| *until > now);
            fresh.asked_at = now.checked_sub(ASK_AGAIN).unwrap_or(now);
            senders.insert(dev, fresh);
            v.from().insert(dev, (want, 0));
        }
        let Some(s) = senders.get_mut(&dev) else {
            continue;
        };
        // Asked (again after a relink, which forgets it, or when its video
        // comes through another forwarder) through the task.
        if (asked != Some(want) || !routed)
            && now.duration_since(s.asked_at) >= ASK_AGAIN
            && tx.try_send(Input::Layer(dev, Some(want))).is_ok()
        {
            s.asked_at = now;
        }
        if let Some(at) = s.key_asked
            && now.duration_since(at) >= ASK_EVERY
            && asked == Some(want)
            && s.assembler.waiting_for_key()
        {
            if let Ok(bytes) = key_request(want, s.asks).encode() {
                let _ = link.send_datagram(bytes);
            }
            s.asks = s.asks.wrapping_add(1);
            s.key_asked = Some(now);
            v.counts.keys_asked.fetch_add(1, Ordering::Relaxed);
        } else if !s.assembler.waiting_for_key() {
            s.key_asked = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_take_the_full_layer_in_small_calls_and_of_the_speaker_in_larger_ones() {
        for n in 2..=VIDEO_MESH {
            assert_eq!(choose(n, false, false), 1);
            assert_eq!(choose(n, true, false), 1);
            // Stepped down after losing frames: the small one.
            assert_eq!(choose(n, false, true), 0);
        }
        for n in VIDEO_MESH + 1..=8 {
            assert_eq!(choose(n, false, false), 0);
            assert_eq!(choose(n, true, false), 1);
            assert_eq!(choose(n, true, true), 0);
        }
    }

    #[test]
    fn a_receiver_takes_fewer_senders_while_most_lose_frames_and_more_when_clean() {
        let mut d = Downlink::new();
        let t0 = d.since;
        let at = |s: u64| t0 + Duration::from_secs(s);
        let devs: Vec<DeviceId> = (1..=4u8).map(|i| DeviceId::from_bytes([i; 32])).collect();
        // A second in which, of the senders placed, each of the first
        // `losing` devices had 10 frames decoded and 5 lost, the others
        // 15 decoded.
        let second = |d: &mut Downlink, s: u64, losing: usize| {
            let placed = d.place(&devs, None);
            for (i, dev) in devs.iter().enumerate() {
                if placed.contains(dev) {
                    let (got, lost) = if i < losing { (10, 5) } else { (15, 0) };
                    d.count(*dev, got, lost, at(s));
                }
            }
            d.second(at(s), None, devs.len());
        };
        // One sender losing, or half of them, is not the downlink's.
        for s in 1..=2 {
            second(&mut d, s, 1);
        }
        for s in 3..=5 {
            second(&mut d, s, 2);
        }
        assert_eq!(d.most, None);
        // Two lossy seconds: nothing yet; the third takes a quarter fewer
        // (at least one): of those that lost lately, by device.
        second(&mut d, 6, 3);
        second(&mut d, 7, 3);
        assert_eq!(d.most, None);
        second(&mut d, 8, 3);
        assert_eq!(d.most, Some(3));
        assert_eq!(d.dropped, HashSet::from([devs[2]]));
        // Dropped stays out, even once featured; the others keep their
        // places.
        assert_eq!(
            d.place(&devs, Some(devs[2])),
            vec![devs[0], devs[1], devs[3]]
        );
        // Ten clean seconds (a minority losing much, the rest nothing)
        // take one more: every one again.
        for s in 9..=17 {
            second(&mut d, s, 1);
        }
        assert_eq!(d.most, Some(3));
        second(&mut d, 18, 0);
        assert_eq!(d.most, None);
        assert!(d.dropped.is_empty());
        assert_eq!(d.place(&devs, None).len(), 4);
        // A sender losing a little while the others lose nothing is not
        // clean.
        d.most = Some(2);
        d.changed = at(18);
        d.placed = devs[..2].to_vec();
        for s in 19..=40 {
            d.count(devs[0], 95, 5, at(s));
            d.count(devs[1], 100, 0, at(s));
            d.second(at(s), None, devs.len());
        }
        assert_eq!(d.most, Some(2));
        // The featured one takes a place first, then those placed before,
        // then the latest to speak.
        d.spoke.insert(devs[2], at(35));
        d.spoke.insert(devs[3], at(39));
        assert_eq!(d.place(&devs, Some(devs[3])), vec![devs[3], devs[0]]);
        assert_eq!(d.place(&devs, None), vec![devs[3], devs[0]]);
        // At a cut the featured one stays, whatever it lost; one sending
        // no video goes before one that lost.
        d.most = None;
        d.placed = vec![devs[0], devs[1], devs[2], devs[3]];
        d.active_at.clear();
        d.lossy = CUT_AFTER;
        for dev in [devs[1], devs[2], devs[3]] {
            d.count(dev, 2, 2, at(41));
        }
        d.second(at(41), Some(devs[3]), devs.len());
        assert_eq!(d.dropped, HashSet::from([devs[0]]));
        assert_eq!(d.most, Some(3));
    }

    #[test]
    fn a_sealed_piece_fits_a_datagram() {
        let frame = vec![7u8; 10_000];
        let mut seq = 0;
        let mut key = node_core::call::conf::SenderKey::generate(1);
        for mut p in pieces_of(&frame, true, 0, 1, &mut seq, PIECE) {
            let header = p.header();
            p.payload = key.seal_stream(Stream::Video, &header, &p.payload);
            assert!(p.encode().is_ok());
        }
        assert!(seq > 9);
    }
}
