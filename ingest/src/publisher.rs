//! Publishing one verified webhook, confirmed by RabbitMQ.
//!
//! Each request publishes on its HTTP worker thread's confirm-mode
//! connection and awaits its own confirm, so many requests have publishes
//! in flight at once and none waits for another's confirm; at most
//! `amqp.max_unconfirmed` at once over all threads. Nothing is published
//! while RabbitMQ blocks the connection (a memory or disk alarm): those
//! requests, and those whose publish was waiting when the block came, are
//! answered 503 at once with `Retry-After`.

use crate::amqp::{Outcome, Publish, Value};
use crate::broker::{self, Broker, Shared, ThreadLink};
use crate::metrics::{Metrics, QueueLabels, ReasonLabels};
use crate::verify::VerifiedWebhook;
use clerk_sync_domain::envelope::EnvelopeSummary;
use clerk_sync_domain::message_headers as header;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::traces;
use prometheus_client::metrics::counter::Counter;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Why an event could not be made durable: answered 503, Svix retries.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("RabbitMQ is unavailable; retry later")]
    Unavailable,
    #[error("RabbitMQ did not confirm the event within {0} ms; retry later")]
    ConfirmTimeout(u64),
    #[error("RabbitMQ refused the event (nack); retry later")]
    Nacked,
    #[error("RabbitMQ could not route the event to queue {0}; retry later")]
    Unroutable(String),
    #[error("RabbitMQ connection failed while publishing ({0}); retry later")]
    Broken(String),
    /// Why RabbitMQ blocks publishers (a memory or disk alarm).
    #[error("{0}; retry later")]
    Blocked(String),
    #[error("{0} events already await RabbitMQ's confirm (amqp.max_unconfirmed); retry later")]
    TooManyUnconfirmed(usize),
}

impl PublishError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::ConfirmTimeout(_) => "confirm_timeout",
            Self::Nacked => "nack",
            Self::Unroutable(_) => "unroutable",
            Self::Broken(_) => "connection_failed",
            Self::Blocked(_) => "blocked",
            Self::TooManyUnconfirmed(_) => "unconfirmed_limit",
        }
    }

    /// The `Retry-After` of the answer, in seconds, where waiting helps.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Blocked(_) => Some(BLOCKED_RETRY_AFTER_SECS),
            Self::TooManyUnconfirmed(_) => Some(1),
            _ => None,
        }
    }
}

/// RabbitMQ lifts an alarm once memory or disk is freed: seconds at best.
const BLOCKED_RETRY_AFTER_SECS: u64 = 10;

/// Makes each HTTP worker thread's [`Publisher`]; cheap to clone, and
/// sendable to the threads.
#[derive(Debug, Clone)]
pub struct Publishers {
    shared: Arc<Shared>,
    destinations: Arc<Destinations>,
}

impl Publishers {
    pub fn new(broker: &Broker) -> Self {
        let shared = broker.shared();
        let destinations = Arc::new(Destinations::of(&shared.topology, &shared.metrics));
        Self {
            shared,
            destinations,
        }
    }

    /// The calling thread's publisher, with a connection of its own: call
    /// it on each HTTP worker thread (in the server's app factory).
    pub fn on_this_thread(&self) -> Publisher {
        Publisher {
            link: broker::thread_link(&self.shared),
            shared: self.shared.clone(),
            destinations: self.destinations.clone(),
        }
    }
}

/// Where publishes go, named once: the exchange, and each shard's queue
/// (its routing key) with its count of confirmed publishes.
#[derive(Debug)]
struct Destinations {
    topology: Topology,
    exchange: String,
    queues: Vec<(String, Counter)>,
}

impl Destinations {
    fn of(topology: &Topology, metrics: &Metrics) -> Self {
        let queues = topology
            .shard_queues()
            .map(|queue| {
                let published = metrics
                    .published
                    .get_or_create(&QueueLabels {
                        queue: queue.clone(),
                    })
                    .clone();
                (queue, published)
            })
            .collect();
        Self {
            topology: topology.clone(),
            exchange: topology.exchange(),
            queues,
        }
    }

    /// The shard queue of `routing_key` and its counter.
    fn queue_for(&self, routing_key: &str) -> &(String, Counter) {
        &self.queues[usize::from(self.topology.shard_of(routing_key))]
    }
}

/// Publishes over its thread's connection (not `Send`: it stays there).
#[derive(Debug, Clone)]
pub struct Publisher {
    shared: Arc<Shared>,
    destinations: Arc<Destinations>,
    link: Rc<ThreadLink>,
}

impl Publisher {
    /// True while every thread's connection is usable (`/readyz`).
    pub fn ready(&self) -> bool {
        self.shared.links.ready()
    }

    /// The node in use, or why there is none (`/readyz`).
    pub fn readiness(&self) -> serde_json::Value {
        self.shared.metrics.broker.readiness()
    }

    /// Publish the body as received, persistent and mandatory, to the shard
    /// queue of its routing key; return that queue once RabbitMQ confirmed.
    pub async fn publish(
        &self,
        event: &VerifiedWebhook,
        summary: &EnvelopeSummary,
        received_at_ms: u64,
    ) -> Result<&str, PublishError> {
        let started = Instant::now();
        let svix = event.headers();
        let routing_key = summary.routing_key(&svix.id);
        let (queue, published) = self.destinations.queue_for(routing_key);
        let outcome = self
            .publish_confirmed(event, summary, routing_key, queue, received_at_ms)
            .await;
        let metrics = &self.shared.metrics;
        match &outcome {
            Ok(()) => {
                metrics
                    .confirm_seconds
                    .observe(started.elapsed().as_secs_f64());
                published.inc();
            }
            Err(e) => {
                metrics
                    .publish_failures
                    .get_or_create(&ReasonLabels { reason: e.reason() })
                    .inc();
            }
        }
        outcome.map(|()| queue.as_str())
    }

    async fn publish_confirmed(
        &self,
        event: &VerifiedWebhook,
        summary: &EnvelopeSummary,
        routing_key: &str,
        queue: &str,
        received_at_ms: u64,
    ) -> Result<(), PublishError> {
        let link = self.link.current().ok_or(PublishError::Unavailable)?;
        if let Some(reason) = link.blocked_by() {
            return Err(PublishError::Blocked(reason));
        }
        let _unconfirmed = self
            .shared
            .unconfirmed
            .clone()
            .try_acquire_owned()
            .map_err(|_| PublishError::TooManyUnconfirmed(self.shared.max_unconfirmed()))?;
        let svix = event.headers();
        let trace = traces::context_headers(&tracing::Span::current());
        let mut headers = Vec::with_capacity(6 + trace.len());
        headers.extend([
            (header::SVIX_ID, Value::Text(&svix.id)),
            (header::SVIX_TIMESTAMP, Value::Text(&svix.timestamp)),
            (header::SVIX_SIGNATURE, Value::Text(&svix.signature)),
            (header::ROUTING_KEY, Value::Text(routing_key)),
            (header::RECEIVED_AT_MS, Value::Timestamp(received_at_ms)),
        ]);
        if let Some(event_type) = &summary.event_type {
            headers.push((header::EVENT_TYPE, Value::Text(event_type)));
        }
        headers.extend(trace.iter().map(|(k, v)| (k.as_str(), Value::Text(v))));
        // The svix-id was checked to fit a short string when it was read.
        let confirm = link
            .connection
            .publish(&Publish {
                exchange: &self.destinations.exchange,
                routing_key: queue,
                message_id: &svix.id,
                timestamp: received_at_ms / 1000,
                headers: &headers,
                body: event.body(),
            })
            .map_err(|gone| PublishError::Broken(gone.0))?;
        let timeout = self.shared.confirm_timeout();
        // RabbitMQ blocks a connection when it publishes during an alarm,
        // and confirms that publish only once it unblocks (as tested): the
        // wait ends at once. The publish may then be queued too, and the
        // worker's de-duplication absorbs Svix's new copy.
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(timeout, confirm).instrument(traces::span(|| tracing::info_span!("confirm"))) => outcome,
            reason = link.until_blocked() => return Err(PublishError::Blocked(reason)),
        };
        match outcome {
            Err(_) => {
                // A blocked broker is not a lost one: keep the connection.
                if let Some(reason) = link.blocked_by() {
                    return Err(PublishError::Blocked(reason));
                }
                self.shared.report_silent(&link.node);
                Err(PublishError::ConfirmTimeout(timeout.as_millis() as u64))
            }
            Ok(Err(_)) => Err(PublishError::Broken(
                link.connection
                    .gone()
                    .unwrap_or_else(|| "the connection ended".to_owned()),
            )),
            Ok(Ok(Outcome::Ack)) => Ok(()),
            Ok(Ok(Outcome::Unroutable)) => Err(PublishError::Unroutable(queue.to_owned())),
            Ok(Ok(Outcome::Nack)) => Err(PublishError::Nacked),
        }
    }
}
