//! The gateway's `GET /metrics` (OpenMetrics text, `prometheus-client`):
//!
//! - `ampoule_gateway_requests_total{route, status}` and `ampoule_gateway_request_duration_seconds{route}`;
//! - `ampoule_gateway_upstream_failures_total{kind}`: requests answered 503 because the guest could not be vouched
//!   for (`attestation_failed`) or reached (`guest_unreachable`).
//!
//! Routes are the router's own patterns (unknown paths count as `other`), so label values form a closed set.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

const DURATION_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The gateway's metrics.
pub struct GatewayMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    upstream_failures: Family<KindLabels, Counter>,
}

fn histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ampoule_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        let upstream_failures = Family::<KindLabels, Counter>::default();
        registry.register("requests", "HTTP requests, by route and status", requests.clone());
        registry.register_with_unit("request_duration", "HTTP requests' durations", Unit::Seconds, durations.clone());
        registry.register(
            "upstream_failures",
            "Requests answered 503: the guest could not be vouched for or reached",
            upstream_failures.clone(),
        );
        GatewayMetrics { registry, requests, durations, upstream_failures }
    }
}

impl GatewayMetrics {
    /// Counts one request to `route` answered `status` after `took`.
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        self.requests.get_or_create(&RequestLabels { route: route.into(), status }).inc();
        self.durations.get_or_create(&RouteLabels { route: route.into() }).observe(took.as_secs_f64());
    }

    /// Counts one request that could not be forwarded.
    pub fn upstream_failure(&self, kind: &'static str) {
        self.upstream_failures.get_or_create(&KindLabels { kind }).inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
