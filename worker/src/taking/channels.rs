//! Consuming every shard queue: batches of up to `worker.batch_size`
//! messages are handed to one of `worker.batches_in_flight` runners, each
//! applying its batch in one transaction on its own connection, so one
//! batch is prepared while another commits. A batch takes what has
//! arrived; it waits for more (at most `worker.linger_ms` from its first
//! message) only while another batch is being applied, so a lone event
//! goes at once and, under load, batches grow while the database works
//! (see `fill`). A batch is acknowledged only after its commit, and after the
//! batch before it (see [`crate::taking::batch`] for this and the failure rules).
//! When every runner is busy, nothing more is taken. RabbitMQ lost:
//! reconnect with back-off; unacknowledged messages come back and are
//! skipped if already applied. A batch task that panics (a bug) is counted
//! and logged, its runner replaced, and the connection opened again, so its
//! messages, and those of the batches after it, come back. What each batch
//! holds is registered for the shard-head reports (see
//! [`crate::serving::shard_heads`]).

use crate::serving::instance::Instance;
use crate::serving::metrics::Metrics;
use crate::serving::shard_heads::{self, Holdings};
use crate::taking::batch::{Previous, Runner, Taken};
use crate::taking::opening;
use clerk_sync_domain::backoff::Backoff;
use clerk_sync_domain::topology::Topology;
use clerk_sync_store::apply::Rules;
use clerk_sync_store::clock;
use clerk_sync_store::settings::Settings;
use futures::{FutureExt, Stream, StreamExt};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct Consumer {
    settings: Arc<Settings>,
    rules: Arc<Rules>,
    topology: Topology,
    instance: Instance,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    /// Runners not applying a batch now; a busy one comes back when done.
    idle: mpsc::Receiver<Runner>,
    done: mpsc::Sender<Runner>,
    /// Told each time a batch task is done with its runner.
    finished: Arc<Notify>,
    holdings: Arc<Holdings>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("topology", &self.topology)
            .finish_non_exhaustive()
    }
}

enum Lost {
    Broker,
    /// A batch task panicked: the connection is closed and opened again,
    /// so the batches that cannot be acknowledged in order come back.
    Panic,
    Stopped,
}

impl Consumer {
    pub fn new(
        settings: Settings,
        rules: Arc<Rules>,
        instance: Instance,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Self {
        let settings = Arc::new(settings);
        let topology = settings.amqp.topology();
        let runners = settings.worker.batches_in_flight;
        let (done, idle) = mpsc::channel(runners);
        for _ in 0..runners {
            // The channel holds exactly `runners`: this never fails.
            let _ = done.try_send(Runner::new(
                settings.clone(),
                rules.clone(),
                metrics.clone(),
                stop.clone(),
            ));
        }
        let holdings = Holdings::new(usize::from(topology.shards()));
        Self {
            settings,
            rules,
            topology,
            instance,
            metrics,
            stop,
            idle,
            done,
            finished: Arc::new(Notify::new()),
            holdings,
        }
    }

    /// An idle runner, or None once stopped.
    async fn idle_runner(&mut self) -> Option<Runner> {
        tokio::select! {
            () = self.stop.cancelled() => None,
            runner = self.idle.recv() => runner,
        }
    }

    /// Consume until stopped, reconnecting to RabbitMQ as often as needed.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let reporting = self.stop.child_token();
        let reporter = tokio::spawn(shard_heads::report(
            self.settings.clone(),
            self.instance.clone(),
            self.holdings.clone(),
            self.metrics.clone(),
            reporting.clone(),
        ));
        let result = self.consume().await;
        reporting.cancel();
        let _ = reporter.await;
        result
    }

    async fn consume(&mut self) -> anyhow::Result<()> {
        let mut backoff = Backoff::SERVICE;
        loop {
            let delay = match self.session().await {
                Ok(Lost::Stopped) => return Ok(()),
                Ok(Lost::Panic) => {
                    backoff.reset();
                    tracing::warn!("reconnecting after a batch task panicked");
                    backoff.next_delay()
                }
                Ok(Lost::Broker) => {
                    self.metrics
                        .broker
                        .lost("RabbitMQ connection lost; reconnecting");
                    backoff.reset();
                    tracing::warn!("RabbitMQ connection lost; reconnecting");
                    backoff.next_delay()
                }
                Err(e) => {
                    self.metrics
                        .broker
                        .lost(format!("waiting for RabbitMQ: {e:#}"));
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "RabbitMQ unavailable");
                    delay
                }
            };
            tokio::select! {
                () = self.stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One connection's life: consume and apply until it breaks or we stop.
    /// Nothing is consumed until PostgreSQL answers.
    async fn session(&mut self) -> anyhow::Result<Lost> {
        let Some(mut runner) = self.idle_runner().await else {
            return Ok(Lost::Stopped);
        };
        let connected = runner.wait_for_database().await;
        let _ = self.done.send(runner).await;
        if !connected {
            return Ok(Lost::Stopped);
        }
        let Some(opened) =
            opening::open(&self.settings, &self.topology, &self.metrics, &self.stop).await?
        else {
            return Ok(Lost::Stopped);
        };
        let opening::Opened {
            connection,
            node,
            dead_letters,
            consumers,
            _following,
        } = opened;
        self.metrics.broker.connected(&node);
        tracing::info!(queues = consumers.len(), rabbitmq.node = %node, "consuming through RabbitMQ node {node}");
        let mut deliveries = futures::stream::select_all(consumers);
        let batch_size = self.settings.worker.batch_size;
        let linger = Duration::from_millis(self.settings.worker.linger_ms);
        let mut batches = JoinSet::new();
        let mut previous = Previous::none();
        // Cancelled by a batch task that panicked.
        let panicked = CancellationToken::new();
        let lost = loop {
            let first = tokio::select! {
                () = self.stop.cancelled() => break Lost::Stopped,
                () = panicked.cancelled() => break Lost::Panic,
                () = broken(&connection) => break Lost::Broker,
                next = deliveries.next() => next,
            };
            let Some(Ok(first)) = first else {
                break Lost::Broker;
            };
            let runners = self.settings.worker.batches_in_flight;
            let idle = &self.idle;
            let busy = || idle.len() < runners;
            let batch = fill(
                first,
                &mut deliveries,
                batch_size,
                linger,
                busy,
                &self.finished,
            )
            .await;
            let now_ms = clock::now_ms();
            let held = self.holdings.hold(batch.iter().map(|taken| {
                let received_ms = shard_heads::received_at_ms(&taken.delivery);
                (taken.shard, received_ms.unwrap_or(now_ms))
            }));
            // Waits while every runner is busy; the prefetch then fills up
            // and RabbitMQ stops sending.
            let Some(mut runner) = self.idle_runner().await else {
                break Lost::Stopped; // The batch in hand goes back to its queue.
            };
            let (settled, next) = Previous::chain();
            let before = std::mem::replace(&mut previous, next);
            let (done, dead_letters) = (self.done.clone(), dead_letters.clone());
            let finished = self.finished.clone();
            let (settings, rules) = (self.settings.clone(), self.rules.clone());
            let metrics = self.metrics.clone();
            let (stop, panicked) = (self.stop.clone(), panicked.clone());
            batches.spawn(async move {
                let handled = AssertUnwindSafe(runner.handle(&batch, &dead_letters, before))
                    .catch_unwind()
                    .await;
                let runner = match handled {
                    Ok(settled_now) => {
                        let _ = settled.send(settled_now);
                        runner
                    }
                    Err(panic) => {
                        // Not settled (dropping `settled` says so): the
                        // batches after it cannot be acknowledged either.
                        drop(settled);
                        metrics.batch_panics.inc();
                        tracing::error!(
                            panic = panic_message(panic.as_ref()),
                            size = batch.len(),
                            "a batch task panicked (a bug: please report it); replacing its runner and reconnecting, so its messages come back"
                        );
                        panicked.cancel();
                        Runner::new(settings, rules, metrics, stop)
                    }
                };
                drop(held);
                let _ = done.send(runner).await;
                finished.notify_one();
            });
            // Forget the batches that are finished.
            while batches.try_join_next().is_some() {}
        };
        // Let the batches in flight finish (and acknowledge) before closing.
        while batches.join_next().await.is_some() {}
        let reason = match lost {
            Lost::Stopped => Some("clerk-sync-worker stopping"),
            Lost::Panic => Some("clerk-sync-worker restarting after a panic"),
            Lost::Broker => None,
        };
        if let Some(reason) = reason {
            // A connection that broke without saying so never answers.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, reason.into())).await;
        }
        Ok(lost)
    }
}

/// How long closing a connection may take before it is dropped instead.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle session looks at its connection's state.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Resolves once `connection` has failed or closed. lapin reports a reset
/// connection in its state, but its consumers' streams do not always end
/// with it (seen when a RabbitMQ node was killed under load), which would
/// leave the worker waiting for deliveries that never come.
async fn broken(connection: &lapin::Connection) {
    loop {
        let status = connection.status();
        if status.errored() || status.closed() {
            return;
        }
        tokio::time::sleep(STATUS_EVERY).await;
    }
}

/// A batch: `first`, what has arrived since, and, while `busy` says a batch
/// is being applied, what arrives until `linger` from now, one finishes,
/// or the batch is full. Nothing is gained by waiting when no batch is in
/// flight (the database is idle); while one is, waiting lets this batch
/// grow instead of becoming one more small transaction, whose cost is
/// mostly per batch (statements, commit, acknowledgement).
async fn fill<S>(
    first: Taken,
    deliveries: &mut S,
    batch_size: usize,
    linger: Duration,
    busy: impl Fn() -> bool,
    finished: &Notify,
) -> Vec<Taken>
where
    S: Stream<Item = Result<Taken, lapin::Error>> + Unpin,
{
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + linger;
    while batch.len() < batch_size {
        let next = match deliveries.next().now_or_never() {
            Some(next) => next,
            None if !busy() => break,
            None => tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                // Checked again at the top: another may still be busy.
                () = finished.notified() => continue,
                next = deliveries.next() => next,
            },
        };
        match next {
            Some(Ok(delivery)) => batch.push(delivery),
            // The consumer ended: the caller finds out on its next read.
            _ => break,
        }
    }
    batch
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
