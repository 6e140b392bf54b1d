//! Declaring the topology: idempotent, and a clear error naming a queue that
//! exists with other arguments.

use crate::helpers::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

#[tokio::test]
async fn declaring_twice_is_harmless() {
    let settings = test_settings();
    let first = spawn_app_with(settings.clone()).await;
    let second = spawn_app_with(settings).await;
    assert_eq!(
        first
            .post_signed(user_event("user.created", "user_t", 1))
            .await
            .1
            .status()
            .as_u16(),
        202
    );
    assert_eq!(
        second
            .post_signed(user_event("user.created", "user_t", 2))
            .await
            .1
            .status()
            .as_u16(),
        202
    );
    assert_eq!(first.topology.drain().await.len(), 2);
}

#[tokio::test]
async fn a_queue_with_other_arguments_is_named_in_the_start_up_error() {
    let settings = test_settings();
    let topology = TestTopology::of(&settings);
    let (_connection, channel) = broker_channel().await;
    let classic = topology.topology.shard_queue(2);
    channel
        .queue_declare(
            classic.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();

    let error = build_error(&settings).await;
    assert!(
        error.contains(&format!(
            "RabbitMQ queue '{classic}' already exists with different arguments"
        )),
        "{error}"
    );
    assert!(
        error.contains("inequivalent arg"),
        "the broker's reason is kept: {error}"
    );
}
