//! What `kith-pushd` allows, free of HTTP types.
//!
//! - **Register** (signed by the device): a platform token or WebPush
//!   subscription, the devices it wants wake-ups from (its contacts'
//!   devices), and `issued`. Newer registrations of a device replace older
//!   ones and keep its handle; an older or replayed one is refused.
//! - **Wake** (signed by the sending device): `{"handle","issued","nonce"}`.
//!   Fresh (`issued` within `MAX_SKEW_MS`), never seen before (nonces are
//!   remembered for that long), within the sender's rate, and within the
//!   target's: senders the target lists share a per-target bucket, every
//!   other sender shares a much smaller one (so strangers can neither drain
//!   a battery nor crowd out contacts). Then one content-free push; if the
//!   platform says the token is gone, the registration is dropped.
//!
//! Rates and nonces are kept per instance (in memory).
//!
//! Not here: HTTP (`http.rs`), SQL (`store.rs`), the platforms (`push/`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use node_core::DeviceId;
use node_core::push::{MAX_SKEW_MS, PushHandle};
use prometheus_client::registry::Registry;
use service_kit::Outcomes;
use service_kit::rate::RateLimiter;

use crate::config::Limits;
use crate::push::{PushFailure, Pushers};
use crate::store::{Registration, Store, Target};

/// Longest token, endpoint or key accepted.
const MAX_FIELD: usize = 4096;
/// Most senders a registration lists.
pub const MAX_SENDERS: usize = 4096;
/// Most nonces remembered per generation (two generations are kept; when
/// the newer one fills up early, the older is dropped).
const MAX_NONCES: usize = 500_000;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushServiceError {
    /// Malformed, stale or unsupported.
    #[error("{0}")]
    BadRequest(String),
    /// Seen before, or older than what is held.
    #[error("{0}")]
    Conflict(String),
    /// No such registration.
    #[error("{0}")]
    NotFound(String),
    /// The target's token is gone (the registration was dropped).
    #[error("{0}")]
    Gone(String),
    /// Over a rate.
    #[error("{0}")]
    TooMany(String),
    /// The push service failed.
    #[error("{0}")]
    Upstream(String),
    /// The database failed.
    #[error("storage error: {0}")]
    Storage(#[from] sqlx::Error),
}

/// A registration request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// Where to push.
    pub target: Target,
    /// Devices to accept wake-ups from at the higher rate.
    pub senders: Vec<DeviceId>,
    /// When it was made (ms).
    pub issued: i64,
}

/// Counters.
#[derive(Debug, Clone, Default)]
pub struct ServiceMetrics {
    wakeups: Outcomes,
    registrations: Outcomes,
}

impl ServiceMetrics {
    /// Registers the counters.
    pub fn register(&self, registry: &mut Registry) {
        self.wakeups
            .register(registry, "kith_push_wakeups", "Wake-ups posted, by outcome");
        self.registrations.register(
            registry,
            "kith_push_registrations",
            "Registrations offered, by outcome",
        );
    }
}

/// Nonces seen in the current and the previous window.
#[derive(Debug)]
struct Nonces {
    current: HashSet<(DeviceId, [u8; 16])>,
    previous: HashSet<(DeviceId, [u8; 16])>,
    since: Instant,
}

/// The push service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    store: Store,
    pushers: Arc<Pushers>,
    metrics: ServiceMetrics,
    senders: Arc<RateLimiter<DeviceId>>,
    targets: Arc<RateLimiter<PushHandle>>,
    strangers: Arc<RateLimiter<PushHandle>>,
    nonces: Arc<Mutex<Nonces>>,
    allow_http: bool,
}

impl Service {
    /// A service over `store` sending through `pushers`.
    pub fn new(
        store: Store,
        pushers: Pushers,
        limits: &Limits,
        allow_http: bool,
        metrics: ServiceMetrics,
    ) -> Self {
        let per_minute = |n: u32| f64::from(n) / 60.0;
        Self {
            store,
            pushers: Arc::new(pushers),
            metrics,
            senders: Arc::new(RateLimiter::new(
                per_minute(limits.sender_wakes_per_minute),
                limits.sender_wakes_per_minute,
            )),
            targets: Arc::new(RateLimiter::new(
                per_minute(limits.target_wakes_per_minute),
                limits.target_wakes_per_minute,
            )),
            strangers: Arc::new(RateLimiter::new(
                f64::from(limits.unknown_wakes_per_hour) / 3600.0,
                limits.unknown_wakes_per_hour,
            )),
            nonces: Arc::new(Mutex::new(Nonces {
                current: HashSet::new(),
                previous: HashSet::new(),
                since: Instant::now(),
            })),
            allow_http,
        }
    }

    /// Registers (or updates) `device`; returns its handle.
    pub async fn register(
        &self,
        device: DeviceId,
        request: RegisterRequest,
        now_ms: i64,
    ) -> Result<PushHandle, PushServiceError> {
        let result = self.register_inner(device, request, now_ms).await;
        let outcome = outcome(&result);
        self.metrics.registrations.inc(outcome);
        result
    }

    async fn register_inner(
        &self,
        device: DeviceId,
        request: RegisterRequest,
        now_ms: i64,
    ) -> Result<PushHandle, PushServiceError> {
        fresh(request.issued, now_ms)?;
        let platform = request.target.platform();
        if !self.pushers.supports(platform) {
            return Err(PushServiceError::BadRequest(format!(
                "this relay does not push to {platform}"
            )));
        }
        check_registration(&request, self.allow_http)?;
        let registration = Registration {
            device,
            target: request.target,
            senders: request.senders,
        };
        self.store
            .register(&registration, request.issued, now_ms)
            .await?
            .ok_or_else(|| {
                PushServiceError::Conflict(
                    "a registration as new or newer is held already (replayed?)".into(),
                )
            })
    }

    /// Removes `device`'s registration.
    pub async fn unregister(
        &self,
        device: DeviceId,
        issued: i64,
        now_ms: i64,
    ) -> Result<(), PushServiceError> {
        fresh(issued, now_ms)?;
        match self.store.unregister(&device, issued, now_ms).await? {
            crate::store::Unregistered::Done => Ok(()),
            crate::store::Unregistered::NotRegistered => Err(PushServiceError::NotFound(
                "this device is not registered".into(),
            )),
            crate::store::Unregistered::Stale => Err(PushServiceError::Conflict(
                "a registration as new or newer is held (replayed?)".into(),
            )),
        }
    }

    /// Posts one wake-up from `sender` to `handle`.
    pub async fn wake(
        &self,
        sender: DeviceId,
        handle: PushHandle,
        issued: i64,
        nonce: [u8; 16],
        now_ms: i64,
    ) -> Result<(), PushServiceError> {
        let result = self.wake_inner(sender, handle, issued, nonce, now_ms).await;
        let outcome = outcome(&result);
        self.metrics.wakeups.inc(outcome);
        result
    }

    async fn wake_inner(
        &self,
        sender: DeviceId,
        handle: PushHandle,
        issued: i64,
        nonce: [u8; 16],
        now_ms: i64,
    ) -> Result<(), PushServiceError> {
        fresh(issued, now_ms)?;
        let now = Instant::now();
        if !self.senders.allow_key(sender, now) {
            return Err(PushServiceError::TooMany(
                "this device has posted too many wake-ups: slow down".into(),
            ));
        }
        let registration = self
            .store
            .by_handle(&handle)
            .await?
            .ok_or_else(|| PushServiceError::NotFound("no such push handle".into()))?;
        self.first_use(sender, nonce)?;
        let known = registration.senders.contains(&sender);
        let allowed = if known {
            self.targets.allow_key(handle, now)
        } else {
            self.strangers.allow_key(handle, now)
        };
        if !allowed {
            return Err(PushServiceError::TooMany(if known {
                "that device was woken often enough just now: try later".into()
            } else {
                "that device does not list you, and strangers have used its wake-ups: try later"
                    .into()
            }));
        }
        match self.pushers.wake(&registration.target).await {
            Ok(()) => Ok(()),
            Err(PushFailure::Gone) => {
                self.store.forget(&handle, &registration.target).await?;
                Err(PushServiceError::Gone(
                    "the device's push registration is no longer valid".into(),
                ))
            }
            Err(PushFailure::Unsupported(p)) => Err(PushServiceError::Upstream(format!(
                "this relay no longer pushes to {p}"
            ))),
            Err(PushFailure::Failed(why)) => {
                // The detail stays in the log: it may come from an endpoint
                // the registering device chose.
                tracing::warn!(
                    platform = registration.target.platform(),
                    "push failed: {why}"
                );
                Err(PushServiceError::Upstream(format!(
                    "the {} push service failed; try later",
                    registration.target.platform()
                )))
            }
        }
    }

    /// Remembers a nonce; refuses one seen in this or the previous window.
    /// A window is as long as a request stays fresh (both sides of now), so
    /// a nonce is remembered for at least that long unless the table fills
    /// up first (then the older generation goes early: a replay is still
    /// bounded by the rates).
    fn first_use(&self, sender: DeviceId, nonce: [u8; 16]) -> Result<(), PushServiceError> {
        let window = Duration::from_millis(2 * MAX_SKEW_MS.unsigned_abs());
        let mut nonces = self
            .nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if nonces.since.elapsed() >= window || nonces.current.len() >= MAX_NONCES {
            nonces.previous = std::mem::take(&mut nonces.current);
            nonces.since = Instant::now();
        }
        let key = (sender, nonce);
        if nonces.previous.contains(&key) || !nonces.current.insert(key) {
            return Err(PushServiceError::Conflict(
                "this wake-up was posted before (replayed?)".into(),
            ));
        }
        Ok(())
    }
}

/// What registering checks of a request before it touches the store
/// (after its freshness and whether this relay pushes to its platform):
/// the target's token, or the WebPush endpoint (an `https://` URL on a
/// public address, or any `http://` one when `insecure_allow_local`), key
/// and auth secret; and at most [`MAX_SENDERS`] senders.
pub fn check_registration(
    request: &RegisterRequest,
    insecure_allow_local: bool,
) -> Result<(), PushServiceError> {
    check_target(&request.target, insecure_allow_local)?;
    if request.senders.len() > MAX_SENDERS {
        return Err(PushServiceError::BadRequest(format!(
            "at most {MAX_SENDERS} senders"
        )));
    }
    Ok(())
}

fn check_target(target: &Target, insecure_allow_local: bool) -> Result<(), PushServiceError> {
    let bad = |m: &str| Err(PushServiceError::BadRequest(m.to_owned()));
    match target {
        Target::Apns { token } => {
            if token.is_empty()
                || token.len() > 200
                || !token.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return bad("an APNs device token is hex");
            }
        }
        Target::Fcm { token } => {
            if token.is_empty() || token.len() > MAX_FIELD || token.contains(char::is_whitespace) {
                return bad("an FCM registration token is one word");
            }
        }
        Target::WebPush {
            endpoint,
            p256dh,
            auth,
        } => {
            if endpoint.len() > MAX_FIELD || p256dh.len() > 200 || auth.len() > 100 {
                return bad("WebPush subscription fields are too long");
            }
            if let Err(err) = crate::push::webpush_endpoint(endpoint, insecure_allow_local) {
                return bad(&err.to_string());
            }
            if crate::push::subscriber_key(p256dh).is_none() {
                return bad("p256dh is not a P-256 public key in base64url");
            }
            if crate::push::subscriber_auth(auth).is_none() {
                return bad("auth is not 16 bytes in base64url");
            }
        }
    }
    Ok(())
}

fn fresh(issued: i64, now_ms: i64) -> Result<(), PushServiceError> {
    if issued.abs_diff(now_ms) > MAX_SKEW_MS.unsigned_abs() {
        return Err(PushServiceError::BadRequest(format!(
            "the request was issued {} s from now; requests must be fresh (within {} s)",
            issued.saturating_sub(now_ms) / 1000,
            MAX_SKEW_MS / 1000
        )));
    }
    Ok(())
}

fn outcome<T>(result: &Result<T, PushServiceError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(PushServiceError::BadRequest(_)) => "bad_request",
        Err(PushServiceError::Conflict(_)) => "replayed",
        Err(PushServiceError::NotFound(_)) => "unknown",
        Err(PushServiceError::Gone(_)) => "gone",
        Err(PushServiceError::TooMany(_)) => "rate_limited",
        Err(PushServiceError::Upstream(_)) => "push_failed",
        Err(PushServiceError::Storage(_)) => "error",
    }
}
