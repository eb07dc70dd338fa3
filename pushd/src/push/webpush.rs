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
    public_only: bool,
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
            public_only,
        })
    }

    pub async fn wake(&self, endpoint: &str, p256dh: &str, auth: &str) -> Result<(), PushFailure> {
        // Checked again here: registrations made before a check was
        // tightened, and address hosts never reach the resolver.
        let uri = super::webpush_endpoint(endpoint, !self.public_only).map_err(|err| {
            PushFailure::Failed(format!("refusing the registered endpoint: {err}"))
        })?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The P-256 base point, a valid subscriber key.
    const P256_G: &str = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

    #[tokio::test]
    async fn public_only_never_connects_to_a_private_address() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("bound address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        let webpush = WebPush::new(None, "mailto:ops@kith.test", true).expect("client");
        let key = data_encoding::HEXLOWER
            .decode(P256_G.as_bytes())
            .expect("hex");
        let p256dh = BASE64URL_NOPAD.encode(&key);
        let auth = BASE64URL_NOPAD.encode(&[7u8; 16]);
        for host in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f.1",
            "0177.0.0.1",
            "0x7f000001",
            "[::ffff:127.0.0.1]",
            "localhost",
        ] {
            let endpoint = format!("http://{host}:{port}/x");
            let result = webpush.wake(&endpoint, &p256dh, &auth).await;
            assert!(result.is_err(), "{endpoint}");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            0,
            "a connection reached loopback"
        );
    }
}
