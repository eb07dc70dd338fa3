//! Starting `kith-pushd`: bind, announce, serve until shutdown.
//!
//! Not here: the routes (`http.rs`) or how settings are read (`config.rs`).

use std::future::Future;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use service_kit::rate::RateLimiter;
use service_kit::{BuildInfo, Health, Metrics, Server};

use crate::config::{BINARY, Settings};
use crate::http;
use crate::push::Pushers;
use crate::service::{Service, ServiceMetrics};
use crate::store::Store;

/// Runs the server until `shutdown` completes.
pub async fn run<F>(settings: Settings, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let common = &settings.common;
    let server = Server::bind(common.listen).await?;
    tracing::info!(data = %common.data.display(), database = %common.database, "starting {BINARY}");
    let pushers = Pushers::new(&settings.backends)?;
    tracing::info!(?pushers, "push services");
    let store = Store::open(&common.database).await?;
    let mut registry = Registry::default();
    let service_metrics = ServiceMetrics::default();
    service_metrics.register(&mut registry);
    let service = Service::new(
        store.clone(),
        pushers,
        &settings.limits,
        settings.backends.webpush_allow_http,
        service_metrics,
    );
    let limiter = RateLimiter::new(
        f64::from(settings.limits.rate_limit),
        settings.limits.rate_burst,
    );
    let health = Health::default();
    let router = http::router(service, limiter, metrics(registry), health.clone());
    server.announce(common.ready_file.as_deref())?;
    health.set_ready();
    let served = server
        .serve(router, common.http.clone(), shutdown)
        .await
        .context("serving HTTP");
    store.close().await;
    served
}

fn metrics(registry: Registry) -> Metrics {
    Metrics::with_registry(
        &BuildInfo {
            service: BINARY,
            version: env!("CARGO_PKG_VERSION"),
        },
        registry,
    )
}
