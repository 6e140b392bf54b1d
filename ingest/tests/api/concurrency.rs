//! Many requests in flight at once do not wait on each other's confirms,
//! and each gets its own.

use crate::helpers::*;
use clerk_sync_ingest::settings::Settings;
use futures::StreamExt;
use std::time::{Duration, Instant};

/// Room for 500 requests at once (the defaults shed some with 503).
fn room_for_500() -> Settings {
    let mut settings = test_settings();
    settings.ingest.max_in_flight = 500;
    settings.ingest.max_connections = 500;
    settings.amqp.max_unconfirmed = 500;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_signed_requests_at_once_are_all_queued() {
    let app = spawn_app_with(room_for_500()).await;
    let requests = (0..500).map(|i| {
        let body = user_event("user.updated", &format!("user_{}", i % 97), 1_000 + i);
        let id = new_svix_id();
        let headers = signed_headers(SECRET, &id, now(), &body);
        let app = &app;
        async move { (id, app.post(&headers, body).await.status().as_u16()) }
    });
    let answers = futures::future::join_all(requests).await;
    let refused: Vec<_> = answers
        .iter()
        .filter(|(_, status)| *status != 202)
        .collect();
    assert!(refused.is_empty(), "not all 202: {refused:?}");

    let queued = app.topology.drain_until(500, Duration::from_secs(10)).await;
    let mut queued_ids: Vec<String> = queued.iter().filter_map(|m| m.message_id.clone()).collect();
    let mut sent_ids: Vec<String> = answers.into_iter().map(|(id, _)| id).collect();
    queued_ids.sort();
    sent_ids.sort();
    assert_eq!(
        queued_ids, sent_ids,
        "every 2xx'd event is queued exactly once"
    );
}

/// Requests answered at once by both HTTP worker threads, half to a shard
/// queue that takes everything and half to one that refuses everything
/// (full: RabbitMQ nacks): each gets the confirm of its own publish. lapin
/// numbers a publish and queues its frames in two steps, and two threads
/// publishing at once on one channel got each other's confirms (a 2xx for
/// a refused event) until the ingest made the two steps one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_each_get_their_own_confirm() {
    let app = spawn_app_with(room_for_500()).await;
    let topology = &app.topology.topology;
    let full = topology.shard_queue(1);
    let users_of = |full_one: bool| -> Vec<String> {
        (0..)
            .map(|i| format!("user_{i}"))
            .filter(|user| (topology.queue_for(user) == full) == full_one)
            .take(50)
            .collect()
    };
    let (taking, refusing) = (users_of(false), users_of(true));
    let _clear = full_queues(
        &format!("{full}-full"),
        &format!("^{}$", regex_escape(&full)),
    );
    // Policies take effect asynchronously.
    let started = Instant::now();
    while app
        .post_signed(user_event("user.created", &refusing[0], 1))
        .await
        .1
        .status()
        != 503
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{full} still takes events"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = app.topology.drain().await;

    let requests = (0..3000).map(|i| {
        let refused = i % 2 == 1;
        let users = if refused { &refusing } else { &taking };
        let body = user_event("user.updated", &users[i % users.len()], 1_000 + i as i64);
        let id = new_svix_id();
        let headers = signed_headers(SECRET, &id, now(), &body);
        let app = &app;
        async move {
            (
                id,
                refused,
                app.post(&headers, body).await.status().as_u16(),
            )
        }
    });
    let answers: Vec<(String, bool, u16)> = futures::stream::iter(requests)
        .buffer_unordered(64)
        .collect()
        .await;
    // RabbitMQ may take a few events into a full quorum queue before it
    // refuses: what must hold is that each 2xx'd event is queued.
    let accepted: Vec<&String> = answers
        .iter()
        .filter(|(_, _, status)| *status == 202)
        .map(|(id, _, _)| id)
        .collect();
    let refused = answers
        .iter()
        .filter(|(_, full, status)| *full && *status == 503)
        .count();
    assert!(refused > 1000, "only {refused} refused");
    let queued: std::collections::HashSet<String> = app
        .topology
        .drain_until(accepted.len(), Duration::from_secs(10))
        .await
        .into_iter()
        .filter_map(|message| message.message_id)
        .collect();
    let lost: Vec<&&String> = accepted
        .iter()
        .filter(|id| !queued.contains(**id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} 2xx'd events are not queued (answered for another's confirm): {:?}",
        lost.len(),
        accepted.len(),
        &lost[..lost.len().min(5)]
    );
}
