//! Scenarios end as stated; every error exits non-zero with one line and
//! posts nothing.

use super::helpers::*;

#[tokio::test]
async fn each_scenario_reaches_its_stated_end_state() {
    let system = System::start(&[]).await;

    // Human output first: the steps and the stated end state.
    let output = send(
        &system,
        &["--scenario", "out-of-order", "--user", "user_order"],
    )
    .await;
    assert_ok(&output);
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", output.stdout);
    assert_eq!(
        lines[0],
        format!(
            "scenario out-of-order for user_order, sent to {}",
            system.ingest_url
        )
    );
    assert!(lines[1].starts_with("TYPE  "), "{}", lines[1]);
    for (line, (note, event_type)) in lines[2..5].iter().zip([
        ("v1 ", "user.created"),
        ("v3 ", "user.updated"),
        ("v2, late: older than v3", "user.updated"),
    ]) {
        assert!(line.starts_with(&format!("{event_type}  {note}")), "{line}");
        assert!(line.contains("202 Accepted"), "{line}");
    }
    assert_eq!(lines[5], "expected once the worker has applied them:");
    assert_eq!(
        lines[6],
        "  user_order has first name 'v3' (one Student row)"
    );

    // The others as JSON, which names the svix-ids.
    let mut svix_ids = Vec::new();
    for (scenario, user) in [
        ("duplicates", "user_dup"),
        ("delete-then-update", "user_del"),
    ] {
        let output = send(&system, &["--scenario", scenario, "--user", user, "--json"]).await;
        assert_ok(&output);
        let document = output.json();
        assert_eq!(document["scenario"], scenario);
        assert_eq!(document["user"], user);
        assert!(
            document["expected"]
                .as_array()
                .is_some_and(|e| e.len() == 2)
        );
        let events = document["events"].as_array().cloned().unwrap_or_default();
        assert_eq!(events.len(), 3, "{document}");
        assert!(
            events
                .iter()
                .all(|e| e["status"] == 202 && e["user"] == user)
        );
        svix_ids.push(
            events
                .iter()
                .filter_map(|e| e["svix_id"].as_str().map(str::to_owned))
                .collect::<Vec<_>>(),
        );
    }

    // 3 + 1 (three deliveries of one event) + 3.
    system.wait_for_log(7, WAIT).await;
    // Let any duplicate still in flight arrive: it must change nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // out-of-order: the late v2 is stale, v3's name stays.
    let order = logged(&system, "user_order").await;
    let outcomes: Vec<_> = order.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(outcomes, ["applied", "applied", "stale"], "{order:?}");
    assert_eq!(
        names(&system, "Student", "user_order").await,
        [pair("user_order", "v3")]
    );

    // duplicates: one svix-id, three posts, logged once.
    let duplicates = &svix_ids[0];
    assert!(duplicates.iter().all(|id| id == &duplicates[0]));
    assert_eq!(
        logged(&system, "user_dup").await,
        [pair(&duplicates[0], "applied")]
    );
    assert_eq!(
        names(&system, "Student", "user_dup").await,
        [pair("user_dup", "v1")]
    );

    // delete-then-update: deleted stays deleted, the later update is stale.
    let deleted = &svix_ids[1];
    assert_eq!(
        logged(&system, "user_del").await,
        [
            pair(&deleted[0], "applied"),
            pair(&deleted[1], "applied"),
            pair(&deleted[2], "stale"),
        ]
    );
    assert_eq!(names(&system, "Student", "user_del").await, []);
    assert_eq!(names(&system, "Instructor", "user_del").await, []);
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM clerk_sync.events")
            .await,
        Some(7)
    );
}

#[tokio::test]
async fn every_error_exits_non_zero_with_one_line_and_posts_nothing() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;

    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let dead = format!("http://127.0.0.1:{port}/api/webhooks/clerk");
    let output = system
        .cli(&["send", "user.created", "--url", &dead], &[])
        .await;
    assert_one_line(&output, 1, &format!("could not reach the ingest at {dead}"));
    assert_eq!(output.stdout, "");
    let output = system
        .cli(&["send", "user.created", "--url", &dead, "--json"], &[])
        .await;
    assert_one_line(&output, 1, &dead);
    let document = output.json();
    assert_eq!(document["events"], json!([]));
    assert!(
        document["error"]
            .as_str()
            .is_some_and(|e| e.contains(&dead))
    );

    // Signed with another secret: the ingest refuses it.
    let other = [(
        "CLERK_WEBHOOK_SECRET",
        "whsec_dGhpcyBpcyBub3QgdGhlIGluZ2VzdCdzIHNlY3JldA==",
    )];
    let url = system.ingest_url.clone();
    let output = system
        .cli(
            &[
                "send",
                "user.created",
                "--svix-id",
                "msg_bad_sig",
                "--url",
                &url,
            ],
            &other,
        )
        .await;
    assert_one_line(&output, 1, "answered 401 Unauthorized to msg_bad_sig");
    assert!(output.stderr.contains("signature"), "{output:?}");
    assert!(
        output.stdout.contains("msg_bad_sig  401 Unauthorized"),
        "{output:?}"
    );

    // A scenario stops at the first refusal.
    let output = system
        .cli(
            &[
                "send",
                "--scenario",
                "out-of-order",
                "--url",
                &url,
                "--json",
            ],
            &other,
        )
        .await;
    assert_one_line(&output, 1, "401 Unauthorized");
    assert_eq!(output.json()["events"].as_array().map(Vec::len), Some(1));

    // No secret, or one that is not a secret: a settings fault.
    for (secret, needle) in [("", "webhook.secrets"), ("whsec_***", "not base64")] {
        let output = system
            .cli(
                &["send", "user.created", "--url", &url],
                &[("CLERK_WEBHOOK_SECRET", secret)],
            )
            .await;
        assert_one_line(&output, 2, needle);
        assert!(!output.stderr.contains(secret) || secret.is_empty());
    }

    // A file that is missing, a directory, or not text.
    let missing = "/nonexistent/clerk-sync/payload.json";
    let directory = std::env::temp_dir().display().to_string();
    let binary = std::env::temp_dir().join(format!("send-{}.bin", uuid::Uuid::new_v4()));
    std::fs::write(&binary, [0xff, 0xfe]).unwrap();
    let binary_name = binary.display().to_string();
    for file in [missing, &directory, &binary_name] {
        let output = system
            .cli(&["send", "--file", file, "--url", &url], &[])
            .await;
        assert_one_line(&output, 2, file);
    }
    let _ = std::fs::remove_file(&binary);

    // Bad combinations: clap's usage error, exit 2.
    for argv in [
        &["send"][..],
        &["send", "user.created", "--scenario", "duplicates"],
        &["send", "user.created", "--file", missing],
        &[
            "send",
            "--scenario",
            "duplicates",
            "--email",
            "a@example.com",
        ],
        &["send", "user.signed_in"],
    ] {
        let mut argv = argv.to_vec();
        argv.extend_from_slice(&["--url", &url]);
        let output = system.cli(&argv, &[]).await;
        assert_eq!(output.code, Some(2), "{argv:?}: {output:?}");
        assert!(output.stderr.starts_with("error:"), "{output:?}");
    }
    let output = system
        .cli(
            &[
                "send",
                "user.deleted",
                "--email",
                "a@example.com",
                "--url",
                &url,
            ],
            &[],
        )
        .await;
    assert_one_line(&output, 2, "do not apply to user.deleted");

    // Only the one good event that follows ends in the log.
    let output = send(&system, &["user.created", "--svix-id", "msg_good"]).await;
    assert_ok(&output);
    system.wait_for_log(1, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcomes: Vec<_> = system
        .outcomes()
        .await
        .into_iter()
        .map(|(id, outcome, _)| (id, outcome))
        .collect();
    assert_eq!(outcomes, [pair("msg_good", "applied")]);
}
