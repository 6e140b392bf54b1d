//! RabbitMQ going away: 503 within a bounded time, `/readyz` not ready, and
//! recovery without restarting the ingest. The outage is a cut in a TCP
//! proxy in front of the real broker, so parallel tests are not disturbed.

use crate::helpers::*;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_testkit::proxy::Proxy;
use std::time::{Duration, Instant};

async fn wait_for_readiness(app: &TestApp, status: u16, within: Duration) -> Duration {
    let started = Instant::now();
    while app.get("/readyz").await.status().as_u16() != status {
        assert!(
            started.elapsed() < within,
            "/readyz did not become {status} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_lost_gives_503_then_recovers_by_itself() {
    let proxy = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let mut settings = test_settings();
    settings.amqp.url = SecretUrl::new(proxy.amqp_url());
    let app = spawn_app_with(settings).await;
    let body = || user_event("user.updated", "user_outage", now() * 1000);

    let (before, response) = app.post_signed(body()).await;
    assert_eq!(response.status().as_u16(), 202);

    proxy.cut();
    // The first request after the cut may be the one that discovers it; every
    // one is answered 503 within the confirm timeout (2 s here), never hangs.
    for _ in 0..3 {
        let started = Instant::now();
        let (status, error) = error_of(app.post_signed(body()).await.1).await;
        assert_eq!(status, 503, "{error}");
        assert!(error.contains("retry later"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
    }
    wait_for_readiness(&app, 503, Duration::from_secs(5)).await;
    assert_eq!(
        app.get("/healthz").await.status().as_u16(),
        200,
        "alive while not ready"
    );

    proxy.restore();
    wait_for_readiness(&app, 200, Duration::from_secs(15)).await;
    let (after, response) = app.post_signed(body()).await;
    assert_eq!(response.status().as_u16(), 202);

    let queued: Vec<String> = app
        .topology
        .drain()
        .await
        .into_iter()
        .filter_map(|m| m.message_id)
        .collect();
    assert_eq!(
        queued,
        [before, after],
        "both 2xx'd events, and none of the refused ones"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    assert!(
        metrics.contains("clerk_sync_ingest_publish_failures_total"),
        "{metrics}"
    );
}

/// Wait until `/readyz` says ready through the node (a proxy) on `port`.
async fn wait_for_node(app: &TestApp, port: u16, within: Duration) {
    let started = Instant::now();
    loop {
        let ready = readiness(app).await;
        if ready["status"] == "ready" && ready["rabbitmq_node"] == format!("127.0.0.1:{port}") {
            break;
        }
        assert!(started.elapsed() < within, "{ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/readyz`'s answer as JSON.
async fn readiness(app: &TestApp) -> serde_json::Value {
    app.get("/readyz").await.json().await.unwrap()
}

/// Started while no broker node answers, the ingest does not exit: it
/// answers 503, says why on `/readyz` (URL redacted), and starts accepting
/// once the broker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_unreachable_at_start_is_waited_for() {
    let proxy = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    proxy.cut();
    let mut settings = test_settings();
    settings.amqp.url = SecretUrl::new(proxy.amqp_url().replace("guest:guest", "guest:sekrit"));
    let app = spawn_app_with(settings).await;
    let body = || user_event("user.updated", "user_waited", now() * 1000);

    let waiting = readiness(&app).await;
    assert_eq!(waiting["status"], "not ready", "{waiting}");
    let why = waiting["rabbitmq"].as_str().unwrap_or_default();
    assert!(why.starts_with("waiting for RabbitMQ"), "{waiting}");
    assert!(
        why.contains(&format!("amqp://guest:***@127.0.0.1:{}", proxy.port)),
        "{waiting}"
    );
    assert!(!waiting.to_string().contains("sekrit"), "{waiting}");
    let (status, error) = error_of(app.post_signed(body()).await.1).await;
    assert_eq!(status, 503, "{error}");

    proxy.restore();
    // The broker refuses the wrong password: still waiting, still 503.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = readiness(&app).await;
    assert_eq!(still["status"], "not ready", "{still}");
    assert!(!still.to_string().contains("sekrit"), "{still}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_comes_up_after_the_ingest_is_used_without_a_restart() {
    let proxy = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    proxy.cut();
    let mut settings = test_settings();
    settings.amqp.url = SecretUrl::new(proxy.amqp_url());
    let app = spawn_app_with(settings).await;
    assert_eq!(app.get("/readyz").await.status().as_u16(), 503);
    proxy.restore();
    wait_for_readiness(&app, 200, Duration::from_secs(15)).await;
    let ready = readiness(&app).await;
    assert_eq!(
        ready["rabbitmq_node"],
        format!("127.0.0.1:{}", proxy.port),
        "{ready}"
    );
    let (id, response) = app
        .post_signed(user_event("user.updated", "user_late", 1))
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let queued: Vec<_> = app.topology.drain().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].message_id.as_deref(), Some(id.as_str()));
}

/// Two nodes listed: when the one in use goes away, the ingest moves to
/// the other without a restart, and counts a reconnect and a failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_fails_over_to_the_next_one_listed() {
    let first = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let second = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let mut settings = test_settings();
    settings.amqp.url = SecretUrl::new(format!("{},{}", first.amqp_url(), second.amqp_url()));
    let app = spawn_app_with(settings).await;
    assert_eq!(
        readiness(&app).await["rabbitmq_node"],
        format!("127.0.0.1:{}", first.port)
    );
    let (before, response) = app
        .post_signed(user_event("user.updated", "user_failover", 1))
        .await;
    assert_eq!(response.status().as_u16(), 202);

    first.cut();
    wait_for_node(&app, second.port, Duration::from_secs(15)).await;
    let (after, response) = app
        .post_signed(user_event("user.updated", "user_failover", 2))
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let queued: Vec<String> = app
        .topology
        .drain()
        .await
        .into_iter()
        .filter_map(|m| m.message_id)
        .collect();
    assert_eq!(queued, [before, after]);
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    for line in [
        "clerk_sync_ingest_broker_reconnects_total 1".to_owned(),
        "clerk_sync_ingest_broker_failovers_total 1".to_owned(),
        format!(
            "clerk_sync_ingest_broker_node{{node=\"127.0.0.1:{}\"}} 1",
            second.port
        ),
        format!(
            "clerk_sync_ingest_broker_node{{node=\"127.0.0.1:{}\"}} 0",
            first.port
        ),
    ] {
        assert!(metrics.contains(&line), "{line} not in {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_that_does_not_come_in_time_is_503() {
    let proxy = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let mut settings = test_settings();
    settings.amqp.url = SecretUrl::new(proxy.amqp_url());
    settings.amqp.confirm_timeout_ms = 300;
    let app = spawn_app_with(settings).await;

    proxy.delay_replies(Duration::from_millis(1_000));
    let started = Instant::now();
    let (status, error) = error_of(
        app.post_signed(user_event("user.updated", "user_slow", 1))
            .await
            .1,
    )
    .await;
    assert_eq!(status, 503);
    assert!(
        error.contains("did not confirm the event within 300 ms"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_millis(1_000));
    proxy.delay_replies(Duration::ZERO);
    // Svix retries; dedup by svix-id in the worker makes a late copy harmless.
    app.topology.drain_until(1, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_unroutable_event_is_503_not_lost_silently() {
    let app = spawn_app().await;
    // Someone deleted the user's shard queue: RabbitMQ returns the message.
    let queue = app.topology.topology.queue_for("user_unroutable");
    let (_connection, channel) = broker_channel().await;
    channel
        .queue_delete(
            queue.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    let (status, error) = error_of(
        app.post_signed(user_event("user.created", "user_unroutable", 1))
            .await
            .1,
    )
    .await;
    assert_eq!(status, 503);
    assert!(
        error.contains(&format!("could not route the event to queue {queue}")),
        "{error}"
    );
    // Other users' queues still work.
    let other = (0..100)
        .map(|i| format!("user_{i}"))
        .find(|u| app.topology.topology.queue_for(u) != queue)
        .unwrap_or_default();
    assert_eq!(
        app.post_signed(user_event("user.created", &other, 1))
            .await
            .1
            .status()
            .as_u16(),
        202
    );
}

#[tokio::test]
async fn a_nack_is_503() {
    let app = spawn_app().await;
    // A full queue (x-overflow reject-publish) nacks every publish.
    let policy = format!("{}-full", app.topology.topology.exchange());
    let pattern = format!(
        "^{}\\.shard\\.",
        regex_escape(app.topology.topology.exchange().trim_end_matches(".events"))
    );
    let _clear = full_queues(&policy, &pattern);
    let started = Instant::now();
    let mut answer = (0, String::new());
    // Policies take effect asynchronously: until then events are queued.
    while started.elapsed() < Duration::from_secs(10) {
        let response = app
            .post_signed(user_event("user.created", "user_full", 1))
            .await
            .1;
        if response.status().as_u16() == 503 {
            answer = error_of(response).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert!(
        answer.1.contains("refused the event (nack)"),
        "{}",
        answer.1
    );
}

/// A node that goes silent (as one cut off by a partition does: no reset,
/// no answer) costs one confirm timeout: the ingest then drops that
/// connection and tries the other node first, instead of waiting for the
/// silent one's heartbeats to fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_is_left_after_one_confirm_timeout() {
    let silent = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let other = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let mut settings = test_settings();
    settings.amqp.url = SecretUrl::new(format!("{},{}", silent.amqp_url(), other.amqp_url()));
    settings.amqp.confirm_timeout_ms = 300;
    let app = spawn_app_with(settings).await;
    assert_eq!(
        readiness(&app).await["rabbitmq_node"],
        format!("127.0.0.1:{}", silent.port)
    );

    silent.delay_replies(Duration::from_secs(3600));
    let (status, error) = error_of(
        app.post_signed(user_event("user.updated", "user_silent", 1))
            .await
            .1,
    )
    .await;
    assert_eq!(status, 503);
    assert!(
        error.contains("did not confirm the event within 300 ms"),
        "{error}"
    );
    wait_for_node(&app, other.port, Duration::from_secs(5)).await;
    let (id, response) = app
        .post_signed(user_event("user.updated", "user_silent", 2))
        .await;
    assert_eq!(response.status().as_u16(), 202);
    silent.cut();
    // The refused event reached the queue before its confirm was held
    // back (Svix's retry is absorbed by the worker's de-duplication).
    let queued: Vec<String> = app
        .topology
        .drain_until(2, Duration::from_secs(5))
        .await
        .into_iter()
        .filter_map(|m| m.message_id)
        .collect();
    assert!(queued.contains(&id), "{queued:?}");
}
