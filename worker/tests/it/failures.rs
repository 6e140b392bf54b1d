//! What the worker does when things go wrong, and what it tells the app and
//! the operators: dead letters with a reason, NOTIFY, metrics, readiness.

use crate::support::DeadLetters;
use crate::support::system::{System, user_event};
use futures::StreamExt;
use std::time::{Duration, Instant};

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_is_dead_lettered_with_its_reason() {
    let system = System::start(&[("CLERK_SYNC__AMQP__DELIVERY_LIMIT", "2")]).await;
    system.wait_until_ready().await;
    // The app's own rule refuses user_b's row (as a check constraint or a
    // trigger of the app would): every delivery fails.
    system
        .execute(
            r#"ALTER TABLE "Student" ADD CONSTRAINT "Student_not_b" CHECK ("clerkId" <> 'user_b')"#,
        )
        .await;
    for (svix_id, user) in [
        ("msg_a", "user_a"),
        ("msg_b", "user_b"),
        ("msg_c", "user_c"),
    ] {
        system
            .send(
                svix_id,
                &user_event("user.created", user, T0, None, Some("X"), None),
            )
            .await;
    }
    system.wait_for_log(2, WAIT).await;

    let started = Instant::now();
    let dead = loop {
        let dead = system.broker.take_dead_letters().await;
        if !dead.is_empty() || started.elapsed() > WAIT {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0.as_deref(), Some("msg_b"));
    let reason = dead[0].1.clone().unwrap_or_default();
    assert!(reason.contains("Student_not_b"), "{reason}");
    let outcomes: Vec<String> = system
        .outcomes()
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(
        outcomes,
        ["msg_a", "msg_c"],
        "the other events are applied; msg_b waits in the dead-letter queue"
    );
    let metrics = system.worker_metrics().await;
    assert!(
        metrics.contains("clerk_sync_worker_dead_letters_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_notified_after_the_commit_with_the_user_id() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let mut listener = system.database.connect().await;
    diesel_async::RunQueryDsl::execute(diesel::sql_query("LISTEN clerk_sync_user"), &mut listener)
        .await
        .unwrap();
    system
        .send(
            "msg_n",
            &user_event("user.created", "user_notified", T0, None, Some("N"), None),
        )
        .await;
    let notifications = listener.notifications_stream();
    let mut notifications = std::pin::pin!(notifications);
    let notification = tokio::time::timeout(WAIT, notifications.next())
        .await
        .unwrap_or_else(|_| panic!("no notification"))
        .expect("stream ended")
        .unwrap();
    assert_eq!(notification.payload, "user_notified");
    // Sent on commit: the row is there by now.
    assert_eq!(system.rows("Student").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_events_by_type_and_outcome() {
    let system = System::start(&[]).await;
    system
        .send(
            "m1",
            &user_event("user.created", "user_m", T0, None, Some("M"), None),
        )
        .await;
    system
        .send(
            "m2",
            &user_event("user.created", "user_m", T0 - 1, None, Some("M"), None),
        )
        .await;
    system.send("m3", b"not json").await;
    system.wait_for_log(3, WAIT).await;
    let metrics = system.worker_metrics().await;
    for line in [
        r#"clerk_sync_worker_events_total{event_type="user.created",outcome="applied"} 1"#,
        r#"clerk_sync_worker_events_total{event_type="user.created",outcome="stale"} 1"#,
        r#"clerk_sync_worker_events_total{event_type="unknown",outcome="failed"} 1"#,
        "clerk_sync_worker_database_connected 1",
        "clerk_sync_worker_broker_connected 1",
        "clerk_sync_worker_freshness_seconds_count 1",
        "clerk_sync_worker_apply_seconds_count",
        "clerk_sync_worker_batch_size_count",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}
