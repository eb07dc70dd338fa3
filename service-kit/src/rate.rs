//! Rate limiting: a token bucket per key (a client address, a sender, a
//! target), and the axum middleware that limits `/v1` requests per client
//! address ([`ClientAddr`]: the TCP peer, or what a trusted proxy said).
//!
//! In memory, per instance: with several instances behind a load balancer
//! each enforces its own share. Buckets that have refilled are forgotten when
//! the table grows, so memory stays bounded by the number of busy clients.
//!
//! Not here: quotas on what is stored (those are in each server's database).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::ApiError;
use crate::proxy::ClientAddr;

/// Table size above which refilled buckets are dropped.
const PRUNE_ABOVE: usize = 65_536;

/// Token buckets keyed by client address (or any other key `K`).
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter<IpAddr> {
    /// Takes one token for client address `addr` at `now`; `false` if it has
    /// none left. IPv6 clients share a bucket per /64 (one host usually holds
    /// a whole /64, so per-address buckets would be free for it to multiply).
    pub fn allow(&self, addr: IpAddr, now: Instant) -> bool {
        self.allow_key(client_key(addr), now)
    }
}

/// The key one client is counted under: its IPv4 address (also when it
/// arrives IPv4-mapped), or its IPv6 /64.
pub(crate) fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut bytes = v6.octets();
                bytes[8..].fill(0);
                IpAddr::from(bytes)
            }
        },
        v4 => v4,
    }
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// `rate` requests per second on average, `burst` at once.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`; `false` if it has none left.
    pub fn allow_key(&self, key: K, now: Instant) -> bool {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| self.refilled(*b, now) < self.burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens < 1.0 {
            *bucket = Bucket { tokens, at: now };
            return false;
        }
        *bucket = Bucket {
            tokens: tokens - 1.0,
            at: now,
        };
        true
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.rate).min(self.burst)
    }
}

/// Middleware: refuses a request with 429 once its client address has used
/// its burst (`axum::middleware::from_fn_with_state(limiter, rate_limit)`).
/// The address is the request's [`ClientAddr`] (set by [`crate::Server`]),
/// else its `ConnectInfo<SocketAddr>`.
pub async fn rate_limit(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let extensions = request.extensions();
    let addr = extensions
        .get::<ClientAddr>()
        .map(|client| client.0)
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip())
        });
    if let Some(addr) = addr
        && !limiter.allow(addr, Instant::now())
    {
        return ApiError::TooManyRequests("rate limit exceeded: slow down".into()).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refill_per_address() {
        let limiter = RateLimiter::new(10.0, 3);
        let a = IpAddr::from([127, 0, 0, 1]);
        let b = IpAddr::from([127, 0, 0, 2]);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow(a, t0)));
        assert!(!limiter.allow(a, t0));
        assert!(limiter.allow(b, t0), "another address has its own bucket");
        assert!(limiter.allow(a, t0 + Duration::from_millis(110)));
        assert!(!limiter.allow(a, t0 + Duration::from_millis(120)));
    }
}
