//! Which address a request comes from, when a reverse proxy may stand in
//! front: [`TrustedProxies`] (the `trusted_proxies` setting) and
//! [`client_addr`], which reads `X-Forwarded-For` or `Forwarded` only when
//! the TCP peer is one of those proxies.
//!
//! Without a trusted proxy the headers are ignored: anyone can send them,
//! so believing them would let a client pick its own rate-limit bucket.
//!
//! Not here: the rate limiter itself ([`crate::rate`]).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use serde::Deserialize;

/// The client's address as the server believes it: the TCP peer, or what
/// a trusted proxy said. Handlers and middleware read it as a request
/// extension (set by [`crate::Server`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// One trusted proxy: an address or a CIDR block (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ProxyNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a trusted-proxy entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or CIDR block (e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8)")]
pub struct ProxyNetError(String);

impl ProxyNet {
    /// Whether `ip` is inside this block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl FromStr for ProxyNet {
    type Err = ProxyNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ProxyNetError(s.to_owned());
        let text = s.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = canonical(addr.parse().map_err(|_| err())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse().ok().filter(|p| *p <= max).ok_or_else(err)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl TryFrom<String> for ProxyNet {
    type Error = ProxyNetError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ProxyNet>);

impl TrustedProxies {
    /// Trusts `nets`.
    pub fn new(nets: Vec<ProxyNet>) -> Self {
        Self(nets)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client address of a request that arrived from TCP `peer` with
/// `headers`. Only when `peer` is a trusted proxy: the right-most
/// `X-Forwarded-For` address (or `Forwarded: for=`) that is not itself a
/// trusted proxy, as entries to its left were written by the client and
/// may be anything. Otherwise, or if the header is missing or unreadable,
/// `peer`.
pub fn client_addr(peer: SocketAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer.ip());
    if !trusted.contains(peer) {
        return peer;
    }
    let forwarded = forwarded_for(headers);
    for entry in forwarded.iter().rev() {
        match entry {
            Some(ip) if trusted.contains(*ip) => continue,
            Some(ip) => return *ip,
            None => return peer,
        }
    }
    peer
}

/// The addresses a request passed through, client first: every
/// `X-Forwarded-For` entry, or without that header every `Forwarded`
/// `for=` entry. `None` for an entry that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let xff = values("x-forwarded-for");
    if !xff.is_empty() {
        return xff
            .iter()
            .flat_map(|v| v.split(','))
            .map(parse_node)
            .collect();
    }
    values("forwarded")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|element| {
            element
                .split(';')
                .find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    key.trim().eq_ignore_ascii_case("for").then_some(value)
                })
                .and_then(parse_node)
        })
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:80`, optionally in double quotes.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        })?;
    Some(canonical(ip))
}

/// IPv4-mapped IPv6 addresses as IPv4 (a dual-stack socket reports them).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a.get(..full) != b.get(..full) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(full), b.get(full)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| s.parse().expect("test net")).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("test header"));
        }
        map
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("test ip"), 4000)
    }

    #[test]
    fn nets_parse_and_match() {
        let net: ProxyNet = "10.0.0.0/8".parse().expect("net");
        assert!(net.contains("10.200.1.1".parse().expect("ip")));
        assert!(!net.contains("11.0.0.1".parse().expect("ip")));
        assert!(net.contains("::ffff:10.0.0.1".parse().expect("ip")));
        let one: ProxyNet = "192.0.2.7".parse().expect("single address");
        assert!(one.contains("192.0.2.7".parse().expect("ip")));
        assert!(!one.contains("192.0.2.8".parse().expect("ip")));
        let v6: ProxyNet = "fd00::/12".parse().expect("v6 net");
        assert!(v6.contains("fd0f::1".parse().expect("ip")));
        assert!(!v6.contains("fd10::1".parse().expect("ip")));
        for bad in ["", "10.0.0.0/33", "::/129", "proxy.example", "10.0.0.0/x"] {
            assert!(bad.parse::<ProxyNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn untrusted_peers_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        let ip = client_addr(peer("203.0.113.9"), &h, &proxies(&["10.0.0.1"]));
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn trusted_proxy_gives_the_rightmost_untrusted_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2")]);
        let ip = client_addr(peer("10.0.0.1"), &h, &trusted);
        assert_eq!(ip, "1.2.3.4".parse::<IpAddr>().expect("ip"));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "1.2.3.5"),
        ]);
        let ip = client_addr(peer("10.0.0.1"), &h, &trusted);
        assert_eq!(ip, "1.2.3.5".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn forwarded_header_is_read_without_x_forwarded_for() {
        let trusted = proxies(&["10.0.0.1"]);
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https",
        )]);
        let ip = client_addr(peer("10.0.0.1"), &h, &trusted);
        assert_eq!(ip, "2001:db8:cafe::17".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn garbage_or_missing_headers_fall_back_to_the_peer() {
        let trusted = proxies(&["10.0.0.1"]);
        for h in [
            headers(&[]),
            headers(&[("x-forwarded-for", "1.2.3.4, unknown")]),
            headers(&[("forwarded", "for=_hidden")]),
            headers(&[("x-forwarded-for", "10.0.0.1")]),
        ] {
            let ip = client_addr(peer("10.0.0.1"), &h, &trusted);
            assert_eq!(ip, "10.0.0.1".parse::<IpAddr>().expect("ip"), "{h:?}");
        }
    }
}
