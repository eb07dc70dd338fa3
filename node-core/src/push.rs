//! The push relay protocol, shared by `kith-pushd` and the client.
//!
//! A phone's device registers its platform token (APNs device token, FCM
//! registration token, or a UnifiedPush/WebPush subscription) with a relay
//! and gets back an opaque [`PushHandle`], which it gives its contacts. A
//! contact's device that cannot reach it posts a wake-up naming the handle;
//! the relay sends the platform a push with no content, and the phone's app
//! starts and connects.
//!
//! Every request is signed by the device making it ([`sign_request`],
//! [`verify_request`]: Ed25519 under [`SignDomain::WAKEUP`] over the method,
//! the path and the body), and every body carries its `issued` time, which
//! the relay requires to be within [`MAX_SKEW_MS`] of its clock. Wake-ups
//! also carry a random nonce the relay remembers for that long, so a
//! captured wake-up cannot be replayed.
//!
//! The handle is 32 random bytes chosen by the relay: it says nothing about
//! the device or the platform token.
//!
//! Not here: HTTP, storage, the platforms' protocols.

use std::fmt;
use std::str::FromStr;

use crate::crypto::{SignDomain, Signature, SigningKey};
use crate::id::DeviceId;
use crate::wire;

/// The HTTP authorisation scheme of signed requests.
pub const AUTH_SCHEME: &str = "Kith-Device";
/// How far a request's `issued` may be from the relay's clock (5 minutes).
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;
/// Largest request body the relay reads.
pub const MAX_BODY: usize = 256 * 1024;

/// Why a signed request or handle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// Not of the form the protocol uses.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not verify.
    #[error("the request's signature does not verify")]
    BadSignature,
}

/// The `Authorization` header value for a request by this device.
pub fn sign_request(key: &SigningKey, method: &str, path: &str, body: &[u8]) -> String {
    let sig = key.sign(SignDomain::WAKEUP, &request_message(method, path, body));
    format!(
        "{AUTH_SCHEME} {}.{}",
        wire::to_base32(key.verifying_key().as_bytes()),
        wire::to_base32(sig.as_bytes())
    )
}

/// Checks a request's `Authorization` header; returns the device that
/// signed it.
pub fn verify_request(
    header: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<DeviceId, PushError> {
    const FORM: PushError = PushError::Malformed("expected `Kith-Device DEVICE.SIGNATURE`");
    let rest = header
        .strip_prefix(AUTH_SCHEME)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(FORM)?;
    let (device, sig) = rest.split_once('.').ok_or(FORM)?;
    let device: [u8; 32] = fixed(device).ok_or(FORM)?;
    let sig: [u8; 64] = fixed(sig).ok_or(FORM)?;
    let device = DeviceId::from_bytes(device);
    device
        .verifying_key()
        .verify(
            SignDomain::WAKEUP,
            &request_message(method, path, body),
            &Signature::from_bytes(sig),
        )
        .map_err(|_| PushError::BadSignature)?;
    Ok(device)
}

fn request_message(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
    msg.extend_from_slice(method.as_bytes());
    msg.push(0);
    msg.extend_from_slice(path.as_bytes());
    msg.push(0);
    msg.extend_from_slice(body);
    msg
}

fn fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    wire::from_base32(text, "field")
        .ok()
        .and_then(|v| v.try_into().ok())
}

/// The opaque name of a registration, given to contacts.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PushHandle([u8; 32]);

impl PushHandle {
    /// A fresh random handle.
    pub fn generate() -> Self {
        Self(crate::crypto::random_bytes())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for PushHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&wire::to_base32(&self.0))
    }
}

impl fmt::Debug for PushHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whoever holds it may ask for wake-ups: keep it out of logs.
        f.write_str("PushHandle(..)")
    }
}

impl FromStr for PushHandle {
    type Err = PushError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fixed(s)
            .map(Self)
            .ok_or(PushError::Malformed("a push handle is 32 bytes in base32"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify_only_unchanged() {
        let key = SigningKey::generate();
        let header = sign_request(&key, "POST", "/v1/wake", b"{}");
        let device = verify_request(&header, "POST", "/v1/wake", b"{}").unwrap();
        assert_eq!(device, DeviceId::from(key.verifying_key()));
        for (method, path, body) in [
            ("PUT", "/v1/wake", &b"{}"[..]),
            ("POST", "/v1/registrations", b"{}"),
            ("POST", "/v1/wake", b"{ }"),
        ] {
            assert_eq!(
                verify_request(&header, method, path, body),
                Err(PushError::BadSignature)
            );
        }
        assert!(verify_request("Bearer x", "POST", "/v1/wake", b"{}").is_err());
        assert!(verify_request("Kith-Device abc.def", "POST", "/v1/wake", b"{}").is_err());
    }

    #[test]
    fn handles_round_trip_and_hide_in_debug() {
        let h = PushHandle::generate();
        assert_eq!(h.to_string().parse::<PushHandle>().unwrap(), h);
        assert_eq!(format!("{h:?}"), "PushHandle(..)");
        assert!("short".parse::<PushHandle>().is_err());
    }
}
