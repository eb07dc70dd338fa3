//! Every route of `kith-named`, in one place. Handlers only translate
//! between HTTP and [`Service`]: the body is decoded by
//! [`request`](crate::request), what is allowed is decided by the service.
//!
//! | route | does |
//! |---|---|
//! | `POST /v1/names` | `{"record": base64}`: bind or release a handle (signed record) |
//! | `GET /v1/names/{handle}` | `{"handle", "account", "issued", "record": base64}` or 404 |
//!
//! Every `/v1` request counts against its client address's rate limit.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use data_encoding::BASE64;
use node_core::names::MAX_RECORD;
use serde::Serialize;
use service_kit::rate::{RateLimiter, rate_limit};
use service_kit::{ApiError, Health, Metrics};

use crate::request::Submit;
use crate::service::{Lookup, NameServiceError, Service};

/// The full router of the server.
pub fn router(service: Service, limiter: RateLimiter, metrics: Metrics, health: Health) -> Router {
    let v1 = Router::new()
        .route("/v1/names", post(submit))
        .route("/v1/names/{handle}", get(lookup))
        // base64 grows a record by a third.
        .layer(DefaultBodyLimit::max(MAX_RECORD * 4 / 3 + 1024))
        .with_state(service)
        .layer(middleware::from_fn_with_state(
            Arc::new(limiter),
            rate_limit,
        ));
    service_kit::base_router(v1, metrics, health)
}

#[derive(Serialize)]
struct Answer {
    handle: String,
    account: String,
    issued: i64,
    record: String,
}

impl From<Lookup> for Answer {
    fn from(lookup: Lookup) -> Self {
        Self {
            handle: lookup.handle.to_string(),
            account: lookup.account.to_string(),
            issued: lookup.issued,
            record: BASE64.encode(&lookup.record),
        }
    }
}

async fn submit(
    State(service): State<Service>,
    Json(body): Json<Submit>,
) -> Result<Json<Answer>, ApiError> {
    let bytes = body.record()?;
    let answer = service
        .submit(&bytes, service_kit::now_ms())
        .await
        .map_err(api_error)?;
    Ok(Json(answer.into()))
}

async fn lookup(
    State(service): State<Service>,
    Path(handle): Path<String>,
) -> Result<Json<Answer>, ApiError> {
    let answer = service.lookup(&handle).await.map_err(api_error)?;
    Ok(Json(answer.into()))
}

fn api_error(err: NameServiceError) -> ApiError {
    match err {
        NameServiceError::BadRequest(m) => ApiError::BadRequest(m),
        NameServiceError::Forbidden(m) => ApiError::Forbidden(m),
        NameServiceError::Conflict(m) => ApiError::Conflict(m),
        NameServiceError::NotFound(m) => ApiError::NotFound(m),
        NameServiceError::Storage(err) => ApiError::internal(err),
    }
}
