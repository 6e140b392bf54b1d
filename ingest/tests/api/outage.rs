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

#[tokio::test]
async fn a_broker_unreachable_at_start_is_named_in_the_error() {
    let mut settings = test_settings();
    // A port nothing listens on: take one and let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    settings.amqp.url = SecretUrl::new(format!("amqp://guest:sekrit@127.0.0.1:{port}/%2f"));
    let error = build_error(&settings).await;
    assert!(
        error.contains(&format!(
            "RabbitMQ at amqp://guest:***@127.0.0.1:{port}/%2f is unreachable"
        )),
        "{error}"
    );
    assert!(!error.contains("sekrit"));
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
    let set = clerk_sync_testkit::broker::rabbitmqctl()
        .args([
            "-q",
            "set_policy",
            &policy,
            &pattern,
            r#"{"max-length": 0}"#,
            "--apply-to",
            "queues",
        ])
        .status()
        .unwrap();
    assert!(set.success(), "rabbitmqctl set_policy failed");
    let _clear = ClearPolicy(policy.clone());
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

/// Clears a RabbitMQ policy when dropped, even when the test panics.
struct ClearPolicy(String);

impl Drop for ClearPolicy {
    fn drop(&mut self) {
        let _ = clerk_sync_testkit::broker::rabbitmqctl()
            .args(["-q", "clear_policy", &self.0])
            .status();
    }
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
