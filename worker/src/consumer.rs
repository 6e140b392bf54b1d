//! Consuming every shard queue: batches of up to `worker.batch_size`
//! messages (or whatever arrived within `worker.linger_ms`) are applied in
//! one transaction and acknowledged only after it committed.
//!
//! Failures:
//! - the database unreachable: the batch is held (not acked, not requeued)
//!   and retried with back-off, so nothing is consumed meanwhile;
//! - a batch that fails otherwise: its messages are applied one by one; one
//!   that still fails is requeued after a back-off and, at its last allowed
//!   delivery, dead-lettered with the reason in `x-clerk-sync-error`;
//! - RabbitMQ lost: reconnect with back-off; unacked messages come back.

use crate::apply::{apply_batch, database_unavailable};
use crate::database;
use crate::incoming::Incoming;
use crate::metrics::Metrics;
use crate::plan::Plan;
use anyhow::Context;
use clerk_sync_domain::runtime::amqp;
use clerk_sync_domain::runtime::settings::Settings;
use clerk_sync_domain::topology::Topology;
use diesel_async::AsyncPgConnection;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Confirmation};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// The header a dead letter carries its reason in.
pub const ERROR_HEADER: &str = "x-clerk-sync-error";

pub struct Consumer {
    settings: Settings,
    topology: Topology,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    database: Option<AsyncPgConnection>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("topology", &self.topology)
            .finish_non_exhaustive()
    }
}

/// A delivery and the shard (so the channel) it came from.
struct Taken {
    shard: usize,
    delivery: Delivery,
}

enum Lost {
    Broker,
    Stopped,
}

impl Consumer {
    pub fn new(settings: Settings, metrics: Arc<Metrics>, stop: CancellationToken) -> Self {
        let topology = Topology::new(settings.amqp.prefix.clone(), settings.amqp.shards);
        Self {
            settings,
            topology,
            metrics,
            stop,
            database: None,
        }
    }

    /// Consume until stopped, reconnecting to RabbitMQ as often as needed.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut delay = FIRST_RETRY;
        loop {
            match self.session().await {
                Ok(Lost::Stopped) => return Ok(()),
                Ok(Lost::Broker) => {
                    self.metrics.broker_connected.set(0);
                    delay = FIRST_RETRY;
                    tracing::warn!("RabbitMQ connection lost; reconnecting");
                }
                Err(e) => {
                    self.metrics.broker_connected.set(0);
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "RabbitMQ unavailable");
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
            tokio::select! {
                () = self.stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One connection's life: consume and apply until it breaks or we stop.
    /// Nothing is consumed until PostgreSQL answers.
    async fn session(&mut self) -> anyhow::Result<Lost> {
        if !self.wait_for_database().await {
            return Ok(Lost::Stopped);
        }
        let connection = amqp::connect(&self.settings.amqp.url, "clerk-sync-worker").await?;
        amqp::declare_topology(
            &connection,
            &self.topology,
            self.settings.amqp.delivery_limit,
        )
        .await?;
        let dead_letters = connection
            .create_channel()
            .await
            .context("cannot open a channel")?;
        dead_letters
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("cannot enable confirms")?;
        // One channel per shard queue: a channel's deliveries arrive in
        // delivery-tag order, so one `multiple` ack per channel covers
        // exactly what a batch took from it. The prefetch (twice a batch in
        // all) is shared out between the shards.
        let shards = usize::from(self.topology.shards());
        let per_shard = (self.settings.worker.batch_size * 2)
            .div_ceil(shards)
            .max(1);
        let prefetch = u16::try_from(per_shard).unwrap_or(u16::MAX);
        let mut consumers = Vec::new();
        for (shard, queue) in self.topology.shard_queues().enumerate() {
            let channel = connection
                .create_channel()
                .await
                .context("cannot open a channel")?;
            channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await
                .context("cannot set the prefetch")?;
            let consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .with_context(|| format!("cannot consume {queue}"))?;
            consumers
                .push(consumer.map(move |delivery| delivery.map(|d| Taken { shard, delivery: d })));
        }
        self.metrics.broker_connected.set(1);
        tracing::info!(queues = consumers.len(), "consuming");
        let mut deliveries = futures::stream::select_all(consumers);
        let batch_size = self.settings.worker.batch_size;
        let linger = Duration::from_millis(self.settings.worker.linger_ms);
        loop {
            let first = tokio::select! {
                () = self.stop.cancelled() => break,
                next = deliveries.next() => next,
            };
            let Some(Ok(first)) = first else {
                return Ok(Lost::Broker);
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + linger;
            while batch.len() < batch_size {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    next = deliveries.next() => match next {
                        Some(Ok(delivery)) => batch.push(delivery),
                        _ => break,
                    },
                }
            }
            if !self.handle(&batch, &dead_letters).await {
                break; // Stopped while the database was down: the batch goes back.
            }
        }
        let _ = connection
            .close(200, "clerk-sync-worker stopping".into())
            .await;
        Ok(Lost::Stopped)
    }

    /// Apply and acknowledge a batch. False if stopped before it could be.
    async fn handle(&mut self, batch: &[Taken], dead_letters: &Channel) -> bool {
        let messages: Vec<Incoming> = batch
            .iter()
            .map(|t| Incoming::from_delivery(&t.delivery))
            .collect();
        self.metrics.batch_size.observe(messages.len() as f64);
        let redelivered = messages.iter().filter(|m| m.delivery_count > 0).count();
        self.metrics.redeliveries.inc_by(redelivered as u64);
        let mut delay = FIRST_RETRY;
        loop {
            match self.apply(&messages).await {
                Ok(plan) => {
                    self.record(&plan);
                    if !acknowledge(batch).await {
                        tracing::warn!(
                            "ack failed; the batch will be redelivered and skipped as duplicates"
                        );
                    }
                    return true;
                }
                Err(ApplyError::DatabaseDown(e)) => {
                    self.metrics.database_connected.set(0);
                    tracing::warn!(error = %e, retry_in = ?delay, "PostgreSQL unavailable; holding the batch");
                    tokio::select! {
                        () = self.stop.cancelled() => return false,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(MAX_RETRY);
                }
                Err(ApplyError::Batch(e)) => {
                    tracing::warn!(error = %e, size = batch.len(), "batch failed; applying its messages one by one");
                    return self.handle_one_by_one(batch, &messages, dead_letters).await;
                }
            }
        }
    }

    async fn handle_one_by_one(
        &mut self,
        batch: &[Taken],
        messages: &[Incoming],
        dead_letters: &Channel,
    ) -> bool {
        for (Taken { delivery, .. }, message) in batch.iter().zip(messages) {
            let mut delay = FIRST_RETRY;
            loop {
                match self.apply(std::slice::from_ref(message)).await {
                    Ok(plan) => {
                        self.record(&plan);
                        let _ = delivery.ack(BasicAckOptions::default()).await;
                    }
                    Err(ApplyError::DatabaseDown(_)) => {
                        tokio::select! {
                            () = self.stop.cancelled() => return false,
                            () = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(MAX_RETRY);
                        continue;
                    }
                    Err(ApplyError::Batch(e)) => {
                        self.retry_or_dead_letter(delivery, message, &e.to_string(), dead_letters)
                            .await
                    }
                }
                break;
            }
        }
        true
    }

    async fn retry_or_dead_letter(
        &self,
        delivery: &Delivery,
        message: &Incoming,
        reason: &str,
        dead_letters: &Channel,
    ) {
        let attempts = message.delivery_count + 1;
        if attempts >= self.settings.amqp.delivery_limit {
            let mut headers = delivery.properties.headers().clone().unwrap_or_default();
            headers.insert(
                ERROR_HEADER.into(),
                AMQPValue::LongString(LongString::from(reason)),
            );
            let properties = delivery.properties.clone().with_headers(headers);
            let published = async {
                dead_letters
                    .basic_publish(
                        self.topology.dead_letter_exchange().into(),
                        "".into(),
                        BasicPublishOptions::default(),
                        &delivery.data,
                        properties,
                    )
                    .await?
                    .await
            }
            .await;
            if matches!(published, Ok(Confirmation::Ack(_))) {
                self.metrics.dead_letters.inc();
                tracing::error!(svix.id = %message.svix_id, attempts, reason, "dead-lettered");
                let _ = delivery.ack(BasicAckOptions::default()).await;
                return;
            }
        }
        tracing::warn!(svix.id = %message.svix_id, attempts, reason, "failed; requeued");
        let backoff = FIRST_RETRY * 2_u32.saturating_pow(attempts.min(6));
        tokio::time::sleep(backoff.min(MAX_RETRY)).await;
        let _ = delivery
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await;
    }

    /// Connect to PostgreSQL, retrying with back-off. False if stopped first.
    async fn wait_for_database(&mut self) -> bool {
        let mut delay = FIRST_RETRY;
        while self.database.is_none() {
            match database::connect(&self.settings.database.url).await {
                Ok(connection) => {
                    self.database = Some(connection);
                    self.metrics.database_connected.set(1);
                }
                Err(e) => {
                    self.metrics.database_connected.set(0);
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "PostgreSQL unavailable");
                    tokio::select! {
                        () = self.stop.cancelled() => return false,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
        true
    }

    async fn apply(&mut self, messages: &[Incoming]) -> Result<Plan, ApplyError> {
        let connection = match &mut self.database {
            Some(connection) => connection,
            None => {
                let connection = database::connect(&self.settings.database.url)
                    .await
                    .map_err(ApplyError::DatabaseDown)?;
                self.metrics.database_connected.set(1);
                self.database.insert(connection)
            }
        };
        let started = std::time::Instant::now();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let policy = self.settings.roles.policy();
        match apply_batch(connection, messages, &policy, now_ms).await {
            Ok(plan) => {
                self.metrics
                    .apply_seconds
                    .observe(started.elapsed().as_secs_f64());
                Ok(plan)
            }
            Err(e) if database_unavailable(&e) => {
                self.database = None;
                Err(ApplyError::DatabaseDown(e.into()))
            }
            Err(e) => {
                // A failed transaction may leave a broken connection behind.
                self.database = None;
                Err(ApplyError::Batch(e))
            }
        }
    }

    fn record(&self, plan: &Plan) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for row in &plan.log {
            let event_type = row
                .event_type
                .clone()
                .unwrap_or_else(|| "unknown".to_owned());
            self.metrics.event(&event_type, row.outcome);
            if row.outcome == "applied"
                && let Some(occurred) = row.occurred_at_ms
            {
                self.metrics
                    .freshness_seconds
                    .observe((now_ms - occurred).max(0) as f64 / 1000.0);
            }
            let user = row.clerk_user_id.as_deref().unwrap_or("");
            match &row.error {
                Some(error) => {
                    tracing::warn!(svix.id = %row.svix_id, clerk.user_id = user, clerk.event_type = %event_type, outcome = row.outcome, error = %error, "event")
                }
                None => {
                    tracing::info!(svix.id = %row.svix_id, clerk.user_id = user, clerk.event_type = %event_type, outcome = row.outcome, "event")
                }
            }
        }
        for (svix_id, role) in &plan.unknown_roles {
            tracing::warn!(svix.id = %svix_id, role = %role, "role is neither student nor instructor: no row for it");
        }
    }
}

/// Acknowledge a whole batch: per channel, one `multiple` ack on the last
/// delivery the batch took from it. A channel delivers in tag order and
/// earlier batches were settled, so that covers this batch's messages and
/// nothing else. False if an ack could not be sent.
async fn acknowledge(batch: &[Taken]) -> bool {
    let mut last_per_shard: std::collections::BTreeMap<usize, &Delivery> =
        std::collections::BTreeMap::new();
    for taken in batch {
        last_per_shard.insert(taken.shard, &taken.delivery);
    }
    let acks = last_per_shard
        .values()
        .map(|delivery| delivery.ack(BasicAckOptions { multiple: true }));
    futures::future::join_all(acks)
        .await
        .iter()
        .all(Result::is_ok)
}

enum ApplyError {
    DatabaseDown(anyhow::Error),
    Batch(diesel::result::Error),
}
