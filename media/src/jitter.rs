//! The adaptive jitter buffer: packets of 20 ms audio frames go in as they
//! arrive (late, early, twice, or never); one [`Playout`] comes out per
//! 20 ms tick of the playout clock — the frame to decode, the next
//! packet's in-band FEC when a frame is missing but its successor is here,
//! or "lost" for the decoder to conceal.
//!
//! The delay it holds adapts to the path: each packet's transit (arrival
//! time less its media time, so the clocks' offset cancels out) is kept
//! for the last [`WINDOW`] packets; the target delay is the 95th
//! percentile of transit above the window's fastest, plus [`MARGIN`],
//! within the configured bounds. Playout follows that schedule: ahead of
//! it, a tick is concealed without consuming a frame (the delay grows);
//! more than two frames behind, one frame is skipped (it shrinks). A packet far ahead of playout (the
//! receiver stalled, or the sender restarted) starts playout again from
//! it rather than being held.
//!
//! Memory is bounded: at most `max_frames` packets are held whatever the
//! peer sends.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// One audio frame.
pub const FRAME: Duration = Duration::from_millis(20);
/// Media clock ticks per frame (48 kHz).
pub const FRAME_TICKS: u32 = 960;
/// Transit samples kept for the delay estimate (2 s of audio).
pub const WINDOW: usize = 100;
/// Delay held beyond the path's measured jitter, and the least held.
/// 5 ms measured 20 ms less mouth-to-ear delay than a whole frame (27 ms
/// against 47 ms, `cargo bench -p kith --bench call`). The resumed-call
/// failures once blamed on it were the test's: each side's sound keeps to
/// the clock of its own first flow, so the callee's copy can sit earlier
/// in its file than the caller's words did in theirs.
pub const MARGIN: Duration = Duration::from_millis(5);

/// Bounds of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The least delay held beyond the fastest transit.
    pub min_delay: Duration,
    /// The most delay held, whatever the path does.
    pub max_delay: Duration,
    /// The most packets held.
    pub max_frames: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            min_delay: MARGIN,
            max_delay: Duration::from_millis(400),
            max_frames: 64,
        }
    }
}

/// What to play for one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Playout has not started: play silence.
    Waiting,
    /// Decode this frame.
    Frame {
        /// Its sequence number.
        seq: u32,
        /// The encoded frame.
        payload: Vec<u8>,
    },
    /// Frame `seq` is missing but the next is here: decode the next
    /// packet's forward error correction for it.
    Fec {
        /// The missing frame.
        seq: u32,
        /// The next packet's payload (it is played in its own turn too).
        next: Vec<u8>,
    },
    /// Frame `seq` is missing: conceal it.
    Lost {
        /// The missing frame.
        seq: u32,
    },
    /// The delay grows: conceal one frame's time, nothing is consumed.
    Stretch,
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Kept for its turn.
    Stored,
    /// Its turn has passed: dropped.
    Late,
    /// Already held (or played): dropped.
    Duplicate,
    /// Far ahead of playout: playout starts again from it.
    Resync,
}

/// Counts since the buffer was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets pushed.
    pub received: u64,
    /// Frames played as received.
    pub played: u64,
    /// Frames rebuilt from the next packet's FEC.
    pub fec: u64,
    /// Frames concealed.
    pub lost: u64,
    /// Packets that came after their turn.
    pub late: u64,
    /// Packets that came twice.
    pub duplicate: u64,
    /// Frames skipped to shrink the delay.
    pub skipped: u64,
    /// Ticks concealed without consuming a frame, to grow the delay.
    pub stretched: u64,
    /// Times playout started again from a packet far ahead.
    pub resyncs: u64,
    /// Packets dropped because the buffer was full before playout began.
    pub overflow: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct JitterBuffer {
    cfg: Config,
    /// Held packets: sequence number → (media time, payload).
    frames: BTreeMap<u32, (u32, Vec<u8>)>,
    /// The next sequence number to play, once playout started.
    next: Option<u32>,
    /// Its media time, in ticks since the origin.
    next_ts: Option<i64>,
    /// The fastest transit in the window, in µs.
    fastest: i64,
    /// The time origin for transit figures, and the media time there.
    origin: Option<(Instant, u32)>,
    transits: VecDeque<i64>,
    target: Duration,
    stats: Stats,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(cfg: Config) -> Self {
        Self {
            target: cfg.min_delay,
            cfg,
            frames: BTreeMap::new(),
            next: None,
            next_ts: None,
            fastest: 0,
            origin: None,
            transits: VecDeque::with_capacity(WINDOW),
            stats: Stats::default(),
        }
    }

    /// The delay the buffer aims to hold now.
    pub fn target(&self) -> Duration {
        self.target
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no packet is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Forgets the path's delay figures (the path changed, say from relay
    /// to direct): the target starts again from the least delay.
    pub fn reset_target(&mut self) {
        self.transits.clear();
        self.target = self.cfg.min_delay;
        // Playout goes on from where it is: the new path's transits are
        // measured against the same origin (the fastest is the new path's
        // from its first packet on).
    }

    /// A packet of frame `seq` with media time `ts` arrived at `now`.
    pub fn push(&mut self, seq: u32, ts: u32, payload: Vec<u8>, now: Instant) -> Admit {
        self.stats.received += 1;
        self.note_transit(ts, now);
        if let Some(next) = self.next {
            if seq < next {
                self.stats.late += 1;
                return Admit::Late;
            }
            if seq - next >= self.cfg.max_frames as u32 {
                self.stats.resyncs += 1;
                self.frames.clear();
                self.next = None;
                self.next_ts = None;
                self.reset_target();
                self.note_transit(ts, now);
                self.frames.insert(seq, (ts, payload));
                return Admit::Resync;
            }
        }
        if self.frames.contains_key(&seq) {
            self.stats.duplicate += 1;
            return Admit::Duplicate;
        }
        if self.frames.len() >= self.cfg.max_frames {
            // Before playout began (once it runs, the check above bounds
            // what is held): the oldest goes.
            self.frames.pop_first();
            self.stats.overflow += 1;
        }
        self.frames.insert(seq, (ts, payload));
        Admit::Stored
    }

    /// What to play for the tick at `now` (call once per [`FRAME`]).
    ///
    /// Playout follows a schedule: the media time due at `now` is the
    /// time since the origin less the fastest transit seen and the target
    /// delay. Ahead of it, the buffer stretches (the decoder conceals,
    /// nothing is consumed); behind it by more than two frames, one frame
    /// is skipped.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let due = self.due_ticks(now);
        let (mut seq, mut ts_rel) = match (self.next, self.next_ts) {
            (Some(next), Some(ts)) => (next, ts),
            _ => {
                let Some((&seq, (ts, _))) = self.frames.first_key_value() else {
                    return Playout::Waiting;
                };
                let rel = self.rel_ticks(*ts);
                if due.is_none_or(|d| d < rel) {
                    return Playout::Waiting;
                }
                (seq, rel)
            }
        };
        if let Some(due) = due {
            let lag = due - ts_rel;
            if lag < 0 && self.next.is_some() {
                self.stats.stretched += 1;
                return Playout::Stretch;
            }
            if lag > 2 * i64::from(FRAME_TICKS) && self.frames.contains_key(&(seq + 1)) {
                self.frames.remove(&seq);
                self.stats.skipped += 1;
                seq += 1;
                ts_rel += i64::from(FRAME_TICKS);
            }
        }
        self.next = Some(seq + 1);
        self.next_ts = Some(ts_rel + i64::from(FRAME_TICKS));
        if let Some((_, payload)) = self.frames.remove(&seq) {
            self.stats.played += 1;
            return Playout::Frame { seq, payload };
        }
        if let Some((_, next)) = self.frames.get(&(seq + 1)) {
            self.stats.fec += 1;
            return Playout::Fec {
                seq,
                next: next.clone(),
            };
        }
        self.stats.lost += 1;
        Playout::Lost { seq }
    }

    /// The media time due at `now`, in ticks since the origin (`None`
    /// before any packet).
    fn due_ticks(&self, now: Instant) -> Option<i64> {
        let (t0, _) = self.origin?;
        let since =
            i64::try_from(now.saturating_duration_since(t0).as_micros()).unwrap_or(i64::MAX);
        let target = i64::try_from(self.target.as_micros()).unwrap_or(i64::MAX);
        Some((since - self.fastest - target) * 48 / 1000)
    }

    /// `ts` in ticks since the origin (a media time before it counts as
    /// negative).
    fn rel_ticks(&self, ts: u32) -> i64 {
        let ts0 = self.origin.map_or(ts, |(_, ts0)| ts0);
        i64::from(ts.wrapping_sub(ts0) as i32)
    }

    fn note_transit(&mut self, ts: u32, now: Instant) {
        let (t0, ts0) = *self.origin.get_or_insert((now, ts));
        let arrived =
            i64::try_from(now.saturating_duration_since(t0).as_micros()).unwrap_or(i64::MAX);
        // Media time since the origin, in µs (48 ticks per ms); a packet
        // from before the origin counts as negative.
        let media = i64::from(ts.wrapping_sub(ts0) as i32) * 1000 / 48;
        if self.transits.len() == WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(arrived - media);
        let mut sorted: Vec<i64> = self.transits.iter().copied().collect();
        sorted.sort_unstable();
        let fastest = sorted[0];
        self.fastest = fastest;
        let p95 = sorted[(sorted.len() - 1) * 95 / 100];
        let jitter = Duration::from_micros(u64::try_from(p95 - fastest).unwrap_or(0));
        self.target = (jitter + MARGIN).clamp(self.cfg.min_delay, self.cfg.max_delay);
    }
}
