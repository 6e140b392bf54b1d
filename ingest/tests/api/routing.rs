//! A 2xx'd event is in the queue its user routes to, byte for byte, with its
//! headers; one user's events stay in one queue, in order.

use crate::helpers::*;
use clerk_sync_domain::message_headers as header;

#[tokio::test]
async fn an_event_lands_in_its_users_shard_byte_for_byte_with_its_headers() {
    let app = spawn_app().await;
    let fixture = format!(
        "{}/../fixtures/clerk/user.updated.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(&fixture).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let id = new_svix_id();
    let headers = signed_headers(SECRET, &id, now(), &body);
    assert_eq!(
        app.post(&headers, body.clone()).await.status().as_u16(),
        202
    );

    let queued = app.topology.drain().await;
    assert_eq!(queued.len(), 1);
    let message = &queued[0];
    let user = "user_29w83sxmDNGwOuEthce5gg56FcC";
    assert_eq!(message.queue, app.topology.topology.queue_for(user));
    assert_eq!(message.body, body, "the body is queued exactly as received");
    assert_eq!(message.message_id.as_deref(), Some(id.as_str()));
    assert!(message.persistent);
    assert_eq!(
        message.header(header::SVIX_ID).as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        message.header(header::SVIX_TIMESTAMP),
        Some(headers[1].1.clone())
    );
    assert_eq!(
        message.header(header::SVIX_SIGNATURE),
        Some(headers[2].1.clone())
    );
    assert_eq!(
        message.header(header::EVENT_TYPE).as_deref(),
        Some("user.updated")
    );
    assert_eq!(message.header(header::ROUTING_KEY).as_deref(), Some(user));
    assert!(message.header(header::RECEIVED_AT_MS).is_some());
}

#[tokio::test]
async fn one_users_events_share_a_queue_in_publish_order() {
    let app = spawn_app().await;
    let users: Vec<String> = (0..12).map(|i| format!("user_{i:02}")).collect();
    let mut sent = Vec::new();
    for round in 0..3 {
        for user in &users {
            let (id, response) = app
                .post_signed(user_event("user.updated", user, 1_000 + round))
                .await;
            assert_eq!(response.status().as_u16(), 202);
            sent.push((user.clone(), id));
        }
    }
    let queued = app.topology.drain().await;
    assert_eq!(queued.len(), sent.len());
    let spread: std::collections::BTreeSet<&str> =
        queued.iter().map(|m| m.queue.as_str()).collect();
    assert!(
        spread.len() > 1,
        "12 users should spread over more than one shard"
    );
    for user in &users {
        let expected: Vec<&str> = sent
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, id)| id.as_str())
            .collect();
        let in_queue: Vec<&Queued> = queued
            .iter()
            .filter(|m| m.header(header::ROUTING_KEY).as_deref() == Some(user.as_str()))
            .collect();
        assert!(
            in_queue
                .iter()
                .all(|m| m.queue == app.topology.topology.queue_for(user))
        );
        let order: Vec<&str> = in_queue
            .iter()
            .filter_map(|m| m.message_id.as_deref())
            .collect();
        assert_eq!(order, expected, "{user}'s events out of order");
    }
}

#[tokio::test]
async fn events_about_no_user_are_routed_by_their_svix_id() {
    let app = spawn_app().await;
    let fixture = format!(
        "{}/../fixtures/clerk/organization.created.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(&fixture).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let (id, response) = app.post_signed(body).await;
    assert_eq!(response.status().as_u16(), 202);
    let queued = app.topology.drain().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].queue, app.topology.topology.queue_for(&id));
    assert_eq!(
        queued[0].header(header::EVENT_TYPE).as_deref(),
        Some("organization.created")
    );
}
