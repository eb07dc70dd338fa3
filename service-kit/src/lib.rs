//! The shared shape of every kith helper server (`kith-mailboxd`, `kith-pushd`,
//! `kith-named`), so the three binaries do not repeat it.
//!
//! In this crate:
//!
//! - [`config`]: reading the optional TOML config file (unknown keys are an
//!   error) and merging it with flags and environment variables, in the order
//!   flag > environment > config file > default; the settings all servers share.
//! - [`database`]: the `--database` value, `sqlite://PATH` or `postgres://…`.
//! - [`server`]: binding, `local_addr`, the ready file, serving until SIGINT,
//!   SIGTERM or a test-provided future, with connection caps.
//! - [`conn`]: one connection's deadlines for headers, bodies and keep-alive
//!   idleness (slow clients are cut off).
//! - [`proxy`]: trusted reverse proxies, and the client address they name.
//! - [`http`]: the base router (`GET /healthz`, `GET /metrics`, a JSON 404) and
//!   [`ApiError`], which turns domain errors into a status code and
//!   `{"error": "..."}`.
//! - [`span`]: lengths of time as operators write them (`90s`, `1h`, `7d`).
//! - [`metrics`]: the Prometheus registry with a request counter by route and
//!   status and a build-info gauge.
//! - [`rate`]: token buckets per client address (and per any other key),
//!   and the middleware limiting requests per client address.
//! - [`logging`]: tracing set-up (`RUST_LOG`, default `info`).
//! - `testing` (feature `testing`): starting a real server binary on port 0 in
//!   integration tests and talking HTTP/1.1 to it.
//!
//! Not in this crate: any server's own API or domain logic, the database
//! connection itself (each server opens its own store from a [`DatabaseUrl`]),
//! TLS (servers sit behind a reverse proxy), and anything of the kith node.

#![warn(missing_docs)]

pub mod config;
pub mod conn;
pub mod database;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod rate;
pub mod server;
pub mod span;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{
    CommonOptions, CommonSettings, ConfigFileError, MissingSetting, SettingError, load_file,
};
pub use database::{DatabaseUrl, DatabaseUrlError};
pub use http::{ApiError, Health, base_router};
pub use logging::init_tracing;
pub use metrics::{BuildInfo, Metrics, Outcomes};
pub use server::{HttpSettings, ServeError, Server, shutdown_signal};
pub use span::{Span, SpanError};

/// Now, in milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
