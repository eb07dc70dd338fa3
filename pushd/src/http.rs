//! Every route of `kith-pushd`, in one place. Handlers only translate
//! between HTTP and [`Service`]; what is allowed is decided there.
//!
//! Every `/v1` request is signed by a device (`Authorization: Kith-Device
//! DEVICE.SIGNATURE` over the method, the path and the body, see
//! `node_core::push`) and counts against its client address's rate limit.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /v1/registrations` | `{"platform":"apns"\|"fcm","token"}` or `{"platform":"webpush","endpoint","p256dh","auth"}`, plus `"senders":[device]`, `"issued"` | 201 `{"handle"}` |
//! | `DELETE /v1/registrations` | `{"issued"}` | 204 |
//! | `POST /v1/wake` | `{"handle","issued","nonce"}` | 202 `{"sent":true}` |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router, middleware};
use node_core::DeviceId;
use node_core::push::{MAX_BODY, PushHandle, verify_request};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use service_kit::rate::{RateLimiter, rate_limit};
use service_kit::{ApiError, Health, Metrics};

use crate::service::{PushServiceError, RegisterRequest, Service};
use crate::store::Target;

/// The full router of the server.
pub fn router(service: Service, limiter: RateLimiter, metrics: Metrics, health: Health) -> Router {
    let v1 = Router::new()
        .route("/v1/registrations", post(register).delete(unregister))
        .route("/v1/wake", post(wake))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service)
        .layer(middleware::from_fn_with_state(
            Arc::new(limiter),
            rate_limit,
        ));
    service_kit::base_router(v1, metrics, health)
}

/// A request signed by a device: the signer and the JSON body, parsed only
/// after the signature over the method, path and raw body checked out.
struct Signed<T> {
    device: DeviceId,
    body: T,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Signed<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, raw) = request.into_parts();
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::Unauthorized("sign the request (Kith-Device DEVICE.SIGNATURE)".into())
            })?;
        let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
        let bytes = Bytes::from_request(Request::from_parts(parts, raw), state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        let device = verify_request(&header, method.as_str(), &path, &bytes)
            .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        let body = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("bad body: {e}")))?;
        Ok(Self { device, body })
    }
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

async fn register(
    State(service): State<Service>,
    Signed { device, body }: Signed<RegisterBody>,
) -> Result<Response, ApiError> {
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
    let request = RegisterRequest {
        target,
        senders,
        issued: body.issued,
    };
    let handle = service
        .register(device, request, service_kit::now_ms())
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "handle": handle.to_string() })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnregisterBody {
    issued: i64,
}

async fn unregister(
    State(service): State<Service>,
    Signed { device, body }: Signed<UnregisterBody>,
) -> Result<StatusCode, ApiError> {
    service
        .unregister(device, body.issued, service_kit::now_ms())
        .await
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WakeBody {
    handle: String,
    issued: i64,
    nonce: String,
}

async fn wake(
    State(service): State<Service>,
    Signed {
        device: sender,
        body,
    }: Signed<WakeBody>,
) -> Result<Response, ApiError> {
    let handle: PushHandle = body
        .handle
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("handle: {e}")))?;
    let nonce: [u8; 16] = node_core::wire::from_base32(&body.nonce, "nonce")
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| ApiError::BadRequest("nonce: 16 bytes in base32".into()))?;
    service
        .wake(sender, handle, body.issued, nonce, service_kit::now_ms())
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "sent": true })),
    )
        .into_response())
}

fn api_error(err: PushServiceError) -> ApiError {
    match err {
        PushServiceError::BadRequest(m) => ApiError::BadRequest(m),
        PushServiceError::Conflict(m) => ApiError::Conflict(m),
        PushServiceError::NotFound(m) => ApiError::NotFound(m),
        PushServiceError::Gone(m) => ApiError::Gone(m),
        PushServiceError::TooMany(m) => ApiError::TooManyRequests(m),
        PushServiceError::Upstream(m) => ApiError::BadGateway(m),
        PushServiceError::Storage(err) => ApiError::internal(err),
    }
}
