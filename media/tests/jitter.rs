//! The jitter buffer in virtual time: what it plays when packets arrive in
//! order, reordered, lost, late, twice, jittered or in a flood.

use kith_media::jitter::{Admit, Config, FRAME, FRAME_TICKS, JitterBuffer, MARGIN, Playout};
use std::time::{Duration, Instant};

/// A tiny deterministic generator (no dependency for tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn payload(seq: u32) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

/// Runs `ticks` playout ticks; packets arrive at `arrivals[i]` (offset
/// from the start), in the order given. Returns what played each tick.
fn run(buf: &mut JitterBuffer, mut arrivals: Vec<(u32, Duration)>, ticks: u32) -> Vec<Playout> {
    let t0 = Instant::now();
    arrivals.sort_by_key(|(_, at)| *at);
    let mut it = arrivals.into_iter().peekable();
    let mut out = Vec::new();
    for tick in 0..ticks {
        let now = t0 + FRAME * tick;
        while let Some((seq, at)) = it.peek().copied() {
            if t0 + at > now {
                break;
            }
            buf.push(seq, seq * FRAME_TICKS, payload(seq), t0 + at);
            it.next();
        }
        out.push(buf.pop(now));
    }
    out
}

fn played(out: &[Playout]) -> Vec<u32> {
    out.iter()
        .filter_map(|p| match p {
            Playout::Frame { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_steady_stream_plays_in_order_with_one_frame_of_delay() {
    let mut buf = JitterBuffer::new(Config::default());
    let arrivals = (0..100).map(|s| (s, FRAME * s)).collect();
    let out = run(&mut buf, arrivals, 101);
    assert_eq!(played(&out), (0..100).collect::<Vec<_>>());
    assert_eq!(buf.target(), MARGIN);
    // Each frame plays one tick after it arrives.
    assert_eq!(out[0], Playout::Waiting);
    assert_eq!(
        out[1],
        Playout::Frame {
            seq: 0,
            payload: payload(0)
        }
    );
    let s = buf.stats();
    assert_eq!(
        (s.lost, s.fec, s.late, s.skipped, s.stretched),
        (0, 0, 0, 0, 0)
    );
}

#[test]
fn reordered_packets_play_in_order() {
    let mut buf = JitterBuffer::new(Config::default());
    // Every pair swapped, the first of each pair 30 ms late.
    let arrivals = (0..100u32)
        .map(|s| {
            let late = if s % 2 == 0 {
                Duration::from_millis(30)
            } else {
                Duration::ZERO
            };
            (s, FRAME * s + late)
        })
        .collect();
    let out = run(&mut buf, arrivals, 140);
    let got = played(&out);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
    // Past the end of the stream every tick is a loss: count up to it.
    let end = out
        .iter()
        .position(|p| matches!(p, Playout::Frame { seq: 99, .. }))
        .expect("the last frame played");
    let lost = out[..end]
        .iter()
        .filter(|p| matches!(p, Playout::Lost { .. } | Playout::Fec { .. }))
        .count();
    assert!(
        buf.target() >= Duration::from_millis(30) + MARGIN,
        "{:?}",
        buf.target()
    );
    // Once the target covers the reordering (stretching playout to it),
    // nothing more is lost.
    let s = buf.stats();
    assert!(lost as u64 + s.late <= 6, "{lost} lost; {s:?}");
}

#[test]
fn a_missing_frame_is_rebuilt_from_the_next_or_concealed() {
    let mut buf = JitterBuffer::new(Config::default());
    let arrivals = (0..40u32)
        .filter(|s| ![10, 20, 21].contains(s))
        .map(|s| (s, FRAME * s))
        .collect();
    let out = run(&mut buf, arrivals, 41);
    assert!(
        out.contains(&Playout::Fec {
            seq: 10,
            next: payload(11)
        }),
        "{out:?}"
    );
    assert!(out.contains(&Playout::Lost { seq: 20 }), "{out:?}");
    assert!(
        out.contains(&Playout::Fec {
            seq: 21,
            next: payload(22)
        }),
        "{out:?}"
    );
    // Every frame that came is played, in order, after a gap too.
    let expected: Vec<u32> = (0..40).filter(|s| ![10, 20, 21].contains(s)).collect();
    assert_eq!(played(&out), expected);
}

#[test]
fn late_and_repeated_packets_are_dropped_and_counted() {
    let mut buf = JitterBuffer::new(Config::default());
    let t0 = Instant::now();
    buf.push(0, 0, payload(0), t0);
    assert_eq!(buf.push(0, 0, payload(0), t0), Admit::Duplicate);
    assert_eq!(buf.pop(t0), Playout::Waiting);
    assert!(matches!(buf.pop(t0 + FRAME), Playout::Frame { seq: 0, .. }));
    assert_eq!(buf.pop(t0 + FRAME * 2), Playout::Lost { seq: 1 });
    assert_eq!(
        buf.push(1, FRAME_TICKS, payload(1), t0 + FRAME * 3),
        Admit::Late
    );
    assert_eq!(buf.push(0, 0, payload(0), t0 + FRAME * 3), Admit::Late);
    let s = buf.stats();
    assert_eq!((s.late, s.duplicate), (2, 1));
}

#[test]
fn the_target_follows_the_path_and_comes_back_down() {
    let mut buf = JitterBuffer::new(Config::default());
    let mut rng = Lcg(7);
    // 4 s with up to 60 ms of jitter, then 4 s of a steady path.
    let arrivals: Vec<(u32, Duration)> = (0..400u32)
        .map(|s| {
            let extra = if s < 200 { rng.next() % 60 } else { 0 };
            (s, FRAME * s + Duration::from_millis(extra))
        })
        .collect();
    let t0 = Instant::now();
    let mut it = arrivals.clone();
    it.sort_by_key(|(_, at)| *at);
    let mut max_target = Duration::ZERO;
    let mut i = 0;
    let mut gaps = 0;
    for tick in 0..401u32 {
        let now = t0 + FRAME * tick;
        while i < it.len() && t0 + it[i].1 <= now {
            buf.push(
                it[i].0,
                it[i].0 * FRAME_TICKS,
                payload(it[i].0),
                t0 + it[i].1,
            );
            i += 1;
        }
        if tick > 20 && tick < 200 {
            max_target = max_target.max(buf.target());
        }
        if tick > 60 && matches!(buf.pop(now), Playout::Lost { .. }) {
            gaps += 1;
        } else if tick <= 60 {
            buf.pop(now);
        }
    }
    assert!(max_target >= Duration::from_millis(50), "{max_target:?}");
    assert!(max_target <= Duration::from_millis(90), "{max_target:?}");
    // Back on a steady path the window forgets the jitter.
    assert_eq!(buf.target(), MARGIN);
    // Once adapted, jitter within the target costs almost nothing.
    assert!(gaps <= 8, "{gaps} frames concealed; {:?}", buf.stats());
    assert!(buf.stats().skipped > 0, "the delay never came back down");
    assert!(buf.stats().stretched > 0, "the delay never grew");
}

#[test]
fn a_flood_stays_bounded() {
    let cfg = Config::default();
    let mut buf = JitterBuffer::new(cfg);
    let t0 = Instant::now();
    for s in 0..100_000u32 {
        buf.push(s.wrapping_mul(2_654_435_761), s, vec![0; 100], t0);
        assert!(buf.len() <= cfg.max_frames);
    }
    // Playing, a packet far ahead restarts playout from it.
    let mut buf = JitterBuffer::new(cfg);
    buf.push(0, 0, payload(0), t0);
    assert!(matches!(buf.pop(t0 + FRAME), Playout::Frame { .. }));
    assert_eq!(
        buf.push(1_000_000, 0, payload(9), t0 + FRAME),
        Admit::Resync
    );
    assert!(buf.len() <= 1);
    for s in 1..10_000u32 {
        buf.push(1_000_000 + s, s * FRAME_TICKS, payload(s), t0 + FRAME);
        assert!(buf.len() <= cfg.max_frames);
    }
}

#[test]
fn a_new_path_starts_from_the_least_delay() {
    let mut buf = JitterBuffer::new(Config::default());
    let t0 = Instant::now();
    for s in 0..50u32 {
        let extra = if s % 2 == 0 { 80 } else { 0 };
        buf.push(
            s,
            s * FRAME_TICKS,
            payload(s),
            t0 + FRAME * s + Duration::from_millis(extra),
        );
    }
    assert!(buf.target() > Duration::from_millis(60));
    buf.reset_target();
    assert_eq!(buf.target(), MARGIN);
}
