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

/// Whether an address is on the public internet: not loopback, private,
/// link-local, shared (CGNAT), documentation, multicast or unspecified.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && v6.segments()[1] == 0x0db8)
            }
        },
    }
}

/// A DNS resolver for WebPush endpoints that only returns public
/// addresses, so a registered endpoint cannot make the relay post to the
/// operator's own network.
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
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
