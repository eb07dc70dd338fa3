//! What clients send to `kith-pushd`, decoded: each route's JSON body into
//! a typed request, and the `Authorization` header into the signing
//! device. Pure functions from bytes to values (or the exact 4xx the
//! client gets), called by the handlers in `http.rs` and by the fuzz
//! target `pushd_request` (`fuzz/`).
//!
//! Not here: whether a decoded request is allowed (`service.rs`, whose
//! [`check_registration`](crate::service::check_registration) is the
//! pure part of registering).

use node_core::DeviceId;
use node_core::push::{PushHandle, verify_request};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use service_kit::ApiError;

use crate::service::RegisterRequest;
use crate::store::Target;

/// A `POST /v1/wake` body, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeRequest {
    /// The device to wake.
    pub handle: PushHandle,
    /// When the sender made the request (ms).
    pub issued: i64,
    /// The sender's one-time nonce.
    pub nonce: [u8; 16],
}

/// The device that signed a request: `header` is its `Authorization`
/// value (`Kith-Device DEVICE.SIGNATURE`, over the method, the path and
/// the raw body).
pub fn signer(header: &str, method: &str, path: &str, body: &[u8]) -> Result<DeviceId, ApiError> {
    verify_request(header, method, path, body).map_err(|e| ApiError::Unauthorized(e.to_string()))
}

/// A `POST /v1/registrations` body: the platform's target, the sender
/// device ids and `issued`.
pub fn register(body: &[u8]) -> Result<RegisterRequest, ApiError> {
    let body: RegisterBody = json(body)?;
    let missing = |what: &str| ApiError::BadRequest(format!("{} needs `{what}`", body.platform));
    let target = match body.platform.as_str() {
        "apns" => Target::Apns {
            token: body.token.clone().ok_or_else(|| missing("token"))?,
        },
        "fcm" => Target::Fcm {
            token: body.token.clone().ok_or_else(|| missing("token"))?,
        },
        "webpush" => Target::WebPush {
            endpoint: body.endpoint.clone().ok_or_else(|| missing("endpoint"))?,
            p256dh: body.p256dh.clone().ok_or_else(|| missing("p256dh"))?,
            auth: body.auth.clone().ok_or_else(|| missing("auth"))?,
        },
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown platform `{other}`: apns, fcm or webpush"
            )));
        }
    };
    let senders = body
        .senders
        .iter()
        .map(|s| {
            s.parse::<DeviceId>()
                .map_err(|_| ApiError::BadRequest(format!("`{s}` is not a device id")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RegisterRequest {
        target,
        senders,
        issued: body.issued,
    })
}

/// A `DELETE /v1/registrations` body: its `issued`.
pub fn unregister(body: &[u8]) -> Result<i64, ApiError> {
    let body: UnregisterBody = json(body)?;
    Ok(body.issued)
}

/// A `POST /v1/wake` body: the handle, `issued` and the 16-byte nonce.
pub fn wake(body: &[u8]) -> Result<WakeRequest, ApiError> {
    let body: WakeBody = json(body)?;
    let handle: PushHandle = body
        .handle
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("handle: {e}")))?;
    let nonce: [u8; 16] = node_core::wire::from_base32(&body.nonce, "nonce")
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| ApiError::BadRequest("nonce: 16 bytes in base32".into()))?;
    Ok(WakeRequest {
        handle,
        issued: body.issued,
        nonce,
    })
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("bad body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    platform: String,
    token: Option<String>,
    endpoint: Option<String>,
    p256dh: Option<String>,
    auth: Option<String>,
    #[serde(default)]
    senders: Vec<String>,
    issued: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnregisterBody {
    issued: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WakeBody {
    handle: String,
    issued: i64,
    nonce: String,
}
