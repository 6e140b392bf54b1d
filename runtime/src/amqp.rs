//! Connecting to RabbitMQ and declaring the topology, for both binaries.
//!
//! Every queue and exchange argument is written out here, once. Declaring is
//! idempotent; a queue that already exists with other arguments is reported
//! by name instead of being changed (RabbitMQ cannot change them in place).
//! A user without configure permission (least privilege: the ingest's may
//! only write to the events exchange) has the topology checked instead
//! (passive declares need no permission), which someone else declared.

use crate::amqp_target::{self, CA_FILE_PARAMETER, TargetError};
use crate::amqp_value::long_string;
use crate::broker_link;
use crate::broker_version;
use crate::secret_url::SecretUrl;
use crate::topology_check;
use clerk_sync_domain::topology::Topology;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::protocol::AMQPSoftError;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    Channel, Connection, ConnectionProperties, DefaultConnectionBuilder, ErrorKind, ExchangeKind,
};
use std::time::Duration;

/// How long connecting may take before the broker counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("RabbitMQ at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("setting amqp.url (AMQP_URL): {url}: {reason}")]
    Url { url: String, reason: TargetError },
    #[error(
        "RabbitMQ at {url}: its TLS certificate is not trusted ({reason}); if a CA of your own \
         signed it, name that CA's PEM file in amqp.url (AMQP_URL) as ?{CA_FILE_PARAMETER}=/path/ca.pem"
    )]
    TlsUntrusted { url: String, reason: String },
    #[error(
        "RabbitMQ refused to let this user declare the topology ({refused}), and {missing} does \
         not exist: grant the user configure permission, or declare the topology first \
         (import the RabbitMQ definitions, or run `clerk-sync-worker migrate` as a user that \
         may configure)"
    )]
    NotDeclared { refused: String, missing: String },
    #[error(
        "RabbitMQ {kind} '{name}' already exists with different arguments ({reason}); \
         clerk-sync does not change an existing {kind}: drain and delete it, or set \
         amqp.prefix to use new names"
    )]
    TopologyMismatch {
        kind: &'static str,
        name: String,
        reason: String,
    },
    #[error("declaring RabbitMQ {kind} '{name}' failed: {source}")]
    Declare {
        kind: &'static str,
        name: String,
        source: lapin::Error,
    },
}

/// A connection and the node it went to (`host:port`, no secret).
#[derive(Debug)]
pub struct Connected {
    pub connection: Connection,
    pub node: String,
}

/// Open a connection to the first node of `url` that answers (`url` may
/// list several nodes' URLs, separated by commas: each is tried in order,
/// so a reconnect moves on when its node is gone), named so operators can
/// tell processes apart in the management UI. Each node fails within
/// [`CONNECT_TIMEOUT`].
pub async fn connect(url: &SecretUrl, connection_name: &str) -> Result<Connection, AmqpError> {
    connect_node(url, connection_name, None)
        .await
        .map(|connected| connected.connection)
}

/// [`connect`], telling which node answered. `failed` (a node's
/// `host:port`) is the node whose connection was just lost: it is tried
/// last, after the nodes that follow it in the list, so that a reconnect
/// moves on instead of waiting for a node that went silent.
pub async fn connect_node(
    url: &SecretUrl,
    connection_name: &str,
    failed: Option<&str>,
) -> Result<Connected, AmqpError> {
    let listed = url.nodes();
    let addresses: Vec<String> = listed.iter().map(SecretUrl::address).collect();
    let nodes: Vec<&SecretUrl> = broker_link::try_order(&addresses, failed)
        .into_iter()
        .map(|i| &listed[i])
        .collect();
    let mut reasons = Vec::new();
    for node in nodes.iter().copied() {
        match connect_one(node, connection_name).await {
            Ok(connection) => {
                return Ok(Connected {
                    connection,
                    node: node.address(),
                });
            }
            Err(AmqpError::Unreachable { url, reason }) if nodes.len() > 1 => {
                tracing::warn!(url = %url, reason = %reason, "RabbitMQ node unreachable; trying the next");
                reasons.push(format!("{url}: {reason}"));
            }
            Err(e) => return Err(e),
        }
    }
    Err(none_answered(url, &reasons))
}

/// No node `url` lists answered; `reasons` says why, node by node.
pub fn none_answered(url: &SecretUrl, reasons: &[String]) -> AmqpError {
    AmqpError::Unreachable {
        url: url.redacted(),
        reason: if reasons.is_empty() {
            "no broker URL".to_owned()
        } else {
            format!("no node answered ({})", reasons.join("; "))
        },
    }
}

/// Connect to the one node `url` names (over TLS for `amqps://`, trusting
/// the CA file its `cacertfile` names beside the system's).
async fn connect_one(url: &SecretUrl, connection_name: &str) -> Result<Connection, AmqpError> {
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    let unreachable = |reason: String| AmqpError::Unreachable {
        url: url.redacted(),
        reason,
    };
    let target = amqp_target::target(url).map_err(|reason| AmqpError::Url {
        url: url.redacted(),
        reason,
    })?;
    let tls = target.uri.scheme == lapin::uri::AMQPScheme::AMQPS;
    let builder = DefaultConnectionBuilder::new()
        .map_err(|e| unreachable(e.to_string()))?
        .with_uri(target.uri)
        .with_properties(properties)
        .with_tls_config(target.tls);
    match tokio::time::timeout(CONNECT_TIMEOUT, builder.connect()).await {
        Ok(Ok(connection)) => {
            match broker_version::read(url).await {
                Ok(version) => {
                    tracing::info!(rabbitmq.version = %version, url = %url.redacted(), "connected to RabbitMQ {version}")
                }
                Err(reason) => {
                    tracing::info!(url = %url.redacted(), "connected to RabbitMQ (its version could not be read: {reason})")
                }
            }
            Ok(connection)
        }
        Ok(Err(e)) if tls && amqp_target::is_untrusted_certificate(&e.to_string()) => {
            Err(AmqpError::TlsUntrusted {
                url: url.redacted(),
                reason: e.to_string(),
            })
        }
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
    }
}

/// The arguments of a shard queue. Quorum queues replicate across a
/// cluster's nodes; the delivery limit stops a poison message from cycling
/// forever and sends it to the dead-letter exchange instead.
pub fn shard_queue_arguments(topology: &Topology, delivery_limit: u32) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments
        .insert("x-queue-type".into(), long_string("quorum"))
        .insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(delivery_limit)),
        )
        .insert(
            "x-dead-letter-exchange".into(),
            long_string(&topology.dead_letter_exchange()),
        )
        // At-least-once dead-lettering (quorum queues only) needs
        // reject-publish overflow: a dead letter is never dropped in transit.
        .insert(
            "x-dead-letter-strategy".into(),
            long_string("at-least-once"),
        )
        .insert("x-overflow".into(), long_string("reject-publish"));
    arguments
}

/// The dead-letter queue is a quorum queue that nothing leaves unless an
/// operator redrives or discards it. Its delivery limit is the largest
/// there is, which RabbitMQ 3 and 4 both treat as none: without one,
/// RabbitMQ 4 gives a quorum queue a limit of 20 and drops a message read
/// and given back that often (it has nowhere to dead-letter it to).
pub fn dead_letter_queue_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments
        .insert("x-queue-type".into(), long_string("quorum"))
        .insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(DEAD_LETTER_DELIVERY_LIMIT)),
        );
    arguments
}

/// The dead-letter queue's `x-delivery-limit`: in effect, none.
pub const DEAD_LETTER_DELIVERY_LIMIT: i32 = i32::MAX;

/// Declare exchanges, queues and bindings. Safe to run from any number of
/// processes at once. Opens and closes a channel of its own, because a
/// refused declaration closes the channel it was made on. A user that may
/// not declare (ACCESS_REFUSED) gets the topology checked instead:
/// [`AmqpError::NotDeclared`] names what is missing.
pub async fn declare_topology(
    connection: &Connection,
    topology: &Topology,
    delivery_limit: u32,
) -> Result<(), AmqpError> {
    match declare_all(connection, topology, delivery_limit).await {
        Err(AmqpError::Declare { source, .. }) if topology_check::is_access_refused(&source) => {
            let refused = topology_check::refusal(&source);
            match topology_check::missing(connection, topology).await? {
                None => {
                    tracing::info!(refused = %refused, "this RabbitMQ user may not declare the topology; it exists, declared by someone else");
                    Ok(())
                }
                Some(missing) => Err(AmqpError::NotDeclared { refused, missing }),
            }
        }
        other => other,
    }
}

async fn declare_all(
    connection: &Connection,
    topology: &Topology,
    delivery_limit: u32,
) -> Result<(), AmqpError> {
    let channel = declaring_channel(connection).await?;
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let exchange = topology.exchange();
    let dead_letter_exchange = topology.dead_letter_exchange();
    declare_exchange(&channel, &exchange, ExchangeKind::Direct, durable_exchange).await?;
    declare_exchange(
        &channel,
        &dead_letter_exchange,
        ExchangeKind::Fanout,
        durable_exchange,
    )
    .await?;

    let dead_letter_queue = topology.dead_letter_queue();
    let channel = match declare_queue(&channel, &dead_letter_queue, dead_letter_queue_arguments())
        .await
    {
        Ok(()) => channel,
        // Declared by an earlier release (no delivery limit): kept, since
        // its messages must not be lost, and read safely (see the worker's
        // `dlq` commands). The refusal closed the channel.
        Err(AmqpError::TopologyMismatch { reason, .. }) => {
            tracing::warn!(
                queue = %dead_letter_queue,
                reason = %reason,
                "the dead-letter queue exists with other arguments and is kept as it is; on RabbitMQ 4 a quorum \
                 queue without x-delivery-limit drops a message given back 20 times: clerk-sync's commands never \
                 give one back, but to protect it from other readers set a policy with \
                 {{\"delivery-limit\": {DEAD_LETTER_DELIVERY_LIMIT}}} on it (docs/src/reference/queues.md)"
            );
            declaring_channel(connection).await?
        }
        Err(e) => return Err(e),
    };
    bind(&channel, &dead_letter_queue, &dead_letter_exchange, "").await?;

    for queue in topology.shard_queues() {
        declare_queue(
            &channel,
            &queue,
            shard_queue_arguments(topology, delivery_limit),
        )
        .await?;
        // The routing key of a shard is its queue name.
        bind(&channel, &queue, &exchange, &queue).await?;
    }
    // Best effort: the channel goes away with the connection anyway.
    let _ = channel.close(200, "declared".into()).await;
    Ok(())
}

pub(crate) async fn declaring_channel(connection: &Connection) -> Result<Channel, AmqpError> {
    connection
        .create_channel()
        .await
        .map_err(|source| AmqpError::Declare {
            kind: "channel",
            name: "for declarations".to_owned(),
            source,
        })
}

/// Delete every queue (messages included) and exchange of `topology`. For
/// tests, benchmarks and tearing a deployment down; the services never call it.
pub async fn delete_topology(
    connection: &Connection,
    topology: &Topology,
) -> Result<(), lapin::Error> {
    let channel = connection.create_channel().await?;
    for queue in topology
        .shard_queues()
        .chain([topology.dead_letter_queue()])
    {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
    }
    for exchange in [topology.exchange(), topology.dead_letter_exchange()] {
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    let _ = channel.close(200, "deleted".into()).await;
    Ok(())
}

async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
) -> Result<(), AmqpError> {
    channel
        .exchange_declare(name.into(), kind, options, FieldTable::default())
        .await
        .map_err(|source| classify("exchange", name, source))
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    arguments: FieldTable,
) -> Result<(), AmqpError> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.into(), options, arguments)
        .await
        .map(drop)
        .map_err(|source| classify("queue", name, source))
}

async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    routing_key: &str,
) -> Result<(), AmqpError> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|source| classify("binding of queue", queue, source))
}

fn classify(kind: &'static str, name: &str, source: lapin::Error) -> AmqpError {
    if let ErrorKind::ProtocolError(error) = source.kind()
        && topology_check::is_soft(&source, AMQPSoftError::PRECONDITIONFAILED)
    {
        return AmqpError::TopologyMismatch {
            kind,
            name: name.to_owned(),
            reason: error.get_message().to_string(),
        };
    }
    AmqpError::Declare {
        kind,
        name: name.to_owned(),
        source,
    }
}
