//! An e-mail address that moves between users converges, whatever the
//! order and the delay: the newest claim holds it, the other rows show none
//! until their own newer event, nothing is dead-lettered, and replay gives
//! the same rows.

use crate::support::DeadLetters;
use crate::support::system::{System, deleted_event, user_event};
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);
const E: &str = "shared@example.com";

/// `(clerkId, email)` of every Student row.
async fn emails(system: &System) -> Vec<(String, Option<String>)> {
    system
        .rows("Student")
        .await
        .into_iter()
        .map(|(clerk, email, _, _)| (clerk, email))
        .collect()
}

fn row(clerk: &str, email: Option<&str>) -> (String, Option<String>) {
    (clerk.to_owned(), email.map(str::to_owned))
}

async fn send(system: &System, svix_id: &str, body: &[u8], logged: i64) {
    assert_eq!(system.send(svix_id, body).await, 202);
    system.wait_for_log(logged, WAIT).await;
}

/// `replay` changes nothing, and rebuilding the tables from nothing gives
/// the same rows.
async fn replay_agrees(system: &System) {
    let before = emails(system).await;
    let replayed = system.cli(&["replay", "--json"], &[]).await;
    assert_eq!(replayed.code, Some(0), "{}", replayed.stderr);
    assert_eq!(
        replayed.json()["totals"]["users_changed"],
        0,
        "{}",
        replayed.stdout
    );
    system.execute(r#"DELETE FROM "Student""#).await;
    let rebuilt = system.cli(&["replay"], &[]).await;
    assert_eq!(rebuilt.code, Some(0), "{}", rebuilt.stderr);
    assert_eq!(emails(system).await, before, "replay gives the same rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_taker_arriving_before_the_giver_converges_without_a_dead_letter() {
    // A short retry budget: before, B's event was dead-lettered once it ran out.
    let system = System::start(&[("CLERK_SYNC__AMQP__DELIVERY_LIMIT", "2")]).await;
    let a_created = user_event("user.created", "user_a", T0, Some(E), Some("A"), None);
    send(&system, "m1", &a_created, 1).await;
    // A gives the address up at T0 + 10 and B takes it at T0 + 20, but B's
    // event arrives first.
    let b_created = user_event("user.created", "user_b", T0 + 20, Some(E), Some("B"), None);
    send(&system, "m3", &b_created, 2).await;
    assert_eq!(
        emails(&system).await,
        [row("user_a", None), row("user_b", Some(E))],
        "the newest claim holds the address"
    );
    // A's event is held back far longer than the retry budget.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a_updated = user_event(
        "user.updated",
        "user_a",
        T0 + 10,
        Some("a.new@example.com"),
        Some("A"),
        None,
    );
    send(&system, "m2", &a_updated, 3).await;
    assert_eq!(
        emails(&system).await,
        [
            row("user_a", Some("a.new@example.com")),
            row("user_b", Some(E))
        ]
    );
    let outcomes: Vec<String> = system.outcomes().await.into_iter().map(|o| o.1).collect();
    assert_eq!(outcomes, ["applied", "applied", "applied"]);
    assert!(system.broker.take_dead_letters().await.is_empty());
    replay_agrees(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_claim_arriving_late_shows_no_address() {
    let system = System::start(&[]).await;
    let b = user_event("user.created", "user_b", T0 + 20, Some(E), Some("B"), None);
    send(&system, "m1", &b, 1).await;
    let a = user_event("user.created", "user_a", T0, Some(E), Some("A"), None);
    send(&system, "m2", &a, 2).await;
    assert_eq!(
        emails(&system).await,
        [row("user_a", None), row("user_b", Some(E))]
    );
    replay_agrees(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_given_up_by_its_holder_goes_to_the_next_claim() {
    let system = System::start(&[]).await;
    let a = user_event("user.created", "user_a", T0, Some(E), Some("A"), None);
    let b = user_event("user.created", "user_b", T0 + 20, Some(E), Some("B"), None);
    let c = user_event("user.created", "user_c", T0 + 30, Some(E), Some("C"), None);
    send(&system, "m1", &a, 1).await;
    send(&system, "m2", &b, 2).await;
    send(&system, "m3", &c, 3).await;
    assert_eq!(
        emails(&system).await,
        [
            row("user_a", None),
            row("user_b", None),
            row("user_c", Some(E))
        ]
    );
    // C takes another address: B's claim is now the newest.
    let c_moves = user_event(
        "user.updated",
        "user_c",
        T0 + 40,
        Some("c@example.com"),
        Some("C"),
        None,
    );
    send(&system, "m4", &c_moves, 4).await;
    assert_eq!(
        emails(&system).await,
        [
            row("user_a", None),
            row("user_b", Some(E)),
            row("user_c", Some("c@example.com"))
        ]
    );
    // B is deleted: A's claim is the only one left.
    send(&system, "m5", &deleted_event("user_b", T0 + 50), 5).await;
    assert_eq!(
        emails(&system).await,
        [row("user_a", Some(E)), row("user_c", Some("c@example.com"))]
    );
    assert!(system.broker.take_dead_letters().await.is_empty());
    replay_agrees(&system).await;
}
