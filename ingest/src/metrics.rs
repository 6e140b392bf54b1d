//! The ingest's Prometheus metrics, served as text on `GET /metrics`.

use clerk_sync_runtime::broker_link::BrokerLink;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub requests_in_flight: Gauge,
    pub requests_shed: Family<ReasonLabels, Counter>,
    pub verification_failures: Family<ReasonLabels, Counter>,
    pub published: Family<QueueLabels, Counter>,
    pub publish_failures: Family<ReasonLabels, Counter>,
    pub confirm_seconds: Histogram,
    pub broker: BrokerLink,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("clerk_sync_ingest");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let requests_in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled",
            requests_in_flight.clone(),
        );
        let requests_shed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_requests_shed",
            "Webhooks answered 503 at once, body unread, because no slot was free, by limit",
            requests_shed.clone(),
        );
        let verification_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "verification_failures",
            "Webhooks refused before publishing, by reason",
            verification_failures.clone(),
        );
        let published = Family::<QueueLabels, Counter>::default();
        registry.register(
            "published",
            "Events confirmed by RabbitMQ, by shard queue",
            published.clone(),
        );
        let publish_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "publish_failures",
            "Events answered 503 because publishing failed, by reason",
            publish_failures.clone(),
        );
        // 0.5 ms to about 8 s.
        let confirm_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 15),
        );
        registry.register(
            "publish_confirm_seconds",
            "Time from publishing an event to RabbitMQ's confirm",
            confirm_seconds.clone(),
        );
        let broker = BrokerLink::new(&mut registry);
        Self {
            registry,
            requests,
            requests_in_flight,
            requests_shed,
            verification_failures,
            published,
            publish_failures,
            confirm_seconds,
            broker,
        }
    }

    /// Every metric, for `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
