//! Applying one batch on one database connection, with the failure rules:
//!
//! - the database unreachable: the batch is held (not acked, not requeued)
//!   and retried with back-off, so nothing more is consumed meanwhile;
//! - a batch that fails otherwise: its messages are applied one by one; one
//!   that still fails is requeued after a back-off and, at its last allowed
//!   delivery, dead-lettered with the reason in `x-clerk-sync-error`.
//!
//! Batches are acknowledged in the order they were taken (see [`Previous`]).

use crate::serving::metrics::Metrics;
use crate::taking::{dead_letter, traced};
use clerk_sync_domain::backoff::Backoff;
use clerk_sync_domain::clerk_event;
use clerk_sync_domain::outcome::Outcome;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::confirm_channel::ConfirmChannel;
use clerk_sync_runtime::telemetry::fields;
use clerk_sync_store::apply::{Rules, apply_batch, database_unavailable};
use clerk_sync_store::clock;
use clerk_sync_store::incoming::Incoming;
use clerk_sync_store::plan::Plan;
use clerk_sync_store::repository::database;
use clerk_sync_store::settings::Settings;
use diesel_async::AsyncPgConnection;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A delivery and the shard (so the channel) it came from.
#[derive(Debug)]
pub struct Taken {
    pub shard: usize,
    pub delivery: Delivery,
}

/// Whether the batch taken before this one was settled. A batch is
/// acknowledged with one `multiple` ack per channel, which also covers every
/// earlier delivery of that channel: so a batch may only be acknowledged
/// after the one before it, and not at all if that one was not settled.
#[derive(Debug)]
pub struct Previous(Option<oneshot::Receiver<bool>>);

impl Previous {
    /// The first batch of a channel's life has nothing before it.
    pub fn none() -> Self {
        Self(None)
    }

    /// A link between two batches: the earlier one sends whether it was
    /// settled (dropping the sender counts as not settled).
    pub fn chain() -> (oneshot::Sender<bool>, Self) {
        let (settled, previous) = oneshot::channel();
        (settled, Self(Some(previous)))
    }

    async fn settled(self) -> bool {
        match self.0 {
            None => true,
            Some(previous) => previous.await.unwrap_or(false),
        }
    }
}

pub struct Runner {
    settings: Arc<Settings>,
    rules: Arc<Rules>,
    topology: Topology,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    database: Option<AsyncPgConnection>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("connected", &self.database.is_some())
            .finish_non_exhaustive()
    }
}

impl Runner {
    pub fn new(
        settings: Arc<Settings>,
        rules: Arc<Rules>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Self {
        let topology = settings.amqp.topology();
        Self {
            settings,
            rules,
            topology,
            metrics,
            stop,
            database: None,
        }
    }

    /// Apply a batch, then, once the batch before it is settled, acknowledge
    /// it. True when this batch is settled (applied and acknowledged,
    /// requeued or dead-lettered); false if stopped first, or if the batch
    /// before was not settled (a `multiple` ack would then cover its
    /// messages: this batch's messages come back instead, and are skipped as
    /// duplicates).
    ///
    /// Traced as the span `batch`, and, while traces are exported, one span
    /// `event` per message in its webhook's trace (see `traced`).
    pub async fn handle(
        &mut self,
        batch: &[Taken],
        dead_letters: &ConfirmChannel,
        previous: Previous,
    ) -> bool {
        let messages: Vec<Incoming> = batch
            .iter()
            .map(|t| Incoming::from_delivery(&t.delivery))
            .collect();
        let span = tracing::info_span!("batch", size = batch.len());
        let _events = traced::events(&span, batch, &messages);
        self.settle(batch, messages, dead_letters, previous)
            .instrument(span)
            .await
    }

    async fn settle(
        &mut self,
        batch: &[Taken],
        messages: Vec<Incoming>,
        dead_letters: &ConfirmChannel,
        previous: Previous,
    ) -> bool {
        #[cfg(debug_assertions)]
        crate::taking::injected_panic::panic_if_asked(&messages);
        self.metrics.batch_size.observe(messages.len() as f64);
        let redelivered = messages.iter().filter(|m| m.delivery_count > 0).count();
        self.metrics.redeliveries.inc_by(redelivered as u64);
        let mut backoff = Backoff::SERVICE;
        loop {
            match self.apply(&messages).await {
                Ok(plan) => {
                    self.record(&plan);
                    if !previous.settled().await {
                        return false;
                    }
                    if !acknowledge(batch).await {
                        tracing::warn!(
                            "ack failed; the batch will be redelivered and skipped as duplicates"
                        );
                    }
                    return true;
                }
                Err(ApplyError::DatabaseDown(e)) => {
                    self.metrics.database_connected.set(0);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "PostgreSQL unavailable; holding the batch");
                    tokio::select! {
                        () = self.stop.cancelled() => return false,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                Err(ApplyError::Batch(e)) => {
                    tracing::warn!(error = %e, size = batch.len(), "batch failed; applying its messages one by one");
                    if !previous.settled().await {
                        return false;
                    }
                    return self.handle_one_by_one(batch, &messages, dead_letters).await;
                }
            }
        }
    }

    async fn handle_one_by_one(
        &mut self,
        batch: &[Taken],
        messages: &[Incoming],
        dead_letters: &ConfirmChannel,
    ) -> bool {
        for (Taken { delivery, .. }, message) in batch.iter().zip(messages) {
            let mut backoff = Backoff::SERVICE;
            loop {
                match self.apply(std::slice::from_ref(message)).await {
                    Ok(plan) => {
                        self.record(&plan);
                        let _ = delivery.ack(BasicAckOptions::default()).await;
                    }
                    Err(ApplyError::DatabaseDown(_)) => {
                        tokio::select! {
                            () = self.stop.cancelled() => return false,
                            () = tokio::time::sleep(backoff.next_delay()) => {}
                        }
                        continue;
                    }
                    Err(ApplyError::Batch(e)) => {
                        let settled = self
                            .retry_or_dead_letter(delivery, message, &e.to_string(), dead_letters)
                            .await;
                        if !settled {
                            // Held, neither acknowledged nor rejected: a later
                            // `multiple` ack must not cover it.
                            return false;
                        }
                    }
                }
                break;
            }
        }
        true
    }

    /// Requeue a message that failed, or dead-letter it at its last
    /// allowed delivery. False if stopped before it was settled.
    async fn retry_or_dead_letter(
        &self,
        delivery: &Delivery,
        message: &Incoming,
        reason: &str,
        dead_letters: &ConfirmChannel,
    ) -> bool {
        let attempts = message.delivery_count + 1;
        if attempts >= self.settings.amqp.delivery_limit {
            return self
                .dead_letter(delivery, message, reason, attempts, dead_letters)
                .await;
        }
        tracing::warn!({ fields::SVIX_ID } = %message.svix_id, attempts, reason, "failed; requeued");
        tokio::time::sleep(Backoff::SERVICE.after(attempts)).await;
        // A reject, not a nack: RabbitMQ 4.3 and later count only rejects
        // (and lost consumers) towards a quorum queue's delivery limit;
        // every version counts a reject.
        let _ = delivery.reject(BasicRejectOptions { requeue: true }).await;
        true
    }

    /// Copy a message at its last delivery to the dead-letter queue, then
    /// acknowledge it. Until RabbitMQ takes the copy, the message is held
    /// (neither acknowledged nor rejected, which would let the queue's own
    /// delivery limit drop it where the copy could not go) and the copy is
    /// tried again with back-off, until it is taken or the worker stops
    /// (the message then goes back to its queue): false then.
    async fn dead_letter(
        &self,
        delivery: &Delivery,
        message: &Incoming,
        reason: &str,
        attempts: u32,
        dead_letters: &ConfirmChannel,
    ) -> bool {
        let timeout = Duration::from_millis(self.settings.amqp.confirm_timeout_ms);
        let mut backoff = Backoff::SERVICE;
        loop {
            match dead_letter::publish(
                dead_letters,
                &self.topology,
                delivery,
                reason,
                attempts,
                timeout,
            )
            .await
            {
                Ok(()) => {
                    self.metrics.dead_letters.inc();
                    tracing::error!({ fields::SVIX_ID } = %message.svix_id, attempts, reason, "dead-lettered");
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                    return true;
                }
                Err(problem) => {
                    self.metrics.dead_letter_failures.inc();
                    let delay = backoff.next_delay();
                    tracing::error!({ fields::SVIX_ID } = %message.svix_id, attempts, reason, problem = %problem, retry_in = ?delay, "the dead-letter copy was not taken; holding the message");
                    tokio::select! {
                        () = self.stop.cancelled() => return false,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Connect to PostgreSQL, retrying with back-off. False if stopped first.
    pub async fn wait_for_database(&mut self) -> bool {
        let mut backoff = Backoff::SERVICE;
        while self.database.is_none() {
            match database::connect(&self.settings.database.url).await {
                Ok(connection) => {
                    self.database = Some(connection);
                    self.metrics.database_connected.set(1);
                }
                Err(e) => {
                    self.metrics.database_connected.set(0);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "PostgreSQL unavailable");
                    tokio::select! {
                        () = self.stop.cancelled() => return false,
                        () = tokio::time::sleep(delay) => {}
                    }
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
        let now_ms = clock::now_ms();
        match apply_batch(connection, messages, &self.rules, now_ms).await {
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
        let now_ms = clock::now_ms();
        for row in &plan.log {
            let event_type = row.event_type.as_deref().unwrap_or("unknown");
            self.metrics.event(
                clerk_event::metric_label(row.event_type.as_deref()),
                row.outcome,
            );
            if row.outcome == Outcome::Applied
                && let Some(occurred) = row.occurred_at_ms
            {
                self.metrics
                    .freshness_seconds
                    .observe((now_ms - occurred).max(0) as f64 / 1000.0);
            }
            let user = row.clerk_user_id.as_deref().unwrap_or("");
            match &row.error {
                Some(error) => {
                    tracing::warn!({ fields::SVIX_ID } = %row.svix_id, { fields::CLERK_USER_ID } = user, { fields::CLERK_EVENT_TYPE } = %event_type, outcome = %row.outcome, error = %error, "event")
                }
                None => {
                    // Per event: DEBUG (the metrics count them).
                    tracing::debug!({ fields::SVIX_ID } = %row.svix_id, { fields::CLERK_USER_ID } = user, { fields::CLERK_EVENT_TYPE } = %event_type, outcome = %row.outcome, "event")
                }
            }
        }
        for (svix_id, user_id) in &plan.unknown_roles {
            tracing::warn!({ fields::SVIX_ID } = %svix_id, { fields::CLERK_USER_ID } = %user_id, "role is neither student nor instructor: no row for it");
        }
    }
}

/// Acknowledge a whole batch: per channel, one `multiple` ack on the last
/// delivery the batch took from it. A channel delivers in tag order and
/// earlier batches were settled, so that covers this batch's messages and
/// nothing else. False if an ack could not be sent (lapin answers
/// `Ok(false)` on a channel already closed), or was not taken within
/// [`ACK_TIMEOUT`] (a connection that broke without saying so).
async fn acknowledge(batch: &[Taken]) -> bool {
    let mut last_per_shard: std::collections::BTreeMap<usize, &Delivery> =
        std::collections::BTreeMap::new();
    for taken in batch {
        last_per_shard.insert(taken.shard, &taken.delivery);
    }
    let acks = last_per_shard
        .values()
        .map(|delivery| delivery.ack(BasicAckOptions { multiple: true }));
    tokio::time::timeout(ACK_TIMEOUT, futures::future::join_all(acks))
        .await
        .is_ok_and(|acked| acked.iter().all(|ack| matches!(ack, Ok(true))))
}

/// The longest an acknowledgement may take.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

enum ApplyError {
    DatabaseDown(anyhow::Error),
    Batch(diesel::result::Error),
}
