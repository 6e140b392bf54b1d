//! The body's deadline (408), a length over the limit (413), and the slots
//! for requests in flight (503 with `Retry-After`): each answered at once,
//! the connection closed, nothing published, and the slot given back.

use super::client::{self, metric};
use crate::helpers::*;
use std::time::Duration;

const WEBHOOK_503: &str =
    "clerk_sync_ingest_http_requests_total{route=\"/api/webhooks/clerk\",status=\"503\"}";

fn failures(reason: &str) -> String {
    format!("clerk_sync_ingest_verification_failures_total{{reason=\"{reason}\"}}")
}

fn shed(reason: &str) -> String {
    format!("clerk_sync_ingest_http_requests_shed_total{{reason=\"{reason}\"}}")
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.unwrap()
}

/// Time for the ingest to take a request just written into its slot.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_past_its_deadline_is_408_the_connection_closed_and_the_slot_freed() {
    let mut settings = test_settings();
    settings.ingest.body_timeout_ms = 1_000;
    settings.ingest.max_in_flight = 1;
    let app = spawn_app_with(settings).await;
    let stalled = client::stall(&app.address, 2_000, 500).await;
    settle().await;
    let body = || user_event("user.updated", "user_deadline", now() * 1000);
    let (status, error) = error_of(app.post_signed(body()).await.1).await;
    assert_eq!(status, 503, "the stalled body holds the only slot: {error}");

    let answer = stalled.answer(Duration::from_secs(5)).await;
    assert_eq!(answer.status, Some(408), "{answer:?}");
    assert!(
        answer.text.contains("body not received within 1000 ms"),
        "{answer:?}"
    );
    assert!(answer.closed, "{answer:?}");
    let answered = answer.answered_after.unwrap_or_default();
    assert!(
        answered >= Duration::from_secs(1) && answered < Duration::from_secs(2),
        "{answer:?}"
    );
    let (id, response) = app.post_signed(body()).await;
    assert_eq!(response.status().as_u16(), 202, "the slot is free again");
    let queued: Vec<_> = app
        .topology
        .drain()
        .await
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(queued, [Some(id)], "only the event answered 202");
    assert_eq!(metric(&metrics(&app).await, &failures("body_timeout")), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_the_limit_is_413_before_any_body_byte() {
    let mut settings = test_settings();
    settings.ingest.body_limit_bytes = 4096;
    let app = spawn_app_with(settings).await;
    for declared in [4097, 10_000_000_000] {
        // No body byte is ever sent: the answer cannot wait for one.
        let answer = client::stall(&app.address, declared, 0)
            .await
            .answer(Duration::from_secs(3))
            .await;
        assert_eq!(answer.status, Some(413), "{declared}: {answer:?}");
        assert!(
            answer.text.contains("larger than the limit of 4096 bytes"),
            "{answer:?}"
        );
        assert!(answer.answered_at_once(), "{answer:?}");
    }
    assert!(app.topology.drain().await.is_empty());
    assert_eq!(
        metric(&metrics(&app).await, &failures("body_too_large")),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_slots_it_is_503_with_retry_after_at_once_and_nothing_is_published() {
    let mut settings = test_settings();
    settings.ingest.max_in_flight = 2;
    settings.ingest.max_large_in_flight = 1;
    let app = spawn_app_with(settings).await;
    let _large = client::stall(&app.address, 500_000, 1_000).await;
    settle().await;

    // A second large body: refused with only its head sent.
    let answer = client::stall(&app.address, 500_000, 0)
        .await
        .answer(Duration::from_secs(3))
        .await;
    assert_eq!(answer.status, Some(503), "{answer:?}");
    assert_eq!(answer.header("retry-after"), Some("10"), "{answer:?}");
    assert!(
        answer.text.contains("ingest.max_large_in_flight"),
        "{answer:?}"
    );
    assert!(answer.answered_at_once(), "{answer:?}");

    // A small body takes the last slot; then even a signed event is shed.
    let _small = client::stall(&app.address, 1_000, 10).await;
    settle().await;
    let (_, response) = app
        .post_signed(user_event("user.created", "user_shed", 1))
        .await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("10")
    );
    let (status, error) = error_of(response).await;
    assert_eq!(status, 503);
    assert!(error.contains("ingest.max_in_flight"), "{error}");

    assert!(app.topology.drain().await.is_empty(), "nothing published");
    let text = metrics(&app).await;
    assert_eq!(metric(&text, &shed("max_large_in_flight")), 1.0, "{text}");
    assert_eq!(metric(&text, &shed("max_in_flight")), 1.0, "{text}");
    assert_eq!(metric(&text, WEBHOOK_503), 2.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_stalled_clients_go_away_their_slots_are_freed_and_events_flow_again() {
    let mut settings = test_settings();
    settings.ingest.max_in_flight = 4;
    settings.ingest.max_large_in_flight = 2;
    // Far away: only the clients' leaving can free the slots in time.
    settings.ingest.body_timeout_ms = 60_000;
    let app = spawn_app_with(settings).await;
    let mut stalled = Vec::new();
    for (declared, sent) in [(900_000, 800_000), (900_000, 10), (1_000, 500), (1_000, 0)] {
        stalled.push(client::stall(&app.address, declared, sent).await);
    }
    settle().await;
    let body = |i: i64| user_event("user.updated", &format!("user_back_{i}"), i);
    let (status, _) = error_of(app.post_signed(body(0)).await.1).await;
    assert_eq!(status, 503, "every slot is held");

    drop(stalled);
    let started = std::time::Instant::now();
    let mut accepted = Vec::new();
    for i in 1..=20 {
        let (id, response) = app.post_signed(body(i)).await;
        match response.status().as_u16() {
            202 => accepted.push(id),
            // Until the ingest has seen the clients go.
            503 if accepted.is_empty() && started.elapsed() < Duration::from_secs(3) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("event {i}: {other} after {:?}", started.elapsed()),
        }
    }
    assert!(accepted.len() >= 15, "{}", accepted.len());
    let mut queued: Vec<String> = app
        .topology
        .drain()
        .await
        .into_iter()
        .filter_map(|m| m.message_id)
        .collect();
    queued.sort();
    accepted.sort();
    assert_eq!(queued, accepted, "exactly the events answered 202");
    let text = metrics(&app).await;
    assert_eq!(metric(&text, &failures("body_unreadable")), 4.0, "{text}");
    assert_eq!(
        metric(&text, "clerk_sync_ingest_http_requests_in_flight"),
        1.0,
        "only this /metrics request: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_stalls_and_an_idle_connection_are_closed_by_the_server() {
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let head = format!("POST /api/webhooks/clerk HTTP/1.1\r\nHost: {host}\r\n");
    let idle = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let (head, idle) = tokio::join!(
        async {
            client::send(&app.address, &head)
                .await
                .answer(Duration::from_secs(10))
                .await
        },
        async {
            client::send(&app.address, &idle)
                .await
                .answer(Duration::from_secs(25))
                .await
        },
    );
    // connection_limits::CLIENT_REQUEST_TIMEOUT, 5 s from the accept, for
    // the head.
    assert_eq!(head.status, Some(408), "{head:?}");
    let answered = head.answered_after.unwrap_or_default();
    assert!(
        head.closed
            && answered >= Duration::from_millis(4_500)
            && answered < Duration::from_secs(7),
        "{head:?}"
    );
    // connection_limits::KEEP_ALIVE, 15 s, for an idle connection.
    assert_eq!(idle.status, Some(200), "{idle:?}");
    assert!(
        idle.closed
            && idle.after >= Duration::from_millis(14_500)
            && idle.after < Duration::from_secs(18),
        "{idle:?}"
    );
    assert!(app.topology.drain().await.is_empty());
}
