//! What a peer's H.264 frame may hold before OpenH264 sees it. The
//! decoder sizes its pictures and reference buffers from the stream's
//! sequence parameter set (SPS): a few bytes could ask for 9-megapixel
//! pictures and sixteen references of them. So every frame is split into
//! its NAL units, only the kinds a call sends pass (slices, SEI, SPS,
//! PPS), and each SPS is read far enough to bound the picture
//! (≤ [`MAX_WIDTH`] × [`MAX_HEIGHT`]) and the references (≤
//! [`MAX_REF_FRAMES`]); baseline and main profiles only (kith sends
//! constrained baseline).

use crate::video::{MAX_HEIGHT, MAX_WIDTH, VideoError};

/// Most reference frames a peer's stream may ask the decoder to keep.
pub const MAX_REF_FRAMES: u32 = 4;
/// Most NAL units in one frame.
pub const MAX_UNITS: usize = 64;

/// The NAL units of an Annex B byte stream (without their start codes).
pub fn units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
        // A four-byte start code leaves a zero behind the unit before it.
        while end > s && stream[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        out.push(&stream[s..end]);
    }
    out
}

/// Refuses a frame that holds anything but the NAL units a call sends,
/// too many of them, or an SPS beyond the bounds above.
pub fn check_frame(frame: &[u8]) -> Result<(), VideoError> {
    let units = units(frame);
    if units.is_empty() {
        return Err(VideoError::new("a frame with no NAL unit"));
    }
    if units.len() > MAX_UNITS {
        return Err(VideoError::new("a frame of too many NAL units"));
    }
    for u in units {
        let Some(&head) = u.first() else {
            return Err(VideoError::new("an empty NAL unit"));
        };
        check_escapes(u)?;
        match head & 0x1f {
            // Slices (non-IDR, IDR), SEI, PPS.
            1 | 5 | 6 | 8 => {}
            7 => check_sps(&u[1..])?,
            t => {
                return Err(VideoError::new(format!(
                    "NAL unit type {t} is not sent in calls"
                )));
            }
        }
    }
    Ok(())
}

/// Refuses byte patterns a conforming unit never holds and decoders read
/// differently: `00 00` followed by `00`, `01` or `02`, or by `03` and then
/// a byte above 3. (OpenH264 skips all of `00 00 03 XX` for XX > 3 where
/// an emulation-prevention reader keeps `00 00 XX`: let one through and
/// this gate would read one SPS while the decoder reads another.)
fn check_escapes(unit: &[u8]) -> Result<(), VideoError> {
    for (i, w) in unit.windows(3).enumerate() {
        if w[0] != 0 || w[1] != 0 {
            continue;
        }
        let bad = match w[2] {
            0..=2 => true,
            3 => unit.get(i + 3).is_some_and(|&next| next > 3),
            _ => false,
        };
        if bad {
            return Err(VideoError::new("a NAL unit with a malformed escape"));
        }
    }
    Ok(())
}

/// Reads bits from an RBSP (emulation prevention bytes removed).
struct Bits {
    data: Vec<u8>,
    at: usize,
}

impl Bits {
    fn new(ebsp: &[u8]) -> Self {
        let mut data = Vec::with_capacity(ebsp.len());
        let mut zeros = 0;
        for &b in ebsp {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, at: 0 }
    }

    fn bit(&mut self) -> Result<u32, VideoError> {
        let byte = self
            .data
            .get(self.at / 8)
            .ok_or_else(|| VideoError::new("an SPS cut short"))?;
        let b = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Ok(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Result<u32, VideoError> {
        let mut v = 0;
        for _ in 0..n {
            v = v << 1 | self.bit()?;
        }
        Ok(v)
    }

    /// Exp-Golomb, unsigned (at most 31 leading zeros).
    fn ue(&mut self) -> Result<u32, VideoError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(VideoError::new("an SPS number too long"));
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    fn se(&mut self) -> Result<i64, VideoError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

fn check_sps(ebsp: &[u8]) -> Result<(), VideoError> {
    let mut b = Bits::new(ebsp);
    let profile = b.bits(8)?;
    if !matches!(profile, 66 | 77) {
        return Err(VideoError::new(format!(
            "H.264 profile {profile} is not sent in calls"
        )));
    }
    let _constraints_and_level = b.bits(16)?;
    let _id = b.ue()?;
    let _log2_max_frame_num = b.ue()?;
    match b.ue()? {
        0 => {
            let _log2_max_poc_lsb = b.ue()?;
        }
        1 => {
            let _always_zero = b.bit()?;
            let _non_ref = b.se()?;
            let _top_to_bottom = b.se()?;
            let cycle = b.ue()?;
            if cycle > 255 {
                return Err(VideoError::new("an SPS with a long reference cycle"));
            }
            for _ in 0..cycle {
                b.se()?;
            }
        }
        2 => {}
        _ => return Err(VideoError::new("an SPS with an unknown picture order")),
    }
    let refs = b.ue()?;
    if refs > MAX_REF_FRAMES {
        return Err(VideoError::new(format!(
            "an SPS asking for {refs} reference frames"
        )));
    }
    let _gaps = b.bit()?;
    let width = (u64::from(b.ue()?) + 1) * 16;
    let map_units = u64::from(b.ue()?) + 1;
    let frame_mbs_only = b.bit()?;
    let height = map_units * 16 * if frame_mbs_only == 1 { 1 } else { 2 };
    // Cropping may take up to 15 lines off: a 1080-line picture codes 1088.
    if width > MAX_WIDTH as u64 || height > MAX_HEIGHT as u64 + 15 {
        return Err(VideoError::new(format!(
            "an SPS for {width}×{height} pictures (at most {MAX_WIDTH}×{MAX_HEIGHT})"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::video::{HEIGHT, VideoEncoder, WIDTH, synthetic};

    #[test]
    fn our_own_frames_pass() {
        let mut enc = VideoEncoder::new(500_000, 30).unwrap();
        for i in 0..5 {
            if let Some(e) = enc.encode(&synthetic(i, WIDTH, HEIGHT)).unwrap() {
                check_frame(&e.data).unwrap();
                if e.key {
                    let kinds: Vec<u8> = units(&e.data).iter().map(|u| u[0] & 0x1f).collect();
                    assert!(kinds.contains(&7) && kinds.contains(&5), "{kinds:?}");
                }
            }
        }
    }

    /// An SPS (after its header byte) for `profile`, `refs` references and
    /// a picture of `w_mbs` × `h_mbs` macroblocks, bit by bit.
    fn sps(profile: u8, refs: u32, w_mbs: u32, h_mbs: u32) -> Vec<u8> {
        let mut bits = String::new();
        let ue = |v: u32, bits: &mut String| {
            let x = v + 1;
            let n = 32 - x.leading_zeros();
            bits.push_str(&"0".repeat(n as usize - 1));
            bits.push_str(&format!("{x:b}"));
        };
        bits.push_str(&format!("{profile:08b}"));
        bits.push_str(&"0".repeat(16));
        ue(0, &mut bits); // id
        ue(0, &mut bits); // log2 max frame num − 4
        ue(2, &mut bits); // picture order type 2
        ue(refs, &mut bits);
        bits.push('0'); // gaps
        ue(w_mbs - 1, &mut bits);
        ue(h_mbs - 1, &mut bits);
        bits.push('1'); // frame mbs only
        bits.push('1'); // stop bit
        while !bits.len().is_multiple_of(8) {
            bits.push('0');
        }
        let mut out = vec![0, 0, 0, 1, 0x67];
        out.extend(
            bits.as_bytes()
                .chunks(8)
                .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()),
        );
        out
    }

    #[test]
    fn streams_beyond_the_bounds_are_refused() {
        assert!(check_frame(&sps(66, 1, 40, 30)).is_ok());
        assert!(check_frame(&sps(66, 1, 120, 68)).is_ok(), "1920×1088");
        assert!(check_frame(&sps(66, 16, 40, 30)).is_err(), "16 references");
        assert!(check_frame(&sps(66, 1, 256, 144)).is_err(), "4096×2304");
        assert!(check_frame(&sps(100, 1, 40, 30)).is_err(), "high profile");
        assert!(check_frame(&[0, 0, 1, 0x6e, 1, 2]).is_err(), "type 14");
        assert!(check_frame(&[1, 2, 3]).is_err(), "no start code");
        assert!(check_frame(&[0, 0, 1]).is_err(), "an empty unit");
        let mut cut = sps(66, 1, 40, 30);
        cut.truncate(8);
        assert!(check_frame(&cut).is_err(), "cut short");
        let mut many = Vec::new();
        for _ in 0..=MAX_UNITS {
            many.extend_from_slice(&[0, 0, 1, 0x41, 0x9a]);
        }
        assert!(check_frame(&many).is_err());
    }

    #[test]
    fn an_escape_read_two_ways_is_refused() {
        // `00 00 03 FB`: a reader that keeps `00 00` sees a small SPS, the
        // decoder (which drops all four bytes) the big one behind it.
        let big = sps(66, 16, 256, 144);
        let mut hidden = vec![0, 0, 0, 1, 0x67, 0x42, 0, 0, 3, 0xfb, 0x33];
        hidden.extend_from_slice(&big[5..]);
        assert!(check_frame(&hidden).is_err());
        // And the plain patterns no encoder writes.
        assert!(check_frame(&[0, 0, 1, 0x41, 0, 0, 2, 5]).is_err());
        assert!(check_frame(&[0, 0, 1, 0x41, 0, 0, 0, 5, 0, 0, 1, 0x41, 1]).is_err());
        // A real escape passes.
        assert!(check_frame(&[0, 0, 1, 0x41, 0, 0, 3, 1, 7]).is_ok());
    }
}
