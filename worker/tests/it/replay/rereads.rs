//! Replay reads the stored payloads again, loses nothing while a worker
//! consumes, and refuses bad arguments in one line.

use super::helpers::*;

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
