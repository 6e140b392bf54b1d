//! Opening a session with RabbitMQ: connect to a node, declare the
//! topology, open the dead-letter channel and one consuming channel per
//! shard queue. Bounded in time ([`OPEN_WITHIN`]) and given up at once on
//! stop: lapin has been seen never to resolve a `basic.consume` (after a
//! failover, on a connection it then closed), which left a worker
//! consuming nothing and deaf to SIGTERM.

use crate::serving::metrics::Metrics;
use crate::taking::batch::Taken;
use anyhow::Context;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::confirm_channel::ConfirmChannel;
use clerk_sync_store::settings::Settings;
use futures::StreamExt;
use futures::stream::BoxStream;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The longest opening a session may take before it is tried again.
pub const OPEN_WITHIN: Duration = Duration::from_secs(30);

/// An open session.
pub struct Opened {
    pub connection: lapin::Connection,
    pub node: String,
    pub dead_letters: ConfirmChannel,
    /// Each shard queue's deliveries, as taken from it.
    pub consumers: Vec<BoxStream<'static, Result<Taken, lapin::Error>>>,
    /// Stops following the connection's blocks when the session ends.
    pub _following: DropGuard,
}

/// Open a session, or None if stopped first.
pub async fn open(
    settings: &Settings,
    topology: &Topology,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
) -> anyhow::Result<Option<Opened>> {
    tokio::select! {
        () = stop.cancelled() => Ok(None),
        opened = tokio::time::timeout(OPEN_WITHIN, open_now(settings, topology, metrics)) => match opened {
            Ok(opened) => opened.map(Some),
            Err(_) => anyhow::bail!("RabbitMQ did not finish opening the session within {OPEN_WITHIN:?}"),
        },
    }
}

async fn open_now(
    settings: &Settings,
    topology: &Topology,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Opened> {
    let amqp::Connected { connection, node } = amqp::connect_node(
        &settings.amqp.url,
        "clerk-sync-worker",
        metrics.broker.last_node().as_deref(),
    )
    .await?;
    // RabbitMQ blocking the dead-letter copies (a memory or disk alarm)
    // shows on `broker_blocked` and in the log, until this connection ends
    // (a new one starts unblocked).
    let events = connection.events_listener();
    let following = CancellationToken::new();
    let _following = following.clone().drop_guard();
    let blocks = metrics.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = blocks.broker.follow_blocks(events, |_| {}) => {}
            () = following.cancelled() => {}
        }
    });
    amqp::declare_topology(&connection, topology, settings.amqp.delivery_limit).await?;
    let dead_letters = connection
        .create_channel()
        .await
        .context("cannot open a channel")?;
    dead_letters
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .context("cannot enable confirms")?;
    // Batch tasks dead-letter at once, each awaiting its own confirm.
    let dead_letters = ConfirmChannel::new(dead_letters);
    // One channel per shard queue: a channel's deliveries arrive in
    // delivery-tag order, so one `multiple` ack per channel covers exactly
    // what a batch took from it. The prefetch (one batch more than are in
    // flight) is shared out between the shards.
    let shards = usize::from(topology.shards());
    let per_shard = (settings.worker.batch_size * 2).div_ceil(shards).max(1);
    let prefetch = u16::try_from(per_shard).unwrap_or(u16::MAX);
    let mut consumers = Vec::new();
    for (shard, queue) in topology.shard_queues().enumerate() {
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
        consumers.push(
            consumer
                .map(move |delivery| delivery.map(|d| Taken { shard, delivery: d }))
                .boxed(),
        );
    }
    Ok(Opened {
        connection,
        node,
        dead_letters,
        consumers,
        _following,
    })
}
