//! `apply_batch` in process against the real database: what one batch
//! writes, that a batch applied again writes nothing, that an older event
//! after a newer one changes no profile, that a deletion removes the
//! rows and erases the log, that a batch finds its rows by key, and that a
//! new user's state created by another transaction meanwhile makes the
//! batch run again.

use crate::support::in_process::{Harness, message, outcomes};
use crate::support::system::{deleted_event, user_event};
use clerk_sync_domain::outcome::Outcome;
use diesel_async::RunQueryDsl;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_logs_every_event_and_writes_the_newest_profile() {
    let mut harness = Harness::new().await;
    let created = user_event(
        "user.created",
        "user_ada",
        T0,
        Some("ada@example.com"),
        Some("Ada"),
        Some("student"),
    );
    let updated = user_event(
        "user.updated",
        "user_ada",
        T0 + 10,
        Some("ada@example.com"),
        Some("Augusta"),
        Some("student"),
    );
    let older = user_event(
        "user.updated",
        "user_ada",
        T0 + 5,
        Some("ada@example.com"),
        Some("Old"),
        Some("student"),
    );
    let plan = harness
        .apply(&[
            message("m1", created),
            message("m2", updated),
            message("m3", older),
        ])
        .await;
    assert_eq!(
        outcomes(&plan),
        [
            ("m1".to_owned(), Outcome::Applied),
            ("m2".to_owned(), Outcome::Applied),
            ("m3".to_owned(), Outcome::Stale),
        ]
    );
    assert_eq!(
        harness
            .texts(r#"SELECT "firstName" || ' ' || coalesce(email, '-') AS v FROM "Student""#)
            .await,
        ["Augusta ada@example.com"]
    );
    assert_eq!(
        harness
            .texts("SELECT svix_id || ' ' || outcome AS v FROM clerk_sync.events ORDER BY svix_id")
            .await,
        ["m1 applied", "m2 applied", "m3 stale"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_applied_again_writes_nothing() {
    let mut harness = Harness::new().await;
    let batch = [message(
        "m1",
        user_event(
            "user.created",
            "user_bob",
            T0,
            None,
            Some("Bob"),
            Some("instructor"),
        ),
    )];
    harness.apply(&batch).await;
    let before = harness
        .texts(r#"SELECT t::text AS v FROM "Instructor" t"#)
        .await;
    let again = harness.apply(&batch).await;
    assert!(again.log.is_empty(), "a redelivery is not logged twice");
    assert!(again.changed.is_empty());
    assert_eq!(
        harness
            .texts(r#"SELECT t::text AS v FROM "Instructor" t"#)
            .await,
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_removes_the_rows_and_erases_the_log() {
    let mut harness = Harness::new().await;
    let created = user_event(
        "user.created",
        "user_cy",
        T0,
        Some("cy@example.com"),
        Some("Cy"),
        Some("student"),
    );
    harness.apply(&[message("m1", created)]).await;
    let plan = harness
        .apply(&[message("m2", deleted_event("user_cy", T0 + 10))])
        .await;
    assert_eq!(outcomes(&plan), [("m2".to_owned(), Outcome::Applied)]);
    assert!(
        harness
            .texts(r#"SELECT id AS v FROM "Student""#)
            .await
            .is_empty()
    );
    assert_eq!(
        harness
            .texts(
                "SELECT svix_id AS v FROM clerk_sync.events WHERE payload ? 'erased_at' ORDER BY 1"
            )
            .await,
        ["m1", "m2"]
    );
    assert!(
        harness
            .texts("SELECT svix_id AS v FROM clerk_sync.events WHERE payload::text LIKE '%cy@example.com%'")
            .await
            .is_empty(),
        "no e-mail address is left in the log"
    );
}

/// How many sequential scans the tables a batch touches have had.
async fn sequential_scans(harness: &mut Harness) -> Vec<String> {
    // Sent on the next return to idle, whatever the time since the last.
    harness
        .texts("SELECT pg_stat_force_next_flush()::text AS v")
        .await;
    harness
        .texts(
            "SELECT relname || ' ' || seq_scan AS v FROM pg_stat_user_tables \
             WHERE relname IN ('users', 'events', 'Student', 'Instructor') ORDER BY relname",
        )
        .await
}

/// Every statement of a batch finds its rows through an index, even on
/// tables PostgreSQL has no statistics for (as after a sign-up burst),
/// where it would otherwise scan whole tables once per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_never_scans_a_whole_table() {
    let mut harness = Harness::new().await;
    let event = |kind, user, at, email, role| {
        user_event(kind, user, T0 + at, Some(email), Some("Ada"), Some(role))
    };
    harness
        .apply(&[
            message(
                "m1",
                event("user.created", "user_a", 0, "a@example.com", "student"),
            ),
            message(
                "m2",
                event("user.created", "user_b", 0, "b@example.com", "instructor"),
            ),
        ])
        .await;
    let before = sequential_scans(&mut harness).await;
    let plan = harness
        .apply(&[
            // b's address moves to a, b takes a new one, c is new, a is
            // deleted, and one event is applied again.
            message(
                "m3",
                event("user.updated", "user_a", 10, "b@example.com", "student"),
            ),
            message(
                "m4",
                event("user.updated", "user_b", 10, "b2@example.com", "instructor"),
            ),
            message(
                "m5",
                event("user.created", "user_c", 10, "c@example.com", "student"),
            ),
            message("m6", deleted_event("user_a", T0 + 20)),
            message(
                "m1",
                event("user.created", "user_a", 0, "a@example.com", "student"),
            ),
        ])
        .await;
    assert_eq!(plan.log.len(), 4, "{:?}", outcomes(&plan));
    // Flushed by its own connection: the counts are the batch's.
    let after = sequential_scans(&mut harness).await;
    assert_eq!(before.len(), 4, "{before:?}");
    assert_eq!(after, before);
}

/// The batch finds no sync state for a new user, and another transaction
/// (another worker, a replay) creates one before the batch creates it: the
/// batch's insert waits for that transaction, then the batch rolls back and
/// runs again, deciding on the committed state, here newer than its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_created_meanwhile_makes_the_batch_run_again_on_it() {
    let mut harness = Harness::new().await;
    let (mut other, mut watcher) = (harness.connect().await, harness.connect().await);
    for sql in [
        "BEGIN",
        "INSERT INTO clerk_sync.users (clerk_user_id, version_ms, version_rank, version_svix_id, roles) \
         VALUES ('user_eve', 1700000000100, 1, 'm0', '{}')",
    ] {
        diesel::sql_query(sql).execute(&mut other).await.unwrap();
    }
    let created = user_event(
        "user.created",
        "user_eve",
        T0,
        Some("eve@example.com"),
        Some("Eve"),
        Some("student"),
    );
    let commit_once_waited_for = async {
        let waiting = "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO clerk_sync.users%'";
        while count_of(&mut watcher, waiting).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        diesel::sql_query("COMMIT")
            .execute(&mut other)
            .await
            .unwrap();
    };
    let batch = [message("m1", created)];
    let (plan, ()) = tokio::join!(harness.apply(&batch), commit_once_waited_for);
    assert_eq!(outcomes(&plan), [("m1".to_owned(), Outcome::Stale)]);
    assert_eq!(
        harness
            .texts("SELECT svix_id || ' ' || outcome AS v FROM clerk_sync.events")
            .await,
        ["m1 stale"]
    );
    assert_eq!(
        harness
            .texts("SELECT version_svix_id AS v FROM clerk_sync.users")
            .await,
        ["m0"]
    );
    assert!(
        harness
            .texts(r#"SELECT id AS v FROM "Student""#)
            .await
            .is_empty()
    );
}

async fn count_of(connection: &mut diesel_async::AsyncPgConnection, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query(sql).get_result(connection).await.unwrap();
    n.n
}
