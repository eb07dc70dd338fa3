//! A call's media on this device: one task sends a 20 ms Opus frame per
//! tick as a datagram on the call connection; another reads the peer's
//! datagrams into the jitter buffer and, on its own 20 ms clock, decodes
//! (or rebuilds from FEC, or conceals) one frame per tick. Neither waits
//! for the node or the store, nor shares the node's threads: both run on
//! a thread of their own. Without a sound card in use the source is a
//! WAV file (`--audio-in`; silence after it ends, or without one) and the
//! sink memory written out as a WAV file when the call ends
//! (`--audio-out`); nothing of the media goes to the profile folder.

use super::files::AbortOnDrop;
use super::video::VideoFlow;
use kith_media::codec::{FRAME_SAMPLES, VoiceDecoder, VoiceEncoder};
use kith_media::jitter::{Config, FRAME, FRAME_TICKS, JitterBuffer, Playout};
use kith_media::packet::{FLAG_SILENT, Kind, Packet, Report};
use node_core::transport::Link;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::{debug, warn};

/// Longest audio read from a file or kept for one (10 minutes).
pub(super) const MAX_SAMPLES: usize = 600 * 48_000;
/// The bitrate a call starts at, bits per second.
pub(super) const START_BITRATE: i32 = 32_000;
/// The loss FEC prepares for until the path says otherwise, percent.
pub(super) const START_LOSS: u8 = 10;
/// How often each side reports what reached it, and the sender adapts.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// The call's sound card, once open.
pub(super) type Device = Arc<std::sync::OnceLock<Arc<dyn super::sound::SoundDevice>>>;

/// Most datagrams held back by a benchmark's added delay.
const MAX_HELD: usize = 4096;
/// A relayed path's ceiling on the audio bitrate, bits per second.
const RELAY_BITRATE: i32 = 24_000;

/// The audio bitrate and the loss FEC prepares for, from the receiver's
/// last report, the path's round trip and whether it is relayed. A clean
/// path spends every bit on the voice (FEC off: PESQ-WB 4.25 against 3.74
/// with FEC kept ready); once frames go missing, FEC is prepared for 10 %
/// (15 % past a 200 ms round trip, where a burst hurts longer) and the
/// bitrate rises to 35 kbit/s so the redundancy does not starve the voice
/// (at 10 % loss: 3.24 against 2.22 at 24 kbit/s; `bench/calls/pesq.sh`).
/// A relayed path is capped at 24 kbit/s.
pub(super) fn follow(
    loss_permille: u16,
    rtt: Option<std::time::Duration>,
    relayed: bool,
) -> (i32, u8) {
    let long_rtt = rtt.is_some_and(|r| r > std::time::Duration::from_millis(200));
    let (bitrate, fec) = match loss_permille {
        0..=19 => (32_000, 0),
        _ if long_rtt => (35_000, 15),
        _ => (35_000, 10),
    };
    let bitrate = if relayed {
        bitrate.min(RELAY_BITRATE)
    } else {
        bitrate
    };
    (bitrate, fec)
}

/// How long the peer's media may be silent before the connection counts
/// as lost (a sender always sends at least one datagram per 20 ms frame;
/// a cut path shows here long before QUIC's idle timeout).
pub(super) const SILENT_FOR: std::time::Duration = std::time::Duration::from_millis(1500);

/// Where a device's audio comes from and goes to (and its video: see
/// [`super::video::VideoIo`]).
#[derive(Debug, Clone, Default)]
pub(super) struct Audio {
    /// The samples to send (48 kHz mono), from `--audio-in`.
    pub input: Option<Arc<Vec<i16>>>,
    /// Where to write what was heard, from `--audio-out`.
    pub output: Option<PathBuf>,
    /// The call's video on this device.
    pub video: super::video::VideoIo,
}

impl Audio {
    /// Reads `--audio-in` and checks `--audio-out` can be written, before
    /// anything rings: bad paths are the command's error.
    pub(super) fn open(input: Option<&str>, output: Option<&str>) -> anyhow::Result<Self> {
        let input = match input {
            Some(p) => Some(Arc::new(kith_media::wav::read(Path::new(p), MAX_SAMPLES)?)),
            None => None,
        };
        let output = match output {
            Some(p) => {
                let path = PathBuf::from(p);
                // Made now (empty), written at the end.
                kith_media::wav::write(&path, &[])?;
                Some(path)
            }
            None => None,
        };
        Ok(Self {
            input,
            output,
            video: Default::default(),
        })
    }
}

/// Counts of one call's media.
#[derive(Debug, Default)]
pub(super) struct Counts {
    /// Datagrams sent.
    pub sent: AtomicU64,
    /// Datagrams received and kept.
    pub received: AtomicU64,
    /// Datagrams refused (malformed, oversized, not audio).
    pub bad: AtomicU64,
    /// Frames concealed (lost, or stretched).
    pub concealed: AtomicU64,
    /// The longest run of concealed frames so far.
    pub longest_gap: AtomicU64,
    /// Datagrams dropped on purpose (tests: a lossy path).
    pub dropped: AtomicU64,
    /// Audio bitrate sent over the last second, bits per second.
    pub sent_bps: AtomicU64,
    /// Times media started again after the connection was lost.
    pub resumed: AtomicU64,
    /// The peer's last report: frames missing on arrival, per thousand
    /// (`u64::MAX` before the first).
    pub peer_loss: AtomicU64,
    /// Frames this device sent as silence (DTX: 1–2 bytes each).
    pub silent_sent: AtomicU64,
    /// The bitrate the encoder uses now, bits per second.
    pub bitrate: AtomicU64,
    /// The loss the encoder's FEC prepares for now, percent.
    pub fec_percent: AtomicU64,
    /// The call's video.
    pub video: Arc<super::video::VideoCounts>,
    /// The sound card in use, once one opened.
    pub sound_device: Mutex<Option<String>>,
    /// The next video frame to take from the source (a resumed call goes
    /// on where it was).
    pub video_from: Arc<AtomicU64>,
    /// When the current flow's first frame was sent and its playout
    /// clock started, and when the first frame from the peer was played
    /// (benchmarks: where a sample of the input and of the output is on
    /// one clock).
    pub clocks: Mutex<Clocks>,
}

/// When a flow's clocks started (see [`Counts::clocks`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Clocks {
    /// When the call's first flow started. The source and the output
    /// keep to this clock across flows, as a microphone and a speaker
    /// would: what was said while a cut call was away is lost, and what
    /// is heard after it lines up with what is said, with the call's own
    /// delay.
    pub epoch: Option<Instant>,
    /// The send task's first tick: input sample `from` went out then.
    pub send_started: Option<Instant>,
    /// The input sample the flow started at.
    pub send_from: u64,
    /// The receive task's first tick: output sample `heard_from` was
    /// played then.
    pub play_started: Option<Instant>,
    /// How many samples were heard before this flow.
    pub heard_from: u64,
    /// The first frame played that came from the peer.
    pub first_played: Option<Instant>,
}

impl Counts {
    fn clocks(&self) -> std::sync::MutexGuard<'_, Clocks> {
        self.clocks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Counts {
    /// The share of played frames that were concealed, once any played.
    pub(super) fn loss(&self) -> Option<f64> {
        let received = self.received.load(Ordering::Relaxed);
        let concealed = self.concealed.load(Ordering::Relaxed);
        (received + concealed > 0).then(|| concealed as f64 / (received + concealed) as f64)
    }

    /// The longest run of concealed audio, once media flowed.
    pub(super) fn longest_gap_ms(&self) -> Option<u64> {
        let any = self.received.load(Ordering::Relaxed) + self.concealed.load(Ordering::Relaxed);
        (any > 0).then(|| self.longest_gap.load(Ordering::Relaxed) * 20)
    }
}

/// Media flowing with one peer; stops when dropped.
pub(super) struct Flow {
    _send: AbortOnDrop,
    _receive: AbortOnDrop,
    _video: Arc<VideoFlow>,
}

/// What one call heard, across flows (a resumed call goes on with the
/// same).
#[derive(Debug, Default)]
pub(super) struct Heard {
    samples: Mutex<Vec<i16>>,
}

impl Heard {
    /// Samples heard so far.
    pub(super) fn len(&self) -> usize {
        self.samples.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Silence up to `len` samples, if fewer were heard.
    pub(super) fn pad_to(&self, len: usize) {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let len = len.min(MAX_SAMPLES);
        if s.len() < len {
            s.resize(len, 0);
        }
    }

    pub(super) fn extend(&self, frame: &[i16]) {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() + frame.len() <= MAX_SAMPLES {
            s.extend_from_slice(frame);
        }
    }

    /// Writes what was heard to `path`.
    pub(super) fn write(&self, path: &Path) {
        let s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = kith_media::wav::write(path, &s) {
            warn!(error = %e, "writing the call's audio failed");
        }
    }
}

/// Starts sending `audio`'s input from `from` (the sample to start at,
/// so a resumed call goes on where it was) and playing what the peer
/// sends into `heard`; `silent` is called (once) if the peer's media
/// stops for [`SILENT_FOR`].
#[allow(clippy::too_many_arguments)]
pub(super) fn start(
    link: &Link,
    audio: &Audio,
    from: Arc<AtomicU64>,
    heard: Arc<Heard>,
    counts: Arc<Counts>,
    muted: Arc<std::sync::atomic::AtomicBool>,
    (loss_percent, delay): (u8, std::time::Duration),
    (card, video_call): (Option<super::sound::SoundCard>, bool),
    silent: Box<dyn FnOnce() + Send>,
) -> anyhow::Result<Flow> {
    let device = open_card(card, &counts);
    let video = Arc::new(VideoFlow::start(
        link,
        &audio.video,
        Arc::clone(&counts.video_from),
        Arc::clone(&counts.video),
        video_call,
    ));
    let encoder = VoiceEncoder::new(START_BITRATE, START_LOSS)?;
    counts.peer_loss.store(u64::MAX, Ordering::Relaxed);
    counts
        .bitrate
        .store(START_BITRATE as u64, Ordering::Relaxed);
    counts
        .fec_percent
        .store(u64::from(START_LOSS), Ordering::Relaxed);
    let decoder = VoiceDecoder::new()?;
    let rt = media_runtime()?;
    let epoch = *counts.clocks().epoch.get_or_insert_with(Instant::now);
    let send = rt.spawn(send(
        link.clone(),
        encoder,
        (audio.input.clone(), Arc::clone(&device)),
        (from, epoch),
        Arc::clone(&counts),
        muted,
    ));
    let receive = rt.spawn(receive(
        link.clone(),
        decoder,
        (heard, epoch),
        counts,
        (Arc::clone(&video), device),
        (loss_percent, delay),
        silent,
    ));
    Ok(Flow {
        _send: AbortOnDrop(send),
        _receive: AbortOnDrop(receive),
        _video: video,
    })
}

/// Opens the sound card beside a flow (it may take a moment); until it
/// does, and without one, the call is silent.
pub(super) fn open_card(card: Option<super::sound::SoundCard>, counts: &Arc<Counts>) -> Device {
    let device: Device = Default::default();
    if let Some(card) = card {
        let (device, counts) = (Arc::clone(&device), Arc::clone(counts));
        tokio::spawn(async move {
            match tokio::task::spawn_blocking(move || super::sound::open(&card)).await {
                Ok(Ok(Some(d))) => {
                    *counts
                        .sound_device
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(d.name().to_owned());
                    let _ = device.set(d);
                }
                Ok(Ok(None)) => debug!("no sound card: the call is silent here"),
                Ok(Err(e)) => warn!(error = %e, "the sound card could not be opened"),
                Err(e) => warn!(error = %e, "opening the sound card failed"),
            }
        });
    }
    device
}

/// The thread every call's audio runs on, with a runtime of its own: a
/// busy node (a slow query, a batch of signatures to check, a task that
/// blocks one of its workers) never delays a frame. Made on first use;
/// it lives as long as the process.
pub(super) fn media_runtime() -> anyhow::Result<tokio::runtime::Handle> {
    static RUNTIME: Mutex<Option<tokio::runtime::Handle>> = Mutex::new(None);
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("kith-audio".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// Whether an Opus payload is a silent frame (DTX: one or two bytes,
/// comfort noise at most).
pub(super) fn is_silence(payload: &[u8]) -> bool {
    payload.len() <= 2
}

/// Frames a late send tick still sends (100 ms); older ones are skipped
/// (their sequence numbers go unused, the other side conceals them).
pub(super) const MAX_CATCH_UP: u64 = 5;

/// The audio a sender owes on its clock: the source keeps to the call's
/// clock from `epoch`, as a microphone does. A tick that comes late (the
/// thread was not run in time) yields the frames it missed, up to
/// [`MAX_CATCH_UP`], and skips the rest (their sequence numbers go
/// unused: the other side conceals them), so the media clock never falls
/// behind and the other side's playout schedule holds; a flow that starts
/// after a cut starts at the present. Each frame is coded (DTX: a silent
/// stretch shrinks to 1–2 byte frames, still one per 20 ms, so the other
/// side's playout and liveness see each) into a packet.
pub(super) struct Outgoing {
    pub(super) encoder: VoiceEncoder,
    frames: FrameSource,
    epoch: Instant,
    seq: u32,
    first: bool,
    counts: Arc<Counts>,
}

impl Outgoing {
    pub(super) fn new(
        encoder: VoiceEncoder,
        frames: FrameSource,
        epoch: Instant,
        counts: Arc<Counts>,
    ) -> Self {
        Self {
            encoder,
            frames,
            epoch,
            seq: 0,
            first: true,
            counts,
        }
    }

    /// The packets due at `now` (`silence`: send silence whatever the
    /// source says, as a muted device does).
    pub(super) fn due(&mut self, now: Instant, silence: bool) -> Vec<Packet> {
        // Frames of the source due by now, this tick's included (half a
        // frame early counts: a tick is never late by less).
        let due = frames_since(self.epoch, now + FRAME / 2) + 1;
        let at = self.frames.from.load(Ordering::Relaxed) / FRAME_SAMPLES as u64;
        let behind = due.saturating_sub(at);
        let keep = if self.first { 1 } else { MAX_CATCH_UP };
        if behind > keep {
            let skip = behind - keep;
            self.frames.skip(skip);
            self.seq = self
                .seq
                .wrapping_add(u32::try_from(skip).unwrap_or(u32::MAX));
        }
        if self.first {
            self.first = false;
            let mut c = self.counts.clocks();
            c.send_started = Some(now);
            c.send_from = self.frames.from.load(Ordering::Relaxed);
        }
        let mut out = Vec::new();
        for _ in 0..behind.min(keep) {
            let frame = self.frames.next();
            let frame = if silence { &SILENCE[..] } else { frame };
            let seq = self.seq;
            self.seq = self.seq.wrapping_add(1);
            let payload = match self.encoder.encode(frame) {
                Ok(p) => p.to_vec(),
                Err(e) => {
                    warn!(error = %e, "encoding a frame failed");
                    continue;
                }
            };
            let silent = is_silence(&payload);
            if silent {
                self.counts.silent_sent.fetch_add(1, Ordering::Relaxed);
            }
            out.push(Packet {
                kind: Kind::Audio,
                flags: if silent { FLAG_SILENT } else { 0 },
                layer: 0,
                seq,
                ts: seq.wrapping_mul(FRAME_TICKS),
                payload,
            });
        }
        out
    }
}

/// Bytes sent in the current second, for the bitrate shown.
pub(super) struct Rate {
    window: Instant,
    bytes: u64,
}

impl Rate {
    pub(super) fn new() -> Self {
        Self {
            window: Instant::now(),
            bytes: 0,
        }
    }

    pub(super) fn add(&mut self, n: usize) {
        self.bytes += n as u64;
    }

    /// Once a second: stores the bitrate of the second gone in `into`
    /// and starts the next; true then.
    pub(super) fn roll(&mut self, into: &AtomicU64) -> bool {
        if self.window.elapsed() < REPORT_EVERY {
            return false;
        }
        let secs = self.window.elapsed().as_secs_f64();
        into.store((self.bytes as f64 * 8.0 / secs) as u64, Ordering::Relaxed);
        (self.window, self.bytes) = (Instant::now(), 0);
        true
    }
}

/// Sends one frame per 20 ms on the call's clock (see [`Outgoing`]).
async fn send(
    link: Link,
    encoder: VoiceEncoder,
    (input, device): (Option<Arc<Vec<i16>>>, Device),
    (from, epoch): (Arc<AtomicU64>, Instant),
    counts: Arc<Counts>,
    muted: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let frames = FrameSource {
        input,
        device,
        mic: [0i16; FRAME_SAMPLES],
        from,
        muted,
    };
    let mut out = Outgoing::new(encoder, frames, epoch, Arc::clone(&counts));
    let mut rate = Rate::new();
    loop {
        tick.tick().await;
        if rate.roll(&counts.sent_bps) {
            adapt(&link, &mut out.encoder, &counts);
        }
        for packet in out.due(Instant::now(), false) {
            let Ok(bytes) = packet.encode() else {
                continue;
            };
            let len = bytes.len();
            if link.send_datagram(bytes).is_err() {
                if link.is_closed() {
                    return;
                }
                continue;
            }
            counts.sent.fetch_add(1, Ordering::Relaxed);
            rate.add(len);
        }
    }
}

/// Follows the receiver's last report and the path: the encoder's
/// bitrate and FEC.
fn adapt(link: &Link, encoder: &mut VoiceEncoder, counts: &Counts) {
    let relayed = link.path() == node_core::transport::LinkPath::Relay;
    let (bitrate, fec) = match u16::try_from(counts.peer_loss.load(Ordering::Relaxed)) {
        Ok(loss) => follow(loss, link.rtt(), relayed),
        // No report yet: as the call started (lower if relayed).
        Err(_) if relayed => (RELAY_BITRATE, START_LOSS),
        Err(_) => (START_BITRATE, START_LOSS),
    };
    if counts.bitrate.load(Ordering::Relaxed) != bitrate as u64
        || counts.fec_percent.load(Ordering::Relaxed) != u64::from(fec)
    {
        match encoder.adapt(bitrate, fec) {
            Ok(()) => {
                counts.bitrate.store(bitrate as u64, Ordering::Relaxed);
                counts.fec_percent.store(u64::from(fec), Ordering::Relaxed);
            }
            Err(e) => warn!(error = %e, "adapting the encoder failed"),
        }
    }
}

/// Where the frames sent come from: the `--audio-in` samples from `from`
/// on, or the microphone, or silence (muted, or nothing to send).
pub(super) struct FrameSource {
    pub(super) input: Option<Arc<Vec<i16>>>,
    pub(super) device: Device,
    pub(super) mic: [i16; FRAME_SAMPLES],
    pub(super) from: Arc<AtomicU64>,
    pub(super) muted: Arc<std::sync::atomic::AtomicBool>,
}

/// One frame of silence.
pub(super) const SILENCE: [i16; FRAME_SAMPLES] = [0; FRAME_SAMPLES];

impl FrameSource {
    /// The next frame to send.
    pub(super) fn next(&mut self) -> &[i16] {
        let at64 = self.from.fetch_add(FRAME_SAMPLES as u64, Ordering::Relaxed);
        let at = usize::try_from(at64).unwrap_or(usize::MAX);
        // The microphone is read every frame (muted too: what it took
        // while muted must not be sent later).
        if let Some(d) = self.device.get() {
            d.capture(&mut self.mic);
        }
        // Muted, the source goes on (as a microphone would) but silence
        // is sent.
        match self.input.as_deref() {
            _ if self.muted.load(Ordering::Relaxed) => &SILENCE,
            Some(samples) if at.saturating_add(FRAME_SAMPLES) <= samples.len() => {
                &samples[at..at + FRAME_SAMPLES]
            }
            Some(_) => &SILENCE,
            None if self.device.get().is_some() => &self.mic,
            None => &SILENCE,
        }
    }

    /// Passes over `n` frames without sending them.
    pub(super) fn skip(&mut self, n: u64) {
        for _ in 0..n.min(MAX_SKIP) {
            let _ = self.next();
        }
        if n > MAX_SKIP {
            self.from
                .fetch_add((n - MAX_SKIP) * FRAME_SAMPLES as u64, Ordering::Relaxed);
        }
    }
}

/// Whole frames from `epoch` to `now`.
pub(super) fn frames_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_micros() / FRAME.as_micros())
        .unwrap_or(u64::MAX)
}

/// Frames a skip reads from the microphone (what it buffered over a
/// second is dropped; beyond that only the file position moves).
const MAX_SKIP: u64 = 50;

async fn receive(
    link: Link,
    mut decoder: VoiceDecoder,
    (heard, epoch): (Arc<Heard>, Instant),
    counts: Arc<Counts>,
    (video, device): (Arc<VideoFlow>, Device),
    (loss_percent, delay): (u8, std::time::Duration),
    silent: Box<dyn FnOnce() + Send>,
) {
    let mut jitter = JitterBuffer::new(Config::default());
    // Benchmarks only: datagrams held back as a slower path would.
    let mut held: std::collections::VecDeque<(Instant, Vec<u8>)> = Default::default();
    // When the peer's last good packet came (or media started).
    let mut heard_from = Instant::now();
    // This side's reports: frames played and missing since the last.
    let (mut played, mut missing, mut reported, mut reports) = (0u32, 0u32, Instant::now(), 0u32);
    let mut path = link.path();
    let (mut first_tick, mut first_frame) = (true, true);
    // Tests only: a seeded lossy path.
    let mut seed: u64 = 0x5eed;
    let mut gap = 0u64;
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let silence = vec![0i16; FRAME_SAMPLES];
    loop {
        tokio::select! {
            datagram = link.read_datagram() => {
                let Ok(bytes) = datagram else {
                    debug!("call media: the connection ended");
                    return;
                };
                if loss_percent > 0 {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    if (seed >> 33) % 100 < u64::from(loss_percent) {
                        counts.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                if delay.is_zero() {
                    take(&bytes, &mut jitter, &mut heard_from, &counts, &video);
                } else if held.len() < MAX_HELD {
                    held.push_back((Instant::now() + delay, bytes));
                }
            }
            () = sleep_until(held.front().map(|h| h.0)), if !held.is_empty() => {
                if let Some((_, bytes)) = held.pop_front() {
                    take(&bytes, &mut jitter, &mut heard_from, &counts, &video);
                }
            }
            _ = tick.tick() => {
                if heard_from.elapsed() >= SILENT_FOR {
                    debug!("call media: the peer went silent");
                    silent();
                    return;
                }
                if reported.elapsed() >= REPORT_EVERY {
                    let report = Report {
                        loss_permille: u16::try_from(
                            u64::from(missing) * 1000 / u64::from(played.max(1)),
                        )
                        .unwrap_or(1000),
                        target_ms: u16::try_from(jitter.target().as_millis()).unwrap_or(u16::MAX),
                        video_loss_permille: video.loss_to_report(),
                    };
                    if let Ok(bytes) = report.packet(reports).encode() {
                        let _ = link.send_datagram(bytes);
                    }
                    reports = reports.wrapping_add(1);
                    (played, missing, reported) = (0, 0, Instant::now());
                    // A path that turned direct (from a relay) starts the
                    // delay target again from the least.
                    let now_path = link.path();
                    if now_path != path {
                        if now_path == node_core::transport::LinkPath::Direct {
                            jitter.reset_target();
                        }
                        path = now_path;
                    }
                }
                // The output keeps to the call's clock, as a speaker
                // does: time this task was not run (or the call was cut)
                // is silence, a frame's slack allowed.
                let now = Instant::now();
                let expected = frames_since(epoch, now).saturating_sub(1) * FRAME_SAMPLES as u64;
                heard.pad_to(usize::try_from(expected).unwrap_or(usize::MAX));
                let playout = jitter.pop(now);
                if first_tick {
                    first_tick = false;
                    let mut c = counts.clocks();
                    c.play_started = Some(now);
                    c.heard_from = heard.len() as u64;
                    c.first_played = None;
                }
                if !matches!(playout, Playout::Waiting) {
                    played += 1;
                    if first_frame {
                        first_frame = false;
                        counts.clocks().first_played = Some(Instant::now());
                    }
                }
                if matches!(playout, Playout::Lost { .. } | Playout::Fec { .. }) {
                    missing += 1;
                }
                let concealed = matches!(playout, Playout::Lost { .. } | Playout::Stretch);
                if concealed {
                    gap += 1;
                    counts.longest_gap.fetch_max(gap, Ordering::Relaxed);
                } else {
                    gap = 0;
                }
                let frame = match playout {
                    Playout::Waiting => silence.clone(),
                    Playout::Frame { payload, .. } => match decoder.decode(&payload) {
                        Ok(f) => f,
                        Err(_) => {
                            counts.bad.fetch_add(1, Ordering::Relaxed);
                            conceal(&mut decoder, &counts)
                        }
                    },
                    Playout::Fec { next, .. } => decoder
                        .decode_fec(&next)
                        .unwrap_or_else(|_| conceal(&mut decoder, &counts)),
                    Playout::Lost { .. } | Playout::Stretch => conceal(&mut decoder, &counts),
                };
                if let Some(d) = device.get() {
                    d.play(&frame);
                }
                heard.extend(&frame);
            }
        }
    }
}

/// Takes one datagram from the peer: audio into the jitter buffer, a
/// report to the senders, video to its threads; anything else is counted
/// as bad.
fn take(
    bytes: &[u8],
    jitter: &mut JitterBuffer,
    heard_from: &mut Instant,
    counts: &Counts,
    video: &VideoFlow,
) {
    match Packet::decode(bytes) {
        Ok(p) if p.kind == Kind::Audio => {
            *heard_from = Instant::now();
            jitter.push(p.seq, p.ts, p.payload, *heard_from);
            counts.received.fetch_add(1, Ordering::Relaxed);
        }
        Ok(p) if p.kind == Kind::Report => match Report::from_packet(&p) {
            Ok(r) => {
                counts
                    .peer_loss
                    .store(u64::from(r.loss_permille), Ordering::Relaxed);
                video.peer_reported(r.video_loss_permille);
            }
            Err(_) => {
                counts.bad.fetch_add(1, Ordering::Relaxed);
            }
        },
        Ok(p) if matches!(p.kind, Kind::Video | Kind::KeyRequest) => video.deliver(p),
        _ => {
            counts.bad.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sleeps until `at` (never, without one).
pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

pub(super) fn conceal(decoder: &mut VoiceDecoder, counts: &Counts) -> Vec<i16> {
    counts.concealed.fetch_add(1, Ordering::Relaxed);
    decoder.conceal().unwrap_or_else(|_| vec![0; FRAME_SAMPLES])
}

#[cfg(test)]
mod tests {
    use super::follow;
    use std::time::Duration;

    #[test]
    fn the_encoder_follows_loss_round_trip_and_relays() {
        let rtt = Some(Duration::from_millis(30));
        // A clean path: every bit for the voice, no FEC.
        assert_eq!(follow(0, rtt, false), (32_000, 0));
        assert_eq!(follow(19, rtt, false), (32_000, 0));
        // Loss: FEC, and more bits so it does not starve the voice.
        assert_eq!(follow(20, rtt, false), (35_000, 10));
        assert_eq!(follow(1000, rtt, false), (35_000, 10));
        assert_eq!(follow(u16::MAX, rtt, false), (35_000, 10));
        // A long round trip asks for more FEC; a relay caps the rate.
        assert_eq!(
            follow(50, Some(Duration::from_millis(400)), false),
            (35_000, 15)
        );
        assert_eq!(follow(0, rtt, true).0, 24_000);
        assert_eq!(follow(100, rtt, true), (24_000, 10));
    }
}
