//! Discard logs the decision, redrive puts each message back on its
//! user's shard; unknown ids and unreachable services change nothing.

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discard_logs_the_row_and_removes_the_message() {
    let system = System::start(&[]).await;
    let seen = body("user.created", "user_seen");
    assert_eq!(system.send("msg_seen", &seen).await, 202);
    system.wait_for_log(1, WAIT).await;
    let given_up = body("user.updated", "user_d");
    let kept = body("user.updated", "user_k");
    system
        .broker
        .publish_dead_letter(&letter("d1", &given_up))
        .await;
    system
        .broker
        .publish_dead_letter(&letter("d2", &kept))
        .await;
    // A copy of an event the log already has.
    system
        .broker
        .publish_dead_letter(&letter("msg_seen", &seen))
        .await;

    let discarded = system.cli(&["dlq", "discard", "msg_seen", "d1"], &[]).await;
    assert_eq!(discarded.code, Some(0), "{discarded:?}");
    assert!(
        discarded
            .stdout
            .contains("d1  discarded: logged as failed (discarded by operator); removed from the dead-letter queue"),
        "{discarded:?}"
    );
    assert!(
        discarded
            .stdout
            .contains("msg_seen  discarded: already in the log as applied, row kept"),
        "{discarded:?}"
    );
    assert!(discarded.stdout.contains("2 discarded"), "{discarded:?}");

    assert_eq!(
        system.outcomes().await,
        [
            (
                "d1".to_owned(),
                "failed".to_owned(),
                Some("discarded by operator".to_owned())
            ),
            ("msg_seen".to_owned(), "applied".to_owned(), None),
        ]
    );
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM clerk_sync.events WHERE svix_id = 'd1' AND event_type = 'user.updated' AND clerk_user_id = 'user_d' AND payload->'headers'->>'svix-signature' LIKE 'v1,%' AND occurred_at = to_timestamp(1700000000)")
            .await,
        Some(1)
    );
    let logged_body = system
        .scalar(&format!(
            "SELECT count(*) AS n FROM clerk_sync.events WHERE svix_id = 'd1' AND payload->>'body' = '{}'",
            String::from_utf8_lossy(&given_up).replace('\'', "''")
        ))
        .await;
    assert_eq!(logged_body, Some(1), "the body exactly as received");
    assert_eq!(ids(&list(&system).await), ["d2"]);
    assert!(
        system.rows("Student").await.iter().all(|r| r.0 != "user_d"),
        "a discarded event changes no row"
    );

    let again = system.cli(&["dlq", "discard", "d1"], &[]).await;
    one_line_error(&again, 1, "not in the dead-letter queue");
    assert!(again.stderr.contains("d1"), "{again:?}");
    assert_eq!(system.outcomes().await.len(), 2);
    assert_eq!(ids(&list(&system).await), ["d2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_or_discard_of_an_unknown_id_exits_non_zero_naming_it_and_changes_nothing() {
    let mut system = System::start(&[]).await;
    system.wait_until_ready().await;
    system.stop_workers();
    let known = body("user.created", "user_k");
    system
        .broker
        .publish_dead_letter(&letter("d1", &known))
        .await;
    system
        .broker
        .publish_dead_letter(&letter("d2", &known))
        .await;

    let redrive = system
        .cli(&["dlq", "redrive", "d1", "nope", "d2"], &[])
        .await;
    one_line_error(&redrive, 1, "nope; nothing was redriven");
    assert!(redrive.stdout.is_empty(), "{redrive:?}");
    let discard = system
        .cli(&["dlq", "discard", "nope", "d2", "other"], &[])
        .await;
    one_line_error(&discard, 1, "nope, other; nothing was discarded");

    assert_eq!(ids(&list(&system).await), ["d1", "d2"]);
    assert_eq!(
        shard_depths(&system).await,
        [0, 0, 0, 0],
        "nothing was published"
    );
    assert!(system.outcomes().await.is_empty(), "nothing was logged");

    let no_ids = system.cli(&["dlq", "redrive"], &[]).await;
    assert_eq!(no_ids.code, Some(2), "{no_ids:?}");
    let both = system.cli(&["dlq", "redrive", "d1", "--all"], &[]).await;
    assert_eq!(both.code, Some(2), "{both:?}");
    let no_limit = system.cli(&["dlq", "list", "--limit", "0"], &[]).await;
    assert_eq!(no_limit.code, Some(2), "{no_limit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_all_puts_each_message_on_its_users_shard_as_it_was_received() {
    let mut system = System::start(&[]).await;
    system.wait_until_ready().await;
    system.stop_workers();
    let empty = system.cli(&["dlq", "redrive", "--all"], &[]).await;
    assert_eq!(empty.code, Some(0), "{empty:?}");
    assert!(empty.stdout.contains("nothing to redrive"), "{empty:?}");

    let (a, b) = (
        body("user.created", "user_a"),
        body("user.created", "user_b"),
    );
    system.broker.publish_dead_letter(&letter("d_a", &a)).await;
    system.broker.publish_dead_letter(&letter("d_b", &b)).await;
    system
        .broker
        .publish_dead_letter(&letter("d_junk", b"not json"))
        .await;
    let redriven = system
        .cli(&["dlq", "redrive", "--all", "--json"], &[])
        .await;
    assert_eq!(redriven.code, Some(0), "{redriven:?}");
    assert_eq!(redriven.json()["redriven"], 3);
    assert_eq!(list(&system).await["total"], 0);

    let topology = topology(&system);
    let mut expected = vec![0_u64; 4];
    for key in ["user_a", "user_b", "d_junk"] {
        let queue = topology.queue_for(key);
        let shard = topology
            .shard_queues()
            .position(|q| q == queue)
            .unwrap_or_else(|| panic!("{queue}"));
        expected[shard] += 1;
    }
    assert_eq!(shard_depths(&system).await, expected);

    system.start_worker();
    system.wait_for_log(3, WAIT).await;
    let outcomes: Vec<(String, String)> = system
        .outcomes()
        .await
        .into_iter()
        .map(|(id, outcome, _)| (id, outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("d_a".to_owned(), "applied".to_owned()),
            ("d_b".to_owned(), "applied".to_owned()),
            ("d_junk".to_owned(), "failed".to_owned()),
        ]
    );
    // The worker saw the original headers: the signatures it checked.
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM clerk_sync.events WHERE payload->'headers'->>'svix-signature' LIKE 'v1,%'")
            .await,
        Some(3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_services_give_one_line_errors() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let body = body("user.created", "user_u");
    system
        .broker
        .publish_dead_letter(&letter("d1", &body))
        .await;
    let no_broker = [("AMQP_URL", "amqp://guest:secret@127.0.0.1:1/%2f")];
    for args in [
        &["dlq", "list"][..],
        &["dlq", "show", "d1"],
        &["dlq", "redrive", "d1"],
        &["dlq", "discard", "d1"],
    ] {
        let output = system.cli(args, &no_broker).await;
        one_line_error(&output, 1, "RabbitMQ at amqp://guest:");
        assert!(!output.stderr.contains("secret"), "{output:?}");
    }
    let no_database = [("DATABASE_URL", "postgres://postgres:secret@127.0.0.1:1/x")];
    let output = system.cli(&["dlq", "discard", "d1"], &no_database).await;
    one_line_error(&output, 1, "PostgreSQL at");
    assert!(!output.stderr.contains("secret"), "{output:?}");
    assert_eq!(ids(&list(&system).await), ["d1"], "nothing was lost");
}
