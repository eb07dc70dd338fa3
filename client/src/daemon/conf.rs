//! Conferences in rooms on this device: `kith call ROOM` starts the room's
//! conference (a room event) or joins the one on (another), and links with
//! every other participant on a connection of its own (ALPN
//! `kith/conf/1`): a full mesh. Each participant seals its frames under
//! its own sender key (`node_core::call::conf`), gives the key to each
//! linked participant on that link's control stream, and makes a new one
//! whenever the participants it is linked with change. Every receiver
//! mixes what the others send.
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

use super::Daemon;
use super::files::AbortOnDrop;
use super::media::{Counts, Heard};
use anyhow::{Result, bail};
use kith_media::codec::{FRAME_SAMPLES, VoiceDecoder, VoiceEncoder};
use kith_media::jitter::{Config, FRAME, FRAME_TICKS, JitterBuffer, Playout};
use kith_media::packet::{FLAG_SILENT, HEADER, Kind, MAX_PAYLOAD, Packet};
use node_core::call::CallId;
use node_core::call::conf::{
    ConfMsg, FIRST_KID_BELOW, FRAME_OVERHEAD, FrameError, MAX_CONF_FRAME, RoomCall, SenderKey,
    SenderKeys,
};
use node_core::transport::{FrameReader, FrameWriter, Link};
use node_core::{AccountId, DeviceId, LogId};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// How long dialling one participant may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// How long an incoming conference connection has to say which it is.
const HELLO_WAIT: Duration = Duration::from_secs(10);
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
/// Most keys one participant may give in a conference (a participant that
/// floods keys is dropped).
const MAX_KEYS: u64 = 10_000;
/// Most conferences kept for `call status` (ended ones included).
const MAX_CONFS: usize = 8;
/// Inputs queued per conference.
const INPUTS: usize = 256;
/// Control frames queued per link.
const OUTGOING: usize = 32;

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
    /// A moderator muted its account: not played.
    silenced: bool,
    /// Its datagram reader.
    _reader: AbortOnDrop,
}

/// What the conference task and its media tasks share (never the node).
pub(super) struct Shared {
    id: CallId,
    room: LogId,
    /// The key frames are sealed under now.
    key: Mutex<SenderKey>,
    peers: Mutex<HashMap<DeviceId, Peer>>,
    /// The user muted this device.
    muted: Arc<AtomicBool>,
    /// A moderator muted this device's account.
    forced_mute: AtomicBool,
    counts: Arc<Counts>,
    seal: SealCounts,
    ended: Mutex<Option<String>>,
    /// What was heard (written to `--audio-out` on leaving).
    heard: Arc<Heard>,
    /// Benchmarks and tests: a copy of every key given to this device
    /// and of sealed frames received (see `kith daemon
    /// --danger-conf-dump`).
    dump: Option<std::path::PathBuf>,
}

impl Shared {
    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, Peer>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
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

/// The conferences of a daemon.
#[derive(Default)]
pub(super) struct Confs {
    table: Mutex<HashMap<CallId, Entry>>,
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

    /// Whether this device is in a conference now.
    pub(super) fn busy(&self) -> bool {
        self.lock().values().any(|e| e.ended_at.is_none())
    }

    /// The conference (not over) a call id names or, without one, the one
    /// this device is in.
    fn find(&self, id: Option<&str>) -> Option<(CallId, mpsc::Sender<Input>, Arc<Shared>)> {
        let t = self.lock();
        let mut live = t.iter().filter(|(cid, e)| {
            e.ended_at.is_none()
                && id.is_none_or(|p| cid.to_string().starts_with(&p.to_lowercase()))
        });
        let (cid, e) = live.next()?;
        Some((*cid, e.tx.clone(), Arc::clone(&e.shared)))
    }

    fn insert(&self, id: CallId, entry: Entry) -> bool {
        let mut t = self.lock();
        if t.values().any(|e| e.ended_at.is_none()) {
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
    if video {
        bail!("video in room calls is not built yet: call the room without --video");
    }
    if d.calls.busy() || d.confs.busy() {
        bail!("this device is already in a call (see `kith call status`)");
    }
    let now = crate::now_ms();
    let (id, started) = {
        let mut node = d.node.lock().await;
        let (id, started) = match node.room_conference(&room) {
            Some(c) => (c.id, false),
            None => {
                let id = CallId::random();
                node.room_call(room, RoomCall::Start(id), now).await?;
                (id, true)
            }
        };
        node.room_call(
            room,
            RoomCall::Join {
                call: id,
                device: d.device,
            },
            now,
        )
        .await?;
        (id, started)
    };
    info!(call = %id, room = %room.short(12), started, "in the room's call");
    let counts = Arc::new(Counts::default());
    let muted = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        id,
        room,
        key: Mutex::new(SenderKey::generate(
            u32::from_be_bytes(node_core::crypto::random_bytes()) % FIRST_KID_BELOW,
        )),
        peers: Mutex::new(HashMap::new()),
        muted: Arc::clone(&muted),
        forced_mute: AtomicBool::new(false),
        counts: Arc::clone(&counts),
        seal: SealCounts::default(),
        ended: Mutex::new(None),
        heard: Arc::default(),
        dump: d.conf_dump.get().cloned(),
    });
    let (tx, rx) = mpsc::channel(INPUTS);
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
    let media = start_media(d, &shared, &audio, tx.clone())?;
    let task = Task {
        d: Arc::clone(d),
        shared,
        tx,
        writers: HashMap::new(),
        dialling: HashMap::new(),
        next_kid: 0,
        pending: None,
        audio,
        media: Some(media),
        alone_since: None,
    };
    d.spawn(task.run(rx));
    Ok(id)
}

/// Serves an incoming conference connection: its first frame names the
/// conference; the dialling device must be a member's that may be in it.
pub(super) async fn serve(d: Arc<Daemon>, link: Link) {
    let peer = link.peer();
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
    let Ok(ConfMsg::Hello { room, call }) = ConfMsg::decode(&frame) else {
        debug!(peer = %peer.short(8), "a conference connection that does not start with hello");
        link.close("bad conference frame");
        return;
    };
    let tx = d
        .confs
        .lock()
        .get(&call)
        .filter(|e| e.ended_at.is_none() && e.shared.room == room)
        .map(|e| e.tx.clone());
    let Some(tx) = tx else {
        link.close("not in that call");
        return;
    };
    let account = d.node.lock().await.conference_member(&room, call, &peer);
    let Some(account) = account.filter(|_| peer != d.device) else {
        debug!(peer = %peer.short(8), "conference connection from a device that may not be in it: refused");
        link.close("not a member of the call");
        return;
    };
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

/// The conference's own task: links, keys, the room's word.
struct Task {
    d: Arc<Daemon>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Input>,
    /// Each link's control frames, sent by a task of its own.
    writers: HashMap<DeviceId, (mpsc::Sender<Vec<u8>>, AbortOnDrop, AbortOnDrop)>,
    /// Participants being dialled or not reached: when to try next, and
    /// how long to wait after that.
    dialling: HashMap<DeviceId, (Instant, Duration)>,
    next_kid: u32,
    /// A key given out, sealed with from the instant named.
    pending: Option<(SenderKey, Instant)>,
    audio: super::media::Audio,
    media: Option<Media>,
    /// Since when no participant is linked while others are in the call.
    alone_since: Option<Instant>,
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
        let why = loop {
            let switch_at = self.pending.as_ref().map(|(_, at)| *at);
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
                () = super::media::sleep_until(switch_at), if switch_at.is_some() => {
                    if let Some((key, _)) = self.pending.take() {
                        *self.shared.key.lock().unwrap_or_else(|p| p.into_inner()) = key;
                    }
                }
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
                match msg {
                    ConfMsg::Key { kid, key } => {
                        if let Some(dir) = &self.shared.dump {
                            dump_key(dir, dev, kid, &key);
                        }
                        peer.keys.add(kid, key);
                        if peer.keys.given() > MAX_KEYS {
                            warn!(peer = %dev.short(8), "a participant gave too many keys: dropped");
                            drop(peers);
                            self.drop_peer(dev, "too many keys");
                        }
                    }
                    ConfMsg::Bye(call) if call == self.shared.id => {
                        drop(peers);
                        info!(peer = %dev.short(8), "a participant left the call");
                        self.drop_peer(dev, "left");
                    }
                    // Hello and Welcome open a link; anything else here is
                    // ignored.
                    _ => {}
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
        self.dialling.remove(&dev);
        if let Some(old) = self.shared.peers().get(&dev) {
            let keep_new = dialled_here == (self.d.device < dev);
            if !keep_new {
                link.close("duplicate");
                return;
            }
            old.link.close("duplicate");
        }
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
                silenced: false,
                _reader: reader_task,
            },
        );
        // Its control frames: read by one task, written by another.
        let (out_tx, out_rx) = mpsc::channel(OUTGOING);
        let write = tokio::spawn(write_frames(writer, out_rx, link.clone()));
        let read = tokio::spawn(read_frames(reader, dev, link.clone(), self.tx.clone()));
        self.writers
            .insert(dev, (out_tx, AbortOnDrop(write), AbortOnDrop(read)));
        info!(peer = %dev.short(8), "linked with a participant");
        self.rotate();
    }

    fn drop_peer(&mut self, dev: DeviceId, why: &str) {
        if let Some(p) = self.shared.peers().remove(&dev) {
            p.link.close(why);
        }
        self.writers.remove(&dev);
        self.rotate();
    }

    /// A new sender key, given to every linked participant now and sealed
    /// with a moment later.
    fn rotate(&mut self) {
        let key = SenderKey::generate(self.next_kid);
        self.next_kid = self.next_kid.saturating_add(1);
        let frame = key.announce().encode();
        for (out, ..) in self.writers.values() {
            // A link whose queue is full is too slow to keep: its writer
            // closes it when a frame takes too long.
            let _ = out.try_send(frame.clone());
        }
        self.shared.seal.keys_made.fetch_add(1, Ordering::Relaxed);
        self.pending = Some((key, Instant::now() + KEY_SWITCH));
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
                    let ok =
                        node.conference_member(&self.shared.room, self.shared.id, d) == Some(*a);
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
            let due = self.dialling.get(dev).is_none_or(|(next, _)| *next <= now);
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
            tokio::spawn(dial(d, room, id, *dev, *account, tx));
        }
        self.dialling
            .retain(|dev, _| conf.participants.contains_key(dev));
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

    /// Leaves: tells the participants, stops the media, writes the sound
    /// out, says so in the room (and ends the call there if no one else is
    /// in it).
    async fn finish(&mut self, why: &str) {
        *self.shared.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_owned());
        let bye = ConfMsg::Bye(self.shared.id).encode();
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
async fn write_frames(mut writer: FrameWriter, mut rx: mpsc::Receiver<Vec<u8>>, link: Link) {
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
    loop {
        let frame = match reader.recv_max(MAX_CONF_FRAME).await {
            Ok(Some(f)) => f,
            _ => break,
        };
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
    let rt = super::media::media_runtime().ok()?;
    let shared = Arc::clone(shared);
    Some(AbortOnDrop(rt.spawn(async move {
        let mut dumped = 0u32;
        loop {
            let Ok(bytes) = link.read_datagram().await else {
                let _ = tx.send(Input::Lost(dev, link)).await;
                return;
            };
            if let Some(dir) = &shared.dump
                && dumped < 2000
            {
                dumped += 1;
                dump_frame(dir, dev, &bytes);
            }
            take(&shared, dev, &bytes);
        }
    })))
}

fn take(shared: &Shared, dev: DeviceId, bytes: &[u8]) {
    let counts = &shared.counts;
    let packet = match Packet::decode(bytes) {
        Ok(p) if p.kind == Kind::Audio => p,
        _ => {
            counts.bad.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let mut peers = shared.peers();
    let Some(peer) = peers.get_mut(&dev) else {
        return;
    };
    match peer.keys.open(&bytes[..HEADER], &packet.payload) {
        Ok(opus) => {
            peer.heard_from = Instant::now();
            peer.jitter
                .push(packet.seq, packet.ts, opus, peer.heard_from);
            counts.received.fetch_add(1, Ordering::Relaxed);
        }
        // Frames from before its first key came (it seals under the key
        // it had before the link, which it never gives out): not bad.
        Err(FrameError::UnknownKey) if peer.keys.current_kid().is_none() => {}
        Err(e) => {
            let c = match e {
                FrameError::Replayed => &shared.seal.replayed,
                FrameError::UnknownKey => &shared.seal.stale_key,
                FrameError::Forged => &shared.seal.forged,
                FrameError::Short(_) => &counts.bad,
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The conference's media tasks; they stop when this is dropped.
struct Media {
    _send: AbortOnDrop,
    _mix: AbortOnDrop,
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
    let rt = super::media::media_runtime()?;
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
    let send = rt.spawn(send(Arc::clone(shared), encoder, source, epoch));
    let mix = rt.spawn(mix(Arc::clone(shared), device, heard, epoch, tx));
    Ok(Media {
        _send: AbortOnDrop(send),
        _mix: AbortOnDrop(mix),
    })
}

/// Sends one sealed frame per 20 ms to every linked participant (the same
/// bytes to each: sealed once).
async fn send(
    shared: Arc<Shared>,
    mut encoder: VoiceEncoder,
    mut frames: super::media::FrameSource,
    epoch: Instant,
) {
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u32 = 0;
    let counts = &shared.counts;
    let (mut window, mut window_bytes) = (Instant::now(), 0u64);
    let mut first = true;
    loop {
        tick.tick().await;
        if window.elapsed() >= Duration::from_secs(1) {
            let secs = window.elapsed().as_secs_f64();
            counts
                .sent_bps
                .store((window_bytes as f64 * 8.0 / secs) as u64, Ordering::Relaxed);
            (window, window_bytes) = (Instant::now(), 0);
        }
        let now = Instant::now();
        let due = super::media::frames_since(epoch, now + FRAME / 2) + 1;
        let at = frames.from.load(Ordering::Relaxed) / FRAME_SAMPLES as u64;
        let behind = due.saturating_sub(at);
        let keep = if first { 1 } else { super::media::MAX_CATCH_UP };
        if behind > keep {
            let skip = behind - keep;
            frames.skip(skip);
            seq = seq.wrapping_add(u32::try_from(skip).unwrap_or(u32::MAX));
        }
        if first {
            first = false;
            let mut c = counts.clocks.lock().unwrap_or_else(|p| p.into_inner());
            c.send_started = Some(now);
            c.send_from = frames.from.load(Ordering::Relaxed);
        }
        let links: Vec<Link> = shared.peers().values().map(|p| p.link.clone()).collect();
        for _ in 0..behind.min(keep) {
            let frame = frames.next();
            let frame = if shared.forced_mute.load(Ordering::Relaxed) {
                &super::media::SILENCE[..]
            } else {
                frame
            };
            let payload = match encoder.encode(frame) {
                Ok(p) => p.to_vec(),
                Err(e) => {
                    warn!(error = %e, "encoding a frame failed");
                    seq = seq.wrapping_add(1);
                    continue;
                }
            };
            let silent = payload.len() <= 2;
            if silent {
                counts.silent_sent.fetch_add(1, Ordering::Relaxed);
            }
            let mut packet = Packet {
                kind: Kind::Audio,
                flags: if silent { FLAG_SILENT } else { 0 },
                layer: 0,
                seq,
                ts: seq.wrapping_mul(FRAME_TICKS),
                payload: Vec::new(),
            };
            seq = seq.wrapping_add(1);
            if payload.len() + FRAME_OVERHEAD > MAX_PAYLOAD {
                continue;
            }
            let header = packet.header();
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
                    window_bytes += bytes.len() as u64;
                }
            }
        }
    }
}

/// Mixes what every participant sends, one 20 ms frame per tick: each
/// participant's jitter buffer gives a frame (decoded, rebuilt from FEC or
/// concealed), a muted one's is left out, and the sum is what is heard. A
/// participant silent for [`super::media::SILENT_FOR`] counts as lost.
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
                    silent_peers.push((*dev, p.link.clone()));
                    continue;
                }
                let frame = match p.jitter.pop(now) {
                    Playout::Waiting => continue,
                    Playout::Frame { payload, .. } => match p.decoder.decode(&payload) {
                        Ok(f) => f,
                        Err(_) => {
                            counts.bad.fetch_add(1, Ordering::Relaxed);
                            super::media::conceal(&mut p.decoder, &counts)
                        }
                    },
                    Playout::Fec { next, .. } => p
                        .decoder
                        .decode_fec(&next)
                        .unwrap_or_else(|_| super::media::conceal(&mut p.decoder, &counts)),
                    Playout::Lost { .. } | Playout::Stretch => {
                        concealed_any = true;
                        super::media::conceal(&mut p.decoder, &counts)
                    }
                };
                if p.silenced {
                    continue;
                }
                for (s, x) in sum.iter_mut().zip(frame.iter()) {
                    *s += i32::from(*x);
                }
            }
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
                video_kbps: None,
                video: false,
                media: ended.is_none(),
                longest_gap_ms: c.longest_gap_ms(),
                muted: s.muted.load(Ordering::Relaxed),
                resumed: 0,
                bad_datagrams: c.bad.load(Ordering::Relaxed)
                    + s.seal.replayed.load(Ordering::Relaxed)
                    + s.seal.stale_key.load(Ordering::Relaxed)
                    + s.seal.forged.load(Ordering::Relaxed),
                compromised: false,
                audio_device: c
                    .sound_device
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
                video_frames_sent: 0,
                video_frames_shown: 0,
                video_frames_lost: 0,
                video_keys_asked: 0,
                ended,
                room: Some(s.room.to_string()),
                keys_made: s.seal.keys_made.load(Ordering::Relaxed),
                frames_replayed: s.seal.replayed.load(Ordering::Relaxed),
                frames_stale_key: s.seal.stale_key.load(Ordering::Relaxed),
                frames_forged: s.seal.forged.load(Ordering::Relaxed),
            }
        })
        .collect()
}
