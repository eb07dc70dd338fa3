//! Voice quality under loss, through the same coding and recovery a call
//! uses (Opus 20 ms frames at the bitrate and FEC setting kith picks for
//! the loss, the next packet's FEC for a lost frame, concealment
//! otherwise), with a seeded random loss of 0, 5, 10 and 20 % and FEC on
//! and off. Writes the reference and each degraded signal as WAV files for
//! a PESQ scorer (`bench/calls/pesq.sh`) and prints a waveform
//! similarity of its own.
//! Run: `KITH_SPEECH=speech48k.wav KITH_QUALITY_OUT=dir cargo bench -p kith-media --bench quality`
//! (without `KITH_SPEECH`, a synthetic speech-band signal).
#![allow(clippy::unwrap_used)]

use kith_media::codec::{FRAME_SAMPLES, VoiceDecoder, VoiceEncoder};
use std::path::PathBuf;

/// What kith's sender picks for a loss (see `follow` in the client's
/// `daemon/media.rs`, path not relayed, short round trip): bitrate, and
/// the loss FEC prepares for.
fn setting(loss_percent: u32) -> (i32, u8) {
    if loss_percent * 10 < 20 {
        (32_000, 0)
    } else {
        (35_000, 10)
    }
}

fn synthetic(secs: f64) -> Vec<i16> {
    let n = (secs * 48_000.0) as usize;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / 48_000.0;
            // Syllable-like bursts of a gliding voiced tone with harmonics.
            let f = 140.0 + 60.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            phase += 2.0 * std::f64::consts::PI * f / 48_000.0;
            let env = ((2.0 * std::f64::consts::PI * 3.0 * t).sin()).max(0.0);
            let v = phase.sin() + 0.5 * (2.0 * phase).sin() + 0.3 * (3.0 * phase).sin();
            (env * 6_000.0 * v) as i16
        })
        .collect()
}

/// Best normalised correlation of `a` and `b` within 30 ms of shift.
fn similarity(a: &[i16], b: &[i16]) -> f64 {
    let mut best = 0.0f64;
    for lag in 0..1_440 {
        let n = a.len().min(b.len().saturating_sub(lag));
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for i in (0..n).step_by(2) {
            let (x, y) = (f64::from(a[i]), f64::from(b[i + lag]));
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        if aa > 0.0 && bb > 0.0 {
            best = best.max(ab / (aa * bb).sqrt());
        }
    }
    best
}

fn main() {
    let input = match std::env::var("KITH_SPEECH") {
        Ok(p) => kith_media::wav::read(std::path::Path::new(&p), 48_000 * 120).unwrap(),
        Err(_) => synthetic(8.0),
    };
    let out = PathBuf::from(
        std::env::var("KITH_QUALITY_OUT").unwrap_or_else(|_| "/tmp/kith-quality".into()),
    );
    std::fs::create_dir_all(&out).unwrap();
    let frames: Vec<&[i16]> = input.chunks_exact(FRAME_SAMPLES).collect();
    let reference: Vec<i16> = frames.concat();
    kith_media::wav::write(&out.join("reference.wav"), &reference).unwrap();
    for loss in [0u32, 5, 10, 20] {
        for fec in [true, false] {
            let (mut bitrate, hint) = setting(loss);
            if let Ok(b) = std::env::var("KITH_OPUS_BITRATE") {
                bitrate = b.parse().unwrap();
            }
            let mut enc = VoiceEncoder::new(bitrate, hint).unwrap();
            enc.set_fec(fec).unwrap();
            if let Ok(t) = std::env::var("KITH_OPUS_TUNE") {
                // "band_khz,voice,complexity", e.g. "8,1,10".
                let v: Vec<i32> = t.split(',').map(|x| x.parse().unwrap()).collect();
                enc.tune(u32::try_from(v[0]).ok().filter(|b| *b > 0), v[1] == 1, v[2])
                    .unwrap();
            }
            if let Ok(h) = std::env::var("KITH_OPUS_HINT") {
                enc.adapt(bitrate, h.parse().unwrap()).unwrap();
            }
            let packets: Vec<Vec<u8>> = frames
                .iter()
                .map(|f| enc.encode(f).unwrap().to_vec())
                .collect();
            // Seeded: the same frames are lost with FEC on and off.
            let mut seed: u64 = 0x5eed + u64::from(loss);
            let arrived: Vec<bool> = packets
                .iter()
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (seed >> 33) % 100 >= u64::from(loss)
                })
                .collect();
            let mut dec = VoiceDecoder::new().unwrap();
            let mut heard = Vec::with_capacity(reference.len());
            for i in 0..packets.len() {
                let frame = if arrived[i] {
                    dec.decode(&packets[i]).unwrap()
                } else if fec && arrived.get(i + 1) == Some(&true) {
                    dec.decode_fec(&packets[i + 1]).unwrap()
                } else {
                    dec.conceal().unwrap()
                };
                heard.extend_from_slice(&frame);
            }
            let name = format!("loss{loss}_fec{}.wav", if fec { "on" } else { "off" });
            kith_media::wav::write(&out.join(&name), &heard).unwrap();
            let lost = arrived.iter().filter(|a| !**a).count();
            println!(
                "voice quality, {loss}% loss, FEC {}: {} kbit/s, {lost} of {} frames lost, waveform similarity {:.3} ({})",
                if fec { "on " } else { "off" },
                bitrate / 1000,
                packets.len(),
                similarity(&reference, &heard),
                out.join(&name).display()
            );
        }
    }
}
