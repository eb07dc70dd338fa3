//! Voice coding: Opus (libopus, bundled) at 48 kHz mono in 20 ms frames,
//! tuned for speech (VoIP mode), with in-band forward error correction
//! (each packet also carries a coarse copy of the previous frame) and
//! discontinuous transmission (silence costs almost nothing). The bitrate
//! and the loss the encoder prepares for follow what the receiver reports.

use crate::jitter::FRAME_TICKS;

/// Samples per second.
pub const RATE: u32 = 48_000;
/// Samples per frame (20 ms).
pub const FRAME_SAMPLES: usize = FRAME_TICKS as usize;
/// The largest Opus packet.
pub const MAX_PACKET: usize = 1275;
/// Lowest and highest bitrates used, bits per second.
pub const MIN_BITRATE: i32 = 12_000;
/// See [`MIN_BITRATE`].
pub const MAX_BITRATE: i32 = 40_000;

/// A codec failure (a packet it cannot read, a bad setting).
#[derive(Debug, thiserror::Error)]
#[error("opus: {0}")]
pub struct CodecError(String);

fn err(e: opus::Error) -> CodecError {
    CodecError(e.to_string())
}

/// Encodes 20 ms frames of speech.
pub struct VoiceEncoder {
    enc: opus::Encoder,
    out: Vec<u8>,
}

impl std::fmt::Debug for VoiceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoiceEncoder")
    }
}

impl VoiceEncoder {
    /// An encoder at `bitrate` bits per second, FEC on, prepared for
    /// `loss_percent` loss.
    pub fn new(bitrate: i32, loss_percent: u8) -> Result<Self, CodecError> {
        let mut enc =
            opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip).map_err(err)?;
        enc.set_inband_fec(true).map_err(err)?;
        // Silence shrinks to 1–2 byte frames (the caller still sends each).
        enc.set_dtx(true).map_err(err)?;
        // A voice call codes up to 8 kHz (wideband, "HD voice"): the same
        // bits spent up to 20 kHz scored 0.4–0.5 lower on PESQ-WB
        // (`bench/calls/pesq.sh`).
        enc.set_max_bandwidth(opus::Bandwidth::Wideband)
            .map_err(err)?;
        enc.set_signal(opus::Signal::Voice).map_err(err)?;
        let mut me = Self {
            enc,
            out: vec![0; MAX_PACKET],
        };
        me.adapt(bitrate, loss_percent)?;
        Ok(me)
    }

    /// Follows the path: the bitrate (within bounds) and the loss the FEC
    /// prepares for.
    pub fn adapt(&mut self, bitrate: i32, loss_percent: u8) -> Result<(), CodecError> {
        self.enc
            .set_bitrate(opus::Bitrate::Bits(bitrate.clamp(MIN_BITRATE, MAX_BITRATE)))
            .map_err(err)?;
        self.enc
            .set_packet_loss_perc(i32::from(loss_percent.min(50)))
            .map_err(err)
    }

    /// Experiments (benchmarks): the widest audio band coded (`None`:
    /// Opus picks), a voice bias, and the complexity.
    #[doc(hidden)]
    pub fn tune(
        &mut self,
        max_band_khz: Option<u32>,
        voice: bool,
        complexity: i32,
    ) -> Result<(), CodecError> {
        let band = match max_band_khz {
            Some(8) => opus::Bandwidth::Wideband,
            Some(12) => opus::Bandwidth::Superwideband,
            Some(4) => opus::Bandwidth::Narrowband,
            _ => opus::Bandwidth::Fullband,
        };
        self.enc.set_max_bandwidth(band).map_err(err)?;
        if voice {
            self.enc.set_signal(opus::Signal::Voice).map_err(err)?;
        }
        self.enc.set_complexity(complexity).map_err(err)
    }

    /// Turns in-band FEC on or off (on from the start; benchmarks compare).
    pub fn set_fec(&mut self, on: bool) -> Result<(), CodecError> {
        self.enc.set_inband_fec(on).map_err(err)
    }

    /// One frame of [`FRAME_SAMPLES`] samples to a packet.
    pub fn encode(&mut self, frame: &[i16]) -> Result<&[u8], CodecError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(CodecError(format!(
                "a frame has {FRAME_SAMPLES} samples, not {}",
                frame.len()
            )));
        }
        let n = self.enc.encode(frame, &mut self.out).map_err(err)?;
        Ok(&self.out[..n])
    }
}

/// Decodes packets back to 20 ms frames, conceals lost ones and rebuilds
/// them from the next packet's FEC.
pub struct VoiceDecoder {
    dec: opus::Decoder,
}

impl std::fmt::Debug for VoiceDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoiceDecoder")
    }
}

impl VoiceDecoder {
    /// A decoder.
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            dec: opus::Decoder::new(RATE, opus::Channels::Mono).map_err(err)?,
        })
    }

    /// A packet's frame. A packet that is not one 20 ms frame is refused
    /// (a peer's packet: it must not make the decoder write more).
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, CodecError> {
        self.check(packet)?;
        self.run(packet, false)
    }

    /// The frame before `next`, rebuilt from `next`'s FEC.
    pub fn decode_fec(&mut self, next: &[u8]) -> Result<Vec<i16>, CodecError> {
        self.check(next)?;
        self.run(next, true)
    }

    /// A lost frame, concealed.
    pub fn conceal(&mut self) -> Result<Vec<i16>, CodecError> {
        self.run(&[], false)
    }

    /// Whether `packet` is one 20 ms Opus frame of a size a decoder
    /// takes (checked without decoding it).
    pub fn check(&self, packet: &[u8]) -> Result<(), CodecError> {
        if packet.is_empty() || packet.len() > MAX_PACKET {
            return Err(CodecError(format!("a packet of {} bytes", packet.len())));
        }
        let samples = opus::packet::get_nb_samples(packet, RATE).map_err(err)?;
        if samples != FRAME_SAMPLES {
            return Err(CodecError(format!(
                "a packet of {samples} samples, not one 20 ms frame"
            )));
        }
        Ok(())
    }

    fn run(&mut self, packet: &[u8], fec: bool) -> Result<Vec<i16>, CodecError> {
        let mut out = vec![0i16; FRAME_SAMPLES];
        let n = self.dec.decode(packet, &mut out, fec).map_err(err)?;
        out.truncate(n);
        out.resize(FRAME_SAMPLES, 0);
        Ok(out)
    }
}
