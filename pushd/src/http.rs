//! Every route of `kith-pushd`, in one place. Handlers only translate
//! between HTTP and [`Service`]: bodies are decoded by [`request`], what
//! is allowed is decided by the service.
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
use node_core::push::MAX_BODY;
use service_kit::rate::{RateLimiter, rate_limit};
use service_kit::{ApiError, Health, Metrics};

use crate::request;
use crate::service::{PushServiceError, Service};

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

/// A request signed by a device: the signer and the raw body, which the
/// handler decodes ([`request`]) only after the signature over the method,
/// path and raw body checked out.
struct Signed {
    device: DeviceId,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Signed {
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
        let body = Bytes::from_request(Request::from_parts(parts, raw), state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        let device = request::signer(&header, method.as_str(), &path, &body)?;
        Ok(Self { device, body })
    }
}

async fn register(
    State(service): State<Service>,
    Signed { device, body }: Signed,
) -> Result<Response, ApiError> {
    let request = request::register(&body)?;
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

async fn unregister(
    State(service): State<Service>,
    Signed { device, body }: Signed,
) -> Result<StatusCode, ApiError> {
    let issued = request::unregister(&body)?;
    service
        .unregister(device, issued, service_kit::now_ms())
        .await
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn wake(
    State(service): State<Service>,
    Signed {
        device: sender,
        body,
    }: Signed,
) -> Result<Response, ApiError> {
    let wake = request::wake(&body)?;
    service
        .wake(
            sender,
            wake.handle,
            wake.issued,
            wake.nonce,
            service_kit::now_ms(),
        )
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
