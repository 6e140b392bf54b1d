//! A redriven message is applied once its cause is fixed; listing and
//! showing lose nothing and keep the order.

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_of_a_message_that_failed_because_of_a_now_fixed_condition_applies_it() {
    let system = System::start(&[("CLERK_SYNC__AMQP__DELIVERY_LIMIT", "2")]).await;
    system.wait_until_ready().await;
    system
        .execute(
            r#"CREATE FUNCTION refuse_user_x() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN IF NEW."clerkId" = 'user_x' THEN RAISE EXCEPTION 'user_x is refused for now'; END IF; RETURN NEW; END $$"#,
        )
        .await;
    system
        .execute(r#"CREATE TRIGGER refuse_user_x BEFORE INSERT ON "Student" FOR EACH ROW EXECUTE FUNCTION refuse_user_x()"#)
        .await;
    assert_eq!(
        system.send("msg_x", &body("user.created", "user_x")).await,
        202
    );
    assert_eq!(
        system
            .send("msg_ok", &body("user.created", "user_ok"))
            .await,
        202
    );
    system.wait_for_log(1, WAIT).await;
    let listed = wait_for_dead_letters(&system, 1).await;
    assert_eq!(listed["total"], 1, "{listed}");
    let dead = &listed["dead_letters"][0];
    assert_eq!(dead["svix_id"], "msg_x");
    assert_eq!(dead["event_type"], "user.created");
    assert_eq!(dead["user"], "user_x");
    assert_eq!(dead["deliveries"], 2);
    assert_eq!(dead["dead_lettered_by"], "worker");
    let reason = dead["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("user_x is refused for now"), "{reason}");
    assert_eq!(system.outcomes().await.len(), 1, "msg_x is not logged");

    system
        .execute("DROP TRIGGER refuse_user_x ON \"Student\"")
        .await;
    let redriven = system.cli(&["dlq", "redrive", "msg_x"], &[]).await;
    assert_eq!(redriven.code, Some(0), "{redriven:?}");
    let shard = topology(&system).queue_for("user_x");
    assert!(
        redriven
            .stdout
            .contains(&format!("msg_x  redriven to {shard}")),
        "{redriven:?}"
    );
    assert!(redriven.stdout.contains("1 redriven"), "{redriven:?}");
    system.wait_for_log(2, WAIT).await;
    let outcomes = system.outcomes().await;
    assert!(
        outcomes.contains(&("msg_x".to_owned(), "applied".to_owned(), None)),
        "{outcomes:?}"
    );
    let students: Vec<String> = system
        .rows("Student")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(students, ["user_ok", "user_x"]);
    assert_eq!(list(&system).await["total"], 0);
}

/// Have RabbitMQ itself dead-letter the message waiting in `queue`: take
/// it and give it back until the delivery limit sends it on.
async fn exhaust_deliveries(queue: &str) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let started = Instant::now();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
    {
        assert!(started.elapsed() < WAIT, "{queue} keeps its message");
        // A reject: RabbitMQ 4.3 and later no longer count a nack.
        message
            .delivery
            .reject(BasicRejectOptions { requeue: true })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_and_showing_lose_nothing_and_keep_the_order() {
    let mut system = System::start(&[("CLERK_SYNC__AMQP__DELIVERY_LIMIT", "1")]).await;
    system.wait_until_ready().await;
    system.stop_workers();
    let bodies: Vec<Vec<u8>> = ["user_1", "user_2", "user_3"]
        .iter()
        .map(|u| body("user.updated", u))
        .collect();
    for (id, body) in ["d1", "d2", "d3"].iter().zip(&bodies) {
        system.broker.publish_dead_letter(&letter(id, body)).await;
    }
    // A fourth, dead-lettered by RabbitMQ past the delivery limit.
    let routed = body("user.created", "user_r");
    assert_eq!(system.send("msg_r", &routed).await, 202);
    exhaust_deliveries(&topology(&system).queue_for("user_r")).await;

    let listed = wait_for_dead_letters(&system, 4).await;
    assert_eq!(ids(&listed), ["d1", "d2", "d3", "msg_r"]);
    assert_eq!(listed["total"], 4);
    let by_rabbitmq = &listed["dead_letters"][3];
    assert_eq!(by_rabbitmq["dead_lettered_by"], "rabbitmq");
    assert_eq!(
        by_rabbitmq["deliveries"], 2,
        "limit 1: the second delivery was the last"
    );
    assert!(
        by_rabbitmq["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("delivery_limit")),
        "{by_rabbitmq}"
    );
    let by_worker = &listed["dead_letters"][0];
    assert_eq!(by_worker["reason"], "something failed");
    assert_eq!(by_worker["deliveries"], 10);
    assert_eq!(by_worker["user"], "user_1");
    assert!(
        by_worker["age_secs"]
            .as_f64()
            .is_some_and(|a| (89.0..300.0).contains(&a))
    );

    let limited = system
        .cli(&["dlq", "list", "--limit", "2", "--json"], &[])
        .await;
    assert_eq!(limited.code, Some(0), "{limited:?}");
    assert_eq!(ids(&limited.json()), ["d1", "d2"]);
    assert_eq!(limited.json()["total"], 4);

    let table = system.cli(&["dlq", "list"], &[]).await;
    assert_eq!(table.code, Some(0), "{table:?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("SVIX-ID"), "{table:?}");
    assert!(
        lines[1].starts_with("d1 ")
            && lines[1].contains("user.updated")
            && lines[1].contains("1m 3"),
        "{table:?}"
    );
    assert!(lines[4].starts_with("msg_r "), "{table:?}");
    assert_eq!(
        lines[5],
        format!("4 dead letters in {}.dead-letter", system.broker.prefix)
    );

    let shown = system.cli(&["dlq", "show", "d2"], &[]).await;
    assert_eq!(shown.code, Some(0), "{shown:?}");
    for needle in [
        "svix-id:          d2",
        "reason:           something failed",
        "deliveries:       10",
        "svix-signature: v1,",
        "\"type\": \"user.updated\"",
        "\"id\": \"user_2\"",
    ] {
        assert!(shown.stdout.contains(needle), "{needle} in {shown:?}");
    }
    let shown = system.cli(&["dlq", "show", "msg_r", "--json"], &[]).await;
    assert_eq!(shown.code, Some(0), "{shown:?}");
    let shown = shown.json();
    assert_eq!(
        shown["body"].as_str().map(str::as_bytes),
        Some(routed.as_slice()),
        "the body byte for byte"
    );
    assert_eq!(shown["headers"]["svix-id"], "msg_r");
    assert!(shown["headers"]["x-death"].is_array());

    let missing = system.cli(&["dlq", "show", "nope"], &[]).await;
    one_line_error(&missing, 1, "nope is not in the dead-letter queue");

    // Everything is still there, in the same order.
    let again = list(&system).await;
    assert_eq!(ids(&again), ["d1", "d2", "d3", "msg_r"]);
    assert_eq!(again["dead_letters"][3]["deliveries"], 2);
    assert!(system.outcomes().await.is_empty(), "reading logs nothing");
}
