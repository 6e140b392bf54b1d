//! Dead letters stay until an operator redrives or discards them, however
//! often they are read, on RabbitMQ 3 and 4, also in a dead-letter queue
//! an earlier release declared without a delivery limit (RabbitMQ 4 gives
//! such a quorum queue a limit of 20 and drops a message given back that
//! often). Run against RabbitMQ 4 by `deploy/local/test-rabbitmq4.sh`.

use crate::support::DeadLetters;
use crate::support::system::user_event;
use crate::support::{DeadLetterSpec, TestDatabase, TestTopology, amqp_url};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use std::process::Output;
use std::time::{SystemTime, UNIX_EPOCH};

fn command(database: &TestDatabase, broker: &TestTopology, args: &[&str]) -> Output {
    crate::support::worker_command(database, broker)
        .args(args)
        .output()
        .unwrap()
}

/// The dead-letter exchange and queue as the previous release declared
/// them: a quorum queue with no delivery limit.
async fn declare_as_before(broker: &TestTopology) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let name = format!("{}.dead-letter", broker.prefix);
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.as_str().into(), options, arguments)
        .await
        .unwrap();
    channel
        .queue_bind(
            name.as_str().into(),
            name.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `dlq list --json`: the svix-ids in order.
fn listed(database: &TestDatabase, broker: &TestTopology) -> Vec<String> {
    let output = command(database, broker, &["dlq", "list", "--json"]);
    assert!(output.status.success(), "{output:?}");
    let listed: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    listed["dead_letters"]
        .as_array()
        .map(|letters| {
            letters
                .iter()
                .filter_map(|l| l["svix_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn survive_reads(before: bool) {
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(2);
    if before {
        declare_as_before(&broker).await;
    }
    let migrated = command(&database, &broker, &["migrate"]);
    assert!(migrated.status.success(), "{migrated:?}");
    if before {
        let stderr = String::from_utf8_lossy(&migrated.stderr);
        assert!(
            stderr.contains("the dead-letter queue exists with other arguments and is kept"),
            "{stderr}"
        );
    }
    for (id, user) in [("d1", "user_1"), ("d2", "user_2")] {
        let body = user_event(
            "user.updated",
            user,
            1_700_000_000_000,
            None,
            Some("A"),
            None,
        );
        broker
            .publish_dead_letter(&DeadLetterSpec {
                svix_id: id,
                body: &body,
                reason: "failed",
                deliveries: 10,
                received_at_ms: now_ms(),
            })
            .await;
    }
    // More reads than RabbitMQ 4's default delivery limit of 20.
    for read in 0..25 {
        assert_eq!(listed(&database, &broker), ["d1", "d2"], "read {read}");
    }
    let status = command(&database, &broker, &["status", "--json"]);
    assert!(status.status.success(), "{status:?}");
    assert_eq!(listed(&database, &broker), ["d1", "d2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_survive_any_number_of_reads() {
    survive_reads(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_survive_any_number_of_reads_in_a_queue_declared_before() {
    survive_reads(true).await;
}
