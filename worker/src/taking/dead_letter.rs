//! Sending a message that keeps failing to the dead-letter exchange: a
//! mandatory, confirmed publish within `amqp.confirm_timeout_ms`. Only a
//! plain ack of the copy counts; a copy returned (no queue bound to the
//! exchange), nacked or not confirmed in time is a failure, and the
//! original must then be kept, not acknowledged.

use clerk_sync_domain::message_headers;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp_value::long_string;
use clerk_sync_runtime::confirm_channel::ConfirmChannel;
use lapin::Confirmation;
use lapin::message::Delivery;
use lapin::options::BasicPublishOptions;
use lapin::types::AMQPValue;
use std::time::Duration;

/// Why a dead-letter copy was not taken.
#[derive(Debug, thiserror::Error)]
pub enum NotDeadLettered {
    #[error("returned by RabbitMQ: no queue is bound to {0}")]
    Returned(String),
    #[error("refused by RabbitMQ (nack)")]
    Nacked,
    #[error("not confirmed: confirms are off on the channel")]
    NoConfirms,
    #[error("not confirmed within {0:?}")]
    Unconfirmed(Duration),
    #[error("could not be published: {0}")]
    Channel(lapin::Error),
}

/// Publish a copy of `delivery` to the dead-letter exchange with why it
/// failed (`reason`) and its deliveries (`attempts`).
pub async fn publish(
    channel: &ConfirmChannel,
    topology: &Topology,
    delivery: &Delivery,
    reason: &str,
    attempts: u32,
    timeout: Duration,
) -> Result<(), NotDeadLettered> {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers
        .insert(
            message_headers::DEAD_LETTER_ERROR.into(),
            long_string(reason),
        )
        .insert(
            message_headers::DEAD_LETTER_DELIVERIES.into(),
            AMQPValue::LongLongInt(i64::from(attempts)),
        );
    let properties = delivery.properties.clone().with_headers(headers);
    let exchange = topology.dead_letter_exchange();
    let published = async {
        channel
            .publish(
                exchange.as_str().into(),
                "".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &delivery.data,
                properties,
            )
            .await?
            .await
    };
    match tokio::time::timeout(timeout, published).await {
        Err(_) => Err(NotDeadLettered::Unconfirmed(timeout)),
        Ok(Err(e)) => Err(NotDeadLettered::Channel(e)),
        Ok(Ok(Confirmation::Ack(None))) => Ok(()),
        Ok(Ok(Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)))) => {
            Err(NotDeadLettered::Returned(exchange))
        }
        Ok(Ok(Confirmation::Nack(None))) => Err(NotDeadLettered::Nacked),
        Ok(Ok(Confirmation::NotRequested)) => Err(NotDeadLettered::NoConfirms),
    }
}
