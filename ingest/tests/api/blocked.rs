//! RabbitMQ blocking publishers (a memory alarm, on a private node of the
//! test's own: the machine's node is never touched), and the cap on
//! publishes awaiting a confirm: 503 at once with `Retry-After`, `/readyz`
//! naming the block, the connection kept, nothing lost.

use crate::helpers::*;
use crate::other_broker::{drain_at, post_as};
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_testkit::private_node::PrivateNode;
use clerk_sync_testkit::proxy::Proxy;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const CONFIRM_TIMEOUT_MS: u64 = 5_000;

async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
}

async fn readyz(app: &TestApp) -> (u16, serde_json::Value) {
    let response = app.get("/readyz").await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Post one event under `id`: its status, `Retry-After`, error and time taken.
async fn attempt(app: &TestApp, id: &str) -> (u16, Option<String>, String, Duration) {
    let started = Instant::now();
    let response = post_as(app, id, user_event("user.updated", id, now() * 1000)).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let error = body["error"].as_str().unwrap_or_default().to_owned();
    (status, retry_after, error, elapsed)
}

/// HTTP worker threads of the ingest under the memory alarm.
const HTTP_WORKERS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_alarm_answers_503_at_once_and_keeps_the_connection() {
    let node = tokio::task::spawn_blocking(PrivateNode::start)
        .await
        .unwrap();
    let mut settings = test_settings();
    // Heartbeats every 2 s: the block outlasts several (lapin sends nothing
    // while blocked, RabbitMQ does not expect it to).
    settings.amqp.url = SecretUrl::new(format!("{}?heartbeat=2", node.amqp_url()));
    settings.amqp.confirm_timeout_ms = CONFIRM_TIMEOUT_MS;
    // A connection to RabbitMQ per HTTP worker thread.
    settings.ingest.http_workers = HTTP_WORKERS;
    let topology = settings.amqp.topology();
    let app = spawn_app_with(settings).await;

    let mut accepted = Vec::new();
    for i in 0..3 {
        let id = format!("msg_before_{i}_{}", new_svix_id());
        let (status, _, error, _) = attempt(&app, &id).await;
        assert_eq!(status, 202, "{error}");
        accepted.push(id);
    }
    assert_eq!(
        metric(&app, "clerk_sync_ingest_broker_blocked").await,
        Some(0.0)
    );

    node.ctl_ok(&["set_vm_memory_high_watermark", "0.0000001"]);
    // Every answer is prompt, well under the confirm timeout. On each of
    // the ingest's connections, the first publish after the alarm may be
    // the one RabbitMQ answers with the block; from then on nothing is
    // published on it.
    let alarm = Instant::now();
    let mut refused = Vec::new();
    let mut slowest = Duration::ZERO;
    loop {
        let id = format!("msg_during_{}_{}", refused.len(), new_svix_id());
        let (status, retry_after, error, elapsed) = attempt(&app, &id).await;
        assert!(
            elapsed < Duration::from_millis(CONFIRM_TIMEOUT_MS / 4),
            "answered {status} after {elapsed:?}: {error}"
        );
        if status == 202 {
            // The alarm was not raised yet.
            accepted.push(id);
            assert!(alarm.elapsed() < Duration::from_secs(10), "never blocked");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(status, 503, "{error}");
        slowest = slowest.max(elapsed);
        assert_eq!(
            error, "RabbitMQ blocked publishers: memory alarm; retry later",
            "{error}"
        );
        assert_eq!(retry_after.as_deref(), Some("10"));
        refused.push(id);
        if refused.len() == 5 {
            break;
        }
    }
    eprintln!(
        "blocked: {} answers 202 after the watermark was lowered, then 503s in {slowest:?} at most",
        accepted.len() - 3
    );
    let (status, ready) = readyz(&app).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(
        ready["rabbitmq"], "RabbitMQ blocked publishers: memory alarm",
        "{ready}"
    );
    assert_eq!(
        ready["rabbitmq_node"],
        format!("127.0.0.1:{}", node.amqp_port)
    );
    assert_eq!(
        metric(&app, "clerk_sync_ingest_broker_blocked").await,
        Some(1.0)
    );

    // Past the confirm timeout the connection is still the same one: a
    // blocked broker is not a lost one.
    tokio::time::sleep(Duration::from_millis(CONFIRM_TIMEOUT_MS + 1_000)).await;
    let late = new_svix_id();
    let (status, _, error, elapsed) = attempt(&app, &late).await;
    assert_eq!(status, 503, "{error}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(
        metric(&app, "clerk_sync_ingest_broker_reconnects_total").await,
        Some(0.0),
        "the connection was not replaced"
    );

    node.ctl_ok(&["set_vm_memory_high_watermark", "0.6"]);
    let restored = Instant::now();
    while readyz(&app).await.0 != 200 {
        assert!(
            restored.elapsed() < Duration::from_secs(15),
            "{:?}",
            readyz(&app).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(readyz(&app).await.1.get("rabbitmq"), None);
    assert_eq!(
        metric(&app, "clerk_sync_ingest_broker_blocked").await,
        Some(0.0)
    );
    // Svix sends the refused events again, with their svix-ids.
    for id in &refused {
        let (status, _, error, _) = attempt(&app, id).await;
        assert_eq!(status, 202, "{error}");
    }
    assert_eq!(
        metric(&app, "clerk_sync_ingest_broker_reconnects_total").await,
        Some(0.0)
    );

    let queued = drain_at(&node.amqp_url(), &topology).await;
    let mut expected: BTreeMap<String, usize> = accepted
        .iter()
        .chain(&refused)
        .map(|id| (id.clone(), 1))
        .collect();
    // The publish that may have been waiting when its connection's block
    // came, one per connection at most (a connection is blocked at its
    // first publish after the alarm), was answered 503, then queued once
    // RabbitMQ unblocked, besides Svix's copy of the refused ones: the
    // worker's de-duplication absorbs it. `late` may have been that first
    // publish on a connection that had not published since the alarm.
    let mut held: Vec<&String> = refused
        .iter()
        .filter(|id| queued.get(*id) == Some(&2))
        .collect();
    for id in &held {
        expected.insert((*id).clone(), 2);
    }
    if queued.contains_key(&late) {
        held.push(&late);
        expected.insert(late.clone(), 1);
    }
    eprintln!("blocked: queued too, held when their connection's block came: {held:?}");
    assert!(held.len() <= HTTP_WORKERS, "{held:?}");
    assert_eq!(queued, expected, "every 202'd event once, nothing else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_awaiting_a_confirm_are_capped() {
    let proxy = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let mut settings = test_settings();
    settings.amqp.url = SecretUrl::new(proxy.amqp_url());
    settings.amqp.max_unconfirmed = 2;
    settings.amqp.confirm_timeout_ms = 10_000;
    let app = spawn_app_with(settings).await;
    // Slow confirms: RabbitMQ's replies take 1.5 s to arrive.
    proxy.delay_replies(Duration::from_millis(1_500));

    let ids: Vec<String> = (0..6).map(|_| new_svix_id()).collect();
    let answers = futures::future::join_all(ids.iter().map(|id| attempt(&app, id.as_str()))).await;
    let mut accepted = Vec::new();
    for (id, (status, retry_after, error, elapsed)) in ids.iter().zip(answers) {
        match status {
            202 => accepted.push(id.clone()),
            503 => {
                assert_eq!(
                    error,
                    "2 events already await RabbitMQ's confirm (amqp.max_unconfirmed); retry later"
                );
                assert_eq!(retry_after.as_deref(), Some("1"));
                assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
            }
            other => panic!("{other}: {error}"),
        }
    }
    assert_eq!(accepted.len(), 2, "exactly the cap was published");
    proxy.delay_replies(Duration::ZERO);
    let failures = app.get("/metrics").await.text().await.unwrap();
    assert!(
        failures
            .contains("clerk_sync_ingest_publish_failures_total{reason=\"unconfirmed_limit\"} 4"),
        "{failures}"
    );
    let mut queued: Vec<String> = app
        .topology
        .drain()
        .await
        .into_iter()
        .filter_map(|m| m.message_id)
        .collect();
    queued.sort();
    accepted.sort();
    assert_eq!(queued, accepted, "the refused events were never published");
}

#[test]
fn the_cap_must_allow_one_publish() {
    let mut settings = test_settings();
    settings.amqp.max_unconfirmed = 0;
    let error = settings.amqp.validate().unwrap_err().to_string();
    assert!(error.contains("amqp.max_unconfirmed"), "{error}");
    assert!(error.contains("at least 1"), "{error}");
}
