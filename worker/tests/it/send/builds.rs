//! The events `send` builds and the files it sends as they are.

use super::helpers::*;

#[tokio::test]
async fn each_event_type_is_sent_and_applied() {
    let system = System::start(&[]).await;
    let (created, updated) = (T0.to_string(), (T0 + 1_000).to_string());

    let output = send(
        &system,
        &[
            "user.created",
            "--user",
            "user_send_ada",
            "--email",
            "ada@example.com",
            "--first-name",
            "Ada",
            "--last-name",
            "Lovelace",
            "--version",
            &created,
            "--svix-id",
            "msg_send_1",
        ],
    )
    .await;
    assert_ok(&output);
    assert_eq!(
        output.stdout,
        format!(
            "sent to {}\n\
             TYPE          USER           SVIX-ID     STATUS        ANSWER\n\
             user.created  user_send_ada  msg_send_1  202 Accepted  {{\"status\":\"queued\"}}\n",
            system.ingest_url
        )
    );

    let output = send(
        &system,
        &[
            "user.updated",
            "--user",
            "user_send_ada",
            "--email",
            "ada@example.com",
            "--first-name",
            "Augusta",
            "--last-name",
            "Lovelace",
            "--role",
            "instructor",
            "--version",
            &updated,
            "--svix-id",
            "msg_send_2",
            "--json",
        ],
    )
    .await;
    assert_ok(&output);
    assert_eq!(
        output.json(),
        json!({
            "url": system.ingest_url,
            "scenario": null,
            "user": null,
            "events": [{
                "svix_id": "msg_send_2", "type": "user.updated", "user": "user_send_ada",
                "note": null, "status": 202, "answer": {"status": "queued"},
            }],
            "expected": [],
            "error": null,
        })
    );

    for args in [
        &[
            "user.created",
            "--user",
            "user_send_bob",
            "--first-name",
            "Bob",
        ][..],
        &["user.deleted", "--user", "user_send_bob"][..],
    ] {
        let mut args = args.to_vec();
        let svix_id = format!("msg_send_{}", args[0]);
        args.extend_from_slice(&["--svix-id", &svix_id]);
        assert_ok(&send(&system, &args).await);
    }

    system.wait_for_log(4, WAIT).await;
    let outcomes: Vec<_> = system
        .outcomes()
        .await
        .into_iter()
        .map(|(id, outcome, error)| (id, outcome, error.is_some()))
        .collect();
    let applied = |id: &str| (id.to_owned(), "applied".to_owned(), false);
    assert_eq!(
        outcomes,
        [
            applied("msg_send_1"),
            applied("msg_send_2"),
            applied("msg_send_user.created"),
            applied("msg_send_user.deleted"),
        ]
    );
    // The update added the instructor row and renamed both; Bob is gone.
    let ada = (
        "user_send_ada".to_owned(),
        Some("ada@example.com".to_owned()),
        "Augusta".to_owned(),
        "Lovelace".to_owned(),
    );
    assert_eq!(system.rows("Student").await, std::slice::from_ref(&ada));
    assert_eq!(system.rows("Instructor").await, [ada]);
}

#[tokio::test]
async fn a_file_is_sent_byte_for_byte() {
    let system = System::start(&[]).await;
    // Clerk's documented example, pretty-printed with a trailing newline.
    let fixture = format!(
        "{}/../fixtures/clerk/user.created.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&fixture).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let path = std::env::temp_dir().join(format!("send-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, &bytes).unwrap();
    let file = path.display().to_string();

    let output = send(
        &system,
        &["--file", &file, "--svix-id", "msg_send_file", "--json"],
    )
    .await;
    let _ = std::fs::remove_file(&path);
    assert_ok(&output);
    let document = output.json();
    assert_eq!(document["events"][0]["svix_id"], "msg_send_file");
    assert_eq!(document["events"][0]["type"], "user.created");
    assert_eq!(
        document["events"][0]["user"],
        "user_29w83sxmDNGwOuEthce5gg56FcC"
    );

    system.wait_for_log(1, WAIT).await;
    let body = pairs(
        &system,
        "SELECT svix_id AS a, payload->>'body' AS b FROM clerk_sync.events",
    )
    .await;
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(body, [pair("msg_send_file", &text)]);
    assert_eq!(
        system.rows("Student").await,
        [(
            "user_29w83sxmDNGwOuEthce5gg56FcC".to_owned(),
            Some("example@example.org".to_owned()),
            "Example".to_owned(),
            "Example".to_owned(),
        )]
    );
}
