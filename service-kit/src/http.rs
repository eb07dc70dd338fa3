//! The HTTP surface every kith server shares.
//!
//! [`base_router`] wraps a server's own routes with `GET /healthz`,
//! `GET /metrics`, a JSON 404 for unknown paths and request counting.
//! [`ApiError`] is how handlers fail: client mistakes become a 4xx with a
//! precise message, internal errors are logged in full and answered with a
//! generic 500. Every error body is `{"error": "..."}`.
//!
//! Not here: any server's own routes, or domain errors (each server maps its
//! own into [`ApiError`]).

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::metrics::Metrics;

/// Whether the server is ready; `/healthz` answers 503 until it is.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    /// Marks the server ready (store open, routes in place).
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`Health::set_ready`] was called.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Adds `/healthz`, `/metrics`, a JSON 404 fallback and request counting to
/// a server's own `routes`.
pub fn base_router(routes: Router, metrics: Metrics, health: Health) -> Router {
    let scrape = metrics.clone();
    routes
        .route("/healthz", get(move || healthz(health.clone())))
        .route("/metrics", get(move || render_metrics(scrape.clone())))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(metrics, count_requests))
}

async fn healthz(health: Health) -> Response {
    if health.is_ready() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
    }
}

async fn render_metrics(metrics: Metrics) -> Result<Response, ApiError> {
    let text = metrics.encode().map_err(ApiError::internal)?;
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

async fn count_requests(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    metrics.record_request(&method, &route, response.status().as_u16());
    response
}

/// How a request failed, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid proof of who is asking.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the asker may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing.
    #[error("{0}")]
    NotFound(String),
    /// 409: conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// 410: it existed and is gone for good.
    #[error("{0}")]
    Gone(String),
    /// 413: the body is over a limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 429: over a rate or quota.
    #[error("{0}")]
    TooManyRequests(String),
    /// 502: a service behind this one failed.
    #[error("{0}")]
    BadGateway(String),
    /// 500: our fault. Logged in full; the client sees only "internal error".
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

impl ApiError {
    /// Wraps an internal error (I/O, database, bug).
    pub fn internal(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(err) = &self {
            tracing::error!("internal error: {}", chain(err.as_ref()));
        }
        let body = ErrorBody {
            error: self.to_string(),
        };
        (self.status(), axum::Json(body)).into_response()
    }
}

/// `outer: cause: root cause`.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full at /secret/path")]
    struct DiskFull;

    async fn body_of(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn client_errors_keep_their_message() {
        let response = ApiError::BadRequest("bad signature".into()).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(response).await, r#"{"error":"bad signature"}"#);
    }

    #[tokio::test]
    async fn internal_errors_are_answered_generically() {
        let response = ApiError::internal(DiskFull).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_of(response).await, r#"{"error":"internal error"}"#);
    }

    #[test]
    fn every_variant_has_its_status() {
        let cases = [
            (ApiError::Unauthorized(String::new()), 401),
            (ApiError::Forbidden(String::new()), 403),
            (ApiError::NotFound(String::new()), 404),
            (ApiError::Conflict(String::new()), 409),
            (ApiError::PayloadTooLarge(String::new()), 413),
            (ApiError::TooManyRequests(String::new()), 429),
        ];
        for (err, status) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn base_routes_answer_over_http() {
        let build = crate::BuildInfo {
            service: "kith-test",
            version: "0.0.0",
        };
        let boom = get(|| async { Err::<(), _>(ApiError::internal(DiskFull)) });
        let health = Health::default();
        let router = base_router(
            Router::new().route("/boom", boom),
            Metrics::new(&build),
            health.clone(),
        );
        let server = crate::Server::bind(([127, 0, 0, 1], 0).into())
            .await
            .expect("bind");
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving =
            tokio::spawn(
                server.serve(router, crate::HttpSettings::default(), async move {
                    let _ = stopped.await;
                }),
            );
        let fetch = |path: &'static str| async move {
            let response =
                tokio::task::spawn_blocking(move || crate::testing::http_get(addr, path));
            let response = response.await.expect("join").expect("GET");
            (response.status, response.body)
        };

        assert_eq!(fetch("/healthz").await.0, 503);
        health.set_ready();
        assert_eq!(fetch("/healthz").await, (200, "ok".to_owned()));
        assert_eq!(
            fetch("/nope").await,
            (404, r#"{"error":"no such route"}"#.to_owned())
        );
        assert_eq!(
            fetch("/boom").await,
            (500, r#"{"error":"internal error"}"#.to_owned())
        );
        let (status, metrics) = fetch("/metrics").await;
        assert_eq!(status, 200);
        for line in [
            r#"kith_http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
            r#"kith_http_requests_total{method="GET",route="/healthz",status="503"} 1"#,
            r#"kith_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
            r#"kith_http_requests_total{method="GET",route="/boom",status="500"} 1"#,
        ] {
            assert!(metrics.contains(line), "{line} not in\n{metrics}");
        }

        stop.send(()).expect("server still running");
        serving.await.expect("join").expect("clean shutdown");
    }

    #[test]
    fn health_starts_not_ready() {
        let health = Health::default();
        assert!(!health.is_ready());
        health.clone().set_ready();
        assert!(health.is_ready());
    }
}
