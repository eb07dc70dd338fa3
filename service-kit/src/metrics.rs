//! Prometheus metrics every kith server exports at `GET /metrics`.
//!
//! - `kith_http_requests_total{method, route, status}`: requests answered, by
//!   route pattern (`/mailbox/{id}`, never the concrete path, so ids do not
//!   end up in metrics and the label set stays bounded; `unmatched` for 404s).
//! - `kith_build_info{service, version}`: always 1.
//!
//! A server adds its own metrics to a [`Registry`] it passes to
//! [`Metrics::with_registry`]. Not here: anything about a server's domain.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A counter per outcome (`name_total{outcome="…"}`), the shape every
/// server's domain counters take. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Outcomes(Family<OutcomeLabel, Counter>);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

impl Outcomes {
    /// Registers the family as `name` (Prometheus adds `_total`).
    pub fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(name, help, self.0.clone());
    }

    /// Counts one `outcome`.
    pub fn inc(&self, outcome: &'static str) {
        self.0.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}

/// Which program this is, for `kith_build_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The binary name, e.g. `kith-mailboxd`.
    pub service: &'static str,
    /// Its version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
}

/// The registry and the metrics this crate records. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    service: String,
    version: String,
}

impl Metrics {
    /// Metrics with only the shared ones.
    pub fn new(build: &BuildInfo) -> Self {
        Self::with_registry(build, Registry::default())
    }

    /// Adds the shared metrics to `registry`, which may already hold the
    /// server's own.
    pub fn with_registry(build: &BuildInfo, mut registry: Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kith_http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        registry.register(
            "kith_build_info",
            "Build of this server; always 1",
            build_gauge(build),
        );
        Self {
            registry: Arc::new(registry),
            requests,
        }
    }

    /// Counts one answered request.
    pub fn record_request(&self, method: &str, route: &str, status: u16) {
        let labels = RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status: status.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// Everything in the registry, in the Prometheus / OpenMetrics text format.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// `kith_build_info{service, version} 1`.
fn build_gauge(build: &BuildInfo) -> Family<BuildLabels, Gauge> {
    let family = Family::<BuildLabels, Gauge>::default();
    let labels = BuildLabels {
        service: build.service.to_owned(),
        version: build.version.to_owned(),
    };
    family.get_or_create(&labels).set(1);
    family
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILD: BuildInfo = BuildInfo {
        service: "kith-test",
        version: "9.9.9",
    };

    #[test]
    fn build_info_is_one() {
        let text = Metrics::new(&BUILD).encode().expect("encodes");
        assert!(
            text.contains(r#"kith_build_info{service="kith-test",version="9.9.9"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let metrics = Metrics::new(&BUILD);
        metrics.record_request("GET", "/healthz", 200);
        metrics.record_request("GET", "/healthz", 200);
        let text = metrics.encode().expect("encodes");
        assert!(
            text.contains(
                r#"kith_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
            ),
            "{text}"
        );
    }
}
