//! `clerk-sync-worker replay` against the real database: it restores a
//! damaged projection exactly (same rows, same ids, business rows kept),
//! writes nothing on a dry run, re-reads payloads, and loses nothing while
//! a worker consumes.

use crate::support::system::{System, deleted_event, user_event};
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

/// Every row of the projection and business tables, as text, in order.
async fn snapshot(system: &System) -> Vec<String> {
    system
        .texts(
            r#"SELECT 'S ' || t::text AS v FROM "Student" t UNION ALL
           SELECT 'I ' || t::text FROM "Instructor" t UNION ALL
           SELECT 'C ' || t::text FROM "Course" t UNION ALL
           SELECT 'E ' || t::text FROM "Enrollment" t ORDER BY 1"#,
        )
        .await
}

/// Run each `;`-separated statement of `script`.
async fn script(system: &System, script: &str) {
    for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        system.execute(statement).await;
    }
}

/// Four users: ada (student, enrolled), grace (instructor with a course),
/// alan (student, no enrollments), edsger (deleted).
async fn populated() -> System {
    let system = System::start(&[]).await;
    let events = [
        (
            "m1",
            user_event(
                "user.created",
                "user_ada",
                T0,
                Some("ada@example.com"),
                Some("Ada"),
                None,
            ),
        ),
        (
            "m2",
            user_event(
                "user.updated",
                "user_ada",
                T0 + 10,
                Some("ada@example.com"),
                Some("Augusta"),
                None,
            ),
        ),
        (
            "m3",
            user_event(
                "user.created",
                "user_grace",
                T0,
                Some("grace@example.com"),
                Some("Grace"),
                Some("instructor"),
            ),
        ),
        (
            "m4",
            user_event(
                "user.created",
                "user_alan",
                T0,
                Some("alan@example.com"),
                Some("Alan"),
                Some("student"),
            ),
        ),
        (
            "m5",
            user_event(
                "user.created",
                "user_edsger",
                T0,
                Some("ed@example.com"),
                Some("Edsger"),
                None,
            ),
        ),
        ("m6", deleted_event("user_edsger", T0 + 20)),
    ];
    for (id, body) in &events {
        assert_eq!(system.send(id, body).await, 202);
    }
    system.wait_for_log(events.len() as i64, WAIT).await;
    script(&system, r#"INSERT INTO "Course" ("id", "title", "description", "instructorId")
               SELECT 'course_1', 'Compilers', '', "id" FROM "Instructor" WHERE "clerkId" = 'user_grace';
               INSERT INTO "Enrollment" ("id", "studentId", "courseId")
               SELECT 'enrollment_1', "id", 'course_1' FROM "Student" WHERE "clerkId" = 'user_ada'"#,
        )
        .await;
    system
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_restores_a_damaged_projection_exactly() {
    let mut system = populated().await;
    system.stop_workers();
    let intact = snapshot(&system).await;
    assert_eq!(
        intact.len(),
        3 + 1 + 1,
        "three rows, a course, an enrollment: {intact:#?}"
    );

    // Damage: a changed row, a deleted row, a row for a user that does not
    // exist, a row of a role the user never had, a wrong sync state.
    script(&system, r#"UPDATE "Student" SET "firstName" = 'Mallory', "email" = 'm@example.com' WHERE "clerkId" = 'user_ada';
               DELETE FROM "Student" WHERE "clerkId" = 'user_alan';
               INSERT INTO "Student" ("id", "clerkId", "firstName", "lastName", "updatedAt")
                 VALUES ('ghost', 'user_ghost', 'Ghost', '', now());
               INSERT INTO "Instructor" ("id", "clerkId", "firstName", "lastName", "bio", "updatedAt")
                 VALUES ('stray', 'user_alan', 'Alan', '', '', now());
               UPDATE clerk_sync.users SET roles = '{}' WHERE clerk_user_id = 'user_grace'"#,
        )
        .await;
    let damaged = snapshot(&system).await;

    let dry = system.cli(&["replay", "--dry-run"], &[]).await;
    assert_eq!(dry.code, Some(0), "{dry:?}");
    for line in [
        "user_ada: would be updated Student (email, firstName)",
        "user_alan: would be created Student; removed Instructor",
        "user_ghost: would be removed Student",
        "dry run, nothing written",
    ] {
        assert!(
            dry.stdout.contains(line),
            "{line:?} missing from {}",
            dry.stdout
        );
    }
    assert_eq!(snapshot(&system).await, damaged, "a dry run writes nothing");

    let replay = system.cli(&["replay", "--json"], &[]).await;
    assert_eq!(replay.code, Some(0), "{replay:?}");
    let report = replay.json();
    assert_eq!(report["totals"]["rows_created"], 1);
    assert_eq!(report["totals"]["rows_updated"], 1);
    assert_eq!(report["totals"]["rows_removed"], 2);
    assert_eq!(report["totals"]["states_corrected"], 1);
    assert_eq!(
        snapshot(&system).await,
        intact,
        "the same rows with the same ids; the course and the enrollment kept"
    );

    // Rows already right are left untouched: a second replay changes nothing.
    let versions = system
        .texts(r#"SELECT xmin::text AS v FROM "Student" ORDER BY "id""#)
        .await;
    let again = system.cli(&["replay", "--json"], &[]).await.json();
    assert_eq!(again["totals"]["users_changed"], 0);
    assert_eq!(
        system
            .texts(r#"SELECT xmin::text AS v FROM "Student" ORDER BY "id""#)
            .await,
        versions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_business_data_refers_to_are_kept_even_when_the_log_does_not_know_them() {
    let mut system = populated().await;
    system.stop_workers();
    // An instructor the log never heard of, with a course: replay must not
    // take the course away; and the same for an enrolled stray student.
    script(&system, r#"INSERT INTO "Instructor" ("id", "clerkId", "firstName", "lastName", "bio", "updatedAt")
                 VALUES ('adopted', 'user_adopted', 'Barbara', '', '', now());
               INSERT INTO "Course" ("id", "title", "description", "instructorId")
                 VALUES ('course_2', 'Abstraction', '', 'adopted');
               INSERT INTO "Instructor" ("id", "clerkId", "firstName", "lastName", "bio", "updatedAt")
                 VALUES ('stray', 'user_ada', 'Ada', '', '', now());
               INSERT INTO "Course" ("id", "title", "description", "instructorId")
                 VALUES ('course_3', 'Engines', '', 'stray')"#,
        )
        .await;
    let before = snapshot(&system).await;
    let replay = system.cli(&["replay"], &[]).await;
    assert_eq!(replay.code, Some(0), "{replay:?}");
    assert!(
        replay.stdout.contains("user_adopted: kept Instructor"),
        "{}",
        replay.stdout
    );
    assert!(
        replay.stdout.contains("user_ada: kept Instructor"),
        "{}",
        replay.stdout
    );
    assert_eq!(snapshot(&system).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_can_be_limited_to_users_or_to_recent_events() {
    let mut system = populated().await;
    system.stop_workers();
    let intact = snapshot(&system).await;
    let damage =
        r#"UPDATE "Student" SET "firstName" = 'X' WHERE "clerkId" IN ('user_ada', 'user_alan')"#;
    system.execute(damage).await;

    let one = system
        .cli(&["replay", "--user", "user_alan", "--json"], &[])
        .await
        .json();
    assert_eq!(one["totals"]["users"], 1);
    let firsts = system.rows("Student").await;
    assert_eq!(firsts[0].2, "X", "user_ada is not touched: {firsts:?}");
    assert_eq!(firsts[1].2, "Alan");

    // Nothing received in the last hour... in this log everything is recent.
    system
        .execute("UPDATE clerk_sync.events SET received_at = now() - interval '2 days'")
        .await;
    let recent = system
        .cli(&["replay", "--since", "1h", "--json"], &[])
        .await
        .json();
    assert_eq!(recent["totals"]["users"], 0);
    let all = system
        .cli(&["replay", "--since", "3d", "--json"], &[])
        .await
        .json();
    assert_eq!(all["totals"]["users"], 4);
    assert_eq!(snapshot(&system).await, intact);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_the_stored_payloads_again() {
    let mut system = populated().await;
    system.stop_workers();
    // Events an older clerk-sync judged otherwise: a user.created it could
    // not read, a session event it filed under no user, and one an operator
    // discarded (never applied).
    let created = String::from_utf8(user_event(
        "user.created",
        "user_late",
        T0,
        Some("late@example.com"),
        Some("Late"),
        None,
    ))
    .unwrap();
    let discarded = String::from_utf8(user_event(
        "user.created",
        "user_discarded",
        T0,
        Some("d@example.com"),
        Some("D"),
        None,
    ))
    .unwrap();
    let session = r#"{"type":"session.created","data":{"id":"sess_1","user_id":"user_ada"}}"#;
    let insert = |id: &str, body: &str, outcome: &str, error: &str| {
        format!(
            "INSERT INTO clerk_sync.events (svix_id, received_at, payload, outcome, error) \
             VALUES ('{id}', now(), jsonb_build_object('headers', '{{}}'::jsonb, 'body', '{}'::text), '{outcome}', {error})",
            body.replace('\'', "''")
        )
    };
    system
        .execute(&insert("old_1", &created, "failed", "'an old parser bug'"))
        .await;
    system
        .execute(&insert("old_2", session, "ignored", "NULL"))
        .await;
    system
        .execute(&insert(
            "old_3",
            &discarded,
            "failed",
            "'discarded by operator'",
        ))
        .await;

    let replay = system.cli(&["replay", "--json"], &[]).await;
    assert_eq!(replay.code, Some(0), "{replay:?}");
    assert_eq!(replay.json()["totals"]["events_filed"], 2);
    let outcomes = system.outcomes().await;
    assert!(
        outcomes.contains(&("old_1".into(), "applied".into(), None)),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&(
        "old_3".into(),
        "failed".into(),
        Some("discarded by operator".into())
    )));
    let filed = system.texts("SELECT svix_id || ' ' || clerk_user_id AS v FROM clerk_sync.events WHERE svix_id LIKE 'old_%' AND clerk_user_id IS NOT NULL ORDER BY 1").await;
    assert_eq!(filed, ["old_1 user_late", "old_2 user_ada"]);
    let students: Vec<String> = system
        .rows("Student")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(students, ["user_ada", "user_alan", "user_late"]);

    // Roles are resolved again under the current settings.
    let replay = system
        .cli(
            &["replay"],
            &[("CLERK_SYNC__ROLES__SOURCES", "unsafe_metadata")],
        )
        .await;
    assert_eq!(replay.code, Some(0), "{replay:?}");
    let instructors: Vec<String> = system
        .rows("Instructor")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        instructors,
        ["user_ada", "user_alan", "user_grace", "user_late"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_while_a_worker_consumes_loses_nothing() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let users = 60;
    let per_user = 8;
    let sender = async {
        for step in 0..per_user {
            for u in 0..users {
                let user = format!("user_{u:03}");
                let body = if step == per_user - 1 && u % 7 == 0 {
                    deleted_event(&user, T0 + step * 1_000)
                } else {
                    let kind = if step == 0 {
                        "user.created"
                    } else {
                        "user.updated"
                    };
                    let first = format!("F{step}");
                    user_event(kind, &user, T0 + step * 1_000, None, Some(&first), None)
                };
                assert_eq!(system.send(&format!("m_{user}_{step}"), &body).await, 202);
            }
        }
    };
    let replays = async {
        let mut runs = 0;
        while system
            .scalar("SELECT count(*) AS n FROM clerk_sync.events")
            .await
            .unwrap_or(0)
            < users * per_user
        {
            let replay = system.cli(&["replay", "--users-per-batch", "7"], &[]).await;
            assert_eq!(replay.code, Some(0), "{replay:?}");
            runs += 1;
        }
        runs
    };
    let ((), runs) = tokio::join!(sender, replays);
    assert!(runs > 0);
    system.wait_for_log(users * per_user, WAIT).await;
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM clerk_sync.events")
            .await,
        Some(users * per_user),
        "every event logged exactly once"
    );
    // What the worker and the replays left is exactly the log's projection.
    let check = system
        .cli(&["replay", "--dry-run", "--json"], &[])
        .await
        .json();
    assert_eq!(check["totals"]["users_changed"], 0, "{check}");
    assert_eq!(check["totals"]["states_corrected"], 0, "{check}");
    let students = system.rows("Student").await;
    assert_eq!(students.len(), (users - (users + 6) / 7) as usize);
    assert!(students.iter().all(|r| r.2 == format!("F{}", per_user - 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_an_unreachable_database_are_one_line() {
    let system = System::start(&[]).await;
    let bad_since = system.cli(&["replay", "--since", "yesterday"], &[]).await;
    assert_eq!(bad_since.code, Some(2));
    assert!(
        bad_since.stderr.contains("'yesterday' is not a time"),
        "{bad_since:?}"
    );
    let bad_batch = system.cli(&["replay", "--users-per-batch", "0"], &[]).await;
    assert_eq!(bad_batch.code, Some(2), "{bad_batch:?}");
    let down = system
        .cli(
            &["replay"],
            &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")],
        )
        .await;
    assert_eq!(down.code, Some(1), "{down:?}");
    assert_eq!(down.stderr.lines().count(), 1, "{down:?}");
    assert!(
        down.stderr
            .contains("PostgreSQL at postgres://postgres@127.0.0.1:1/nowhere is unreachable"),
        "{down:?}"
    );
}
