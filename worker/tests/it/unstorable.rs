//! Bad input is judged before the database, never dead-lettered: values
//! that only PostgreSQL would refuse (times out of its range, NUL
//! characters, a user id too long for an index or a NOTIFY) are logged
//! `failed` with the reason and acknowledged, and the next good event of the
//! same shard queue is applied.

use crate::support::DeadLetters;
use crate::support::system::{System, user_event};
use clerk_sync_domain::topology::Topology;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, diesel::QueryableByName)]
struct Logged {
    #[diesel(sql_type = Nullable<Text>)]
    event_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    clerk_user_id: Option<String>,
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
}

/// What each case expects of the bad event's log row.
struct Expected<'a> {
    event_type: Option<&'a str>,
    clerk_user_id: Option<&'a str>,
    error: &'a str,
}

/// Send `body` (routed by `routing_key`), then a good event of a user on the
/// same shard queue; check the bad one's log row, that nothing was
/// dead-lettered, and that the good one was applied.
async fn judged_before_the_database(body: &[u8], routing_key: &str, expected: Expected<'_>) {
    let system = System::start(&[]).await;
    let topology = Topology::new(system.broker.prefix.clone(), system.broker.shards);
    let shard = topology.queue_for(routing_key);
    let good = (0..)
        .map(|n| format!("user_good_{n}"))
        .find(|user| topology.queue_for(user) == shard)
        .unwrap_or_default();
    assert_eq!(system.send("msg_bad", body).await, 202);
    let next = user_event("user.created", &good, T0, None, Some("Good"), None);
    assert_eq!(system.send("msg_good", &next).await, 202);
    system.wait_for_log(2, WAIT).await;

    let mut connection = system.database.connect().await;
    let logged: Logged = diesel::sql_query(
        "SELECT event_type, clerk_user_id, outcome, error FROM clerk_sync.events WHERE svix_id = 'msg_bad'",
    )
    .get_result(&mut connection)
    .await
    .unwrap();
    assert_eq!(logged.outcome, "failed", "{logged:?}");
    assert_eq!(logged.event_type.as_deref(), expected.event_type);
    assert_eq!(logged.clerk_user_id.as_deref(), expected.clerk_user_id);
    let error = logged.error.unwrap_or_default();
    assert!(error.contains(expected.error), "{error}");
    let applied: Vec<String> = system
        .rows("Student")
        .await
        .into_iter()
        .map(|row| row.0)
        .collect();
    assert_eq!(applied, [good], "the next event of the shard is applied");
    assert!(
        system.broker.take_dead_letters().await.is_empty(),
        "nothing is dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_out_of_range_is_judged() {
    let body = user_event(
        "user.updated",
        "user_far",
        100_000_000_000_000_000,
        None,
        Some("F"),
        None,
    );
    judged_before_the_database(
        &body,
        "user_far",
        Expected {
            event_type: Some("user.updated"),
            clerk_user_id: None,
            error: "timestamp 100000000000000000 is outside the years 1 to 9999",
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_out_of_range_in_data_is_judged() {
    let mut body: serde_json::Value = serde_json::from_slice(&user_event(
        "user.updated",
        "user_far",
        T0,
        None,
        Some("F"),
        None,
    ))
    .unwrap();
    body["data"]["created_at"] = serde_json::json!(-99_999_999_999_999_999_i64);
    judged_before_the_database(
        body.to_string().as_bytes(),
        "user_far",
        Expected {
            event_type: Some("user.updated"),
            clerk_user_id: Some("user_far"),
            error: "data.created_at -99999999999999999 is outside the years 1 to 9999",
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_character_in_a_string_is_judged() {
    let body = user_event("user.created", "user_nul", T0, None, Some("A\u{0}da"), None);
    judged_before_the_database(
        &body,
        "user_nul",
        Expected {
            event_type: Some("user.created"),
            clerk_user_id: Some("user_nul"),
            error: "data.first_name contains a NUL character",
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_byte_in_the_body_is_logged_byte_for_byte() {
    let body = b"{\"type\":\"user.created\"}\0";
    judged_before_the_database(
        body,
        "msg_bad",
        Expected {
            event_type: None,
            clerk_user_id: None,
            error: "body is not JSON",
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_too_long_for_an_index_is_judged() {
    let user = format!("user_{}", "x".repeat(3_000));
    let body = user_event("user.created", &user, T0, None, Some("L"), None);
    judged_before_the_database(
        &body,
        &user,
        Expected {
            event_type: Some("user.created"),
            clerk_user_id: None,
            error: "data.id is 3005 bytes long; at most 255 can be stored",
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_too_long_for_a_notify_is_judged() {
    let user = format!("user_{}", "y".repeat(9_000));
    let body = user_event("user.updated", &user, T0, None, Some("L"), None);
    judged_before_the_database(
        &body,
        &user,
        Expected {
            event_type: Some("user.updated"),
            clerk_user_id: None,
            error: "data.id is 9005 bytes long",
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_type_is_logged_whenever_the_body_has_one() {
    judged_before_the_database(
        br#"{"type":"user.created","data":{"first_name":"No id"}}"#,
        "msg_bad",
        Expected {
            event_type: Some("user.created"),
            clerk_user_id: None,
            error: "user.created has no string \"data.id\"",
        },
    )
    .await;
}
