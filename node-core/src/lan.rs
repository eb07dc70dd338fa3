//! LAN discovery beacons: how a device tells the devices of its own account
//! and of its contacts on the same network where it listens, without
//! telling anyone else who it is.
//!
//! A beacon is a small UDP datagram sent to a multicast group
//! ([`GROUP_V4`]:[`PORT`]): a magic, a version, a **blinded tag** and the
//! QUIC ports the device listens on, sealed under the same secret (the
//! address is the datagram's source).
//! The tag is `BLAKE2b-128` keyed with the sending account's LAN secret,
//! over the epoch number and the device id, so it changes every
//! [`EPOCH_MS`] and only holders of that secret (the account's devices and
//! its contacts, who get it in a grant) can tell which device sent it.
//! A listener computes the tags of every device it may want for the
//! current epoch and its neighbours (clock skew) and looks the tag up.
//!
//! A beacon proves nothing: anyone can replay one, or send one with another
//! source address. It is only a place to try; the QUIC handshake proves
//! which device answered, and the daemon bounds how often a beacon makes
//! it dial.
//!
//! Not here: the socket and the timing (the daemon's `lan.rs`), the secret
//! and its grants (`node::lan`).

use crate::crypto::{self, HashDomain};
use crate::id::DeviceId;

/// The multicast group beacons go to (organisation-local scope).
pub const GROUP_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(239, 255, 75, 75);
/// The UDP port of the group.
pub const PORT: u16 = 47_575;
/// How long one tag lasts.
pub const EPOCH_MS: i64 = 10 * 60 * 1000;
/// Most ports a beacon names.
pub const MAX_PORTS: usize = 4;
/// Length of a tag.
pub const TAG_LEN: usize = 16;
/// Length of the sealed ports.
const SEALED_LEN: usize = 2 * MAX_PORTS;
/// A beacon's length (every beacon is this long).
pub const BEACON_LEN: usize = 4 + 1 + TAG_LEN + SEALED_LEN;

const MAGIC: &[u8; 4] = b"KLAN";
const VERSION: u8 = 1;

/// A device's blinded tag.
pub type Tag = [u8; TAG_LEN];

/// What a beacon carries: a tag, and the ports sealed under the account's
/// secret (a listening port is kept across restarts and networks, so in
/// clear it would name the device as well as its id would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// The sender's tag for the epoch it was sent in.
    pub tag: Tag,
    /// The ports, XORed with a keystream of the secret and the tag; zero
    /// slots unused.
    sealed: [u8; SEALED_LEN],
}

/// The keystream sealing a beacon's ports: the first eight bytes of
/// `BLAKE2b-128(key = secret, "kith/v1/lan-ports" ‖ 0x00 ‖ tag)`.
fn port_stream(secret: &[u8; 32], tag: &Tag) -> [u8; SEALED_LEN] {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(HashDomain::LAN_PORTS.as_str().as_bytes());
    data.push(0);
    data.extend_from_slice(tag);
    // BLAKE2b gives at least 16 bytes; the first eight are the stream.
    let out = crypto::blake2b(&data, Some(secret), 16);
    let mut stream = [0u8; SEALED_LEN];
    stream.copy_from_slice(&out[..SEALED_LEN]);
    stream
}

impl Beacon {
    /// A beacon with `tag` naming `ports` (the first [`MAX_PORTS`] that are
    /// not zero), sealed under `secret`.
    pub fn new(secret: &[u8; 32], tag: Tag, ports: &[u16]) -> Self {
        let mut sealed = [0u8; SEALED_LEN];
        for (slot, port) in ports
            .iter()
            .filter(|p| **p != 0)
            .take(MAX_PORTS)
            .enumerate()
        {
            sealed[2 * slot..2 * slot + 2].copy_from_slice(&port.to_be_bytes());
        }
        for (b, k) in sealed.iter_mut().zip(port_stream(secret, &tag)) {
            *b ^= k;
        }
        Self { tag, sealed }
    }

    /// The ports, opened with the secret of the account whose tag this is
    /// (garbage under any other secret; none if all slots open to zero).
    pub fn ports(&self, secret: &[u8; 32]) -> Vec<u16> {
        let stream = port_stream(secret, &self.tag);
        let open: Vec<u8> = self.sealed.iter().zip(stream).map(|(b, k)| b ^ k).collect();
        open.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .filter(|p| *p != 0)
            .collect()
    }

    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BEACON_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.tag);
        out.extend_from_slice(&self.sealed);
        out
    }

    /// Reads a datagram; `None` for anything that is not a beacon of this
    /// version (every beacon is [`BEACON_LEN`] bytes).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != BEACON_LEN {
            return None;
        }
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (&version, rest) = rest.split_first()?;
        if version != VERSION {
            return None;
        }
        let (tag, sealed) = rest.split_at_checked(TAG_LEN)?;
        Some(Self {
            tag: tag.try_into().ok()?,
            sealed: sealed.try_into().ok()?,
        })
    }
}

/// The epoch `now_ms` falls in.
pub fn epoch(now_ms: i64) -> u64 {
    u64::try_from(now_ms.max(0) / EPOCH_MS).unwrap_or(0)
}

/// The tag of `device` under its account's LAN `secret` in `epoch`.
pub fn tag(secret: &[u8; 32], epoch: u64, device: &DeviceId) -> Tag {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(HashDomain::LAN_TAG.as_str().as_bytes());
    data.push(0);
    data.extend_from_slice(&epoch.to_be_bytes());
    data.extend_from_slice(device.as_bytes());
    let out = crypto::blake2b(&data, Some(secret), TAG_LEN);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&out);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacons_round_trip_seal_their_ports_and_junk_is_refused() {
        let secret = [3; 32];
        let b = Beacon::new(&secret, [9; TAG_LEN], &[4000, 0, 65535]);
        let bytes = b.encode();
        assert_eq!(bytes.len(), BEACON_LEN);
        let read = Beacon::decode(&bytes).unwrap();
        assert_eq!(read, b);
        assert_eq!(read.ports(&secret), vec![4000, 65535]);
        // No port in clear; another secret opens something else.
        assert!(!bytes.windows(2).any(|w| w == 4000u16.to_be_bytes()));
        assert_ne!(read.ports(&[4; 32]), vec![4000, 65535]);
        // The same ports under another tag seal differently.
        let other = Beacon::new(&secret, [8; TAG_LEN], &[4000, 65535]).encode();
        assert_ne!(other[4 + 1 + TAG_LEN..], bytes[4 + 1 + TAG_LEN..]);
        for bad in [
            vec![],
            bytes[..bytes.len() - 1].to_vec(),
            [bytes.clone(), vec![0]].concat(),
            {
                let mut v = bytes.clone();
                v[4] = 2;
                v
            },
            {
                let mut v = bytes.clone();
                v[0] = b'X';
                v
            },
        ] {
            assert_eq!(Beacon::decode(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tags_depend_on_secret_epoch_and_device() {
        let d1 = DeviceId::from_bytes([1; 32]);
        let d2 = DeviceId::from_bytes([2; 32]);
        let s = [7; 32];
        let t = tag(&s, 5, &d1);
        assert_eq!(t, tag(&s, 5, &d1));
        assert_ne!(t, tag(&s, 6, &d1));
        assert_ne!(t, tag(&s, 5, &d2));
        assert_ne!(t, tag(&[8; 32], 5, &d1));
        // The tag shows no byte run of the device id.
        assert!(
            !t.windows(4)
                .any(|w| d1.as_bytes().windows(4).any(|x| x == w))
        );
        assert_eq!(epoch(EPOCH_MS * 3 + 1), 3);
        assert_eq!(epoch(-5), 0);
    }
}
