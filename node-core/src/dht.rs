//! The opt-in address record a device publishes in the Mainline DHT
//! (`kith lookup dht on`), and reads for contacts' and own devices when
//! every address it knows fails.
//!
//! The record is a BEP 44 mutable item: signed by the device key (the
//! DHT's key is the device id), salt [`SALT`], sequence number the
//! publication time in seconds, and as value the encoding below. The DHT
//! nodes check the signature; so does the reader (the `mainline` crate),
//! and it takes a record only for the device whose key signed it. What it
//! says is a dial hint like any other: the QUIC handshake proves the
//! device.
//!
//! Value: `u8 version = 1 ‖ u8 n (1..=MAX_ADDRS) ‖ n × (u8 family (4 or 6)
//! ‖ 4 or 16 address bytes ‖ u16 port)`, nothing after.
//!
//! Not here: the DHT client and its timing (the daemon's `dht.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The BEP 44 salt of kith address records.
pub const SALT: &[u8] = b"kith/addrs/1";
/// Most addresses a record names.
pub const MAX_ADDRS: usize = 8;
/// Longest record value.
pub const MAX_RECORD: usize = 2 + MAX_ADDRS * (1 + 16 + 2);

const VERSION: u8 = 1;

/// Encodes a record naming `addrs` (the first [`MAX_ADDRS`]); `None` if
/// there is nothing to name.
pub fn encode_record(addrs: &[SocketAddr]) -> Option<Vec<u8>> {
    let addrs: Vec<&SocketAddr> = addrs
        .iter()
        .filter(|a| a.port() != 0)
        .take(MAX_ADDRS)
        .collect();
    if addrs.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(MAX_RECORD);
    out.push(VERSION);
    out.push(addrs.len() as u8);
    for a in addrs {
        match a.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&a.port().to_be_bytes());
    }
    Some(out)
}

/// The record a device publishes over its own when lookup is turned off:
/// it names nothing (readers take it as no record).
pub fn encode_withdrawal() -> Vec<u8> {
    vec![VERSION, 0]
}

/// Reads a record value; `None` for anything malformed (or a withdrawal). Unspecified,
/// multicast and port-0 addresses are dropped (they cannot be dialled).
pub fn decode_record(bytes: &[u8]) -> Option<Vec<SocketAddr>> {
    if bytes.len() > MAX_RECORD {
        return None;
    }
    let (&version, rest) = bytes.split_first()?;
    if version != VERSION {
        return None;
    }
    let (&n, mut rest) = rest.split_first()?;
    let n = usize::from(n);
    if n == 0 || n > MAX_ADDRS {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (&family, after) = rest.split_first()?;
        let (ip, after) = match family {
            4 => {
                let (b, after) = after.split_at_checked(4)?;
                let b: [u8; 4] = b.try_into().ok()?;
                (IpAddr::V4(Ipv4Addr::from(b)), after)
            }
            6 => {
                let (b, after) = after.split_at_checked(16)?;
                let b: [u8; 16] = b.try_into().ok()?;
                (IpAddr::V6(Ipv6Addr::from(b)), after)
            }
            _ => return None,
        };
        let (p, after) = after.split_at_checked(2)?;
        let port = u16::from_be_bytes([p[0], p[1]]);
        rest = after;
        if port != 0 && !ip.is_unspecified() && !ip.is_multicast() {
            out.push(SocketAddr::new(ip, port));
        }
    }
    rest.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_junk_is_refused() {
        let addrs: Vec<SocketAddr> = vec![
            "203.0.113.5:4433".parse().unwrap(),
            "[2001:db8::1]:4433".parse().unwrap(),
        ];
        let bytes = encode_record(&addrs).unwrap();
        assert!(bytes.len() <= MAX_RECORD);
        assert_eq!(decode_record(&bytes), Some(addrs));
        assert_eq!(encode_record(&[]), None);
        assert_eq!(decode_record(&encode_withdrawal()), None);
        let many: Vec<SocketAddr> = (1..=20)
            .map(|p| SocketAddr::from(([10, 0, 0, 1], p)))
            .collect();
        assert_eq!(
            decode_record(&encode_record(&many).unwrap()).unwrap().len(),
            MAX_ADDRS
        );
        for bad in [
            vec![],
            vec![2, 1, 4, 1, 2, 3, 4, 0, 1],
            vec![1, 0],
            vec![1, 1, 5, 1, 2, 3, 4, 0, 1],
            vec![1, 1, 4, 1, 2, 3, 4, 0],
            vec![1, 1, 4, 1, 2, 3, 4, 0, 1, 9],
            vec![1, 9],
        ] {
            assert_eq!(decode_record(&bad), None, "{bad:?}");
        }
        // Addresses that cannot be dialled are dropped, the rest kept.
        let odd = vec![1, 2, 4, 0, 0, 0, 0, 0, 1, 4, 10, 0, 0, 1, 0, 0];
        assert_eq!(decode_record(&odd), Some(vec![]));
    }
}
