//! Replay restores a damaged projection exactly, keeps rows the app's data
//! refers to, and can be limited to users or recent events.

use super::helpers::*;

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
