//! The push services: APNs (HTTP/2, ES256 provider token), FCM (HTTP v1
//! with OAuth tokens from a service account) and WebPush/UnifiedPush (RFC
//! 8291 encryption, VAPID). Each sends one content-free wake-up to one
//! registration and says whether the platform token is gone.
//!
//! Not here: who may wake whom (`service.rs`).

mod apns;
mod fcm;
mod webpush;

pub use webpush::{subscriber_auth, subscriber_key};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::Context as _;

use crate::config::Backends;
use crate::store::Target;

/// How long one push request may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a platform keeps an undelivered wake-up (then it is pointless).
pub const WAKE_TTL: Duration = Duration::from_secs(300);

/// Why a push was not sent.
#[derive(Debug, thiserror::Error)]
pub enum PushFailure {
    /// The platform says the token or subscription no longer exists.
    #[error("the platform token is no longer valid")]
    Gone,
    /// This relay does not push to that platform.
    #[error("this relay does not push to {0}")]
    Unsupported(&'static str),
    /// Anything else (network, the platform refused, throttled).
    #[error("{0}")]
    Failed(String),
}

/// The configured push services.
pub struct Pushers {
    apns: Option<apns::Apns>,
    fcm: Option<fcm::Fcm>,
    webpush: webpush::WebPush,
}

impl std::fmt::Debug for Pushers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pushers")
            .field("apns", &self.apns.is_some())
            .field("fcm", &self.fcm.is_some())
            .finish_non_exhaustive()
    }
}

impl Pushers {
    /// Loads keys and sets up clients for what `backends` configures.
    /// WebPush endpoints on non-public addresses are refused unless
    /// `webpush_allow_http` (local testing) is set.
    pub fn new(backends: &Backends) -> anyhow::Result<Self> {
        // reqwest uses the process-wide rustls provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let apns = backends
            .apns
            .as_ref()
            .map(apns::Apns::new)
            .transpose()
            .context("setting up APNs")?;
        let fcm = backends
            .fcm
            .as_ref()
            .map(|(key, url)| fcm::Fcm::new(key, url))
            .transpose()
            .context("setting up FCM")?;
        let webpush = webpush::WebPush::new(
            backends.vapid.as_deref(),
            &backends.vapid_subject,
            !backends.webpush_allow_http,
        )
        .context("setting up WebPush")?;
        Ok(Self { apns, fcm, webpush })
    }

    /// Whether registrations for `platform` are accepted.
    pub fn supports(&self, platform: &str) -> bool {
        match platform {
            "apns" => self.apns.is_some(),
            "fcm" => self.fcm.is_some(),
            "webpush" => true,
            _ => false,
        }
    }

    /// Sends one wake-up.
    pub async fn wake(&self, target: &Target) -> Result<(), PushFailure> {
        match target {
            Target::Apns { token } => match &self.apns {
                Some(apns) => apns.wake(token).await,
                None => Err(PushFailure::Unsupported("apns")),
            },
            Target::Fcm { token } => match &self.fcm {
                Some(fcm) => fcm.wake(token).await,
                None => Err(PushFailure::Unsupported("fcm")),
            },
            Target::WebPush {
                endpoint,
                p256dh,
                auth,
            } => self.webpush.wake(endpoint, p256dh, auth).await,
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An ES256 JWT (RFC 7515 compact form) over `header` and `claims`.
fn es256_jwt(
    key: &p256::ecdsa::SigningKey,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> String {
    use data_encoding::BASE64URL_NOPAD as B64;
    use p256::ecdsa::signature::Signer as _;
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string().as_bytes()),
        B64.encode(claims.to_string().as_bytes())
    );
    let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(&sig.to_bytes()))
}

/// Most of a platform's error answer read (for the log).
const FAILURE_BYTES: usize = 256;

/// A platform's error answer, shortened, for the log only (never for the
/// caller: a WebPush endpoint is whatever a device registered).
async fn failure(mut response: reqwest::Response) -> String {
    let status = response.status();
    let mut body = Vec::new();
    while body.len() < FAILURE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(FAILURE_BYTES);
    format!("{status}: {}", String::from_utf8_lossy(&body))
}

/// A request that did not get an answer, without its URL (which holds an
/// APNs token or a WebPush endpoint, both capabilities).
fn unreachable(service: &str, err: reqwest::Error) -> PushFailure {
    PushFailure::Failed(format!("{service} unreachable: {}", err.without_url()))
}

/// Why a WebPush endpoint is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL, no host, or not https (http only when allowed).
    #[error("the WebPush endpoint must be an https:// URL")]
    NotHttps,
    /// The host is an address that is not on the public internet.
    #[error("the WebPush endpoint must be on a public address")]
    NotPublic,
}

/// Reads a WebPush endpoint as the HTTP client will: `http::Uri` for the
/// request, then WHATWG URL parsing of that (as reqwest does) for the host
/// it connects to. That parsing reads numeric shorthand hosts as IPv4
/// (`2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1` are all 127.0.0.1),
/// and for an address host the client connects without asking the
/// resolver, so such a host must be public here. A name is checked when
/// it is resolved, every time (`PublicOnly`).
///
/// `insecure_allow_local` (local tests only) accepts http:// and private
/// addresses.
pub fn webpush_endpoint(
    text: &str,
    insecure_allow_local: bool,
) -> Result<http::Uri, EndpointError> {
    let uri: http::Uri = text.parse().map_err(|_| EndpointError::NotHttps)?;
    // The URI itself must name its scheme and host: `https:push.example`
    // parses as a bare authority (host `https`) that URL parsing would
    // still read as https://push.example/.
    if uri.scheme().is_none() || uri.authority().is_none() {
        return Err(EndpointError::NotHttps);
    }
    let url = url::Url::parse(&uri.to_string()).map_err(|_| EndpointError::NotHttps)?;
    match url.scheme() {
        "https" => {}
        "http" if insecure_allow_local => {}
        _ => return Err(EndpointError::NotHttps),
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(uri),
        None => return Err(EndpointError::NotHttps),
    };
    if insecure_allow_local || is_public(ip) {
        Ok(uri)
    } else {
        Err(EndpointError::NotPublic)
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local, shared (CGNAT), documentation, benchmarking, reserved,
/// broadcast, multicast or unspecified; an IPv6 address that carries an
/// IPv4 one (mapped, compatible, NAT64, 6to4) only if that one is public,
/// and never unique-local, site-local, Teredo or discard-only.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_documentation()
        || v4.is_unspecified()
        || v4.is_multicast()
        || a == 0
        || a >= 240 // reserved, and 255.255.255.255 broadcast
        || (a == 100 && (64..128).contains(&b)) // shared (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))) // benchmarking
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    !(v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] & 0xfff0) == 0x3ff0 // documentation 3fff::/20
        || (s[0] == 0x2001 && s[1] == 0) // Teredo
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1)) // local NAT64
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4
/// (`2002:AABB:CCDD::`) IPv6 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(last),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// A DNS resolver for WebPush endpoints that only returns public
/// addresses, so a registered endpoint cannot make the relay post to the
/// operator's own network. It runs for every push, and the client connects
/// to exactly the addresses it returns, so a name that later resolves to
/// a private address (DNS rebinding) is not followed there.
#[derive(Debug)]
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            // Reserved, broadcast, IETF and benchmarking IPv4.
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "198.18.0.1",
            // IPv6 forms that carry a private IPv4 address.
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            // Teredo, site-local, discard, documentation, multicast.
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "ff02::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
            "2002:101:101::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
