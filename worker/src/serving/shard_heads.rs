//! The age of the oldest message of each shard queue, as the workers see it.
//!
//! RabbitMQ does not tell the age of a quorum queue's head, and looking at
//! it (a get and a return) counts as a delivery towards the delivery limit.
//! So each worker records what it holds: every batch taken registers, per
//! shard, the `received_at` of its oldest message and how many it took
//! ([`Holdings::hold`]); the registration ends when the batch is settled
//! ([`Held`] is dropped). Every [`REPORT_EVERY`] a reporter writes, per shard
//! queue, the oldest message this worker holds (or none) into
//! `clerk_sync.shard_heads` and sets the
//! `clerk_sync_worker_shard_oldest_message_age_seconds` gauge.
//! A queue is first-in first-out, so the oldest message held by its
//! consumers is the queue's oldest; `status` takes the minimum over the
//! reports newer than `repository::workers::FRESH_FOR`.

use crate::serving::instance::Instance;
use crate::serving::metrics::Metrics;
use clerk_sync_domain::message_headers as header;
use clerk_sync_store::clock::now_ms;
use clerk_sync_store::repository::workers;
use clerk_sync_store::settings::Settings;
use diesel_async::AsyncPgConnection;
use lapin::message::Delivery;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a worker reports what it holds.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// What a worker holds of one shard queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    /// `received_at` (Unix ms) of the oldest message held; None if none.
    pub oldest_ms: Option<i64>,
    /// Messages held (taken and not yet settled).
    pub held: u32,
}

/// The batches a worker holds, shared by the consumer (which registers a
/// batch when it takes it) and the reporter.
#[derive(Debug)]
pub struct Holdings {
    shards: usize,
    batches: Mutex<Batches>,
}

#[derive(Debug, Default)]
struct Batches {
    next: u64,
    /// Batch id -> per shard held `(shard, oldest_ms, count)`.
    held: BTreeMap<u64, Vec<(usize, i64, u32)>>,
}

/// One batch's registration: it ends when this is dropped (the batch
/// settled, or given back to the broker).
#[derive(Debug)]
pub struct Held {
    holdings: Arc<Holdings>,
    id: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.holdings.lock().held.remove(&self.id);
    }
}

impl Holdings {
    pub fn new(shards: usize) -> Arc<Self> {
        Arc::new(Self {
            shards,
            batches: Mutex::new(Batches::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Batches> {
        // The map stays consistent whatever panicked while holding it.
        self.batches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Register a batch given as `(shard, received_at_ms)` per message.
    pub fn hold(self: &Arc<Self>, messages: impl IntoIterator<Item = (usize, i64)>) -> Held {
        let mut per_shard: Vec<(usize, i64, u32)> = Vec::new();
        for (shard, received_ms) in messages {
            match per_shard.iter_mut().find(|(s, _, _)| *s == shard) {
                Some((_, oldest, count)) => {
                    *oldest = (*oldest).min(received_ms);
                    *count += 1;
                }
                None => per_shard.push((shard, received_ms, 1)),
            }
        }
        let mut batches = self.lock();
        let id = batches.next;
        batches.next += 1;
        batches.held.insert(id, per_shard);
        Held {
            holdings: self.clone(),
            id,
        }
    }

    /// Per shard (index = shard), what is held now.
    pub fn snapshot(&self) -> Vec<Head> {
        let mut heads = vec![Head::default(); self.shards];
        for per_shard in self.lock().held.values() {
            for &(shard, oldest, count) in per_shard {
                if let Some(head) = heads.get_mut(shard) {
                    head.oldest_ms = Some(head.oldest_ms.map_or(oldest, |o| o.min(oldest)));
                    head.held += count;
                }
            }
        }
        heads
    }
}

/// When the ingest accepted a message (its `clerk-sync-received-at-ms`
/// header), if it says.
pub fn received_at_ms(delivery: &Delivery) -> Option<i64> {
    let headers = delivery.properties.headers().as_ref()?;
    clerk_sync_runtime::amqp_value::integer(headers.inner().get(header::RECEIVED_AT_MS)?)
}

/// Report every [`REPORT_EVERY`] until `stop`, then delete this worker's
/// rows. Each report also says where the worker serves its metrics
/// (`clerk_sync.workers`). The database being away only skips reports (the
/// gauge is still set); it never slows the consumer, which does not wait
/// for this.
pub async fn report(
    settings: Arc<Settings>,
    instance: Instance,
    holdings: Arc<Holdings>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let topology = settings.amqp.topology();
    let queues: Vec<String> = topology.shard_queues().collect();
    let worker = instance.name.as_str();
    let metrics_url = instance.metrics_url();
    let mut connection: Option<AsyncPgConnection> = None;
    let mut pruned = false;
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let heads = holdings.snapshot();
        let now = now_ms();
        for (queue, head) in queues.iter().zip(&heads) {
            metrics.shard_head(queue, head, now);
        }
        if connection.is_none() {
            let connect = clerk_sync_store::repository::database::connect(&settings.database.url);
            connection = tokio::time::timeout(REPORT_EVERY, connect)
                .await
                .ok()
                .and_then(Result::ok);
        }
        let Some(db) = connection.as_mut() else {
            continue;
        };
        // Bounded, so a database that stops answering never holds up a stop.
        let written = tokio::time::timeout(REPORT_EVERY, async {
            if !pruned {
                workers::prune_gone(db).await?;
            }
            let oldest: Vec<Option<i64>> = heads.iter().map(|h| h.oldest_ms).collect();
            let held: Vec<i32> = heads
                .iter()
                .map(|h| i32::try_from(h.held).unwrap_or(i32::MAX))
                .collect();
            workers::report(db, worker, &metrics_url, &queues, &oldest, &held).await
        })
        .await;
        match written {
            Ok(Ok(())) => pruned = true,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot report the shard heads");
                connection = None;
            }
            Err(_) => {
                tracing::debug!("reporting the shard heads timed out");
                connection = None;
            }
        }
    }
    if let Some(db) = connection.as_mut() {
        let forget = workers::forget(db, worker);
        let _ = tokio::time::timeout(Duration::from_secs(2), forget).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_held_message_of_each_shard_is_reported_until_settled() {
        let holdings = Holdings::new(3);
        assert_eq!(holdings.snapshot(), vec![Head::default(); 3]);
        let first = holdings.hold([(0, 500), (0, 300), (2, 900)]);
        let second = holdings.hold([(0, 100), (1, 700)]);
        assert_eq!(
            holdings.snapshot(),
            [
                Head {
                    oldest_ms: Some(100),
                    held: 3
                },
                Head {
                    oldest_ms: Some(700),
                    held: 1
                },
                Head {
                    oldest_ms: Some(900),
                    held: 1
                },
            ]
        );
        drop(second);
        assert_eq!(holdings.snapshot()[0].oldest_ms, Some(300));
        assert_eq!(holdings.snapshot()[1], Head::default());
        drop(first);
        assert_eq!(holdings.snapshot(), vec![Head::default(); 3]);
    }

    #[test]
    fn a_shard_out_of_range_is_ignored() {
        let holdings = Holdings::new(1);
        let _held = holdings.hold([(5, 1)]);
        assert_eq!(holdings.snapshot(), [Head::default()]);
    }
}
