//! Video frames in datagrams: a frame is cut into pieces that each fit a
//! datagram, and put together again on the other side.
//!
//! A video packet's payload starts with two bytes, the piece's index and
//! the frame's piece count; the frame's pieces have consecutive `seq`
//! numbers, share its `ts` and its key flag, and the last carries
//! `FLAG_END`. So a receiver knows where every frame starts (`seq −
//! index`) and where the one after the last it showed must start: a frame
//! lost whole is seen as a gap in `seq`.
//!
//! The [`Assembler`] keeps at most [`MAX_PENDING`] frames in the making
//! and [`MAX_PENDING_BYTES`] bytes of them, gives whole frames in order,
//! waits [`REORDER_WAIT`] for a late frame before it counts it lost, and
//! after a loss gives nothing until a key frame: the caller asks the
//! sender for one.

use crate::packet::{FLAG_END, FLAG_KEY, Kind, MAX_PAYLOAD, Packet};
use std::time::{Duration, Instant};

/// Bytes of a frame in one piece.
pub const PIECE_BYTES: usize = MAX_PAYLOAD - 2;
/// Frames in the making at once; a newer one evicts the oldest.
pub const MAX_PENDING: usize = 8;
/// Bytes of frames in the making at once.
pub const MAX_PENDING_BYTES: usize = 2 * crate::video::MAX_FRAME_BYTES;
/// How long a whole frame waits for an earlier one still missing.
pub const REORDER_WAIT: Duration = Duration::from_millis(60);

/// Cuts one encoded frame into packets numbered from `*seq` on.
/// A frame over [`crate::video::MAX_FRAME_BYTES`] gives none.
pub fn pieces(frame: &[u8], key: bool, ts: u32, layer: u8, seq: &mut u32) -> Vec<Packet> {
    pieces_of(frame, key, ts, layer, seq, PIECE_BYTES)
}

/// Cuts one encoded frame into pieces of at most `piece_bytes` bytes of
/// the frame each (at most [`PIECE_BYTES`]: a room call's pieces leave
/// room for their sealing), numbered from `*seq` on. A frame of more
/// than 255 pieces gives none.
pub fn pieces_of(
    frame: &[u8],
    key: bool,
    ts: u32,
    layer: u8,
    seq: &mut u32,
    piece_bytes: usize,
) -> Vec<Packet> {
    let piece_bytes = piece_bytes.clamp(1, PIECE_BYTES);
    let count = frame.len().div_ceil(piece_bytes);
    let Ok(count8) = u8::try_from(count) else {
        return Vec::new();
    };
    frame
        .chunks(piece_bytes)
        .enumerate()
        .map(|(i, chunk)| {
            let mut payload = Vec::with_capacity(2 + chunk.len());
            payload.push(i as u8);
            payload.push(count8);
            payload.extend_from_slice(chunk);
            let mut flags = if key { FLAG_KEY } else { 0 };
            if i + 1 == count {
                flags |= FLAG_END;
            }
            let p = Packet {
                kind: Kind::Video,
                flags,
                layer,
                seq: *seq,
                ts,
                payload,
            };
            *seq = seq.wrapping_add(1);
            p
        })
        .collect()
}

/// A frame put together again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The encoded frame.
    pub data: Vec<u8>,
    /// Decodable alone.
    pub key: bool,
    /// Its media clock.
    pub ts: u32,
}

/// What the assembler made of a packet or of time passing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Out {
    /// Whole frames to decode, oldest first.
    pub frames: Vec<Frame>,
    /// A frame was lost: ask the sender for a key frame.
    pub need_key: bool,
    /// Packets refused (inconsistent with their frame's other pieces).
    pub bad: u32,
    /// Frames dropped: lost in part, or waiting for a key frame.
    pub dropped: u32,
}

struct Pending {
    first: u32,
    ts: u32,
    key: bool,
    pieces: Vec<Option<Vec<u8>>>,
    got: usize,
    bytes: usize,
    /// When it became whole.
    whole: Option<Instant>,
}

/// Puts one layer's frames together (see the module documentation).
#[derive(Default)]
pub struct Assembler {
    pending: Vec<Pending>,
    /// The `seq` the next frame must start at, once one was given.
    next: Option<u32>,
    /// A frame was lost since the last key frame.
    broken: bool,
}

impl std::fmt::Debug for Assembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Assembler({} pending)", self.pending.len())
    }
}

/// Whether `a` comes after `b` in wrapping `seq` order.
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Assembler {
    /// An assembler waiting for its first frame (a key frame).
    pub fn new() -> Self {
        Self {
            pending: Vec::new(),
            next: None,
            broken: true,
        }
    }

    /// Whether it waits for a key frame.
    pub fn waiting_for_key(&self) -> bool {
        self.broken
    }

    /// Gives nothing more until a key frame (the caller could not keep up
    /// with the frames given).
    pub fn lose_sync(&mut self) {
        self.broken = true;
    }

    fn bytes(&self) -> usize {
        self.pending.iter().map(|p| p.bytes).sum()
    }

    /// Takes one video packet.
    pub fn push(&mut self, p: &Packet, now: Instant) -> Out {
        let mut out = Out::default();
        let ([index, count], chunk) = match p.payload.split_first_chunk::<2>() {
            Some((head, rest)) if p.kind == Kind::Video && !rest.is_empty() => (*head, rest),
            _ => {
                out.bad += 1;
                return out;
            }
        };
        let (index, count) = (usize::from(index), usize::from(count));
        let end = p.flags & FLAG_END != 0;
        if count == 0 || index >= count || end != (index + 1 == count) {
            out.bad += 1;
            return out;
        }
        let first = p.seq.wrapping_sub(index as u32);
        // Older than what was already given: late, or a replay.
        if let Some(next) = self.next
            && after(next, first)
        {
            out.dropped += u32::from(index == 0);
            return out;
        }
        let key = p.flags & FLAG_KEY != 0;
        let at = match self.pending.iter().position(|f| f.first == first) {
            Some(at) => at,
            None => {
                self.pending.push(Pending {
                    first,
                    ts: p.ts,
                    key,
                    pieces: vec![None; count],
                    got: 0,
                    bytes: 0,
                    whole: None,
                });
                self.pending.len() - 1
            }
        };
        let f = &mut self.pending[at];
        if f.pieces.len() != count || f.ts != p.ts || f.key != key {
            // Pieces that disagree: the frame cannot be trusted whole.
            self.pending.remove(at);
            out.bad += 1;
            out.dropped += 1;
            self.lose(&mut out);
            return out;
        }
        if f.pieces[index].is_none() {
            f.bytes += chunk.len();
            f.pieces[index] = Some(chunk.to_vec());
            f.got += 1;
            if f.got == count {
                f.whole = Some(now);
            }
        }
        // Bounds: the oldest frames in the making go first.
        while self.pending.len() > MAX_PENDING || self.bytes() > MAX_PENDING_BYTES {
            let Some(oldest) = self.oldest() else { break };
            self.pending.remove(oldest);
            out.dropped += 1;
            self.lose(&mut out);
        }
        self.drain(now, &mut out);
        out
    }

    /// Lets time pass: a whole frame that waited [`REORDER_WAIT`] for an
    /// earlier one goes on without it (the earlier one counts as lost).
    pub fn tick(&mut self, now: Instant) -> Out {
        let mut out = Out::default();
        self.drain(now, &mut out);
        out
    }

    fn oldest(&self) -> Option<usize> {
        (0..self.pending.len()).reduce(|a, b| {
            if after(self.pending[a].first, self.pending[b].first) {
                b
            } else {
                a
            }
        })
    }

    fn lose(&mut self, out: &mut Out) {
        if !self.broken {
            self.broken = true;
        }
        out.need_key = true;
    }

    fn drain(&mut self, now: Instant, out: &mut Out) {
        loop {
            // A whole key frame makes everything before it moot.
            if let Some(k) = self
                .pending
                .iter()
                .filter(|f| f.key && f.whole.is_some())
                .map(|f| f.first)
                .reduce(|a, b| if after(a, b) { a } else { b })
                && (self.broken || self.next.is_none_or(|n| after(k, n)))
                // Never back before what was already given.
                && self.next.is_none_or(|n| !after(n, k))
            {
                let before = self.pending.len();
                self.pending.retain(|f| !after(k, f.first));
                let skipped = before - self.pending.len();
                out.dropped += skipped as u32;
                self.next = Some(k);
                self.broken = false;
            }
            let Some(oldest) = self.oldest() else { return };
            let head = &self.pending[oldest];
            let in_order = self.next.is_none_or(|n| head.first == n) && !self.broken;
            if head.whole.is_some() && in_order {
                let f = self.pending.remove(oldest);
                let next = f.first.wrapping_add(f.pieces.len() as u32);
                self.next = Some(next);
                // Frames that overlap what was given are moot.
                let before = self.pending.len();
                self.pending.retain(|p| !after(next, p.first));
                out.dropped += (before - self.pending.len()) as u32;
                let data = f.pieces.into_iter().flatten().flatten().collect();
                out.frames.push(Frame {
                    data,
                    key: f.key,
                    ts: f.ts,
                });
                continue;
            }
            // Something before a whole frame is missing: wait a little for
            // it, then count it lost.
            let waited = self
                .pending
                .iter()
                .filter_map(|f| f.whole)
                .any(|t| now.saturating_duration_since(t) >= REORDER_WAIT);
            if waited && !self.broken {
                self.lose(out);
            }
            if self.broken {
                // Only a key frame helps now: drop whole frames that are not.
                let before = self.pending.len();
                self.pending.retain(|f| f.key || f.whole.is_none());
                out.dropped += (before - self.pending.len()) as u32;
                if before != self.pending.len() {
                    out.need_key = true;
                }
            }
            return;
        }
    }
}
