//! The worker's Prometheus metrics, served on `worker.listen`.

use clerk_sync_domain::outcome::Outcome;
use clerk_sync_runtime::broker_link::BrokerLink;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event_type: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub events: Family<EventLabels, Counter>,
    pub batch_size: Histogram,
    pub apply_seconds: Histogram,
    pub freshness_seconds: Histogram,
    pub redeliveries: Counter,
    pub dead_letters: Counter,
    pub dead_letter_failures: Counter,
    pub batch_panics: Counter,
    pub database_connected: Gauge,
    pub broker: BrokerLink,
    /// Why start-up is waiting (a service unreachable), while it is.
    starting: Mutex<Option<String>>,
    /// See [`crate::serving::shard_heads`].
    pub shard_oldest_message_age_seconds: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    pub shard_messages_held: Family<QueueLabels, Gauge>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("clerk_sync_worker");
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Events logged, by type and outcome",
            events.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "batch_size",
            "Messages per database transaction",
            batch_size.clone(),
        );
        let apply_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "apply_seconds",
            "Time to apply and commit one batch",
            apply_seconds.clone(),
        );
        let freshness_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 20));
        registry.register(
            "freshness_seconds",
            "From Clerk's event time to the commit that applied it",
            freshness_seconds.clone(),
        );
        let redeliveries = Counter::default();
        registry.register(
            "redeliveries",
            "Messages RabbitMQ delivered more than once",
            redeliveries.clone(),
        );
        let dead_letters = Counter::default();
        registry.register(
            "dead_letters",
            "Messages sent to the dead-letter queue",
            dead_letters.clone(),
        );
        let dead_letter_failures = Counter::default();
        registry.register(
            "dead_letter_failures",
            "Dead-letter copies RabbitMQ did not take (returned: no queue bound; nacked; not confirmed in time): the message is kept and the copy tried again",
            dead_letter_failures.clone(),
        );
        let batch_panics = Counter::default();
        registry.register(
            "batch_panics",
            "Batches whose task panicked (a bug): the runner is replaced and the connection restarted, so the batch comes back",
            batch_panics.clone(),
        );
        let database_connected = Gauge::default();
        registry.register(
            "database_connected",
            "1 while PostgreSQL is reachable",
            database_connected.clone(),
        );
        let broker = BrokerLink::new(&mut registry);
        let shard_oldest_message_age_seconds =
            Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "shard_oldest_message_age_seconds",
            "Age (from the ingest's receipt) of the oldest message this worker holds of a shard queue; 0 when it holds none",
            shard_oldest_message_age_seconds.clone(),
        );
        let shard_messages_held = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "shard_messages_held",
            "Messages of a shard queue this worker has taken and not yet settled",
            shard_messages_held.clone(),
        );
        Self {
            registry,
            events,
            batch_size,
            apply_seconds,
            freshness_seconds,
            redeliveries,
            dead_letters,
            dead_letter_failures,
            batch_panics,
            database_connected,
            broker,
            starting: Mutex::new(Some("starting".to_owned())),
            shard_oldest_message_age_seconds,
            shard_messages_held,
        }
    }

    /// Set the shard-head gauges of `queue` from what this worker holds.
    pub fn shard_head(&self, queue: &str, head: &crate::serving::shard_heads::Head, now_ms: i64) {
        let labels = QueueLabels {
            queue: queue.to_owned(),
        };
        let age_ms = head.oldest_ms.map_or(0, |oldest| (now_ms - oldest).max(0));
        self.shard_oldest_message_age_seconds
            .get_or_create(&labels)
            .set(age_ms as f64 / 1000.0);
        self.shard_messages_held
            .get_or_create(&labels)
            .set(i64::from(head.held));
    }

    pub fn event(&self, event_type: &str, outcome: Outcome) {
        self.events
            .get_or_create(&EventLabels {
                event_type: event_type.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn ready(&self) -> bool {
        self.database_connected.get() == 1 && self.broker.is_connected()
    }

    /// Start-up is waiting because of `reason`; None once it is done.
    pub fn starting(&self, reason: Option<String>) {
        *self.starting.lock().unwrap_or_else(PoisonError::into_inner) = reason;
    }

    /// What `/readyz` says beside ready or not: each service, the broker
    /// node in use, and why start-up waits while it does.
    pub fn readiness(&self) -> serde_json::Value {
        let mut details = serde_json::json!({
            "database": self.database_connected.get() == 1,
            "broker": self.broker.is_connected(),
        });
        if let (Some(details), serde_json::Value::Object(broker)) =
            (details.as_object_mut(), self.broker.readiness())
        {
            details.extend(broker);
            let starting = self.starting.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(reason) = starting.as_ref() {
                details.insert("starting".to_owned(), reason.clone().into());
            }
        }
        details
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
