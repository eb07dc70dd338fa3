//! Echo cancellation for calls on a loudspeaker: what the speaker plays
//! comes back through the microphone, and the other side would hear
//! itself. WebRTC's echo canceller (AEC3, in the pure-Rust `sonora` port)
//! learns the path from what was played (`played`) to what the microphone
//! takes (`captured`) and removes it, with noise suppression and the high
//! pass filter of the same pipeline. Calls from files have no acoustic
//! path and do not use it.

use crate::codec::{FRAME_SAMPLES, RATE};
use sonora::config::{EchoCanceller as Aec, NoiseSuppression};
use sonora::{AudioProcessing, Config, StreamConfig};

/// Samples in the canceller's own 10 ms step.
const STEP: usize = RATE as usize / 100;

/// Removes the loudspeaker's sound from the microphone's.
pub struct EchoCanceller {
    apm: AudioProcessing,
    out: Vec<i16>,
}

impl std::fmt::Debug for EchoCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EchoCanceller")
    }
}

impl Default for EchoCanceller {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoCanceller {
    /// A canceller for 48 kHz mono 20 ms frames.
    pub fn new() -> Self {
        let config = Config {
            echo_canceller: Some(Aec::default()),
            noise_suppression: Some(NoiseSuppression::default()),
            ..Default::default()
        };
        let apm = AudioProcessing::builder()
            .config(config)
            .capture_config(StreamConfig::new(RATE, 1))
            .render_config(StreamConfig::new(RATE, 1))
            .build();
        Self {
            apm,
            out: vec![0; STEP],
        }
    }

    /// The sound card's delay between playing and capturing, as far as
    /// it is known (a hint; the canceller also finds it itself).
    pub fn set_delay_ms(&mut self, ms: u32) {
        let _ = self
            .apm
            .set_stream_delay_ms(i32::try_from(ms).unwrap_or(500));
    }

    /// A 20 ms frame given to the loudspeaker.
    pub fn played(&mut self, frame: &[i16]) {
        for chunk in frame.chunks_exact(STEP) {
            let _ = self.apm.process_render_i16(chunk, &mut self.out);
        }
    }

    /// A 20 ms frame from the microphone, cleaned in place.
    pub fn captured(&mut self, frame: &mut [i16]) {
        debug_assert_eq!(frame.len(), FRAME_SAMPLES);
        for chunk in frame.chunks_exact_mut(STEP) {
            if self.apm.process_capture_i16(chunk, &mut self.out).is_ok() {
                chunk.copy_from_slice(&self.out);
            }
        }
    }

    /// How much of the echo it removes now, in dB (once it has measured).
    pub fn erle_db(&self) -> Option<f64> {
        self.apm.statistics().echo_return_loss_enhancement
    }
}
