//! `clerk-sync-worker status`: its figures match the state; the age of a
//! shard queue's oldest message comes from the workers' reports; thresholds
//! make it exit 3; it never takes anything from a shard queue.

use crate::support::DeadLetterSpec;
use crate::support::DeadLetters;
use crate::support::system::{CliOutput, System, deleted_event, user_event};
use clerk_sync_domain::topology::Topology;
use diesel_async::RunQueryDsl;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

async fn status(system: &System, env: &[(&str, &str)]) -> CliOutput {
    system.cli(&["status", "--json"], env).await
}

fn shard<'a>(report: &'a Value, queue: &str) -> &'a Value {
    report["shards"]
        .as_array()
        .and_then(|shards| shards.iter().find(|s| s["queue"] == queue))
        .unwrap_or_else(|| panic!("{queue} not in {report}"))
}

fn topology(system: &System) -> Topology {
    Topology::new(system.broker.prefix.clone(), system.broker.shards)
}

async fn count(system: &System, sql: &str) -> i64 {
    system
        .scalar(sql)
        .await
        .unwrap_or_else(|| panic!("{sql} gave nothing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_figures_match_the_state() {
    let system = System::start(&[]).await;
    let events: Vec<(&str, Vec<u8>)> = vec![
        (
            "e1",
            user_event("user.created", "user_s", T0, None, Some("S"), None),
        ),
        (
            "e2",
            user_event(
                "user.created",
                "user_i",
                T0,
                None,
                Some("I"),
                Some("instructor"),
            ),
        ),
        (
            "e3",
            user_event("user.created", "user_d", T0, None, Some("D"), None),
        ),
        ("e4", deleted_event("user_d", T0 + 1)),
        ("e5", b"not json".to_vec()),
        (
            "e6",
            br#"{"type":"session.created","data":{"user_id":"user_s"}}"#.to_vec(),
        ),
        (
            "e7",
            user_event("user.created", "user_s", T0 - 1, None, Some("Old"), None),
        ),
    ];
    for (id, body) in &events {
        assert_eq!(system.send(id, body).await, 202);
        // One at a time, so e7 arrives after e1 and is stale.
        system
            .wait_for_log(id[1..].parse().unwrap_or(0), WAIT)
            .await;
    }
    let received_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        - 120_000;
    for id in ["d1", "d2"] {
        system
            .broker
            .publish_dead_letter(&DeadLetterSpec {
                svix_id: id,
                body: b"{}",
                reason: "boom",
                deliveries: 10,
                received_at_ms: received_ms,
            })
            .await;
    }

    let output = status(&system, &[]).await;
    assert_eq!(output.code, Some(0), "{output:?}");
    let report = output.json();
    assert_eq!(report["ok"], true);
    let outcomes = &report["events"]["by_outcome"];
    for outcome in ["applied", "stale", "ignored", "failed"] {
        let expected = count(
            &system,
            &format!("SELECT count(*) AS n FROM clerk_sync.events WHERE outcome = '{outcome}'"),
        )
        .await;
        assert_eq!(outcomes[outcome], expected, "{outcome} in {report}");
    }
    assert_eq!(
        outcomes,
        &serde_json::json!({"applied": 4, "stale": 1, "ignored": 1, "failed": 1})
    );
    assert_eq!(report["events"]["total"], 7);
    let newest = report["events"]["newest_recorded_age_secs"]
        .as_f64()
        .unwrap_or(f64::MAX);
    assert!((0.0..30.0).contains(&newest), "{report}");
    assert_eq!(
        report["tables"],
        serde_json::json!({"users": 3, "tombstones": 1, "students": 1, "instructors": 1})
    );
    assert_eq!(
        report["tables"]["users"],
        count(&system, "SELECT count(*) AS n FROM clerk_sync.users").await
    );
    assert_eq!(
        report["tables"]["students"],
        count(&system, r#"SELECT count(*) AS n FROM "Student""#).await
    );
    assert_eq!(report["dead_letters"]["depth"], 2);
    let dead_age = report["dead_letters"]["oldest_age_secs"]
        .as_f64()
        .unwrap_or(0.0);
    assert!((119.0..200.0).contains(&dead_age), "{report}");
    for queue in topology(&system).shard_queues() {
        let shard = shard(&report, &queue);
        assert_eq!(shard["waiting"], 0, "{shard}");
        assert_eq!(shard["consumers"], 1, "{shard}");
        assert_eq!(shard["oldest_message"], "none", "{shard}");
    }

    let text = system.cli(&["status"], &[]).await;
    assert_eq!(text.code, Some(0), "{text:?}");
    for needle in [
        "SHARD QUEUE",
        &format!("{}.shard.0  0", system.broker.prefix),
        &format!(
            "dead letters: 2 in {}.dead-letter (oldest received 2m",
            system.broker.prefix
        ),
        "event log:    7 events (applied 4, stale 1, ignored 1, failed 1), newest recorded",
        "tables:       users 3 (tombstones 1), Student 1, Instructor 1",
        "thresholds: none crossed",
    ] {
        assert!(text.stdout.contains(needle), "{needle} in\n{}", text.stdout);
    }

    let crossed = system
        .cli(
            &["status"],
            &[("CLERK_SYNC__STATUS__MAX_DEAD_LETTERS", "1")],
        )
        .await;
    assert_eq!(crossed.code, Some(3), "{crossed:?}");
    assert!(
        crossed.stdout.contains(&format!(
            "THRESHOLD CROSSED: {}.dead-letter: 2 dead letters (max_dead_letters 1)",
            system.broker.prefix
        )),
        "{crossed:?}"
    );
    let within = status(
        &system,
        &[
            ("CLERK_SYNC__STATUS__MAX_DEAD_LETTERS", "2"),
            ("CLERK_SYNC__STATUS__MAX_NEWEST_EVENT_AGE_SECS", "600"),
        ],
    )
    .await;
    assert_eq!(within.code, Some(0), "{within:?}");
    let stale_log = status(
        &system,
        &[("CLERK_SYNC__STATUS__MAX_NEWEST_EVENT_AGE_SECS", "0")],
    )
    .await;
    assert_eq!(stale_log.code, Some(3), "{stale_log:?}");
    assert_eq!(
        stale_log.json()["crossed"][0]["threshold"],
        "max_newest_event_age_secs"
    );

    // Reading the dead letters gave them back, in order.
    let listed = system.cli(&["dlq", "list", "--json"], &[]).await.json();
    let ids: Vec<&str> = listed["dead_letters"]
        .as_array()
        .map(|l| l.iter().filter_map(|d| d["svix_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["d1", "d2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_nobody_consumes_are_counted_and_never_touched() {
    // A delivery limit of 2: if status took a shard's messages even once
    // and gave them back, three runs would dead-letter them.
    let mut system = System::start(&[("CLERK_SYNC__AMQP__DELIVERY_LIMIT", "2")]).await;
    system.wait_until_ready().await;
    system.stop_workers();
    for (i, id) in ["w1", "w2", "w3"].iter().enumerate() {
        let body = user_event(
            "user.updated",
            "user_w",
            T0 + i as i64,
            None,
            Some("W"),
            None,
        );
        assert_eq!(system.send(id, &body).await, 202);
    }
    let queue = topology(&system).queue_for("user_w");
    for _ in 0..3 {
        let output = status(&system, &[]).await;
        assert_eq!(output.code, Some(0), "{output:?}");
        let report = output.json();
        let waiting = shard(&report, &queue);
        assert_eq!(waiting["waiting"], 3, "{report}");
        assert_eq!(waiting["consumers"], 0, "{report}");
        assert_eq!(waiting["oldest_message"], "unknown", "{report}");
        assert_eq!(waiting["oldest_message_age_secs"], Value::Null);
        let total: u64 = report["shards"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["waiting"].as_u64()).sum())
            .unwrap_or(0);
        assert_eq!(total, 3);
    }
    let text = system.cli(&["status"], &[]).await;
    assert!(
        text.stdout.contains(&format!(
            "{queue}  3        0          -     unknown (no consumer)"
        )),
        "{}",
        text.stdout
    );

    let deep = status(&system, &[("CLERK_SYNC__STATUS__MAX_SHARD_DEPTH", "2")]).await;
    assert_eq!(deep.code, Some(3), "{deep:?}");
    assert_eq!(
        deep.json()["crossed"][0]["message"],
        format!("{queue}: 3 messages waiting (max_shard_depth 2)")
    );
    let shallow = status(&system, &[("CLERK_SYNC__STATUS__MAX_SHARD_DEPTH", "3")]).await;
    assert_eq!(shallow.code, Some(0), "{shallow:?}");
    let unattended = status(
        &system,
        &[("CLERK_SYNC__STATUS__MAX_OLDEST_MESSAGE_AGE_SECS", "3600")],
    )
    .await;
    assert_eq!(unattended.code, Some(3), "{unattended:?}");
    assert_eq!(
        unattended.json()["crossed"][0]["threshold"],
        "max_oldest_message_age_secs"
    );

    system.start_worker();
    system.wait_for_log(3, WAIT).await;
    let outcomes = system.outcomes().await;
    assert!(
        outcomes.iter().all(|(_, outcome, _)| outcome != "failed"),
        "{outcomes:?}"
    );
    assert!(
        system.broker.take_dead_letters().await.is_empty(),
        "status dead-lettered nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_message_age_comes_from_the_workers_reports() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    // Hold user_slow's sync row: the worker's batch waits for this lock.
    let mut blocker = system.database.connect().await;
    for sql in [
        "BEGIN",
        "INSERT INTO clerk_sync.users (clerk_user_id) VALUES ('user_slow')",
    ] {
        diesel::sql_query(sql).execute(&mut blocker).await.unwrap();
    }
    let sent = Instant::now();
    let body = user_event("user.created", "user_slow", T0, None, Some("S"), None);
    assert_eq!(system.send("msg_slow", &body).await, 202);
    let queue = topology(&system).queue_for("user_slow");

    let started = Instant::now();
    let held = loop {
        let report = status(&system, &[]).await.json();
        let held = shard(&report, &queue).clone();
        if held["oldest_message"] == "reported"
            && held["oldest_message_age_secs"].as_f64() >= Some(2.0)
        {
            break held;
        }
        assert!(started.elapsed() < WAIT, "never reported: {report}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(held["held"], 1, "{held}");
    assert_eq!(held["waiting"], 0, "{held}");
    assert_eq!(held["consumers"], 1, "{held}");
    let age = held["oldest_message_age_secs"].as_f64().unwrap_or(0.0);
    assert!(age <= sent.elapsed().as_secs_f64() + 1.0, "{held}");

    let crossed = status(
        &system,
        &[("CLERK_SYNC__STATUS__MAX_OLDEST_MESSAGE_AGE_SECS", "1")],
    )
    .await;
    assert_eq!(crossed.code, Some(3), "{crossed:?}");
    let crossed = crossed.json();
    assert_eq!(crossed["crossed"][0]["subject"], queue.as_str());
    let fine = status(
        &system,
        &[("CLERK_SYNC__STATUS__MAX_OLDEST_MESSAGE_AGE_SECS", "600")],
    )
    .await;
    assert_eq!(fine.code, Some(0), "{fine:?}");

    let metrics = system.worker_metrics().await;
    let gauge = format!("clerk_sync_worker_shard_oldest_message_age_seconds{{queue=\"{queue}\"}} ");
    let value: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix(&gauge))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{gauge} not in {metrics}"));
    assert!(value > 0.0, "{value}");
    assert!(
        metrics.contains(&format!(
            "clerk_sync_worker_shard_messages_held{{queue=\"{queue}\"}} 1"
        )),
        "{metrics}"
    );

    diesel::sql_query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    system.wait_for_log(1, WAIT).await;
    let started = Instant::now();
    loop {
        let report = status(&system, &[]).await.json();
        if shard(&report, &queue)["oldest_message"] == "none" {
            assert_eq!(shard(&report, &queue)["held"], 0);
            break;
        }
        assert!(started.elapsed() < WAIT, "still held: {report}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_services_give_one_line_errors() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    for (env, needle) in [
        (
            ("AMQP_URL", "amqp://guest:secret@127.0.0.1:1/%2f"),
            "RabbitMQ at amqp://guest:***@127.0.0.1:1/%2f is unreachable",
        ),
        (
            ("DATABASE_URL", "postgres://postgres:secret@127.0.0.1:1/x"),
            "PostgreSQL at postgres://postgres:***@127.0.0.1:1/x is unreachable",
        ),
    ] {
        for args in [&["status"][..], &["status", "--json"]] {
            let output = system.cli(args, &[env]).await;
            assert_eq!(output.code, Some(1), "{output:?}");
            assert!(output.stdout.is_empty(), "{output:?}");
            assert_eq!(output.stderr.trim_end().lines().count(), 1, "{output:?}");
            assert!(output.stderr.contains(needle), "{needle} in {output:?}");
            assert!(!output.stderr.contains("secret"), "{output:?}");
        }
    }
    // A topology that was never declared: nothing is created, and the
    // missing queue is named. (lapin also logs the channel the broker
    // closed, unless RUST_LOG silences it.)
    let output = system
        .cli(
            &["status"],
            &[("CLERK_SYNC__AMQP__PREFIX", "nothing_declared")],
        )
        .await;
    assert_eq!(output.code, Some(1), "{output:?}");
    assert!(
        output.stderr.lines().any(|line| line
            == "clerk-sync-worker: RabbitMQ queue nothing_declared.shard.0 does not exist (is amqp.prefix right? `clerk-sync-worker migrate` declares the queues)"),
        "{output:?}"
    );
}
