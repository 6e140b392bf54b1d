//! `clerk-sync-worker dlq`: listing and showing lose nothing and keep the
//! order; redrive puts a message back on its user's shard and the worker
//! applies it; discard logs the decision and removes the message; unknown
//! ids and unreachable services change nothing.

use crate::support::DeadLetters;
use crate::support::system::{CliOutput, System, user_event};
use crate::support::{DeadLetterSpec, amqp_url};
use clerk_sync_domain::topology::Topology;
use lapin::options::{BasicGetOptions, BasicRejectOptions};
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn body(kind: &str, user: &str) -> Vec<u8> {
    user_event(kind, user, T0, None, Some("Ada"), None)
}

fn letter<'a>(svix_id: &'a str, body: &'a [u8]) -> DeadLetterSpec<'a> {
    DeadLetterSpec {
        svix_id,
        body,
        reason: "something failed",
        deliveries: 10,
        received_at_ms: now_ms() - 90_000,
    }
}

/// `dlq list --json`, which must succeed.
async fn list(system: &System) -> Value {
    let output = system.cli(&["dlq", "list", "--json"], &[]).await;
    assert_eq!(output.code, Some(0), "{output:?}");
    output.json()
}

fn ids(listed: &Value) -> Vec<String> {
    listed["dead_letters"]
        .as_array()
        .unwrap_or_else(|| panic!("no dead_letters in {listed}"))
        .iter()
        .map(|l| l["svix_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn wait_for_dead_letters(system: &System, count: u64) -> Value {
    let started = Instant::now();
    loop {
        let listed = list(system).await;
        if listed["total"].as_u64() >= Some(count) {
            return listed;
        }
        assert!(
            started.elapsed() < WAIT,
            "no {count} dead letters after {WAIT:?}: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn one_line_error(output: &CliOutput, code: i32, needle: &str) {
    assert_eq!(output.code, Some(code), "{output:?}");
    assert_eq!(output.stderr.trim_end().lines().count(), 1, "{output:?}");
    assert!(output.stderr.contains(needle), "{needle} in {output:?}");
}

fn topology(system: &System) -> Topology {
    Topology::new(system.broker.prefix.clone(), system.broker.shards)
}

/// Messages waiting in each shard queue, from `status --json`.
async fn shard_depths(system: &System) -> Vec<u64> {
    let status = system.cli(&["status", "--json"], &[]).await;
    assert_eq!(status.code, Some(0), "{status:?}");
    status.json()["shards"]
        .as_array()
        .expect("no shards")
        .iter()
        .map(|s| s["waiting"].as_u64().unwrap_or(u64::MAX))
        .collect()
}

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
        "svix-signature: v1,sig-of-d2",
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
            .scalar("SELECT count(*) AS n FROM clerk_sync.events WHERE svix_id = 'd1' AND event_type = 'user.updated' AND clerk_user_id = 'user_d' AND payload->'headers'->>'svix-signature' = 'v1,sig-of-d1' AND occurred_at = to_timestamp(1700000000)")
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
    // The worker saw the original headers.
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM clerk_sync.events WHERE payload->'headers'->>'svix-signature' = 'v1,sig-of-' || svix_id")
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
