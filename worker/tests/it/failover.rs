//! A worker and its services' availability: started before PostgreSQL and
//! RabbitMQ answer, it waits (saying why on `/readyz`) instead of exiting;
//! given several broker nodes, it moves to the next when its node goes
//! away. Either way every event ends in the log once and the tables equal
//! the model. Each service is reached through a proxy the test cuts.

use crate::convergence::{WAIT, assert_tables_equal_the_model, deliveries, histories, send_all};
use crate::support::system::System;
use clerk_sync_testkit::proxy::Proxy;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_before_its_services_waits_for_them() {
    let postgres = Proxy::start("127.0.0.1:5432").await;
    let rabbitmq = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    postgres.cut();
    rabbitmq.cut();
    let mut system = System::start(&[]).await;
    system.stop_workers();
    system.set_worker_env(
        "DATABASE_URL",
        &postgres.postgres_url(&system.database.name),
    );
    system.set_worker_env("AMQP_URL", &rabbitmq.amqp_url());
    system.start_worker();

    let started = Instant::now();
    let waiting = loop {
        let (status, body) = system.worker_readiness().await;
        if status == 503
            && body["starting"].is_string()
            && started.elapsed() > Duration::from_secs(2)
        {
            break body;
        }
        assert!(started.elapsed() < WAIT, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let why = waiting["starting"].as_str().unwrap_or_default();
    assert!(why.starts_with("waiting: PostgreSQL at "), "{waiting}");
    assert!(why.contains("is unreachable"), "{waiting}");

    let sent = histories(10, 31);
    send_all(&system, &deliveries(&sent, 37)).await;
    postgres.restore();
    // Migrated, it now waits for RabbitMQ.
    let started = Instant::now();
    loop {
        let (_, body) = system.worker_readiness().await;
        let why = body["starting"].as_str().unwrap_or_default();
        if why.starts_with("waiting: RabbitMQ at ") {
            break;
        }
        assert!(started.elapsed() < WAIT, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rabbitmq.restore();
    system.wait_for_log(sent.len() as i64, WAIT).await;
    assert_tables_equal_the_model(&system, &sent).await;
    let (status, ready) = system.worker_readiness().await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        ready["rabbitmq_node"],
        format!("127.0.0.1:{}", rabbitmq.port)
    );
    assert_eq!(system.stop_workers(), [Some(0)], "{}", system.worker_logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_fails_over_to_the_next_node_while_events_flow() {
    let first = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let second = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let mut system = System::start(&[]).await;
    system.stop_workers();
    system.set_worker_env(
        "AMQP_URL",
        &format!("{},{}", first.amqp_url(), second.amqp_url()),
    );
    system.start_worker();
    let sent = histories(40, 41);
    let deliveries = deliveries(&sent, 43);
    let (before, after) = deliveries.split_at(deliveries.len() / 3);
    send_all(&system, before).await;
    system.wait_for_log(1, WAIT).await;
    first.cut();
    send_all(&system, after).await;
    system.wait_for_log(sent.len() as i64, WAIT).await;
    assert_tables_equal_the_model(&system, &sent).await;

    let (status, ready) = system.worker_readiness().await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["rabbitmq_node"], format!("127.0.0.1:{}", second.port));
    let metrics = system.worker_metrics().await;
    for line in [
        "clerk_sync_worker_broker_reconnects_total 1".to_owned(),
        "clerk_sync_worker_broker_failovers_total 1".to_owned(),
        format!(
            "clerk_sync_worker_broker_node{{node=\"127.0.0.1:{}\"}} 1",
            second.port
        ),
    ] {
        assert!(metrics.contains(&line), "{line} not in {metrics}");
    }
    assert_eq!(system.stop_workers(), [Some(0)]);
}
