//! The media datagram: a 12-byte header and one encoded frame (or a piece
//! of one, for video). Datagrams travel on the call's own QUIC connection
//! (TLS 1.3 between the two devices), so the header carries no call id and
//! no keys; a conference's sender keys come with group calls.
//!
//! ```text
//! 0      1      2      3      4             8             12
//! | v|k  | flags| layer| rsvd | seq (u32 BE) | ts (u32 BE) | payload…
//! ```
//!
//! `v` (high nibble) is [`VERSION`]; `k` (low nibble) the [`Kind`]. `seq`
//! counts the packets of one kind and layer; `ts` is the media clock
//! (48 kHz for audio, 90 kHz for video) of the frame's first sample.
//! Decoding is strict: a wrong version, an unknown kind or flag, a
//! reserved byte set, an empty or oversized payload are all refused, so a
//! peer cannot make the receiver keep anything it would not send itself.

/// The header's version.
pub const VERSION: u8 = 1;
/// Header bytes.
pub const HEADER: usize = 12;
/// Most payload bytes in one datagram (a QUIC datagram on a 1280-byte
/// path, less QUIC's and our overhead).
pub const MAX_PAYLOAD: usize = 1100;

/// What a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An Opus frame (20 ms).
    Audio,
    /// A piece of an encoded video frame.
    Video,
    /// The receiver's report of what reached it (a [`Report`]), about
    /// once a second: the sender follows it.
    Report,
    /// The receiver cannot decode the video on (a frame was lost): the
    /// sender should make its next frame a key frame. Payload: one zero
    /// byte; `layer` names the layer.
    KeyRequest,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Audio => 0,
            Kind::Video => 1,
            Kind::Report => 2,
            Kind::KeyRequest => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Kind::Audio),
            1 => Some(Kind::Video),
            2 => Some(Kind::Report),
            3 => Some(Kind::KeyRequest),
            _ => None,
        }
    }
}

/// Flag: the last piece of a video frame.
pub const FLAG_END: u8 = 0b0000_0001;
/// Flag: a video key frame (decodable alone).
pub const FLAG_KEY: u8 = 0b0000_0010;
/// Flag: an audio frame the sender found silent (DTX: few follow).
pub const FLAG_SILENT: u8 = 0b0000_0100;
const FLAGS_KNOWN: u8 = FLAG_END | FLAG_KEY | FLAG_SILENT;

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than a header and one payload byte.
    #[error("a media datagram of {0} bytes is too short")]
    Short(usize),
    /// Longer than a header and [`MAX_PAYLOAD`].
    #[error("a media datagram of {0} bytes is too long")]
    Long(usize),
    /// Another version of the format.
    #[error("media datagram version {0} is not understood")]
    Version(u8),
    /// A kind this version does not know.
    #[error("media kind {0} is not known")]
    Kind(u8),
    /// Flags this version does not know, or a reserved byte set.
    #[error("unknown media flags or reserved bits {0:#04x}")]
    Flags(u8),
    /// Video flags on audio or the reverse.
    #[error("flags that do not fit the media kind")]
    Mismatch,
}

/// A decoded media datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// What it carries.
    pub kind: Kind,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// The simulcast layer (0 for audio and a single video layer).
    pub layer: u8,
    /// The packet's number among its kind and layer.
    pub seq: u32,
    /// The media clock of the frame.
    pub ts: u32,
    /// The encoded frame (or piece of one).
    pub payload: Vec<u8>,
}

impl Packet {
    /// The datagram. A payload over [`MAX_PAYLOAD`] is the caller's bug: it
    /// is refused here rather than sent and dropped by the peer.
    pub fn encode(&self) -> Result<Vec<u8>, PacketError> {
        if self.payload.is_empty() {
            return Err(PacketError::Short(HEADER));
        }
        if self.payload.len() > MAX_PAYLOAD {
            return Err(PacketError::Long(HEADER + self.payload.len()));
        }
        check_flags(self.kind, self.flags)?;
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.extend_from_slice(&self.header());
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// The header bytes alone (what a conference's sealed frame
    /// authenticates beside its payload).
    pub fn header(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0] = VERSION << 4 | self.kind.code();
        h[1] = self.flags;
        h[2] = self.layer;
        h[4..8].copy_from_slice(&self.seq.to_be_bytes());
        h[8..12].copy_from_slice(&self.ts.to_be_bytes());
        h
    }

    /// Reads a datagram (see the module documentation for what is refused).
    pub fn decode(bytes: &[u8]) -> Result<Self, PacketError> {
        if bytes.len() <= HEADER {
            return Err(PacketError::Short(bytes.len()));
        }
        if bytes.len() > HEADER + MAX_PAYLOAD {
            return Err(PacketError::Long(bytes.len()));
        }
        let version = bytes[0] >> 4;
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        let kind = Kind::from_code(bytes[0] & 0x0f).ok_or(PacketError::Kind(bytes[0] & 0x0f))?;
        let flags = bytes[1];
        if bytes[3] != 0 {
            return Err(PacketError::Flags(bytes[3]));
        }
        check_flags(kind, flags)?;
        let layer = bytes[2];
        if !matches!(kind, Kind::Video | Kind::KeyRequest) && layer != 0 {
            return Err(PacketError::Mismatch);
        }
        if kind == Kind::Report && bytes.len() != HEADER + REPORT_BYTES {
            return Err(PacketError::Mismatch);
        }
        if kind == Kind::KeyRequest && bytes[HEADER..] != [0] {
            return Err(PacketError::Mismatch);
        }
        let word = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Ok(Packet {
            kind,
            flags,
            layer,
            seq: word(4),
            ts: word(8),
            payload: bytes[HEADER..].to_vec(),
        })
    }
}

/// Payload bytes of a report.
pub const REPORT_BYTES: usize = 6;

/// What a receiver saw over the last second: the share of audio frames
/// that did not arrive in time (rebuilt from FEC or concealed), its jitter
/// buffer's target delay, and the share of video frames lost. Payload:
/// `u16 loss ‰ ‖ u16 target ms ‖ u16 video loss ‰`, big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Frames missing on arrival, per thousand (at most 1000).
    pub loss_permille: u16,
    /// The receiver's playout delay target, milliseconds.
    pub target_ms: u16,
    /// Video frames lost (or dropped waiting for a key frame), per
    /// thousand (at most 1000; 0 without video).
    pub video_loss_permille: u16,
}

impl Report {
    /// The report as the `seq`-th report packet.
    pub fn packet(&self, seq: u32) -> Packet {
        let mut payload = Vec::with_capacity(REPORT_BYTES);
        payload.extend_from_slice(&self.loss_permille.min(1000).to_be_bytes());
        payload.extend_from_slice(&self.target_ms.to_be_bytes());
        payload.extend_from_slice(&self.video_loss_permille.min(1000).to_be_bytes());
        Packet {
            kind: Kind::Report,
            flags: 0,
            layer: 0,
            seq,
            ts: 0,
            payload,
        }
    }

    /// The report a decoded report packet carries (a loss over 1000 ‰ is
    /// refused).
    pub fn from_packet(p: &Packet) -> Result<Self, PacketError> {
        let [a, b, c, d, e, f] = p.payload[..] else {
            return Err(PacketError::Mismatch);
        };
        if p.kind != Kind::Report {
            return Err(PacketError::Mismatch);
        }
        let loss_permille = u16::from_be_bytes([a, b]);
        let video_loss_permille = u16::from_be_bytes([e, f]);
        if loss_permille > 1000 || video_loss_permille > 1000 {
            return Err(PacketError::Mismatch);
        }
        Ok(Report {
            loss_permille,
            target_ms: u16::from_be_bytes([c, d]),
            video_loss_permille,
        })
    }
}

/// A request for a key frame on `layer`, as the `seq`-th.
pub fn key_request(layer: u8, seq: u32) -> Packet {
    Packet {
        kind: Kind::KeyRequest,
        flags: 0,
        layer,
        seq,
        ts: 0,
        payload: vec![0],
    }
}

fn check_flags(kind: Kind, flags: u8) -> Result<(), PacketError> {
    if flags & !FLAGS_KNOWN != 0 {
        return Err(PacketError::Flags(flags));
    }
    let video_only = FLAG_END | FLAG_KEY;
    match kind {
        Kind::Report | Kind::KeyRequest if flags != 0 => Err(PacketError::Mismatch),
        Kind::Audio if flags & video_only != 0 => Err(PacketError::Mismatch),
        Kind::Video if flags & FLAG_SILENT != 0 => Err(PacketError::Mismatch),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn audio(seq: u32) -> Packet {
        Packet {
            kind: Kind::Audio,
            flags: 0,
            layer: 0,
            seq,
            ts: seq.wrapping_mul(960),
            payload: vec![0xfc, 1, 2, 3],
        }
    }

    #[test]
    fn packets_round_trip() {
        let p = audio(7);
        let bytes = p.encode().unwrap();
        assert_eq!(bytes.len(), HEADER + 4);
        assert_eq!(Packet::decode(&bytes), Ok(p));
        let v = Packet {
            kind: Kind::Video,
            flags: FLAG_KEY | FLAG_END,
            layer: 2,
            seq: u32::MAX,
            ts: 90_000,
            payload: vec![9; MAX_PAYLOAD],
        };
        assert_eq!(Packet::decode(&v.encode().unwrap()), Ok(v));
    }

    #[test]
    fn bad_datagrams_are_refused() {
        let good = audio(1).encode().unwrap();
        assert_eq!(
            Packet::decode(&good[..HEADER]),
            Err(PacketError::Short(HEADER))
        );
        assert_eq!(Packet::decode(&[]), Err(PacketError::Short(0)));
        let mut long = good.clone();
        long.resize(HEADER + MAX_PAYLOAD + 1, 0);
        assert_eq!(Packet::decode(&long), Err(PacketError::Long(long.len())));
        let mut v2 = good.clone();
        v2[0] = 2 << 4;
        assert_eq!(Packet::decode(&v2), Err(PacketError::Version(2)));
        let mut kind = good.clone();
        kind[0] = VERSION << 4 | 7;
        assert_eq!(Packet::decode(&kind), Err(PacketError::Kind(7)));
        let mut flags = good.clone();
        flags[1] = 0x80;
        assert_eq!(Packet::decode(&flags), Err(PacketError::Flags(0x80)));
        let mut reserved = good.clone();
        reserved[3] = 1;
        assert!(Packet::decode(&reserved).is_err());
        let mut keyed_audio = good.clone();
        keyed_audio[1] = FLAG_KEY;
        assert_eq!(Packet::decode(&keyed_audio), Err(PacketError::Mismatch));
        let mut layered_audio = good;
        layered_audio[2] = 1;
        assert_eq!(Packet::decode(&layered_audio), Err(PacketError::Mismatch));
        let mut empty = audio(1);
        empty.payload.clear();
        assert!(empty.encode().is_err());
    }

    #[test]
    fn reports_round_trip_and_only_their_shape_is_taken() {
        let r = Report {
            loss_permille: 125,
            target_ms: 60,
            video_loss_permille: 30,
        };
        let bytes = r.packet(3).encode().unwrap();
        assert_eq!(bytes.len(), HEADER + REPORT_BYTES);
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(Report::from_packet(&p), Ok(r));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Packet::decode(&long), Err(PacketError::Mismatch));
        let mut flagged = bytes.clone();
        flagged[1] = FLAG_SILENT;
        assert_eq!(Packet::decode(&flagged), Err(PacketError::Mismatch));
        let mut layered = bytes.clone();
        layered[2] = 1;
        assert_eq!(Packet::decode(&layered), Err(PacketError::Mismatch));
        let mut over = bytes.clone();
        over[HEADER] = 0xff;
        let p = Packet::decode(&over).unwrap();
        assert_eq!(Report::from_packet(&p), Err(PacketError::Mismatch));
        let mut video_over = bytes;
        video_over[HEADER + 4] = 0xff;
        let p = Packet::decode(&video_over).unwrap();
        assert_eq!(Report::from_packet(&p), Err(PacketError::Mismatch));
        assert!(Report::from_packet(&audio(1)).is_err());
    }

    #[test]
    fn key_requests_have_one_shape() {
        let bytes = key_request(1, 9).encode().unwrap();
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!((p.kind, p.layer, p.seq), (Kind::KeyRequest, 1, 9));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Packet::decode(&long), Err(PacketError::Mismatch));
        let mut nonzero = bytes.clone();
        nonzero[HEADER] = 1;
        assert_eq!(Packet::decode(&nonzero), Err(PacketError::Mismatch));
        let mut flagged = bytes;
        flagged[1] = FLAG_KEY;
        assert_eq!(Packet::decode(&flagged), Err(PacketError::Mismatch));
    }
}
