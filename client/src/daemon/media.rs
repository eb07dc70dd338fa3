//! A call's media on this device: one task sends a 20 ms Opus frame per
//! tick as a datagram on the call connection; another reads the peer's
//! datagrams into the jitter buffer and, on its own 20 ms clock, decodes
//! (or rebuilds from FEC, or conceals) one frame per tick. Neither waits
//! for the node or the store. Without a sound card in use the source is a
//! WAV file (`--audio-in`; silence after it ends, or without one) and the
//! sink memory written out as a WAV file when the call ends
//! (`--audio-out`); nothing of the media goes to the profile folder.

use super::files::AbortOnDrop;
use kith_media::codec::{FRAME_SAMPLES, VoiceDecoder, VoiceEncoder};
use kith_media::jitter::{Config, FRAME, FRAME_TICKS, JitterBuffer, Playout};
use kith_media::packet::{Kind, Packet};
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
const START_BITRATE: i32 = 32_000;
/// The loss FEC prepares for until the path says otherwise, percent.
const START_LOSS: u8 = 10;

/// Where a device's audio comes from and goes to.
#[derive(Debug, Clone, Default)]
pub(super) struct Audio {
    /// The samples to send (48 kHz mono), from `--audio-in`.
    pub input: Option<Arc<Vec<i16>>>,
    /// Where to write what was heard, from `--audio-out`.
    pub output: Option<PathBuf>,
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
        Ok(Self { input, output })
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
}

/// What one call heard, across flows (a resumed call goes on with the
/// same).
#[derive(Debug, Default)]
pub(super) struct Heard {
    samples: Mutex<Vec<i16>>,
}

impl Heard {
    fn extend(&self, frame: &[i16]) {
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
/// sends into `heard`.
pub(super) fn start(
    link: &Link,
    audio: &Audio,
    from: Arc<AtomicU64>,
    heard: Arc<Heard>,
    counts: Arc<Counts>,
    muted: Arc<std::sync::atomic::AtomicBool>,
    loss_percent: u8,
) -> anyhow::Result<Flow> {
    let encoder = VoiceEncoder::new(START_BITRATE, START_LOSS)?;
    let decoder = VoiceDecoder::new()?;
    let send = tokio::spawn(send(
        link.clone(),
        encoder,
        audio.input.clone(),
        from,
        Arc::clone(&counts),
        muted,
    ));
    let receive = tokio::spawn(receive(link.clone(), decoder, heard, counts, loss_percent));
    Ok(Flow {
        _send: AbortOnDrop(send),
        _receive: AbortOnDrop(receive),
    })
}

async fn send(
    link: Link,
    mut encoder: VoiceEncoder,
    input: Option<Arc<Vec<i16>>>,
    from: Arc<AtomicU64>,
    counts: Arc<Counts>,
    muted: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let silence = [0i16; FRAME_SAMPLES];
    let mut seq: u32 = 0;
    loop {
        tick.tick().await;
        let at = usize::try_from(from.fetch_add(FRAME_SAMPLES as u64, Ordering::Relaxed))
            .unwrap_or(usize::MAX);
        // Muted, the source goes on (as a microphone would) but silence
        // is sent.
        let frame: &[i16] = match input.as_deref() {
            _ if muted.load(Ordering::Relaxed) => &silence,
            Some(samples) if at + FRAME_SAMPLES <= samples.len() => {
                &samples[at..at + FRAME_SAMPLES]
            }
            _ => &silence,
        };
        let payload = match encoder.encode(frame) {
            Ok(p) => p.to_vec(),
            Err(e) => {
                warn!(error = %e, "encoding a frame failed");
                continue;
            }
        };
        let packet = Packet {
            kind: Kind::Audio,
            flags: 0,
            layer: 0,
            seq,
            ts: seq.wrapping_mul(FRAME_TICKS),
            payload,
        };
        seq = seq.wrapping_add(1);
        let Ok(bytes) = packet.encode() else {
            continue;
        };
        if link.send_datagram(bytes).is_err() {
            if link.is_closed() {
                return;
            }
            continue;
        }
        counts.sent.fetch_add(1, Ordering::Relaxed);
    }
}

async fn receive(
    link: Link,
    mut decoder: VoiceDecoder,
    heard: Arc<Heard>,
    counts: Arc<Counts>,
    loss_percent: u8,
) {
    let mut jitter = JitterBuffer::new(Config::default());
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
                match Packet::decode(&bytes) {
                    Ok(p) if p.kind == Kind::Audio => {
                        jitter.push(p.seq, p.ts, p.payload, Instant::now());
                        counts.received.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        counts.bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ = tick.tick() => {
                let playout = jitter.pop(Instant::now());
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
                heard.extend(&frame);
            }
        }
    }
}

fn conceal(decoder: &mut VoiceDecoder, counts: &Counts) -> Vec<i16> {
    counts.concealed.fetch_add(1, Ordering::Relaxed);
    decoder.conceal().unwrap_or_else(|_| vec![0; FRAME_SAMPLES])
}
