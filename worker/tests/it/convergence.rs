//! Many users, shuffled and duplicated deliveries, several workers, crashes
//! and outages: the tables must equal an independent model of the semantics
//! of docs/src/contract.md, and every event must be in the log exactly once.

use crate::support::system::{System, deleted_event, user_event};
use clerk_sync_testkit::proxy::Proxy;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;
pub(crate) const WAIT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub(crate) struct Sent {
    svix_id: String,
    user: String,
    body: Vec<u8>,
    /// (time, rank, svix_id): Clerk's order, written out independently.
    order: (i64, u8, String),
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Upsert {
        first: String,
        role: Option<&'static str>,
    },
    Delete,
}

/// A deterministic pseudo-random history: per user a create, some updates
/// (some changing role), and for one user in five a delete.
pub(crate) fn histories(users: usize, seed: u64) -> Vec<Sent> {
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (rng >> 33) % n
    };
    let mut sent = Vec::new();
    for u in 0..users {
        let user = format!("user_{u:04}");
        let email = format!("{user}@example.com");
        let updates = 1 + next(4) as i64;
        for step in 0..=updates {
            let role = match next(4) {
                0 => Some("instructor"),
                1 => Some("student"),
                _ => None,
            };
            let first = format!("F{step}");
            let at = T0 + step * 1_000 + next(500) as i64;
            let (event_type, rank) = if step == 0 {
                ("user.created", 0)
            } else {
                ("user.updated", 1)
            };
            let svix_id = format!("msg_{user}_{step}");
            sent.push(Sent {
                body: user_event(event_type, &user, at, Some(&email), Some(&first), role),
                order: (at, rank, svix_id.clone()),
                svix_id,
                user: user.clone(),
                kind: Kind::Upsert { first, role },
            });
        }
        if next(5) == 0 {
            // Deleted, at a time that may be before some updates: still final.
            let at = T0 + next(3) as i64 * 1_000;
            let svix_id = format!("msg_{user}_deleted");
            sent.push(Sent {
                body: deleted_event(&user, at),
                order: (at, 2, svix_id.clone()),
                svix_id,
                user,
                kind: Kind::Delete,
            });
        }
    }
    sent
}

/// Expected Student and Instructor rows: `clerkId -> firstName`.
fn model(sent: &[Sent]) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut by_user: BTreeMap<&str, Vec<&Sent>> = BTreeMap::new();
    for event in sent {
        by_user.entry(&event.user).or_default().push(event);
    }
    let (mut students, mut instructors) = (BTreeMap::new(), BTreeMap::new());
    for (user, mut events) in by_user {
        if events.iter().any(|e| matches!(e.kind, Kind::Delete)) {
            continue;
        }
        events.sort_by(|a, b| a.order.cmp(&b.order));
        let mut roles = BTreeSet::new();
        let mut newest_first = String::new();
        for event in events {
            if let Kind::Upsert { first, role, .. } = &event.kind {
                roles.insert(role.unwrap_or("student"));
                newest_first = first.clone();
            }
        }
        for role in roles {
            let table = if role == "student" {
                &mut students
            } else {
                &mut instructors
            };
            table.insert(user.to_owned(), newest_first.clone());
        }
    }
    (students, instructors)
}

/// Shuffle, and repeat one event in ten (a Svix retry: same svix-id, same body).
pub(crate) fn deliveries(sent: &[Sent], seed: u64) -> Vec<Sent> {
    let mut all = sent.to_vec();
    all.extend(sent.iter().step_by(10).cloned());
    let mut rng = seed;
    for i in (1..all.len()).rev() {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        all.swap(i, (rng >> 33) as usize % (i + 1));
    }
    all
}

pub(crate) async fn send_all(system: &System, deliveries: &[Sent]) {
    for chunk in deliveries.chunks(50) {
        let answers =
            futures::future::join_all(chunk.iter().map(|e| system.send(&e.svix_id, &e.body))).await;
        assert!(answers.iter().all(|s| *s == 202), "{answers:?}");
    }
}

pub(crate) async fn assert_tables_equal_the_model(system: &System, sent: &[Sent]) {
    let (students, instructors) = model(sent);
    let actual = |rows: Vec<(String, Option<String>, String, String)>| -> BTreeMap<String, String> {
        rows.into_iter()
            .map(|(clerk, _, first, _)| (clerk, first))
            .collect()
    };
    assert_eq!(actual(system.rows("Student").await), students);
    assert_eq!(actual(system.rows("Instructor").await), instructors);
    let distinct = sent.len() as i64;
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM clerk_sync.events")
            .await,
        Some(distinct)
    );
    let emails_right = system
        .scalar(
            r#"SELECT count(*) AS n FROM "Student" WHERE "email" = "clerkId" || '@example.com'"#,
        )
        .await;
    assert_eq!(emails_right, Some(students.len() as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_shuffled_duplicated_histories_equal_the_model() {
    let mut system = System::start(&[("CLERK_SYNC__WORKER__BATCH_SIZE", "25")]).await;
    system.start_worker();
    system.start_worker();
    let sent = histories(120, 7);
    send_all(&system, &deliveries(&sent, 11)).await;
    system.wait_for_log(sent.len() as i64, WAIT).await;
    assert_tables_equal_the_model(&system, &sent).await;
    assert_eq!(system.stop_workers(), [Some(0), Some(0), Some(0)]);
}

/// The worker reaches `service` only through a proxy; once it is applying
/// (start-up, which migrates, is over), the proxy is cut and the rest of the
/// events flow in during the outage; then the service comes back.
async fn outage_while_events_flow(service: Service) {
    let proxy = Proxy::start(&match service {
        Service::Postgres => "127.0.0.1:5432".to_owned(),
        Service::RabbitMq => clerk_sync_testkit::broker::address(),
    })
    .await;
    let mut system = System::start(&[]).await;
    system.stop_workers();
    match service {
        Service::Postgres => {
            let through_proxy = proxy.postgres_url(&system.database.name);
            system.set_worker_env("DATABASE_URL", &through_proxy);
        }
        // The ingest keeps its own, direct connection.
        Service::RabbitMq => system.set_worker_env("AMQP_URL", &proxy.amqp_url()),
    }
    system.start_worker();
    let sent = histories(40, 3);
    let deliveries = deliveries(&sent, 5);
    let (first, second) = deliveries.split_at(deliveries.len() / 3);
    send_all(&system, first).await;
    system.wait_for_log(1, WAIT).await;
    proxy.cut();
    send_all(&system, second).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logged_during_outage = system
        .scalar("SELECT count(*) AS n FROM clerk_sync.events")
        .await;
    proxy.restore();
    system.wait_for_log(sent.len() as i64, WAIT).await;
    assert_tables_equal_the_model(&system, &sent).await;
    assert!(
        logged_during_outage < Some(sent.len() as i64),
        "the outage happened before everything was applied"
    );
}

enum Service {
    Postgres,
    RabbitMq,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_while_events_flow_loses_nothing() {
    outage_while_events_flow(Service::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_going_away_from_the_worker_loses_nothing() {
    outage_while_events_flow(Service::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_postgres_is_down_gives_the_batches_back() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let mut system = System::start(&[("CLERK_SYNC__WORKER__BATCH_SIZE", "20")]).await;
    system.stop_workers();
    let through_proxy = proxy.postgres_url(&system.database.name);
    system.set_worker_env("DATABASE_URL", &through_proxy);
    system.start_worker();
    let sent = histories(30, 21);
    let deliveries = deliveries(&sent, 23);
    let (first, second) = deliveries.split_at(deliveries.len() / 3);
    send_all(&system, first).await;
    system.wait_for_log(1, WAIT).await;
    proxy.cut();
    // Batches are now held, some waiting for the one before them.
    send_all(&system, second).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    assert_eq!(
        system.stop_workers(),
        [Some(0)],
        "stops cleanly, holding what it could not apply"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    proxy.restore();
    system.start_worker();
    system.wait_for_log(sent.len() as i64, WAIT).await;
    assert_tables_equal_the_model(&system, &sent).await;
}
