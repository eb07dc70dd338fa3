//! The push services: APNs (HTTP/2, ES256 provider token), FCM (HTTP v1
//! with OAuth tokens from a service account) and WebPush/UnifiedPush (RFC
//! 8291 encryption, VAPID). Each sends one content-free wake-up to one
//! registration and says whether the platform token is gone.
//!
//! Not here: who may wake whom (`service.rs`).

mod apns;
mod fcm;
mod webpush;

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
        let webpush = webpush::WebPush::new(backends.vapid.as_deref(), &backends.vapid_subject)
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

/// A platform's error answer, shortened for logs and callers.
async fn failure(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    format!("{status}: {body}")
}
