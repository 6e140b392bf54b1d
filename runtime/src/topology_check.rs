//! A topology someone else declared, checked by a user that may not
//! declare it (no configure permission, as least privilege gives the
//! ingest): passive declares need no permission, and say what is missing.

use crate::amqp::{AmqpError, declaring_channel};
use clerk_sync_domain::topology::Topology;
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Connection, ErrorKind, ExchangeKind};

/// The first exchange or queue of `topology` that does not exist, by
/// passive declares (which need no permission), or none.
pub async fn missing(
    connection: &Connection,
    topology: &Topology,
) -> Result<Option<String>, AmqpError> {
    let exchanges = [topology.exchange(), topology.dead_letter_exchange()];
    let queues = topology
        .shard_queues()
        .chain([topology.dead_letter_queue()]);
    let checks = exchanges
        .into_iter()
        .map(|name| ("exchange", name))
        .chain(queues.map(|name| ("queue", name)));
    let mut channel = declaring_channel(connection).await?;
    for (kind, name) in checks {
        let found = if kind == "exchange" {
            let passive = ExchangeDeclareOptions {
                passive: true,
                ..ExchangeDeclareOptions::default()
            };
            channel
                .exchange_declare(
                    name.as_str().into(),
                    ExchangeKind::Direct,
                    passive,
                    FieldTable::default(),
                )
                .await
        } else {
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            channel
                .queue_declare(name.as_str().into(), passive, FieldTable::default())
                .await
                .map(drop)
        };
        match found {
            Ok(()) => {}
            Err(e) if is_soft(&e, AMQPSoftError::NOTFOUND) => {
                return Ok(Some(format!("{kind} '{name}'")));
            }
            Err(source) => {
                return Err(AmqpError::Declare { kind, name, source });
            }
        }
        if !channel.status().connected() {
            channel = declaring_channel(connection).await?;
        }
    }
    let _ = channel.close(200, "checked".into()).await;
    Ok(None)
}

pub(crate) fn is_soft(error: &lapin::Error, soft: AMQPSoftError) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e) if e.kind() == &AMQPErrorKind::Soft(soft))
}

pub(crate) fn is_access_refused(error: &lapin::Error) -> bool {
    is_soft(error, AMQPSoftError::ACCESSREFUSED)
}

/// RabbitMQ's words for a refusal (they name the user and the resource).
pub(crate) fn refusal(error: &lapin::Error) -> String {
    match error.kind() {
        ErrorKind::ProtocolError(e) => e.get_message().to_string(),
        _ => error.to_string(),
    }
}
