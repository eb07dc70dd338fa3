//! A call's video on this device. Coding a 640×480 picture takes
//! milliseconds of a core, so video runs on two threads of its own, never
//! on the runtime that carries the audio: a sender that takes a picture
//! every 1/30 s (from `--video-in`, or a moving test picture), codes it
//! and sends its pieces as datagrams, and a shower that puts the peer's
//! frames together, decodes them and shows each on its own 1/30 s clock
//! (written to `--video-out`; a terminal has no video window).
//!
//! Audio goes first: the sender paces its pieces under a rate, leaves a
//! frame out when the connection's datagram queue is backing up (the
//! congestion window holds it), and aims its bitrate under what the
//! window carries and what the receiver reports lost. A receiver that
//! lost a frame asks for a key frame (at most every 200 ms) and shows the
//! last picture until one comes; the sender makes at most three a second.

use super::camera::Camera;
use kith_media::frames::{Assembler, pieces};
use kith_media::packet::{Kind, Packet, key_request};
use kith_media::video::{
    BITRATE, FPS, FRAME_TICKS, HEIGHT, MIN_BITRATE, Picture, VideoDecoder, VideoEncoder, WIDTH,
    synthetic,
};
use kith_media::y4m::{Y4mReader, Y4mWriter};
use node_core::transport::Link;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// One frame's time.
pub(super) const FRAME: Duration = Duration::from_nanos(1_000_000_000 / FPS as u64);
/// Most bytes written to one `--video-out` file: ten minutes at 640×480
/// (a peer sending larger pictures fills it sooner).
pub(super) const MAX_SHOWN_BYTES: u64 = 600 * FPS as u64 * (WIDTH * HEIGHT * 3 / 2) as u64;
/// Most frames decoded a second; beyond, frames are dropped and a key
/// frame asked for (a peer cannot keep a core decoding).
const MAX_DECODES: u32 = 2 * FPS;
/// Video packets waiting for the shower thread; more are dropped.
const QUEUE: usize = 1024;
/// Bytes of datagrams queued in the connection beyond which a frame is
/// left out (the congestion window is holding them back).
const BACKLOG: usize = 48 << 10;
/// Least time between key frames made on request.
const KEY_EVERY: Duration = Duration::from_millis(330);
/// Least time between requests for a key frame.
const ASK_EVERY: Duration = Duration::from_millis(200);

/// Where a device's video comes from and goes to.
#[derive(Debug, Clone, Default)]
pub(super) struct VideoIo {
    /// Whether this device sends video (`--video`).
    pub send: bool,
    /// The Y4M file to send, from `--video-in` (else a test picture).
    pub input: Option<PathBuf>,
    /// Where what is shown goes, from `--video-out`.
    pub output: Option<Arc<Shown>>,
    /// The camera to send from when no file is named (none: the test
    /// picture).
    pub camera: Option<PathBuf>,
}

impl VideoIo {
    /// Checks `--video-in` is a Y4M file this reads and makes
    /// `--video-out`, before anything rings.
    pub(super) fn open(
        send: bool,
        input: Option<&str>,
        output: Option<&str>,
    ) -> anyhow::Result<Self> {
        let input = match input {
            Some(p) => {
                Y4mReader::open(std::path::Path::new(p))?;
                Some(PathBuf::from(p))
            }
            None => None,
        };
        let output = match output {
            Some(p) => Some(Arc::new(Shown {
                writer: Mutex::new(Some(Y4mWriter::create(std::path::Path::new(p))?)),
            })),
            None => None,
        };
        Ok(Self {
            send: send || input.is_some(),
            input,
            output,
            camera: None,
        })
    }
}

/// The call's shown pictures, across flows (a resumed call appends).
#[derive(Debug)]
pub(super) struct Shown {
    writer: Mutex<Option<Y4mWriter>>,
}

impl Shown {
    pub(super) fn write(&self, p: &Picture) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(writer) = w.as_mut() else { return };
        if writer.bytes >= MAX_SHOWN_BYTES {
            return;
        }
        if let Err(e) = writer.write(p) {
            warn!(error = %e, "writing the call's video failed");
            *w = None;
        }
    }

    /// Pictures written so far.
    fn frames(&self) -> u64 {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.as_ref().map_or(0, |w| w.frames)
    }

    /// Writes out what is buffered and closes the file (the call ended;
    /// a shower still running writes nothing more).
    pub(super) fn finish(&self) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(writer) = w.as_mut()
            && let Err(e) = writer.flush()
        {
            warn!(error = %e, "writing the call's video failed");
        }
        *w = None;
    }
}

/// Counts of one call's video.
#[derive(Debug, Default)]
pub(super) struct VideoCounts {
    /// Frames coded and sent.
    pub frames_sent: AtomicU64,
    /// Frames left out (the queue was backing up, or rate control).
    pub frames_skipped: AtomicU64,
    /// Key frames sent.
    pub keys_sent: AtomicU64,
    /// Video bits per second sent over the last second.
    pub sent_bps: AtomicU64,
    /// The bitrate the encoder aims at.
    pub bitrate: AtomicU64,
    /// Frames decoded from the peer.
    pub frames_decoded: AtomicU64,
    /// Frames lost or dropped waiting for a key frame.
    pub frames_dropped: AtomicU64,
    /// Key frames asked of the peer.
    pub keys_asked: AtomicU64,
    /// Video packets refused (inconsistent pieces, undecodable frames).
    pub bad: AtomicU64,
    /// The peer's last report of video frames lost, per thousand
    /// (`u64::MAX` before the first).
    pub peer_loss: AtomicU64,
    /// Frames of the peer's video lost here over the last second, per
    /// thousand (sent in this side's reports).
    pub my_loss: AtomicU64,
    /// Clocks for benchmarks: when frame `send_from` was taken, and when
    /// the first shown picture was written.
    pub clocks: Mutex<VideoClocks>,
}

/// See [`VideoCounts::clocks`].
#[derive(Debug, Default, Clone, Copy)]
pub struct VideoClocks {
    /// When the sender took its first frame of this flow.
    pub send_started: Option<Instant>,
    /// That frame's number in the source.
    pub send_from: u64,
    /// When the shower wrote its first picture of this flow.
    pub show_started: Option<Instant>,
    /// Pictures written before this flow.
    pub shown_from: u64,
}

impl VideoCounts {
    fn clocks(&self) -> std::sync::MutexGuard<'_, VideoClocks> {
        self.clocks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A flow's video threads; they stop when this is dropped.
pub(super) struct VideoFlow {
    stop: Arc<AtomicBool>,
    /// The shower's queue, once the peer sent video.
    show: Mutex<Option<SyncSender<Packet>>>,
    link: Link,
    io: VideoIo,
    counts: Arc<VideoCounts>,
    /// The peer asked for a key frame.
    key_wanted: Arc<AtomicBool>,
    /// Whether the call carries video (else the peer's is refused).
    accept: bool,
}

impl std::fmt::Debug for VideoFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VideoFlow")
    }
}

impl Drop for VideoFlow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl VideoFlow {
    /// Starts sending (if `io.send`) from frame `from` on; the shower
    /// starts with the peer's first video packet.
    pub(super) fn start(
        link: &Link,
        io: &VideoIo,
        from: Arc<AtomicU64>,
        counts: Arc<VideoCounts>,
        accept: bool,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let key_wanted = Arc::new(AtomicBool::new(false));
        counts.peer_loss.store(u64::MAX, Ordering::Relaxed);
        if io.send {
            let (link, input, counts, stop, key_wanted) = (
                link.clone(),
                (io.input.clone(), io.camera.clone()),
                Arc::clone(&counts),
                Arc::clone(&stop),
                Arc::clone(&key_wanted),
            );
            let spawned = std::thread::Builder::new()
                .name("kith-video-send".into())
                .spawn(move || send(link, input, from, counts, stop, key_wanted));
            if let Err(e) = spawned {
                warn!(error = %e, "the video sender could not start");
            }
        }
        Self {
            stop,
            show: Mutex::new(None),
            link: link.clone(),
            io: io.clone(),
            counts,
            key_wanted,
            accept,
        }
    }

    /// The peer's report of the video it lost, per thousand.
    pub(super) fn peer_reported(&self, permille: u16) {
        self.counts
            .peer_loss
            .store(u64::from(permille.min(1000)), Ordering::Relaxed);
    }

    /// This side's video loss to report, per thousand.
    pub(super) fn loss_to_report(&self) -> u16 {
        u16::try_from(self.counts.my_loss.load(Ordering::Relaxed).min(1000)).unwrap_or(1000)
    }

    /// Takes a video-related packet from the peer (the audio receiver
    /// reads every datagram and hands these over; never waits).
    pub(super) fn deliver(&self, p: Packet) {
        // Video in a call that carries none, or a simulcast layer a call
        // between two does not send: refused before anything is kept.
        if !self.accept || p.layer != 0 {
            self.counts.bad.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match p.kind {
            Kind::KeyRequest => self.key_wanted.store(true, Ordering::Relaxed),
            Kind::Video => {
                let mut show = self.show.lock().unwrap_or_else(|p| p.into_inner());
                if show.is_none() {
                    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
                    let (link, output, counts, stop) = (
                        self.link.clone(),
                        self.io.output.clone(),
                        Arc::clone(&self.counts),
                        Arc::clone(&self.stop),
                    );
                    match std::thread::Builder::new()
                        .name("kith-video-show".into())
                        .spawn(move || show_loop(rx, link, output, counts, stop))
                    {
                        Ok(_) => *show = Some(tx),
                        Err(e) => {
                            warn!(error = %e, "the video shower could not start");
                            return;
                        }
                    }
                }
                if let Some(tx) = show.as_ref()
                    && let Err(TrySendError::Full(_)) = tx.try_send(p)
                {
                    self.counts.frames_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Kind::Audio | Kind::Report => {}
        }
    }
}

/// The video bitrate to aim at: the most a video call uses, under what
/// the congestion window carries (less the audio's share), lowered while
/// the receiver reports frames lost and on a relayed path.
pub(super) fn aim(
    peer_loss_permille: Option<u16>,
    window_bps: Option<u64>,
    relayed: bool,
    now: u32,
) -> u32 {
    let mut target = match peer_loss_permille {
        // Losing much: halve (a path far below the rate, where every
        // second over it costs the audio too).
        Some(l) if l > 100 => now / 2,
        // Losing some: back off by a fifth.
        Some(l) if l > 20 => now.saturating_mul(4) / 5,
        // Clean: climb back by a tenth.
        Some(_) => now.saturating_add(now / 10),
        None => now,
    };
    if let Some(w) = window_bps {
        let room = (w.saturating_sub(64_000) * 8 / 10).min(u64::from(u32::MAX)) as u32;
        target = target.min(room);
    }
    let ceiling = if relayed { BITRATE / 2 } else { BITRATE };
    target.clamp(MIN_BITRATE, ceiling)
}

fn send(
    link: Link,
    (input, camera): (Option<PathBuf>, Option<PathBuf>),
    from: Arc<AtomicU64>,
    counts: Arc<VideoCounts>,
    stop: Arc<AtomicBool>,
    key_wanted: Arc<AtomicBool>,
) {
    let mut encoder = match VideoEncoder::new(BITRATE, FPS) {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, "the video encoder could not start");
            return;
        }
    };
    counts.bitrate.store(u64::from(BITRATE), Ordering::Relaxed);
    // Frames already sent by an earlier flow of this call are skipped.
    let mut source = PictureSource::open(input, camera, from.load(Ordering::Relaxed));
    let room_at_start = link.datagram_room();
    let (mut seq, mut key_at) = (0u32, None::<Instant>);
    let mut sent_rate = super::media::Rate::new();
    let mut pacer = Pacer::new();
    let started = Instant::now();
    let mut n: u32 = 0;
    loop {
        sleep_until(started + FRAME * n);
        if stop.load(Ordering::Relaxed) || link.is_closed() {
            debug!("call video: the sender stops");
            return;
        }
        n = n.wrapping_add(1);
        let index = from.fetch_add(1, Ordering::Relaxed);
        if n == 1 {
            let mut c = counts.clocks();
            c.send_started = Some(Instant::now());
            c.send_from = index;
        }
        let picture = source.picture(index);
        if sent_rate.roll(&counts.sent_bps) {
            let loss = u16::try_from(counts.peer_loss.load(Ordering::Relaxed)).ok();
            let relayed = link.path() == node_core::transport::LinkPath::Relay;
            let target = aim(loss, link.window_rate(), relayed, encoder.bitrate());
            if target != encoder.bitrate() {
                match encoder.set_bitrate(target) {
                    Ok(()) => counts.bitrate.store(u64::from(target), Ordering::Relaxed),
                    Err(e) => warn!(error = %e, "adapting the video encoder failed"),
                }
            }
        }
        // The connection's datagram queue is backing up: leave this frame
        // out rather than queue it in front of the audio.
        if room_at_start.saturating_sub(link.datagram_room()) > BACKLOG {
            counts.frames_skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if key_wanted.swap(false, Ordering::Relaxed)
            && key_at.is_none_or(|t| t.elapsed() >= KEY_EVERY)
        {
            encoder.request_key();
        }
        let encoded = match encoder.encode(&picture) {
            Ok(Some(e)) => e,
            Ok(None) => {
                counts.frames_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(e) => {
                warn!(error = %e, "coding a video frame failed");
                continue;
            }
        };
        if encoded.key {
            key_at = Some(Instant::now());
            counts.keys_sent.fetch_add(1, Ordering::Relaxed);
        }
        let ts = n.wrapping_mul(FRAME_TICKS);
        let rate = f64::from(encoder.bitrate()) * 3.0 / 8.0;
        for p in pieces(&encoded.data, encoded.key, ts, 0, &mut seq) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let Ok(bytes) = p.encode() else { continue };
            pacer.wait(bytes.len(), rate);
            sent_rate.add(bytes.len());
            if link.send_datagram(bytes).is_err() && link.is_closed() {
                return;
            }
        }
        counts.frames_sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sleeps the thread until `due` (a frame's time on a sender's clock).
pub(super) fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Paces a video sender's pieces under a rate (the sender gives three
/// times its bitrate), so a key frame does not sit in front of the audio
/// as one burst: a bucket of 32 kB.
pub(super) struct Pacer {
    tokens: f64,
    refilled: Instant,
}

impl Pacer {
    const BUCKET: f64 = 32_000.0;

    pub(super) fn new() -> Self {
        Self {
            tokens: Self::BUCKET,
            refilled: Instant::now(),
        }
    }

    /// Waits (sleeping the thread) until `bytes` may go at `rate` bytes
    /// a second.
    pub(super) fn wait(&mut self, bytes: usize, rate: f64) {
        let (bytes, rate) = (bytes as f64, rate.max(1.0));
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate)
            .min(Self::BUCKET);
        self.refilled = now;
        if self.tokens < bytes {
            std::thread::sleep(Duration::from_secs_f64((bytes - self.tokens) / rate));
            self.tokens = bytes;
            self.refilled = Instant::now();
        }
        self.tokens -= bytes;
    }
}

/// Where a call's pictures come from: `--video-in` (its last picture
/// stays once the file ends), else the camera, else the moving test
/// picture.
pub(super) struct PictureSource {
    reader: Option<Y4mReader>,
    camera: Option<Box<dyn Camera>>,
    last: Option<Picture>,
}

impl PictureSource {
    /// Opens the file (its first `skip` pictures passed over: sent by an
    /// earlier flow) or, with none, the camera.
    pub(super) fn open(input: Option<PathBuf>, camera: Option<PathBuf>, skip: u64) -> Self {
        let mut reader = input.and_then(|p| match Y4mReader::open(&p) {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(error = %e, "the video file could not be read");
                None
            }
        });
        // No file: the camera, if one opens (else the test picture).
        let camera: Option<Box<dyn Camera>> = match (&reader, camera) {
            (None, Some(path)) => match super::camera::open(&path) {
                Ok(c) => Some(Box::new(c)),
                Err(e) => {
                    warn!(error = %e, "the camera could not be opened: sending the test picture");
                    None
                }
            },
            _ => None,
        };
        if let Some(r) = reader.as_mut() {
            for _ in 0..skip {
                if !matches!(r.next_picture(), Ok(Some(_))) {
                    break;
                }
            }
        }
        Self {
            reader,
            camera,
            last: None,
        }
    }

    /// The next picture (frame `index` of the call, for the test picture).
    pub(super) fn picture(&mut self, index: u64) -> Picture {
        match self.reader.as_mut().map(Y4mReader::next_picture) {
            Some(Ok(Some(p))) => {
                self.last = Some(p.clone());
                p
            }
            // The file ended (or broke): the last picture stays.
            Some(_) => self
                .last
                .clone()
                .unwrap_or_else(|| Picture::black(WIDTH, HEIGHT)),
            None => match self.camera.as_ref() {
                Some(c) => c.latest().unwrap_or_else(|| Picture::black(WIDTH, HEIGHT)),
                None => synthetic(u32::try_from(index % 65_536).unwrap_or(0), WIDTH, HEIGHT),
            },
        }
    }
}

/// Puts the peer's frames together, decodes them, and shows the latest
/// picture once per frame time; asks for a key frame after a loss, and
/// tells the sender what share of frames it lost, once a second.
fn show_loop(
    rx: Receiver<Packet>,
    link: Link,
    output: Option<Arc<Shown>>,
    counts: Arc<VideoCounts>,
    stop: Arc<AtomicBool>,
) {
    let mut decoder = match VideoDecoder::new() {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "the video decoder could not start");
            return;
        }
    };
    let mut assembler = Assembler::new();
    let mut latest: Option<Picture> = None;
    let started = Instant::now();
    let mut shown: u64 = 0;
    let (mut asked_at, mut asks) = (None::<Instant>, 0u32);
    let (mut reported, mut decoded, mut lost) = (Instant::now(), 0u32, 0u32);
    let (mut window_at, mut window_decodes) = (Instant::now(), 0u32);
    {
        let mut c = counts.clocks();
        c.show_started = None;
        c.shown_from = 0;
    }
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let due = started + FRAME * u32::try_from(shown + 1).unwrap_or(u32::MAX);
        let now = Instant::now();
        let out = if due > now {
            match rx.recv_timeout(due - now) {
                Ok(p) => assembler.push(&p, Instant::now()),
                Err(RecvTimeoutError::Timeout) => assembler.tick(Instant::now()),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            assembler.tick(now)
        };
        counts.bad.fetch_add(u64::from(out.bad), Ordering::Relaxed);
        counts
            .frames_dropped
            .fetch_add(u64::from(out.dropped), Ordering::Relaxed);
        lost += out.dropped;
        if window_at.elapsed() >= Duration::from_secs(1) {
            (window_at, window_decodes) = (Instant::now(), 0);
        }
        for f in out.frames {
            window_decodes += 1;
            if window_decodes > MAX_DECODES {
                counts.frames_dropped.fetch_add(1, Ordering::Relaxed);
                lost += 1;
                assembler.lose_sync();
                continue;
            }
            match decoder.decode(&f.data) {
                Ok(Some(p)) => {
                    counts.frames_decoded.fetch_add(1, Ordering::Relaxed);
                    decoded += 1;
                    latest = Some(p);
                }
                Ok(None) => {}
                Err(_) => {
                    counts.bad.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let waiting = out.need_key || assembler.waiting_for_key();
        if waiting && asked_at.is_none_or(|t| t.elapsed() >= ASK_EVERY) {
            if let Ok(bytes) = key_request(0, asks).encode() {
                let _ = link.send_datagram(bytes);
            }
            asks = asks.wrapping_add(1);
            asked_at = Some(Instant::now());
            counts.keys_asked.fetch_add(1, Ordering::Relaxed);
        }
        if reported.elapsed() >= Duration::from_secs(1) {
            // The audio receiver's next report carries it to the sender.
            let permille = u64::from(lost) * 1000 / u64::from((decoded + lost).max(1));
            counts.my_loss.store(permille.min(1000), Ordering::Relaxed);
            (reported, decoded, lost) = (Instant::now(), 0, 0);
        }
        if Instant::now() >= due {
            shown += 1;
            if let (Some(out), Some(p)) = (output.as_ref(), latest.as_ref()) {
                let first = counts.clocks().show_started.is_none();
                if first {
                    let before = out.frames();
                    let mut c = counts.clocks();
                    c.show_started = Some(Instant::now());
                    c.shown_from = before;
                }
                out.write(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::aim;

    #[test]
    fn the_video_rate_follows_loss_the_window_and_relays() {
        // Clean: climbs by a tenth, up to the ceiling.
        assert_eq!(aim(Some(0), None, false, 500_000), 550_000);
        assert_eq!(aim(Some(0), None, false, 1_000_000), 1_000_000);
        // Some loss: a fifth down; much: halved; never below the floor.
        assert_eq!(aim(Some(50), None, false, 1_000_000), 800_000);
        assert_eq!(aim(Some(400), None, false, 1_000_000), 500_000);
        assert_eq!(aim(Some(1000), None, false, 150_000), 100_000);
        // Under 80 % of what the window carries, less the audio's share.
        assert_eq!(aim(Some(0), Some(564_000), false, 1_000_000), 400_000);
        // Relayed: half the ceiling. No report yet: where it is.
        assert_eq!(aim(Some(0), None, true, 1_000_000), 500_000);
        assert_eq!(aim(None, None, false, 700_000), 700_000);
    }
}
