//! Duplicates and arrival order, deletions and what depends on them, bad
//! bodies, and a worker killed mid-stream.

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_clerks_order_against_arrival_order() {
    let system = System::start(&[]).await;
    let create = user_event(
        "user.created",
        "user_o",
        T0,
        Some("o@example.com"),
        Some("Old"),
        None,
    );
    for _ in 0..3 {
        assert_eq!(system.send("msg_same", &create).await, 202);
    }
    // A newer update arrives before an older one: the older is stale.
    system
        .send(
            "msg_new",
            &user_event(
                "user.updated",
                "user_o",
                T0 + 10,
                Some("o@example.com"),
                Some("New"),
                None,
            ),
        )
        .await;
    system
        .send(
            "msg_old",
            &user_event(
                "user.updated",
                "user_o",
                T0 + 5,
                Some("o@example.com"),
                Some("Older"),
                None,
            ),
        )
        .await;
    // A delete before an older update: no resurrection.
    system
        .send("msg_del", &deleted_event("user_g", T0 + 10))
        .await;
    system
        .send(
            "msg_late",
            &user_event("user.updated", "user_g", T0 + 1, None, Some("Ghost"), None),
        )
        .await;
    system.wait_for_log(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // the two duplicates, if they were to count
    let outcomes = system.outcomes().await;
    let outcome = |id: &str| {
        outcomes
            .iter()
            .find(|(s, _, _)| s == id)
            .map(|(_, o, _)| o.clone())
    };
    assert_eq!(
        outcomes.len(),
        5,
        "the same svix-id three times is logged once"
    );
    assert_eq!(outcome("msg_same").as_deref(), Some("applied"));
    assert_eq!(outcome("msg_new").as_deref(), Some("applied"));
    assert_eq!(outcome("msg_old").as_deref(), Some("stale"));
    assert_eq!(outcome("msg_del").as_deref(), Some("applied"));
    assert_eq!(outcome("msg_late").as_deref(), Some("stale"));
    assert_eq!(
        system.rows("Student").await,
        [(
            "user_o".to_owned(),
            Some("o@example.com".to_owned()),
            "New".to_owned(),
            "Lovelace".to_owned()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_removes_enrollments_and_courses_and_nothing_else() {
    let system = System::start(&[]).await;
    for (id, user, role) in [
        ("m1", "user_s", None),
        ("m2", "user_i", Some("instructor")),
        ("m3", "user_other", None),
        ("m4", "user_teacher2", Some("instructor")),
    ] {
        system
            .send(id, &user_event("user.created", user, T0, None, None, role))
            .await;
    }
    system.wait_for_log(4, WAIT).await;
    system.execute(r#"INSERT INTO "Course" ("id", "title", "description", "instructorId") SELECT 'c1', 'Rust', '', "id" FROM "Instructor" WHERE "clerkId" = 'user_i'"#).await;
    system.execute(r#"INSERT INTO "Course" ("id", "title", "description", "instructorId") SELECT 'c2', 'SQL', '', "id" FROM "Instructor" WHERE "clerkId" = 'user_teacher2'"#).await;
    system.execute(r#"INSERT INTO "Enrollment" ("id", "studentId", "courseId") SELECT 'e' || s."clerkId" || c."id", s."id", c."id" FROM "Student" s, "Course" c"#).await;
    assert_eq!(
        system
            .scalar(r#"SELECT count(*) AS n FROM "Enrollment""#)
            .await,
        Some(4)
    );

    system.send("m5", &deleted_event("user_s", T0 + 1)).await;
    system.send("m6", &deleted_event("user_i", T0 + 1)).await;
    system.wait_for_log(6, WAIT).await;
    assert_eq!(
        system
            .rows("Student")
            .await
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        ["user_other"]
    );
    assert_eq!(
        system
            .rows("Instructor")
            .await
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        ["user_teacher2"]
    );
    assert_eq!(
        system.scalar(r#"SELECT count(*) AS n FROM "Course""#).await,
        Some(1),
        "c2 stays"
    );
    assert_eq!(
        system
            .scalar(r#"SELECT count(*) AS n FROM "Enrollment" WHERE "id" = 'euser_otherc2'"#)
            .await,
        Some(1),
        "only the other student's enrollment in the other course stays"
    );
    assert_eq!(
        system
            .scalar(r#"SELECT count(*) AS n FROM "Enrollment""#)
            .await,
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_logged_failed_or_ignored_and_the_next_good_event_applies() {
    let system = System::start(&[]).await;
    let cases: [(&str, &[u8]); 5] = [
        ("b1", b"not json"),
        ("b2", br#"{"data": {"id": "user_x"}}"#),
        (
            "b3",
            br#"{"type": "user.created", "data": {"first_name": "x"}}"#,
        ),
        (
            "b4",
            br#"{"type": "organization.created", "data": {"id": "org_1"}}"#,
        ),
        ("b5", b""),
    ];
    for (id, body) in cases {
        assert_eq!(system.send(id, body).await, 202);
    }
    system
        .send(
            "good",
            &user_event("user.created", "user_good", T0, None, Some("G"), None),
        )
        .await;
    system.wait_for_log(6, WAIT).await;
    let outcomes = system.outcomes().await;
    let expected = [
        ("b1", "failed", Some("body is not JSON")),
        ("b2", "failed", Some("event has no string \"type\"")),
        (
            "b3",
            "failed",
            Some("user.created has no string \"data.id\""),
        ),
        ("b4", "ignored", None),
        ("b5", "failed", Some("body is not JSON")),
        ("good", "applied", None),
    ];
    for (id, outcome, error) in expected {
        let row = outcomes
            .iter()
            .find(|(s, _, _)| s == id)
            .unwrap_or_else(|| panic!("{id} not logged"));
        assert_eq!(row.1, outcome, "{id}");
        assert_eq!(row.2.is_some(), error.is_some(), "{id}: {:?}", row.2);
        if let (Some(got), Some(want)) = (&row.2, error) {
            assert!(got.starts_with(want), "{id}: {got}");
        }
    }
    assert_eq!(system.rows("Student").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_stream_loses_and_repeats_nothing() {
    let mut system = System::start(&[("CLERK_SYNC__WORKER__BATCH_SIZE", "20")]).await;
    let users = 40;
    let mut sent = 0;
    for round in 0..5 {
        for u in 0..users {
            let body = user_event(
                "user.updated",
                &format!("user_{u:03}"),
                T0 + round,
                None,
                Some(&format!("R{round}")),
                None,
            );
            assert_eq!(system.send(&format!("msg_{round}_{u}"), &body).await, 202);
            sent += 1;
        }
        if round == 2 {
            system.kill_worker(0);
            system.start_worker();
        }
    }
    system.wait_for_log(sent, WAIT).await;
    assert_eq!(
        system
            .scalar("SELECT count(DISTINCT svix_id) AS n FROM clerk_sync.events")
            .await,
        Some(sent)
    );
    assert_eq!(
        system
            .scalar(r#"SELECT count(*) AS n FROM "Student" WHERE "firstName" = 'R4'"#)
            .await,
        Some(users as i64)
    );
    assert_eq!(
        system.stop_workers(),
        [Some(0)],
        "SIGTERM: finish, acknowledge, exit 0"
    );
}
