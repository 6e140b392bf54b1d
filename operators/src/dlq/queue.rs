//! The dead-letter queue, read without losing anything: messages are taken
//! with `basic.get` and manual acknowledgement on a channel of our own and
//! held. What is not removed is put back when done, as a fresh copy
//! published before the original is acknowledged: giving a message back
//! (a reject, or closing the channel) counts as a delivery, and on RabbitMQ
//! 4 a quorum queue declared without `x-delivery-limit` (as earlier
//! releases declared this one) drops a message given back 20 times. Should
//! this process die first, the messages it holds go back by themselves.
//! Nothing here touches a shard queue except by publishing to the events
//! exchange.

use super::letter::{DeadLetter, redrive_properties, without_headers};
use crate::progress;
use anyhow::Context;
use clerk_sync_domain::message_headers;
use clerk_sync_domain::shard::fnv1a_64;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp;
use clerk_sync_store::settings::Settings;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Acker, BasicProperties, Channel, Confirmation, Connection};
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
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
    /// Every message taken and not removed, in queue order.
    taken: Mutex<Vec<Taken>>,
}

/// A message taken: enough to put it back.
#[derive(Debug)]
struct Taken {
    tag: u64,
    acker: Acker,
    properties: BasicProperties,
    data: Vec<u8>,
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
            topology: settings.amqp.topology(),
            delivery_limit: settings.amqp.delivery_limit,
            confirm_timeout: Duration::from_millis(settings.amqp.confirm_timeout_ms),
            taken: Mutex::new(Vec::new()),
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
    /// [`Self::close`]; return those `keep` wants. Always all: putting back
    /// only the first few would move them behind the rest.
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
            self.held().push(Taken {
                tag: delivery.delivery_tag,
                acker: delivery.acker.clone(),
                properties: delivery.properties.clone(),
                data: delivery.data.clone(),
            });
            // A delivery not kept is still held, unsettled, until close.
            if keep(&letter) {
                kept.push(Held { delivery, letter });
            }
        }
        bar.finish_and_clear();
        Ok(kept)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Vec<Taken>> {
        self.taken.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The channel messages are published on, with publisher confirms.
    async fn publisher(&mut self) -> anyhow::Result<&Channel> {
        if self.publisher.is_none() {
            let channel = self
                .connection
                .create_channel()
                .await
                .context("cannot open a RabbitMQ channel")?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .context("cannot enable publisher confirms")?;
            self.publisher = Some(channel);
        }
        self.publisher
            .as_ref()
            .context("cannot open a RabbitMQ channel")
    }

    /// Publish `data` with `properties` through `exchange` and wait for
    /// RabbitMQ's confirm that a queue took it.
    async fn publish(
        &mut self,
        exchange: &str,
        routing_key: &str,
        data: &[u8],
        properties: BasicProperties,
    ) -> anyhow::Result<()> {
        let timeout = self.confirm_timeout;
        let publisher = self.publisher().await?;
        let confirmed = async {
            publisher
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    data,
                    properties,
                )
                .await?
                .await
        };
        match tokio::time::timeout(timeout, confirmed).await {
            Err(_) => anyhow::bail!("RabbitMQ did not confirm within {timeout:?}"),
            Ok(Err(e)) => Err(e).context("publishing failed"),
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => anyhow::bail!(
                "no queue is bound for {routing_key} (`clerk-sync-worker migrate` declares it)"
            ),
            Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => {
                anyhow::bail!("RabbitMQ refused the message")
            }
        }
    }

    /// Publish a held message back to the shard queue its user routes to,
    /// as the ingest did (same properties and headers, less the dead-letter
    /// ones), and wait for RabbitMQ's confirm. The dead letter itself is
    /// left held: acknowledge it with [`Self::remove`] once this succeeded.
    pub async fn publish_to_shard(&mut self, held: &Held) -> anyhow::Result<()> {
        let exchange = self.topology.exchange();
        self.publish(
            &exchange,
            &held.letter.queue,
            &held.delivery.data,
            redrive_properties(&held.delivery.properties),
        )
        .await
    }

    /// Acknowledge a held message: it leaves the dead-letter queue for good.
    pub async fn remove(&self, held: &Held) -> anyhow::Result<()> {
        held.delivery
            .ack(BasicAckOptions::default())
            .await
            .context("cannot acknowledge the dead letter")?;
        let tag = held.delivery.delivery_tag;
        self.held().retain(|taken| taken.tag != tag);
        Ok(())
    }

    /// Close, putting back every message still held, in order: a copy is
    /// published to the dead-letter queue and, once confirmed, the original
    /// acknowledged (a second copy of a message, left by a put-back cut
    /// short, is only acknowledged). Should a copy fail, the rest go back
    /// when the channel closes.
    pub async fn close(mut self) {
        let held = std::mem::take(&mut *self.held());
        let queue = self.name();
        let mut seen = HashSet::new();
        for taken in held {
            if seen.insert(identity(&taken)) {
                // RabbitMQ counts the copy's deliveries afresh.
                let copy = without_headers(&taken.properties, &[message_headers::DELIVERY_COUNT]);
                if let Err(e) = self.publish("", &queue, &taken.data, copy).await {
                    tracing::warn!(error = %format!("{e:#}"), "cannot put a dead letter back; the rest go back as they are");
                    break;
                }
            }
            let _ = taken.acker.ack(BasicAckOptions::default()).await;
        }
        let _ = self.channel.close(200, "done".into()).await;
        if let Some(publisher) = self.publisher.take() {
            let _ = publisher.close(200, "done".into()).await;
        }
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// What makes two dead letters copies of one: the message id (the
/// svix-id), else the body.
fn identity(taken: &Taken) -> String {
    match taken.properties.message_id() {
        Some(id) => id.to_string(),
        None => format!("{:016x}", fnv1a_64(&taken.data)),
    }
}
