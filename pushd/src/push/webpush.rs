//! WebPush / UnifiedPush (RFC 8030): the payload, a constant
//! `{"kith":"wake"}`, encrypted to the subscription's keys (RFC 8291,
//! aes128gcm) by web-push-native; with a VAPID key (RFC 8292) the request
//! carries `Authorization: vapid t=JWT, k=KEY`, whose `aud` is the
//! endpoint's origin (port included).

use std::path::Path;

use anyhow::Context as _;
use data_encoding::BASE64URL_NOPAD;
use p256::pkcs8::DecodePrivateKey as _;
use web_push_native::{Auth, WebPushBuilder};

use super::{PUSH_TIMEOUT, PushFailure, WAKE_TTL, es256_jwt, failure, now_secs};

/// What every wake-up says, encrypted: nothing but "wake up".
pub const PAYLOAD: &[u8] = br#"{"kith":"wake"}"#;

pub struct WebPush {
    http: reqwest::Client,
    vapid: Option<(p256::ecdsa::SigningKey, String)>,
    subject: String,
}

impl WebPush {
    pub fn new(vapid_key: Option<&Path>, subject: &str, public_only: bool) -> anyhow::Result<Self> {
        let vapid = match vapid_key {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
                    anyhow::anyhow!("{}: not a P-256 PKCS#8 key: {e}", path.display())
                })?;
                let public = key.verifying_key().to_encoded_point(false);
                Some((key, BASE64URL_NOPAD.encode(public.as_bytes())))
            }
            None => None,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if public_only {
            builder = builder.dns_resolver(super::PublicOnly);
        }
        let http = builder.build().context("building the HTTP client")?;
        Ok(Self {
            http,
            vapid,
            subject: subject.to_owned(),
        })
    }

    pub async fn wake(&self, endpoint: &str, p256dh: &str, auth: &str) -> Result<(), PushFailure> {
        let gone = |_| PushFailure::Gone;
        let uri: http::Uri = endpoint.parse().map_err(gone)?;
        let public = subscriber_key(p256dh).ok_or(PushFailure::Gone)?;
        let auth = subscriber_auth(auth).ok_or(PushFailure::Gone)?;
        let mut request = WebPushBuilder::new(uri.clone(), public, auth)
            .with_valid_duration(WAKE_TTL)
            .build(PAYLOAD.to_vec())
            .map_err(|e| PushFailure::Failed(format!("WebPush encryption: {e}")))?;
        request
            .headers_mut()
            .insert("urgency", http::HeaderValue::from_static("high"));
        if let Some((key, public)) = &self.vapid {
            let audience = match (uri.scheme_str(), uri.authority()) {
                (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
                _ => return Err(PushFailure::Gone),
            };
            let jwt = es256_jwt(
                key,
                &serde_json::json!({ "typ": "JWT", "alg": "ES256" }),
                &serde_json::json!({
                    "aud": audience,
                    "exp": now_secs() + 12 * 3600,
                    "sub": self.subject,
                }),
            );
            let value = http::HeaderValue::from_str(&format!("vapid t={jwt}, k={public}"))
                .map_err(|e| PushFailure::Failed(format!("VAPID header: {e}")))?;
            request.headers_mut().insert("authorization", value);
        }
        let request = reqwest::Request::try_from(request)
            .map_err(|e| PushFailure::Failed(format!("WebPush request: {e}")))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| super::unreachable("the push service", e))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            404 | 410 => Err(PushFailure::Gone),
            _ => Err(PushFailure::Failed(format!(
                "push service: {}",
                failure(response).await
            ))),
        }
    }
}

/// A subscription's `p256dh`: a P-256 public key in base64url (padding
/// allowed). Checked at registration, read again for each push.
pub fn subscriber_key(p256dh: &str) -> Option<p256::PublicKey> {
    decode_b64url(p256dh).and_then(|b| p256::PublicKey::from_sec1_bytes(&b).ok())
}

/// A subscription's `auth`: 16 bytes in base64url (padding allowed).
pub fn subscriber_auth(auth: &str) -> Option<Auth> {
    decode_b64url(auth)
        .filter(|b| b.len() == 16)
        .map(|b| Auth::clone_from_slice(&b))
}

fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    BASE64URL_NOPAD
        .decode(text.trim_end_matches('=').as_bytes())
        .ok()
}
