//! The dead-letter queue, read without losing anything: messages are taken
//! with `basic.get` and manual acknowledgement on a channel of our own and
//! held; whatever is not acknowledged goes back to the queue, in its order,
//! when the channel closes (also when this process dies). That is safe only
//! for the dead-letter queue, which has no delivery limit: on a quorum queue
//! a get and a return count as a delivery, so on a shard queue it would
//! bring the message closer to being dead-lettered. Nothing here touches a
//! shard queue except by publishing to the events exchange.

use super::letter::{DeadLetter, redrive_properties};
use crate::commands::progress;
use anyhow::Context;
use clerk_sync_domain::runtime::amqp;
use clerk_sync_domain::runtime::settings::Settings;
use clerk_sync_domain::topology::Topology;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, Connection};
use std::time::Duration;

/// A queue's figures as `queue.declare` (passive) gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Messages ready (not counting those delivered and not yet settled).
    pub ready: u32,
    pub consumers: u32,
}

/// Figures of an existing queue, without changing or taking anything. A
/// missing queue closes `channel` and is reported by name.
pub async fn figures(channel: &Channel, queue: &str) -> anyhow::Result<Figures> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .map_err(|e| {
            if not_found(&e) {
                anyhow::anyhow!(
                    "RabbitMQ queue {queue} does not exist (is amqp.prefix right? `clerk-sync-worker migrate` declares the queues)"
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot read RabbitMQ queue {queue}"))
            }
        })?;
    Ok(Figures {
        ready: declared.message_count(),
        consumers: declared.consumer_count(),
    })
}

fn not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

/// A message taken from the dead-letter queue and not yet settled.
#[derive(Debug)]
pub struct Held {
    pub delivery: Delivery,
    pub letter: DeadLetter,
}

#[derive(Debug)]
pub struct DeadLetterQueue {
    connection: Connection,
    channel: Channel,
    publisher: Option<Channel>,
    topology: Topology,
    delivery_limit: u32,
    confirm_timeout: Duration,
}

impl DeadLetterQueue {
    pub async fn open(settings: &Settings, purpose: &str) -> anyhow::Result<Self> {
        let connection = amqp::connect(&settings.amqp.url, purpose).await?;
        let channel = connection
            .create_channel()
            .await
            .context("cannot open a RabbitMQ channel")?;
        Ok(Self {
            connection,
            channel,
            publisher: None,
            topology: Topology::new(settings.amqp.prefix.clone(), settings.amqp.shards),
            delivery_limit: settings.amqp.delivery_limit,
            confirm_timeout: Duration::from_millis(settings.amqp.confirm_timeout_ms),
        })
    }

    pub fn name(&self) -> String {
        self.topology.dead_letter_queue()
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Messages waiting in the dead-letter queue (not counting any held).
    pub async fn depth(&self) -> anyhow::Result<u32> {
        Ok(figures(&self.channel, &self.name()).await?.ready)
    }

    /// Take every message the queue has now (as many as [`Self::depth`]
    /// said), first in the queue first, and hold them all until
    /// [`Self::close`]; return those `keep` wants. Always all: RabbitMQ puts
    /// messages given back behind those given back before, so giving back
    /// only the first few of a queue read before would reorder it.
    pub async fn take_all(
        &self,
        mut keep: impl FnMut(&DeadLetter) -> bool,
    ) -> anyhow::Result<Vec<Held>> {
        let queue = self.name();
        let depth = self.depth().await?;
        let bar = progress::bar(Some(u64::from(depth)), "reading the dead letters");
        let mut kept = Vec::new();
        for _ in 0..depth {
            let got = self
                .channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .with_context(|| format!("cannot read RabbitMQ queue {queue}"))?;
            let Some(message) = got else {
                break;
            };
            bar.inc(1);
            let delivery = message.delivery;
            let letter = DeadLetter::read(&delivery, &self.topology, self.delivery_limit);
            // A delivery not kept is still held, unsettled, until close.
            if keep(&letter) {
                kept.push(Held { delivery, letter });
            }
        }
        bar.finish_and_clear();
        Ok(kept)
    }

    /// Publish a held message back to the shard queue its user routes to,
    /// as the ingest did (same properties and headers, less the dead-letter
    /// ones), and wait for RabbitMQ's confirm. The dead letter itself is
    /// left held: acknowledge it with [`Self::remove`] once this succeeded.
    pub async fn publish_to_shard(&mut self, held: &Held) -> anyhow::Result<()> {
        let publisher = match &self.publisher {
            Some(publisher) => publisher,
            None => {
                let channel = self
                    .connection
                    .create_channel()
                    .await
                    .context("cannot open a RabbitMQ channel")?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .context("cannot enable publisher confirms")?;
                self.publisher.insert(channel)
            }
        };
        let queue = &held.letter.queue;
        let confirmed = async {
            publisher
                .basic_publish(
                    self.topology.exchange().into(),
                    queue.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &held.delivery.data,
                    redrive_properties(&held.delivery.properties),
                )
                .await?
                .await
        };
        match tokio::time::timeout(self.confirm_timeout, confirmed).await {
            Err(_) => anyhow::bail!("RabbitMQ did not confirm within {:?}", self.confirm_timeout),
            Ok(Err(e)) => Err(e).context("publishing failed"),
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => anyhow::bail!(
                "no queue is bound for {queue} (`clerk-sync-worker migrate` declares it)"
            ),
            Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => {
                anyhow::bail!("RabbitMQ refused the message")
            }
        }
    }

    /// Acknowledge a held message: it leaves the dead-letter queue for good.
    pub async fn remove(&self, held: &Held) -> anyhow::Result<()> {
        held.delivery
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .context("cannot acknowledge the dead letter")
    }

    /// Close: every message still held goes back to the queue, in order.
    pub async fn close(self) {
        let _ = self.channel.close(200, "done".into()).await;
        if let Some(publisher) = self.publisher {
            let _ = publisher.close(200, "done".into()).await;
        }
        let _ = self.connection.close(200, "done".into()).await;
    }
}
