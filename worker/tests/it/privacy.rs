//! Personal data: after `user.deleted` (privacy.erase_on_delete, on by
//! default) or `forget --user`, no personal value of that user is anywhere
//! in the database, and replay still converges. Also `verify-log`.

use crate::support::system::{SECRET, System, deleted_event, user_event};
use crate::support::{DeadLetterSpec, DeadLetters};
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);
/// Ada's personal values (`user_event` gives every user the same last name,
/// image and second address, so those are checked by key, below).
const PERSONAL: [&str; 4] = [
    "ada@example.com",
    "Ada",
    "203.0.113.7",
    "Mozilla/5.0 (Ada's laptop)",
];
/// Keys that hold personal values in a Clerk body.
const PERSONAL_KEYS: [&str; 8] = [
    "email_address",
    "first_name",
    "last_name",
    "image_url",
    "metadata",
    "phone_numbers",
    "username",
    "event_attributes",
];

fn session_event(user: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "session.created", "object": "event", "timestamp": T0,
        "data": {"id": "sess_1", "object": "session", "user_id": user, "status": "active"},
        "event_attributes": {"http_request": {"client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (Ada's laptop)"}}
    }))
    .unwrap()
}

/// Every row of every table of the database, as text.
async fn everything(system: &System) -> String {
    let tables = system
        .texts(
            "SELECT format('%I.%I', table_schema, table_name) AS v FROM information_schema.tables \
             WHERE table_schema IN ('public', 'clerk_sync') AND table_type = 'BASE TABLE'",
        )
        .await;
    assert!(tables.len() >= 6, "all tables found");
    let mut dump = String::new();
    for table in tables {
        let sql = format!("SELECT t::text AS v FROM {table} t");
        for row in system.texts(&sql).await {
            dump.push_str(&row);
            dump.push('\n');
        }
    }
    dump
}

async fn send_ada(system: &System) {
    let events = [
        (
            "m1",
            user_event(
                "user.created",
                "user_ada",
                T0,
                Some("ada@example.com"),
                Some("Ada"),
                Some("instructor"),
            ),
        ),
        ("m2", session_event("user_ada")),
        (
            "m3",
            user_event(
                "user.updated",
                "user_ada",
                T0 + 10,
                Some("ada@example.com"),
                Some("Ada"),
                None,
            ),
        ),
        (
            "b1",
            user_event(
                "user.created",
                "user_bob",
                T0,
                Some("bob@example.com"),
                Some("Bob"),
                None,
            ),
        ),
    ];
    for (id, body) in &events {
        assert_eq!(system.send(id, body).await, 202);
    }
    system.wait_for_log(events.len() as i64, WAIT).await;
}

async fn assert_nothing_personal(system: &System) {
    let dump = everything(system).await;
    for value in PERSONAL {
        assert!(
            !dump.contains(value),
            "{value:?} is still in the database:\n{dump}"
        );
    }
    for key in PERSONAL_KEYS {
        let sql = format!(
            "SELECT count(*) AS n FROM clerk_sync.events WHERE clerk_user_id = 'user_ada' \
             AND payload->>'body' LIKE '%{key}%'"
        );
        assert_eq!(
            system.scalar(&sql).await,
            Some(0),
            "{key} in one of Ada's events"
        );
    }
    assert!(
        dump.contains("bob@example.com"),
        "other users keep their data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_user_leaves_no_personal_value_in_the_database() {
    let system = System::start(&[]).await;
    send_ada(&system).await;
    assert!(everything(&system).await.contains("ada@example.com"));

    assert_eq!(
        system.send("m4", &deleted_event("user_ada", T0 + 20)).await,
        202
    );
    // A retry of an old update arriving after the deletion is erased too.
    let late = user_event(
        "user.updated",
        "user_ada",
        T0 + 5,
        Some("ada@example.com"),
        Some("Ada"),
        None,
    );
    assert_eq!(system.send("m5", &late).await, 202);
    system.wait_for_log(6, WAIT).await;
    assert_nothing_personal(&system).await;

    // Ids, types, versions and outcomes stay: replay still converges.
    let outcomes = system.outcomes().await;
    assert_eq!(outcomes.len(), 6, "{outcomes:?}");
    let check = system
        .cli(&["replay", "--dry-run", "--json"], &[])
        .await
        .json();
    assert_eq!(check["totals"]["users_changed"], 0, "{check}");
    assert_eq!(check["totals"]["states_corrected"], 0, "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_on_delete_can_be_turned_off() {
    let system = System::start(&[("CLERK_SYNC__PRIVACY__ERASE_ON_DELETE", "false")]).await;
    send_ada(&system).await;
    assert_eq!(
        system.send("m4", &deleted_event("user_ada", T0 + 20)).await,
        202
    );
    system.wait_for_log(5, WAIT).await;
    let dump = everything(&system).await;
    assert!(
        dump.contains("ada@example.com"),
        "the log keeps the payloads"
    );
    assert_eq!(
        system.rows("Instructor").await.len(),
        0,
        "the rows are gone all the same"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_erases_a_user_on_request_and_keeps_them_gone() {
    let system = System::start(&[("CLERK_SYNC__PRIVACY__ERASE_ON_DELETE", "false")]).await;
    send_ada(&system).await;
    // One of Ada's events and one of Bob's wait in the dead-letter queue.
    for (svix_id, user, name, email) in [
        ("dl_ada", "user_ada", "Ada", "ada@example.com"),
        ("dl_bob", "user_bob", "Bob", "bob@example.com"),
    ] {
        let body = user_event("user.updated", user, T0 + 5, Some(email), Some(name), None);
        system
            .broker
            .publish_dead_letter(&DeadLetterSpec {
                svix_id,
                body: &body,
                reason: "failed",
                deliveries: 10,
                received_at_ms: u64::try_from(T0).unwrap(),
            })
            .await;
    }
    let forget = system
        .cli(&["forget", "--user", "user_ada", "--json"], &[])
        .await;
    assert_eq!(forget.code, Some(0), "{forget:?}");
    let report = forget.json();
    assert_eq!(report[0]["user"], "user_ada");
    assert_eq!(report[0]["rows_removed"], 2, "{report}");
    assert_eq!(
        report[0]["events_erased"], 4,
        "three events and the recorded request"
    );
    assert_eq!(report[0]["dead_letters_erased"], 1, "{report}");
    let left: Vec<Option<String>> = system
        .broker
        .take_dead_letters()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(left, [Some("dl_bob".to_owned())], "Bob's dead letter stays");
    assert_nothing_personal(&system).await;
    let forgotten = system.outcomes().await;
    assert!(
        forgotten
            .iter()
            .any(|(id, outcome, _)| id.starts_with("forget_") && outcome == "applied"),
        "the request is in the log: {forgotten:?}"
    );

    // An update Clerk sends later (and a session event) does not bring
    // them back, and is erased as it is logged, though erasure on delete is
    // off: an erased user stays erased.
    let later = user_event(
        "user.updated",
        "user_ada",
        T0 + 99_000,
        Some("ada@example.com"),
        Some("Ada"),
        None,
    );
    assert_eq!(system.send("m9", &later).await, 202);
    assert_eq!(system.send("m10", &session_event("user_ada")).await, 202);
    system.wait_for_log(8, WAIT).await;
    assert!(
        system
            .rows("Student")
            .await
            .iter()
            .all(|r| r.0 != "user_ada")
    );
    assert_nothing_personal(&system).await;
    let human = system.cli(&["forget", "--user", "user_ada"], &[]).await;
    assert_eq!(human.code, Some(0), "{human:?}");
    assert!(
        human
            .stdout
            .starts_with("user_ada: forgotten (0 rows removed"),
        "{human:?}"
    );
    assert_nothing_personal(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_refuses_bad_arguments_and_says_when_the_database_is_down() {
    let system = System::start(&[]).await;
    let missing = system.cli(&["forget"], &[]).await;
    assert_eq!(missing.code, Some(2), "{missing:?}");
    assert!(missing.stderr.contains("--user"), "{missing:?}");
    let blank = system.cli(&["forget", "--user", "user a"], &[]).await;
    assert_eq!(blank.code, Some(2), "{blank:?}");
    let down = system
        .cli(
            &["forget", "--user", "user_ada"],
            &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")],
        )
        .await;
    assert_eq!(down.code, Some(1), "{down:?}");
    assert!(down.stderr.contains("is unreachable"), "{down:?}");

    // RabbitMQ down: the database part is done, the dead letters are not,
    // and it says so (forget can run again).
    send_ada(&system).await;
    let no_broker = system
        .cli(
            &["forget", "--user", "user_ada"],
            &[("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")],
        )
        .await;
    assert_eq!(no_broker.code, Some(1), "{no_broker:?}");
    assert!(
        no_broker.stderr.contains(
            "the users are forgotten in the database, but their dead letters could not be erased; run forget again"
        ),
        "{no_broker:?}"
    );
    assert_nothing_personal(&system).await;
    let again = system.cli(&["forget", "--user", "user_ada"], &[]).await;
    assert_eq!(again.code, Some(0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_log_reports_events_that_do_not_verify() {
    let system = System::start(&[]).await;
    send_ada(&system).await;
    assert_eq!(
        system.send("m4", &deleted_event("user_bob", T0 + 20)).await,
        202
    );
    system.wait_for_log(5, WAIT).await;
    let forget = system.cli(&["forget", "--user", "user_carol"], &[]).await;
    assert_eq!(forget.code, Some(0), "{forget:?}");

    let clean = system.cli(&["verify-log", "--json"], &[]).await;
    assert_eq!(clean.code, Some(0), "{clean:?}");
    let report = clean.json();
    assert_eq!(report["checked"], 6);
    assert_eq!(report["verified"], 3, "ada's three events");
    assert_eq!(report["erased"], 2, "bob's, erased by his deletion");
    assert_eq!(report["unsigned"], 1, "the forget request");

    // Someone edits a stored body: that event no longer verifies.
    system
        .execute(
            "UPDATE clerk_sync.events SET payload = jsonb_set(payload, '{body}', \
             to_jsonb(replace(payload->>'body', 'Ada', 'Eve'))) WHERE svix_id = 'm3'",
        )
        .await;
    let tampered = system.cli(&["verify-log"], &[]).await;
    assert_eq!(tampered.code, Some(3), "{tampered:?}");
    assert!(
        tampered.stdout.contains("DOES NOT VERIFY: m3"),
        "{tampered:?}"
    );
    assert!(tampered.stdout.contains("1 do not verify"), "{tampered:?}");

    // After a rotation both secrets are configured: the old events verify.
    let rotated = format!("whsec_bm90IHRoZSBzZWNyZXQgeW91IGFyZSBsb29raW5nIGZvcg== {SECRET}");
    let both = system
        .cli(
            &["verify-log", "--json"],
            &[("CLERK_WEBHOOK_SECRET", &rotated)],
        )
        .await;
    assert_eq!(both.json()["verified"], 2);
    let recent = system
        .cli(&["verify-log", "--since", "1h", "--json"], &[])
        .await;
    assert_eq!(recent.json()["checked"], 6);
    let none = system
        .cli(&["verify-log", "--since", "2099-01-01", "--json"], &[])
        .await;
    assert_eq!(none.json()["checked"], 0);

    let no_secret = system
        .cli(&["verify-log"], &[("CLERK_WEBHOOK_SECRET", "")])
        .await;
    assert_eq!(no_secret.code, Some(2), "{no_secret:?}");
    assert!(
        no_secret.stderr.contains("setting webhook.secrets"),
        "{no_secret:?}"
    );
}
