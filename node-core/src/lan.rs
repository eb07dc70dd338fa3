//! LAN discovery beacons: how a device tells the devices of its own account
//! and of its contacts on the same network where it listens, without
//! telling anyone else who it is.
//!
//! A beacon is a small UDP datagram sent to a multicast group
//! ([`GROUP_V4`]:[`PORT`]): a magic, a version, a **blinded tag** and the
//! QUIC ports the device listens on (the address is the datagram's source).
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
/// Longest beacon (anything longer is not one).
pub const MAX_BEACON: usize = 4 + 1 + TAG_LEN + 1 + 2 * MAX_PORTS;

const MAGIC: &[u8; 4] = b"KLAN";
const VERSION: u8 = 1;

/// A device's blinded tag.
pub type Tag = [u8; TAG_LEN];

/// What a beacon says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// The sender's tag for the epoch it was sent in.
    pub tag: Tag,
    /// The UDP ports its QUIC endpoint listens on (at the beacon's source
    /// address), 1 to [`MAX_PORTS`], none zero.
    pub ports: Vec<u16>,
}

impl Beacon {
    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_BEACON);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.tag);
        let ports = &self.ports[..self.ports.len().min(MAX_PORTS)];
        out.push(ports.len() as u8);
        for p in ports {
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// Reads a datagram; `None` for anything that is not a well-formed
    /// beacon of this version.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_BEACON {
            return None;
        }
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (&version, rest) = rest.split_first()?;
        if version != VERSION {
            return None;
        }
        let (tag, rest) = rest.split_at_checked(TAG_LEN)?;
        let (&n, rest) = rest.split_first()?;
        let n = usize::from(n);
        if n == 0 || n > MAX_PORTS || rest.len() != 2 * n {
            return None;
        }
        let ports: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        if ports.contains(&0) {
            return None;
        }
        Some(Self {
            tag: tag.try_into().ok()?,
            ports,
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
    fn beacons_round_trip_and_junk_is_refused() {
        let b = Beacon {
            tag: [9; TAG_LEN],
            ports: vec![4000, 65535],
        };
        let bytes = b.encode();
        assert!(bytes.len() <= MAX_BEACON);
        assert_eq!(Beacon::decode(&bytes), Some(b.clone()));
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
            Beacon {
                tag: [1; TAG_LEN],
                ports: vec![0],
            }
            .encode(),
            {
                let mut v = bytes.clone();
                v[4 + 1 + TAG_LEN] = 0;
                v.truncate(4 + 1 + TAG_LEN + 1);
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
