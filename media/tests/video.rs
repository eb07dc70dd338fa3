//! Video coding, frames in datagrams, and Y4M files.
#![allow(clippy::unwrap_used)]

use kith_media::frames::{Assembler, MAX_PENDING, pieces};
use kith_media::packet::{FLAG_END, Packet};
use kith_media::video::{
    FRAME_TICKS, HEIGHT, Picture, VideoDecoder, VideoEncoder, WIDTH, mark, synthetic,
};
use kith_media::y4m::{Y4mReader, Y4mWriter};
use std::time::{Duration, Instant};

fn encode_all(enc: &mut VideoEncoder, n: u32) -> Vec<kith_media::video::Encoded> {
    (0..n)
        .filter_map(|i| enc.encode(&synthetic(i, WIDTH, HEIGHT)).unwrap())
        .collect()
}

#[test]
fn pictures_survive_coding_and_keep_their_numbers() {
    let mut enc = VideoEncoder::new(1_000_000, 30).unwrap();
    let mut dec = VideoDecoder::new().unwrap();
    let mut psnr = Vec::new();
    let mut bytes = 0;
    for i in 0..60 {
        let src = synthetic(i, WIDTH, HEIGHT);
        let Some(e) = enc.encode(&src).unwrap() else {
            continue;
        };
        assert_eq!(e.key, i == 0, "only the first frame is a key frame");
        bytes += e.data.len();
        let got = dec.decode(&e.data).unwrap().unwrap();
        assert_eq!((got.width, got.height), (WIDTH, HEIGHT));
        assert_eq!(mark::read(&got), Some(i));
        psnr.push(got.psnr(&src));
    }
    let mean = psnr.iter().sum::<f64>() / psnr.len() as f64;
    assert!(mean > 30.0, "mean PSNR {mean:.1} dB");
    // Two seconds near 1 Mbit/s (rate control settles within a few frames).
    assert!(bytes < 2 * 1_000_000 / 8 * 2, "{bytes} bytes for 2 s");
}

#[test]
fn a_key_frame_comes_when_asked_and_the_bitrate_follows() {
    let mut enc = VideoEncoder::new(1_000_000, 30).unwrap();
    let high: usize = encode_all(&mut enc, 60).iter().map(|e| e.data.len()).sum();
    enc.set_bitrate(200_000).unwrap();
    assert_eq!(enc.bitrate(), 200_000);
    let low: usize = encode_all(&mut enc, 60).iter().map(|e| e.data.len()).sum();
    assert!(low * 2 < high, "{low} bytes at 200k, {high} at 1M");
    enc.request_key();
    let e = enc.encode(&synthetic(61, WIDTH, HEIGHT)).unwrap().unwrap();
    assert!(e.key);
}

fn packets(n: u32) -> Vec<Vec<Packet>> {
    let mut enc = VideoEncoder::new(1_000_000, 30).unwrap();
    let mut seq = 0;
    (0..n)
        .filter_map(|i| {
            let e = enc.encode(&synthetic(i, WIDTH, HEIGHT)).unwrap()?;
            Some(pieces(&e.data, e.key, i * FRAME_TICKS, 0, &mut seq))
        })
        .collect()
}

#[test]
fn frames_are_put_together_in_order_despite_reordering() {
    let frames = packets(10);
    assert!(frames[0].len() > 3, "a key frame takes several datagrams");
    assert!(frames[0].last().unwrap().flags & FLAG_END != 0);
    let mut a = Assembler::new();
    let mut dec = VideoDecoder::new().unwrap();
    let now = Instant::now();
    let mut got = Vec::new();
    // Each frame's pieces backwards, and frames 3 and 4 swapped.
    let mut order: Vec<&Vec<Packet>> = frames.iter().collect();
    order.swap(3, 4);
    for f in order {
        for p in f.iter().rev() {
            let out = a.push(p, now);
            assert_eq!(out.bad, 0);
            assert!(!out.need_key);
            got.extend(out.frames);
        }
    }
    assert_eq!(got.len(), frames.len());
    for (f, sent) in got.iter().zip(&frames) {
        assert_eq!(f.ts, sent[0].ts);
        let pic = dec.decode(&f.data).unwrap().unwrap();
        assert_eq!(mark::read(&pic), Some(f.ts / FRAME_TICKS));
    }
}

#[test]
fn a_lost_frame_stops_the_picture_until_a_key_frame() {
    let mut enc = VideoEncoder::new(1_000_000, 30).unwrap();
    let (mut seq, mut n) = (0, 0);
    // The next picture the rate control does not skip.
    let mut frame = |_: u32, enc: &mut VideoEncoder| loop {
        n += 1;
        if let Some(e) = enc.encode(&synthetic(n, WIDTH, HEIGHT)).unwrap() {
            break pieces(&e.data, e.key, n * FRAME_TICKS, 0, &mut seq);
        }
    };
    let mut a = Assembler::new();
    let t0 = Instant::now();
    for p in frame(0, &mut enc) {
        a.push(&p, t0);
    }
    // Frame 1 lost whole; frame 2 arrives.
    let _ = frame(1, &mut enc);
    let mut out = Vec::new();
    for p in frame(2, &mut enc) {
        out.push(a.push(&p, t0));
    }
    assert!(out.iter().all(|o| o.frames.is_empty()), "held for frame 1");
    let late = a.tick(t0 + Duration::from_millis(100));
    assert!(late.need_key, "after the wait, frame 1 counts as lost");
    assert!(late.frames.is_empty());
    assert!(a.waiting_for_key());
    for i in 3..5 {
        for p in frame(i, &mut enc) {
            assert!(a.push(&p, t0).frames.is_empty(), "no key frame yet");
        }
    }
    enc.request_key();
    let mut shown = Vec::new();
    for p in frame(5, &mut enc) {
        shown.extend(a.push(&p, t0).frames);
    }
    assert_eq!(shown.len(), 1);
    assert!(shown[0].key);
    assert!(!a.waiting_for_key());
    for p in frame(6, &mut enc) {
        shown.extend(a.push(&p, t0).frames);
    }
    assert_eq!(shown.len(), 2);
}

#[test]
fn bad_and_endless_pieces_are_bounded() {
    let frames = packets(2);
    let mut a = Assembler::new();
    let now = Instant::now();
    // Pieces that disagree with their frame, or with themselves.
    let mut wrong_count = frames[0][0].clone();
    wrong_count.payload[1] = 0;
    assert_eq!(a.push(&wrong_count, now).bad, 1);
    let mut no_end = frames[0].last().unwrap().clone();
    no_end.flags &= !FLAG_END;
    assert_eq!(a.push(&no_end, now).bad, 1);
    let mut bare = frames[0][0].clone();
    bare.payload.truncate(2);
    assert_eq!(a.push(&bare, now).bad, 1);
    a.push(&frames[0][0], now);
    let mut other_ts = frames[0][1].clone();
    other_ts.ts += 1;
    assert!(a.push(&other_ts, now).bad == 1, "disagreeing pieces");
    // A flood of first pieces of frames that never finish keeps at most
    // MAX_PENDING of them.
    let mut dropped = 0;
    for i in 0..1000u32 {
        let mut p = frames[0][0].clone();
        p.seq = 10_000 + i * 300;
        dropped += a.push(&p, now).dropped;
    }
    assert!(dropped as usize >= 1000 - MAX_PENDING);
    // And a whole key frame after all that is still shown.
    let mut seq = 500_000;
    let mut enc = VideoEncoder::new(1_000_000, 30).unwrap();
    let e = enc.encode(&synthetic(0, WIDTH, HEIGHT)).unwrap().unwrap();
    let shown: usize = pieces(&e.data, e.key, 0, 0, &mut seq)
        .iter()
        .map(|p| a.push(p, now).frames.len())
        .sum();
    assert_eq!(shown, 1);
}

#[test]
fn y4m_files_round_trip_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.y4m");
    let mut w = Y4mWriter::create(&path).unwrap();
    for i in 0..3 {
        w.write(&synthetic(i, 64 * 10, 48 * 2)).unwrap();
    }
    // Another size is scaled to the first.
    w.write(&synthetic(3, 320, 240)).unwrap();
    w.flush().unwrap();
    let mut r = Y4mReader::open(&path).unwrap();
    assert_eq!((r.width, r.height, r.rate), (640, 96, (30, 1)));
    for i in 0..3 {
        assert_eq!(r.next_picture().unwrap().unwrap(), synthetic(i, 640, 96));
    }
    assert_eq!(r.next_picture().unwrap().unwrap().width, 640);
    assert!(r.next_picture().unwrap().is_none());

    let bad = |text: &[u8]| {
        let p = dir.path().join("bad.y4m");
        std::fs::write(&p, text).unwrap();
        Y4mReader::open(&p).map(|mut r| r.next_picture())
    };
    assert!(bad(b"RIFF\n").is_err());
    assert!(bad(b"YUV4MPEG2 W640 H480 C444\n").is_err());
    assert!(bad(b"YUV4MPEG2 W641 H480\n").is_err());
    assert!(bad(b"YUV4MPEG2 W4000 H480\n").is_err());
    assert!(bad(b"YUV4MPEG2 W640 H480 F0:1\n").is_err());
    assert!(bad(&[b'Y'; 10_000]).is_err());
    // A header word starting with a multi-byte character (split it
    // mid-character and the reader panicked).
    assert!(bad("YUV4MPEG2 W640 H480 éX\n".as_bytes()).is_err());
    // A cut-short frame is an error, not a short picture.
    assert!(matches!(bad(b"YUV4MPEG2 W4 H2\nFRAME\n1234"), Ok(Err(_))));
    assert!(Picture::black(4, 2).data.len() == 12);
}

#[test]
fn a_half_picture_is_a_quarter_of_the_pixels_and_doubling_brings_it_back() {
    let p = synthetic(7, WIDTH, HEIGHT);
    let small = p.half();
    assert_eq!((small.width, small.height), (WIDTH / 2, HEIGHT / 2));
    assert_eq!(small.data.len(), Picture::bytes(WIDTH / 2, HEIGHT / 2));
    let big = small.double();
    assert_eq!((big.width, big.height), (WIDTH, HEIGHT));
    assert_eq!(big.data.len(), p.data.len());
    // Doubling then halving is exact; halving then doubling is close.
    assert_eq!(big.half(), small);
    assert!(big.psnr(&p) > 20.0, "{}", big.psnr(&p));
    // Colours are kept: black stays black.
    assert_eq!(
        Picture::black(WIDTH, HEIGHT).half(),
        Picture::black(WIDTH / 2, HEIGHT / 2)
    );
}
