//! Video coding: H.264 (constrained baseline) through OpenH264, built
//! from its bundled source, in I420 pictures — 640×480 at 30 frames a
//! second by default. Why H.264 and OpenH264 rather than VP8/VP9 through
//! libvpx is in `docs/calls.md` ("Video").
//!
//! The encoder runs in bitrate mode, drops frames rather than overshoot,
//! and makes a key frame only when asked (the receiver asks after a loss
//! it cannot decode past). Simulcast is independent encoders, one per
//! layer, each numbering its own packets (`Packet::layer`): nothing here
//! assumes one layer.
//!
//! Pictures from a peer are bounded before OpenH264 sees them
//! ([`MAX_FRAME_BYTES`]) and after it ([`MAX_WIDTH`] × [`MAX_HEIGHT`]).

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;

/// The default picture size.
pub const WIDTH: usize = 640;
/// See [`WIDTH`].
pub const HEIGHT: usize = 480;
/// Frames per second.
pub const FPS: u32 = 30;
/// The video clock (RTP's): ticks per second.
pub const CLOCK: u32 = 90_000;
/// Clock ticks per frame.
pub const FRAME_TICKS: u32 = CLOCK / FPS;
/// The largest picture taken from a peer or a file.
pub const MAX_WIDTH: usize = 1920;
/// See [`MAX_WIDTH`].
pub const MAX_HEIGHT: usize = 1080;
/// The largest encoded frame sent or reassembled (a key frame at 640×480
/// and 1 Mbit/s is 20–60 kB).
pub const MAX_FRAME_BYTES: usize = 255 * crate::frames::PIECE_BYTES;
/// The bitrate a video call aims at when the path allows, bits per second.
pub const BITRATE: u32 = 1_000_000;
/// The least it goes down to before it stops sending pictures.
pub const MIN_BITRATE: u32 = 100_000;

/// A coding failure.
#[derive(Debug, thiserror::Error)]
#[error("video: {0}")]
pub struct VideoError(String);

impl VideoError {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

fn err(e: impl std::fmt::Display) -> VideoError {
    VideoError(e.to_string())
}

/// An I420 picture: the Y plane, then U and V at half size each way.
#[derive(Clone, PartialEq, Eq)]
pub struct Picture {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// `width × height × 3 / 2` bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Picture({}×{})", self.width, self.height)
    }
}

impl Picture {
    /// Bytes of an I420 picture of this size.
    pub fn bytes(width: usize, height: usize) -> usize {
        width * height * 3 / 2
    }

    /// A black picture.
    pub fn black(width: usize, height: usize) -> Self {
        let mut data = vec![16u8; width * height];
        data.resize(Self::bytes(width, height), 128);
        Self {
            width,
            height,
            data,
        }
    }

    /// The picture at half the width and height (each pixel the mean of
    /// four): a small simulcast layer's. Sizes not a multiple of four
    /// lose their last rows and columns.
    pub fn half(&self) -> Picture {
        let (w, h) = ((self.width / 4) * 2, (self.height / 4) * 2);
        let mut out = Vec::with_capacity(Self::bytes(w, h));
        let (cw, ch) = (self.width / 2, self.height / 2);
        let planes = [
            (&self.data[..self.width * self.height], self.width, w, h),
            (
                &self.data[self.width * self.height..][..cw * ch],
                cw,
                w / 2,
                h / 2,
            ),
            (
                &self.data[self.width * self.height + cw * ch..][..cw * ch],
                cw,
                w / 2,
                h / 2,
            ),
        ];
        for (plane, stride, pw, ph) in planes {
            for y in 0..ph {
                let (a, b) = (&plane[2 * y * stride..], &plane[(2 * y + 1) * stride..]);
                for x in 0..pw {
                    let sum = u16::from(a[2 * x])
                        + u16::from(a[2 * x + 1])
                        + u16::from(b[2 * x])
                        + u16::from(b[2 * x + 1]);
                    out.push(((sum + 2) / 4) as u8);
                }
            }
        }
        Picture {
            width: w,
            height: h,
            data: out,
        }
    }

    /// The picture at twice the width and height (each pixel repeated).
    pub fn double(&self) -> Picture {
        let (w, h) = (self.width * 2, self.height * 2);
        let mut out = Vec::with_capacity(Self::bytes(w, h));
        let (cw, ch) = (self.width / 2, self.height / 2);
        let planes = [
            (
                &self.data[..self.width * self.height],
                self.width,
                self.height,
            ),
            (&self.data[self.width * self.height..][..cw * ch], cw, ch),
            (
                &self.data[self.width * self.height + cw * ch..][..cw * ch],
                cw,
                ch,
            ),
        ];
        for (plane, pw, ph) in planes {
            for y in 0..ph {
                let row = &plane[y * pw..][..pw];
                let start = out.len();
                for &p in row {
                    out.push(p);
                    out.push(p);
                }
                out.extend_from_within(start..);
            }
        }
        Picture {
            width: w,
            height: h,
            data: out,
        }
    }

    /// The luma plane.
    pub fn y(&self) -> &[u8] {
        &self.data[..self.width * self.height]
    }

    /// Peak signal-to-noise ratio of the luma planes against `other`
    /// (same size), in dB; identical pictures give 100.
    pub fn psnr(&self, other: &Picture) -> f64 {
        let (a, b) = (self.y(), other.y());
        if a.len() != b.len() || a.is_empty() {
            return 0.0;
        }
        let se: u64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| {
                let d = i64::from(x) - i64::from(y);
                (d * d) as u64
            })
            .sum();
        if se == 0 {
            return 100.0;
        }
        let mse = se as f64 / a.len() as f64;
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

struct Source<'a>(&'a Picture);

impl YUVSource for Source<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width, self.0.height)
    }
    fn strides(&self) -> (usize, usize, usize) {
        (self.0.width, self.0.width / 2, self.0.width / 2)
    }
    fn y(&self) -> &[u8] {
        &self.0.data[..self.0.width * self.0.height]
    }
    fn u(&self) -> &[u8] {
        let y = self.0.width * self.0.height;
        &self.0.data[y..y + y / 4]
    }
    fn v(&self) -> &[u8] {
        let y = self.0.width * self.0.height;
        &self.0.data[y + y / 4..]
    }
}

/// One encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The H.264 Annex B byte stream of the frame.
    pub data: Vec<u8>,
    /// Decodable alone (an IDR frame, with its parameter sets).
    pub key: bool,
}

/// Encodes pictures of one size at a bitrate that can change.
pub struct VideoEncoder {
    enc: Encoder,
    bitrate: u32,
    /// Whether the encoder has been set up (on the first picture).
    started: bool,
    /// A bitrate to set once it is.
    pending: Option<u32>,
}

impl std::fmt::Debug for VideoEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VideoEncoder({} bit/s)", self.bitrate)
    }
}

impl VideoEncoder {
    /// An encoder aiming at `bitrate` bits per second, `fps` frames a
    /// second, one thread (a call's other work needs the other core).
    pub fn new(bitrate: u32, fps: u32) -> Result<Self, VideoError> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            .usage_type(UsageType::CameraVideoRealTime)
            .skip_frames(true)
            .complexity(Complexity::Low)
            .num_threads(1);
        let enc = Encoder::with_api_config(OpenH264API::from_source(), config).map_err(err)?;
        Ok(Self {
            enc,
            bitrate,
            started: false,
            pending: None,
        })
    }

    /// The bitrate aimed at now.
    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// Encodes one picture; `None` when the rate control skipped it.
    pub fn encode(&mut self, picture: &Picture) -> Result<Option<Encoded>, VideoError> {
        check_size(picture.width, picture.height)?;
        if picture.data.len() != Picture::bytes(picture.width, picture.height) {
            return Err(VideoError(format!(
                "a {}×{} picture of {} bytes",
                picture.width,
                picture.height,
                picture.data.len()
            )));
        }
        let stream = self.enc.encode(&Source(picture)).map_err(err)?;
        let kind = stream.frame_type();
        let data = stream.to_vec();
        self.started = true;
        if let Some(bps) = self.pending.take() {
            // A rate that cannot be set is not worth this frame.
            let _ = self.set_bitrate(bps);
        }
        if matches!(kind, FrameType::Skip | FrameType::Invalid) || data.is_empty() {
            return Ok(None);
        }
        Ok(Some(Encoded {
            data,
            key: kind == FrameType::IDR,
        }))
    }

    /// Makes the next frame a key frame.
    pub fn request_key(&mut self) {
        self.enc.force_intra_frame();
    }

    /// Aims at `bps` bits per second from the next frame on.
    pub fn set_bitrate(&mut self, bps: u32) -> Result<(), VideoError> {
        let bps = bps.clamp(MIN_BITRATE / 2, 8 * BITRATE);
        if !self.started {
            self.pending = Some(bps);
            self.bitrate = bps;
            return Ok(());
        }
        // The ceiling first when going up, the target first going down:
        // OpenH264 refuses a target above the ceiling.
        let up = bps > self.bitrate;
        let order = if up {
            [
                openh264_sys2::ENCODER_OPTION_MAX_BITRATE,
                openh264_sys2::ENCODER_OPTION_BITRATE,
            ]
        } else {
            [
                openh264_sys2::ENCODER_OPTION_BITRATE,
                openh264_sys2::ENCODER_OPTION_MAX_BITRATE,
            ]
        };
        for option in order {
            self.set_rate_option(option, bps)?;
        }
        self.bitrate = bps;
        Ok(())
    }

    /// The one place this crate reaches past the `openh264` crate's safe
    /// API: it has no call to change the bitrate of a running encoder.
    #[allow(unsafe_code)]
    fn set_rate_option(
        &mut self,
        option: openh264_sys2::ENCODER_OPTION,
        bps: u32,
    ) -> Result<(), VideoError> {
        let mut info = openh264_sys2::SBitrateInfo {
            iLayer: openh264_sys2::SPATIAL_LAYER_ALL,
            iBitrate: i32::try_from(bps).map_err(err)?,
        };
        // SAFETY: the encoder was initialised by its first `encode` (checked
        // by the caller through `started`); both bitrate options take a
        // pointer to an `SBitrateInfo` that OpenH264 reads during the call
        // only, and `info` outlives it. No other option is touched.
        let rc = unsafe {
            self.enc
                .raw_api()
                .set_option(option, (&raw mut info).cast())
        };
        if rc != 0 {
            return Err(VideoError(format!("setting the bitrate failed ({rc})")));
        }
        Ok(())
    }
}

fn check_size(width: usize, height: usize) -> Result<(), VideoError> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(VideoError(format!(
            "a {width}×{height} picture is not usable"
        )));
    }
    if width > MAX_WIDTH || height > MAX_HEIGHT {
        return Err(VideoError(format!(
            "a {width}×{height} picture is larger than {MAX_WIDTH}×{MAX_HEIGHT}"
        )));
    }
    Ok(())
}

/// Decodes frames in order into pictures.
pub struct VideoDecoder {
    dec: Decoder,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VideoDecoder")
    }
}

impl VideoDecoder {
    /// A decoder.
    pub fn new() -> Result<Self, VideoError> {
        let dec = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(err)?;
        Ok(Self { dec })
    }

    /// Decodes one whole frame (as [`crate::frames::Assembler`] gives it):
    /// the picture, or `None` if it made none. A frame over
    /// [`MAX_FRAME_BYTES`], one [`crate::h264::check_frame`] refuses, or a
    /// picture over [`MAX_WIDTH`] × [`MAX_HEIGHT`] is an error.
    pub fn decode(&mut self, frame: &[u8]) -> Result<Option<Picture>, VideoError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(VideoError(format!("a frame of {} bytes", frame.len())));
        }
        crate::h264::check_frame(frame)?;
        let Some(yuv) = self.dec.decode(frame).map_err(err)? else {
            return Ok(None);
        };
        let (width, height) = yuv.dimensions();
        check_size(width, height)?;
        let (sy, su, sv) = yuv.strides();
        let mut data = Vec::with_capacity(Picture::bytes(width, height));
        let mut plane = |src: &[u8], stride: usize, w: usize, h: usize| {
            for row in 0..h {
                match src.get(row * stride..row * stride + w) {
                    Some(line) => data.extend_from_slice(line),
                    None => data.resize(data.len() + w, 0),
                }
            }
        };
        plane(yuv.y(), sy, width, height);
        plane(yuv.u(), su, width / 2, height / 2);
        plane(yuv.v(), sv, width / 2, height / 2);
        Ok(Some(Picture {
            width,
            height,
            data,
        }))
    }
}

/// Frame numbers drawn into pictures as 16 black or white 32-pixel blocks
/// along the top edge (benchmarks and tests find each frame again after
/// coding: glass-to-glass delay, PSNR against the right source frame).
pub mod mark {
    use super::Picture;

    const BITS: usize = 16;
    const BLOCK: usize = 32;

    /// Draws `n` (its low 16 bits) into `p`'s luma.
    pub fn draw(p: &mut Picture, n: u32) {
        for bit in 0..BITS {
            let on = (n >> bit) & 1 == 1;
            let value = if on { 235 } else { 16 };
            for y in 0..BLOCK.min(p.height) {
                let start = y * p.width + bit * BLOCK;
                let end = (start + BLOCK).min(y * p.width + p.width);
                if start < end {
                    p.data[start..end].fill(value);
                }
            }
        }
    }

    /// The number drawn into `p`, read from each block's middle.
    pub fn read(p: &Picture) -> Option<u32> {
        if p.width < BITS * BLOCK || p.height < BLOCK {
            return None;
        }
        let mut n = 0u32;
        for bit in 0..BITS {
            let mut sum = 0u64;
            for y in BLOCK / 4..BLOCK * 3 / 4 {
                let row = y * p.width + bit * BLOCK;
                sum += p.data[row + BLOCK / 4..row + BLOCK * 3 / 4]
                    .iter()
                    .map(|&v| u64::from(v))
                    .sum::<u64>();
            }
            let mean = sum / (BLOCK as u64 / 2).pow(2);
            if mean > 128 {
                n |= 1 << bit;
            }
        }
        Some(n)
    }
}

/// A moving test picture with its frame number marked: what a video call
/// sends with no camera and no `--video-in`, and what the tests and
/// benchmarks code. It is made to look like a call, not to be easy: a
/// still, textured room (a shaded wall, books, a poster), a head that
/// sways and a mouth that opens and shuts, a hand that crosses the
/// picture, and sensor noise that differs in every frame.
pub fn synthetic(n: u32, width: usize, height: usize) -> Picture {
    let mut p = Picture::black(width, height);
    let t = i64::from(n);
    let (w, h) = (width as i64, height as i64);
    // Integer sines (one period per `period` frames), amplitude `amp`.
    let sway = |period: i64, amp: i64| {
        let phase = (t % period) as f64 / period as f64 * std::f64::consts::TAU;
        (phase.sin() * amp as f64) as i64
    };
    let (hx, hy) = (w / 2 + sway(90, w / 16), h / 2 + sway(70, h / 40));
    let (rx, ry) = (w / 7, h / 4);
    let mouth = 4 + (sway(12, 8)).abs();
    let hand_x = (t * 9) % (w + w / 4) - w / 8;
    let mut noise = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for y in 0..h {
        for x in 0..w {
            // The room: a shaded wall, a shelf with a pattern on the left.
            let mut v = 70 + (x * 50 / w) + (y * 30 / h);
            // Books on a shelf: narrow spines of many shades.
            if x < w / 4 && (h / 6..h / 2).contains(&y) {
                v = 60 + ((x / 7 * 37 + (y / (h / 6)) * 53) % 9) * 18 + (y % 3) * 4;
            }
            // A poster with fine print.
            if (w * 3 / 4..w - w / 20).contains(&x) && (h / 8..h * 3 / 8).contains(&y) {
                v = 200 - (((x * 3) ^ (y * 5)) % 7) * 22;
            }
            // The head, lit from the left, with eyes and a mouth.
            let (dx, dy) = (x - hx, y - hy);
            if dx * dx * ry * ry + dy * dy * rx * rx <= rx * rx * ry * ry {
                v = 185 - dx * 40 / rx - (dy * dy * 20) / (ry * ry);
                let eye = |ex: i64| {
                    let (a, b) = (x - (hx + ex), y - (hy - ry / 4));
                    a * a * 4 + b * b * 9 <= (rx / 4).pow(2) * 4
                };
                if eye(-rx / 3) || eye(rx / 3) {
                    v = 50;
                }
                if (y - (hy + ry / 2)).abs() <= mouth / 2 && dx.abs() < rx / 3 {
                    v = 70;
                }
            }
            // A hand crossing the lower part of the picture.
            if (hand_x..hand_x + w / 10).contains(&x) && y > h * 2 / 3 {
                v = 160 + ((y - h * 2 / 3) % 12);
            }
            // Sensor noise, ±4.
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            v += (noise % 9) as i64 - 4;
            p.data[(y * w + x) as usize] = v.clamp(16, 235) as u8;
        }
    }
    let (cw, ch) = (w / 2, h / 2);
    let y0 = (w * h) as usize;
    for j in 0..ch {
        for i in 0..cw {
            let (dx, dy) = (i * 2 - hx, j * 2 - hy);
            let skin = dx * dx * ry * ry + dy * dy * rx * rx <= rx * rx * ry * ry;
            let (u, v) = if skin {
                (110, 150)
            } else {
                (120 + i * 16 / cw, 128 - j * 12 / ch)
            };
            p.data[y0 + (j * cw + i) as usize] = u as u8;
            p.data[y0 + (cw * ch + j * cw + i) as usize] = v as u8;
        }
    }
    mark::draw(&mut p, n);
    p
}
