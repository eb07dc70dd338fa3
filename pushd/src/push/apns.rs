//! APNs: `POST /3/device/{token}` over HTTP/2 with a provider token (an
//! ES256 JWT with `kid` = key id, `iss` = team id, `iat`), refreshed every
//! 40 minutes (Apple refuses tokens older than an hour and throttles
//! refreshes more often than every 20 minutes). The payload is
//! `{"aps":{"content-available":1}}`: a background push, no alert, no content.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use p256::pkcs8::DecodePrivateKey as _;

use super::{PUSH_TIMEOUT, PushFailure, WAKE_TTL, es256_jwt, failure, now_secs};
use crate::config::ApnsSettings;

const TOKEN_FOR: Duration = Duration::from_secs(40 * 60);

pub struct Apns {
    http: reqwest::Client,
    key: p256::ecdsa::SigningKey,
    key_id: String,
    team_id: String,
    topic: String,
    url: String,
    token: Mutex<Option<(String, Instant)>>,
}

impl Apns {
    pub fn new(settings: &ApnsSettings) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(&settings.key_file)
            .with_context(|| format!("reading {}", settings.key_file.display()))?;
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a P-256 PKCS#8 key: {e}",
                settings.key_file.display()
            )
        })?;
        // HTTP/2 only: ALPN h2 on https, prior knowledge on http (tests).
        let http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PUSH_TIMEOUT)
            .build()
            .context("building the HTTP/2 client")?;
        Ok(Self {
            http,
            key,
            key_id: settings.key_id.clone(),
            team_id: settings.team_id.clone(),
            topic: settings.topic.clone(),
            url: settings.url.trim_end_matches('/').to_owned(),
            token: Mutex::new(None),
        })
    }

    fn provider_token(&self) -> String {
        let mut cached = self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((token, made)) = cached.as_ref()
            && made.elapsed() < TOKEN_FOR
        {
            return token.clone();
        }
        let token = es256_jwt(
            &self.key,
            &serde_json::json!({ "alg": "ES256", "kid": self.key_id }),
            &serde_json::json!({ "iss": self.team_id, "iat": now_secs() }),
        );
        *cached = Some((token.clone(), Instant::now()));
        token
    }

    pub async fn wake(&self, device_token: &str) -> Result<(), PushFailure> {
        if device_token.is_empty() || !device_token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PushFailure::Gone);
        }
        let url = format!("{}/3/device/{device_token}", self.url);
        let response = self
            .http
            .post(&url)
            .header("authorization", format!("bearer {}", self.provider_token()))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "background")
            .header("apns-priority", "5")
            .header(
                "apns-expiration",
                (now_secs() + WAKE_TTL.as_secs()).to_string(),
            )
            .header("content-type", "application/json")
            .body(r#"{"aps":{"content-available":1}}"#)
            .send()
            .await
            .map_err(|e| super::unreachable("APNs", e))?;
        match response.status().as_u16() {
            200 => Ok(()),
            // 410 Unregistered; 400 BadDeviceToken.
            410 => Err(PushFailure::Gone),
            400 => {
                let text = failure(response).await;
                if text.contains("BadDeviceToken") {
                    Err(PushFailure::Gone)
                } else {
                    Err(PushFailure::Failed(format!("APNs: {text}")))
                }
            }
            _ => Err(PushFailure::Failed(format!(
                "APNs: {}",
                failure(response).await
            ))),
        }
    }
}
