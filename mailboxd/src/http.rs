//! Every route of `kith-mailboxd`, in one place. Handlers only translate
//! between HTTP and [`Service`]: path parameters, bodies and headers are
//! decoded by [`request`], what is allowed is decided by the service.
//!
//! | route | who | does |
//! |---|---|---|
//! | `POST /v1/mailboxes/{id}/challenge` | anyone | a one-time challenge, 60 s |
//! | `PUT /v1/mailboxes/{id}` | key holder | create (201) or confirm (200) |
//! | `DELETE /v1/mailboxes/{id}` | key holder | remove with everything in it |
//! | `POST /v1/mailboxes/{id}/tokens` | key holder | `{"add": [hash], "remove": [hash], "replace": bool}` |
//! | `PUT /v1/mailboxes/{id}/prekeys/{slot}` | key holder | one device's prekey bundle |
//! | `GET /v1/mailboxes/{id}/prekeys` | token holder | `{"prekeys": [base64]}` |
//! | `POST /v1/mailboxes/{id}/deposits` | token holder | store a sealed deposit (201) |
//! | `GET /v1/mailboxes/{id}/deposits[?after=CURSOR]` | key holder | `{"deposits": […], "more": bool, "cursor"}` |
//! | `POST /v1/mailboxes/{id}/deposits/delete` | key holder | `{"ids": [id]}` |
//!
//! Ids, hashes and challenges are base32; bodies and bundles base64. Every
//! `/v1` request counts against its client address's rate limit.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware;
use axum::routing::{get, post, put};
use axum::{Json, extract::rejection::BytesRejection};
use data_encoding::BASE64;
use node_core::mailbox::MailboxId;
use node_core::wire;
use serde::{Deserialize, Serialize};
use service_kit::rate::{RateLimiter, rate_limit};
use service_kit::{ApiError, Health, Metrics};

use crate::request;
use crate::service::{OwnerRequest, Service};

/// Largest body of anything but a deposit.
const SMALL_BODY: usize = 128 * 1024;

#[derive(Clone)]
struct AppState {
    service: Service,
}

/// The full router of the server.
pub fn router(service: Service, metrics: Metrics, health: Health) -> Router {
    let limits = service.limits().clone();
    let limiter = Arc::new(RateLimiter::new(
        f64::from(limits.rate_limit),
        limits.rate_burst,
    ));
    let state = AppState { service };
    let deposits = Router::new()
        .route("/v1/mailboxes/{id}/deposits", post(deposit).get(fetch))
        // Read the whole deposit so an oversized one is answered by the
        // service's own 413 (with a clear message) rather than cut off.
        .layer(DefaultBodyLimit::max(limits.max_deposit_size + 1));
    let v1 = Router::new()
        .route("/v1/mailboxes/{id}/challenge", post(challenge))
        .route("/v1/mailboxes/{id}", put(register).delete(remove))
        .route("/v1/mailboxes/{id}/tokens", post(tokens))
        .route("/v1/mailboxes/{id}/prekeys/{slot}", put(put_prekeys))
        .route("/v1/mailboxes/{id}/prekeys", get(prekeys))
        .route("/v1/mailboxes/{id}/deposits/delete", post(delete))
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .merge(deposits)
        .with_state(state)
        .layer(middleware::from_fn_with_state(limiter, rate_limit));
    service_kit::base_router(v1, metrics, health)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("request body over the limit".into())
        }
        _ => ApiError::BadRequest(rejection.body_text()),
    })
}

/// An owner request as it arrived: the mailbox (and slot) in the path, the
/// method, the path, the `Authorization` header and the whole body — what
/// [`Service`] checks the signature against.
struct Signed {
    id: MailboxId,
    slot: Option<String>,
    method: Method,
    path: String,
    authorization: Option<String>,
    body: Bytes,
}

impl Signed {
    fn request(&self) -> OwnerRequest<'_> {
        OwnerRequest {
            mailbox: &self.id,
            authorization: self.authorization.as_deref(),
            method: self.method.as_str(),
            path: &self.path,
            body: &self.body,
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, raw) = request.into_parts();
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(&mut parts, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let id = request::mailbox_id(&param("id").unwrap_or_default())?;
        let authorization = authorization(&parts.headers).map(str::to_owned);
        let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
        let body = body(Bytes::from_request(Request::from_parts(parts, raw), state).await)?;
        Ok(Self {
            id,
            slot: param("slot"),
            method,
            path,
            authorization,
            body,
        })
    }
}

#[derive(Serialize)]
struct ChallengeAnswer {
    challenge: String,
}

async fn challenge(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ChallengeAnswer>, ApiError> {
    let id = request::mailbox_id(&id)?;
    let nonce = state.service.challenge(&id).await?;
    Ok(Json(ChallengeAnswer {
        challenge: wire::to_base32(&nonce),
    }))
}

async fn register(State(state): State<AppState>, call: Signed) -> Result<StatusCode, ApiError> {
    let created = state.service.register(call.request()).await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

async fn remove(State(state): State<AppState>, call: Signed) -> Result<StatusCode, ApiError> {
    state.service.remove(call.request()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct TokenCount {
    tokens: i64,
}

async fn tokens(State(state): State<AppState>, call: Signed) -> Result<Json<TokenCount>, ApiError> {
    let changes = request::token_changes(&call.body)?;
    let tokens = state
        .service
        .update_tokens(
            call.request(),
            &changes.add,
            &changes.remove,
            changes.replace,
        )
        .await?;
    Ok(Json(TokenCount { tokens }))
}

async fn put_prekeys(State(state): State<AppState>, call: Signed) -> Result<StatusCode, ApiError> {
    let slot = call.slot.clone().unwrap_or_default();
    state.service.put_prekeys(call.request(), &slot).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Prekeys {
    prekeys: Vec<String>,
}

async fn prekeys(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Prekeys>, ApiError> {
    let id = request::mailbox_id(&id)?;
    let bundles = state.service.prekeys(&id, authorization(&headers)).await?;
    Ok(Json(Prekeys {
        prekeys: bundles.iter().map(|b| BASE64.encode(b)).collect(),
    }))
}

#[derive(Serialize)]
struct DepositReceipt {
    id: String,
    expires_ms: i64,
}

async fn deposit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<DepositReceipt>), ApiError> {
    let id = request::mailbox_id(&id)?;
    let raw = body(raw).map_err(|err| match err {
        ApiError::PayloadTooLarge(_) => ApiError::PayloadTooLarge(format!(
            "a deposit is at most {} bytes",
            state.service.limits().max_deposit_size
        )),
        other => other,
    })?;
    let ttl = request::ttl(headers.get("kith-ttl"))?;
    let receipt = state
        .service
        .deposit(&id, authorization(&headers), ttl, &raw)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(DepositReceipt {
            id: wire::to_base32(&receipt.id),
            expires_ms: receipt.expires_ms,
        }),
    ))
}

#[derive(Serialize)]
struct FetchedDeposit {
    id: String,
    body: String,
    expires_ms: i64,
}

#[derive(Serialize)]
struct Fetched {
    deposits: Vec<FetchedDeposit>,
    more: bool,
    /// Pass as `?after=` for the next page.
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    after: Option<String>,
}

async fn fetch(
    State(state): State<AppState>,
    Query(page): Query<Page>,
    call: Signed,
) -> Result<Json<Fetched>, ApiError> {
    let after = page.after.as_deref().map(request::cursor).transpose()?;
    let (deposits, more) = state
        .service
        .fetch(
            call.request(),
            after.as_ref().map(|(ms, id)| (*ms, id.as_slice())),
        )
        .await?;
    let cursor = deposits
        .last()
        .map(|d| format!("{}-{}", d.created_ms, wire::to_base32(&d.id)));
    Ok(Json(Fetched {
        deposits: deposits
            .into_iter()
            .map(|d| FetchedDeposit {
                id: wire::to_base32(&d.id),
                body: BASE64.encode(&d.body),
                expires_ms: d.expires_ms,
            })
            .collect(),
        more,
        cursor,
    }))
}

#[derive(Serialize)]
struct Deleted {
    deleted: u64,
}

async fn delete(State(state): State<AppState>, call: Signed) -> Result<Json<Deleted>, ApiError> {
    let ids = request::deposit_ids(&call.body)?;
    let deleted = state.service.delete(call.request(), &ids).await?;
    Ok(Json(Deleted { deleted }))
}
