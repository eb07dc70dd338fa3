//! Starting `kith-mailboxd`: open the store, bind, announce, purge expired
//! deposits in the background, serve until shutdown.
//!
//! Not here: the routes (`http.rs`) or how settings are read (`config.rs`).

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use service_kit::{BuildInfo, Health, Metrics, Server};

use crate::config::{BINARY, Settings};
use crate::http;
use crate::service::{Service, ServiceMetrics};
use crate::store::Store;

/// How often expired deposits and challenges are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(30);

/// Runs the server until `shutdown` completes.
pub async fn run<F>(settings: Settings, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let common = &settings.common;
    let server = Server::bind(common.listen).await?;
    tracing::info!(data = %common.data.display(), database = %common.database, "starting {BINARY}");
    let store = Store::open(&common.database).await?;
    let mut registry = Registry::default();
    let service_metrics = ServiceMetrics::default();
    service_metrics.register(&mut registry);
    let service = Service::new(store.clone(), settings.limits.clone(), service_metrics);
    let health = Health::default();
    let router = http::router(service.clone(), metrics(registry), health.clone());
    let purger = tokio::spawn(purge_forever(service));
    let relay = crate::relay::start(&settings.relay, &common.data).await?;
    server.announce(common.ready_file.as_deref())?;
    health.set_ready();
    let served = server
        .serve(router, common.http.clone(), shutdown)
        .await
        .context("serving HTTP");
    purger.abort();
    if let Some(relay) = relay
        && let Err(err) = relay.shutdown().await
    {
        tracing::warn!("stopping the relay: {err}");
    }
    store.close().await;
    served
}

async fn purge_forever(service: Service) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        every.tick().await;
        match service.purge().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!("purged {n} expired deposits"),
            Err(err) => tracing::warn!("purging expired deposits failed: {err}"),
        }
    }
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
