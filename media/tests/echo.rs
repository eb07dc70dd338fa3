//! Echo cancellation: a room where the loudspeaker's sound comes back to
//! the microphone 40 ms later, coloured and at half strength.
#![allow(clippy::unwrap_used)]

use kith_media::codec::FRAME_SAMPLES;
use kith_media::echo::EchoCanceller;

/// A voiced signal (speech-band glide with harmonics, syllables).
fn voice(n: usize, f0: f64, seed: f64) -> Vec<f64> {
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / 48_000.0;
            let f = f0 + 40.0 * (2.0 * std::f64::consts::PI * (0.6 + seed) * t).sin();
            phase += 2.0 * std::f64::consts::PI * f / 48_000.0;
            let syllable = (2.0 * std::f64::consts::PI * (3.0 + seed) * t)
                .sin()
                .max(0.0);
            (phase.sin() + 0.5 * (2.0 * phase).sin() + 0.3 * (3.0 * phase).sin()) * syllable
        })
        .collect()
}

fn energy(x: &[i16]) -> f64 {
    x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64
}

#[test]
fn the_loudspeakers_sound_is_taken_out_of_the_microphones() {
    let secs = 12;
    let n = 48_000 * secs;
    let far: Vec<i16> = voice(n, 160.0, 0.0)
        .iter()
        .map(|v| (v * 7_000.0) as i16)
        .collect();
    // The room: 40 ms away, half as loud, a little smeared.
    let delay = 48 * 40;
    let echo: Vec<f64> = (0..n)
        .map(|i| {
            let at = |d: usize| i.checked_sub(d).map_or(0.0, |j| f64::from(far[j]));
            0.35 * at(delay) + 0.1 * at(delay + 24) + 0.05 * at(delay + 96)
        })
        .collect();
    let mut aec = EchoCanceller::new();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for f in 0..n / FRAME_SAMPLES {
        let r = f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES;
        aec.played(&far[r.clone()]);
        let mut mic: Vec<i16> = echo[r].iter().map(|&v| v as i16).collect();
        if f * FRAME_SAMPLES >= n - 48_000 * 4 {
            before.extend_from_slice(&mic);
        }
        aec.captured(&mut mic);
        if f * FRAME_SAMPLES >= n - 48_000 * 4 {
            after.extend_from_slice(&mic);
        }
    }
    let erle = 10.0 * (energy(&before) / energy(&after).max(1e-9)).log10();
    eprintln!(
        "echo removed over the last 4 s: {erle:.1} dB (the canceller says {:?})",
        aec.erle_db()
    );
    assert!(erle > 20.0, "only {erle:.1} dB of echo removed");
}

#[test]
fn the_near_speaker_still_comes_through_while_the_far_one_talks() {
    let n = 48_000 * 10;
    let far: Vec<i16> = voice(n, 160.0, 0.0)
        .iter()
        .map(|v| (v * 7_000.0) as i16)
        .collect();
    let near = voice(n, 230.0, 0.37);
    let delay = 48 * 40;
    let mut aec = EchoCanceller::new();
    let (mut near_in, mut out) = (Vec::new(), Vec::new());
    for f in 0..n / FRAME_SAMPLES {
        let r = f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES;
        aec.played(&far[r.clone()]);
        let mut mic: Vec<i16> = r
            .clone()
            .map(|i| {
                let e = i
                    .checked_sub(delay)
                    .map_or(0.0, |j| f64::from(far[j]) * 0.35);
                // The near talker starts after 6 s (the canceller has
                // learnt the room by then).
                let v = if i > 48_000 * 6 {
                    near[i] * 5_000.0
                } else {
                    0.0
                };
                (e + v) as i16
            })
            .collect();
        aec.captured(&mut mic);
        if f * FRAME_SAMPLES > 48_000 * 7 {
            near_in.extend(r.map(|i| (near[i] * 5_000.0) as i16));
            out.extend_from_slice(&mic);
        }
    }
    // Most of the near talker's energy survives (double talk is not cut).
    let kept = energy(&out) / energy(&near_in);
    eprintln!(
        "near talker's energy kept in double talk: {:.0}%",
        kept * 100.0
    );
    assert!(
        kept > 0.3,
        "only {:.0}% of the near talker kept",
        kept * 100.0
    );
}
