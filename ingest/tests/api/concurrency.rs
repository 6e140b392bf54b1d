//! Many requests in flight at once do not wait on each other's confirms.

use crate::helpers::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_signed_requests_at_once_are_all_queued() {
    // Room for all of them at once (the defaults shed some with 503).
    let mut settings = test_settings();
    settings.ingest.max_in_flight = 500;
    settings.ingest.max_connections = 500;
    settings.amqp.max_unconfirmed = 500;
    let app = spawn_app_with(settings).await;
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
