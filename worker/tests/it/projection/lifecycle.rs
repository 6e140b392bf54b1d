//! Create, update and delete follow Clerk, with and without e-mail
//! addresses, names and roles.

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_delete_follow_clerk() {
    let system = System::start(&[]).await;
    assert_eq!(
        system
            .send(
                "msg_c",
                &user_event(
                    "user.created",
                    "user_a",
                    T0,
                    Some("ada@example.com"),
                    Some("Ada"),
                    None
                )
            )
            .await,
        202
    );
    assert_eq!(
        system
            .send(
                "msg_u",
                &user_event(
                    "user.updated",
                    "user_a",
                    T0 + 1,
                    Some("ada@new.example.com"),
                    Some("Ada"),
                    None
                )
            )
            .await,
        202
    );
    system.wait_for_log(2, WAIT).await;
    assert_eq!(
        system.rows("Student").await,
        [(
            "user_a".to_owned(),
            Some("ada@new.example.com".to_owned()),
            "Ada".to_owned(),
            "Lovelace".to_owned()
        )],
        "the primary e-mail (second in the list), the default role student"
    );
    assert!(
        system.rows("Instructor").await.is_empty(),
        "unsafe_metadata is ignored by default"
    );

    assert_eq!(
        system.send("msg_d", &deleted_event("user_a", T0 + 2)).await,
        202
    );
    system.wait_for_log(3, WAIT).await;
    assert!(system.rows("Student").await.is_empty());
    let outcomes: Vec<String> = system
        .outcomes()
        .await
        .into_iter()
        .map(|(_, o, _)| o)
        .collect();
    assert_eq!(outcomes, ["applied", "applied", "applied"]);
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM clerk_sync.users WHERE deleted")
            .await,
        Some(1),
        "tombstone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_without_email_or_names_and_roles_from_metadata() {
    let system = System::start(&[]).await;
    system
        .send(
            "msg_1",
            &user_event("user.created", "user_phone", T0, None, None, None),
        )
        .await;
    system
        .send(
            "msg_2",
            &user_event(
                "user.created",
                "user_teacher",
                T0,
                Some("t@example.com"),
                Some("T"),
                Some("instructor"),
            ),
        )
        .await;
    system
        .send(
            "msg_3",
            &user_event(
                "user.created",
                "user_admin",
                T0,
                Some("x@example.com"),
                Some("X"),
                Some("admin"),
            ),
        )
        .await;
    system.wait_for_log(3, WAIT).await;
    assert_eq!(
        system.rows("Student").await,
        [("user_phone".to_owned(), None, String::new(), String::new())]
    );
    assert_eq!(
        system.rows("Instructor").await,
        [(
            "user_teacher".to_owned(),
            Some("t@example.com".to_owned()),
            "T".to_owned(),
            "Lovelace".to_owned()
        )]
    );
    assert_eq!(
        system
            .scalar(r#"SELECT count(*) AS n FROM "Student" WHERE "clerkId" = 'user_admin'"#)
            .await,
        Some(0),
        "an unknown role gives no row"
    );

    // A role change keeps the old row and adds the new one.
    system
        .send(
            "msg_4",
            &user_event(
                "user.updated",
                "user_phone",
                T0 + 5,
                None,
                Some("P"),
                Some("instructor"),
            ),
        )
        .await;
    system.wait_for_log(4, WAIT).await;
    assert_eq!(system.rows("Student").await.len(), 1);
    assert_eq!(system.rows("Instructor").await.len(), 2);
    assert_eq!(
        system
            .scalar(r#"SELECT count(*) AS n FROM "Student" WHERE "firstName" = 'P'"#)
            .await,
        Some(1),
        "profile on every row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_roles_unsafe_metadata_and_default_none() {
    let path = std::env::temp_dir().join(format!("roles-{}.toml", uuid::Uuid::new_v4()));
    let roles =
        "[roles]\nsources = [\"public_metadata\", \"unsafe_metadata\"]\ndefault = \"none\"\n";
    std::fs::write(&path, roles).unwrap();
    let path_text = path.display().to_string();
    let system = System::start_with(&[], &["--config", &path_text]).await;
    // No role anywhere: strip unsafe_metadata's role too.
    let no_role = String::from_utf8_lossy(&user_event(
        "user.created",
        "user_none",
        T0,
        None,
        None,
        None,
    ))
    .replace(
        r#""unsafe_metadata":{"role":"instructor"}"#,
        r#""unsafe_metadata":{}"#,
    )
    .into_bytes();
    system.send("msg_1", &no_role).await;
    system
        .send(
            "msg_2",
            &user_event("user.created", "user_signup", T0, None, None, None),
        )
        .await;
    system.wait_for_log(2, WAIT).await;
    let _ = std::fs::remove_file(path);
    assert!(
        system.rows("Student").await.is_empty(),
        "default none: no row"
    );
    assert_eq!(
        system.rows("Instructor").await.len(),
        1,
        "unsafe_metadata used when configured"
    );
}

/// A body of many AMQP frames (connections ask for 32 KiB frames): 600 KB
/// of private metadata, within the ingest's 1 MiB limit, goes through
/// RabbitMQ in pieces and is applied and logged byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_many_frames_is_applied_and_logged_whole() {
    let system = System::start(&[]).await;
    let mut event: serde_json::Value = serde_json::from_slice(&user_event(
        "user.created",
        "user_big",
        T0,
        Some("big@example.com"),
        Some("Big"),
        Some("student"),
    ))
    .unwrap();
    event["data"]["private_metadata"] = serde_json::json!({ "notes": "x".repeat(600_000) });
    let body = serde_json::to_vec(&event).unwrap();
    assert_eq!(system.send("msg_big", &body).await, 202);
    system.wait_for_log(1, WAIT).await;
    assert_eq!(
        system.outcomes().await,
        [("msg_big".to_owned(), "applied".to_owned(), None)]
    );
    assert_eq!(
        system
            .scalar("SELECT octet_length(payload->>'body')::bigint AS n FROM clerk_sync.events")
            .await,
        Some(body.len() as i64)
    );
    assert_eq!(system.rows("Student").await.len(), 1);
}
