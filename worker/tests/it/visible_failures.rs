//! Failures that must show, not vanish: a dead-letter copy RabbitMQ does
//! not take, a panic inside a batch task, and what logs and metrics may
//! carry of a body (no role string, a bounded event-type label).

use crate::support::DeadLetters;
use crate::support::amqp_url;
use crate::support::system::{System, user_event};
use lapin::options::{BasicGetOptions, QueueBindOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::time::{Duration, Instant};

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

/// The value of an unlabelled metric line `name value`, or 0.
fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn wait_for_metric(system: &System, name: &str, at_least: f64) -> String {
    let started = Instant::now();
    loop {
        let metrics = system.worker_metrics().await;
        if metric(&metrics, name) >= at_least {
            return metrics;
        }
        assert!(
            started.elapsed() < WAIT,
            "{name} never reached {at_least}:\n{metrics}\n{}",
            system.worker_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Unbind the dead-letter queue from its exchange (definitions edited by
/// hand, say), so that a dead-letter copy goes nowhere, and make every
/// `user_b` event fail. Returns the channel that can bind it again.
async fn dead_letters_unbound(system: &System) -> (Connection, lapin::Channel) {
    let topology = system.broker.topology();
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_unbind(
            topology.dead_letter_queue().as_str().into(),
            topology.dead_letter_exchange().as_str().into(),
            "".into(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    system
        .execute(
            r#"ALTER TABLE "Student" ADD CONSTRAINT "Student_not_b" CHECK ("clerkId" <> 'user_b')"#,
        )
        .await;
    (connection, channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_copy_rabbitmq_does_not_take_keeps_the_message() {
    let system = System::start(&[("CLERK_SYNC__AMQP__DELIVERY_LIMIT", "2")]).await;
    system.wait_until_ready().await;
    let topology = system.broker.topology();
    let (queue, exchange) = (
        topology.dead_letter_queue(),
        topology.dead_letter_exchange(),
    );
    let (connection, channel) = dead_letters_unbound(&system).await;
    let body = user_event("user.created", "user_b", T0, None, Some("B"), None);
    assert_eq!(system.send("msg_b", &body).await, 202);

    // The copy is returned: counted, and the message held, not acknowledged.
    let metrics =
        wait_for_metric(&system, "clerk_sync_worker_dead_letter_failures_total", 2.0).await;
    assert_eq!(
        metric(&metrics, "clerk_sync_worker_dead_letters_total"),
        0.0
    );
    assert!(system.broker.take_dead_letters().await.is_empty());
    let logs = std::fs::read_to_string(system.worker_log(0)).unwrap_or_default();
    assert!(
        logs.contains("the dead-letter copy was not taken; holding the message")
            && logs.contains(&format!("no queue is bound to {exchange}")),
        "{logs}"
    );

    // Bound again: the held message goes to the dead-letter queue.
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    wait_for_metric(&system, "clerk_sync_worker_dead_letters_total", 1.0).await;
    let dead = system.broker.take_dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0.as_deref(), Some("msg_b"));
    connection.close(200, "done".into()).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_batch_task_is_counted_and_its_messages_come_back() {
    let system = System::start(&[("CLERK_SYNC_DEBUG_PANIC_ON_SVIX_ID", "msg_p")]).await;
    system.wait_until_ready().await;
    for (svix_id, user) in [
        ("msg_a", "user_a"),
        ("msg_p", "user_p"),
        ("msg_c", "user_c"),
    ] {
        let body = user_event("user.created", user, T0, None, Some("X"), None);
        assert_eq!(system.send(svix_id, &body).await, 202);
    }
    system.wait_for_log(3, WAIT).await;
    let metrics = wait_for_metric(&system, "clerk_sync_worker_batch_panics_total", 1.0).await;
    assert_eq!(
        metric(&metrics, "clerk_sync_worker_batch_panics_total"),
        1.0
    );
    let mut logged: Vec<String> = system
        .outcomes()
        .await
        .into_iter()
        .map(|(id, outcome, _)| format!("{id} {outcome}"))
        .collect();
    logged.sort();
    assert_eq!(logged, ["msg_a applied", "msg_c applied", "msg_p applied"]);
    let (status, _) = system.worker_readiness().await;
    assert_eq!(status, 200, "ready again after reconnecting");
    // The panic stays loud after: later events flow.
    let body = user_event("user.created", "user_d", T0, None, Some("X"), None);
    assert_eq!(system.send("msg_d", &body).await, 202);
    system.wait_for_log(4, WAIT).await;
    let logs = std::fs::read_to_string(system.worker_log(0)).unwrap_or_default();
    assert_eq!(
        logs.matches("a batch task panicked (a bug").count(),
        1,
        "logged once:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_show_a_role_string_and_metric_labels_stay_bounded() {
    let system = System::start(&[]).await;
    let role = "Hunter2-Secret-Role";
    let body = user_event("user.created", "user_r", T0, None, None, Some(role));
    assert_eq!(system.send("msg_r", &body).await, 202);
    let custom = br#"{"type":"x.custom-7f3a","object":"event","data":{}}"#;
    assert_eq!(system.send("msg_x", custom).await, 202);
    system.wait_for_log(2, WAIT).await;

    let metrics = system.worker_metrics().await;
    assert!(
        metrics
            .contains(r#"clerk_sync_worker_events_total{event_type="other",outcome="ignored"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains("x.custom-7f3a"), "{metrics}");
    let logs = std::fs::read_to_string(system.worker_log(0)).unwrap_or_default();
    assert!(
        logs.contains("role is neither student nor instructor"),
        "the unknown role is reported:\n{logs}"
    );
    assert!(!logs.contains(role), "the role string is metadata:\n{logs}");
}

/// A message held for its dead-letter copy when the worker stops is
/// neither acknowledged nor rejected, and stays so: the batch after it,
/// already committed and waiting to acknowledge (one `multiple` ack per
/// channel), must not acknowledge it with its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_held_at_stop_is_not_acknowledged_by_the_batch_after_it() {
    let mut system = System::start(&[("CLERK_SYNC__AMQP__DELIVERY_LIMIT", "2")]).await;
    system.wait_until_ready().await;
    let topology = system.broker.topology();
    let (connection, channel) = dead_letters_unbound(&system).await;
    let body = user_event("user.created", "user_b", T0, None, Some("B"), None);
    assert_eq!(system.send("msg_b", &body).await, 202);
    wait_for_metric(&system, "clerk_sync_worker_dead_letter_failures_total", 1.0).await;
    // A user of the same shard queue, so of the same channel.
    let shard = topology.queue_for("user_b");
    let Some(user) = (0..1000)
        .map(|i| format!("user_c{i}"))
        .find(|user| topology.queue_for(user) == shard)
    else {
        panic!("no user of {shard} among 1000");
    };
    let body = user_event("user.created", &user, T0, None, Some("C"), None);
    assert_eq!(system.send("msg_c", &body).await, 202);
    system.wait_for_log(1, WAIT).await;

    assert_eq!(system.stop_workers(), [Some(0)]);
    let mut left = Vec::new();
    while let Ok(Some(message)) = channel
        .basic_get(shard.as_str().into(), BasicGetOptions { no_ack: true })
        .await
    {
        let id = message.delivery.properties.message_id().as_ref();
        left.push(id.map(|id| id.to_string()).unwrap_or_default());
    }
    left.sort();
    assert_eq!(left, ["msg_b", "msg_c"], "both back in {shard}");
    assert!(system.broker.take_dead_letters().await.is_empty());
    connection.close(200, "done".into()).await.ok();
}
