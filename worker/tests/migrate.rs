//! `clerk-sync-worker migrate` against the real RabbitMQ.

use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::process::{Command, Output};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn migrate(prefix: &str, extra: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"));
    command
        .arg("migrate")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("CLERK_SYNC__AMQP__PREFIX", prefix)
        .env("CLERK_SYNC__AMQP__SHARDS", "3");
    for (name, value) in extra {
        command.env(name, value);
    }
    command.output().unwrap_or_else(|e| panic!("{e}"))
}

/// Declares `{prefix}.shard.0..3` passively: fails if one is missing.
async fn queues_exist(prefix: &str) -> bool {
    let Ok(connection) = Connection::connect(AMQP_URL, ConnectionProperties::default()).await
    else {
        return false;
    };
    for queue in (0..3)
        .map(|i| format!("{prefix}.shard.{i}"))
        .chain([format!("{prefix}.dead-letter")])
    {
        let Ok(channel) = connection.create_channel().await else {
            return false;
        };
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        if channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

async fn delete(prefix: &str) {
    let Ok(connection) = Connection::connect(AMQP_URL, ConnectionProperties::default()).await
    else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    for queue in (0..3)
        .map(|i| format!("{prefix}.shard.{i}"))
        .chain([format!("{prefix}.dead-letter")])
    {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [format!("{prefix}.events"), format!("{prefix}.dead-letter")] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
}

#[tokio::test]
async fn migrate_declares_the_topology_and_is_idempotent() {
    let prefix = format!("test_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    for _ in 0..2 {
        let output = migrate(&prefix, &[]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let declared = queues_exist(&prefix).await;
    delete(&prefix).await;
    assert!(declared, "shard and dead-letter queues exist after migrate");
}

#[test]
fn an_unreachable_broker_or_a_bad_setting_is_one_line() {
    let output = migrate(
        "test_unreachable",
        &[("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.trim().starts_with(
            "clerk-sync-worker: RabbitMQ at amqp://guest:***@127.0.0.1:1/%2f is unreachable"
        ),
        "{stderr}"
    );

    let output = migrate("bad prefix", &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("clerk-sync-worker: setting amqp.prefix"),
        "{stderr}"
    );
}
