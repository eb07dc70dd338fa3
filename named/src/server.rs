//! Starting `kith-named`: bind, announce, serve until shutdown.
//!
//! Not here: the routes (`http.rs`) or how settings are read (`config.rs`).

use std::future::Future;

use anyhow::Context as _;
use service_kit::{BuildInfo, Health, Metrics, Server};

use crate::config::{BINARY, Settings};
use crate::http;

/// Runs the server until `shutdown` completes.
pub async fn run<F>(settings: Settings, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let common = &settings.common;
    let server = Server::bind(common.listen).await?;
    tracing::info!(
        domain = %settings.domain,
        data = %common.data.display(),
        database = %common.database,
        "starting {BINARY}"
    );
    let health = Health::default();
    let router = http::router(metrics(), health.clone());
    server.announce(common.ready_file.as_deref())?;
    health.set_ready();
    server.serve(router, shutdown).await.context("serving HTTP")
}

fn metrics() -> Metrics {
    Metrics::new(&BuildInfo {
        service: BINARY,
        version: env!("CARGO_PKG_VERSION"),
    })
}
