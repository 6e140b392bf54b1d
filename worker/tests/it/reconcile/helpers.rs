//! What the reconcile tests share: Clerk users as the fake serves them,
//! seeding the database, running the command, reading the outcome.

pub(super) use crate::support::fake_clerk::{FakeClerk, Fault, KEY};
pub(super) use crate::support::system::{CliOutput, System, deleted_event, user_event};
pub(super) use serde_json::Value;
use std::time::Duration;

pub(super) const T0: i64 = 1_700_000_000_000;
pub(super) const WAIT: Duration = Duration::from_secs(20);

/// A Backend API user object: the `data` of the matching webhook.
pub(super) fn clerk_user(id: &str, updated_at_ms: i64, first: &str, role: Option<&str>) -> Value {
    let email = format!("{id}@example.com");
    let event = user_event(
        "user.updated",
        id,
        updated_at_ms,
        Some(&email),
        Some(first),
        role,
    );
    serde_json::from_slice::<Value>(&event).unwrap()["data"].clone()
}

/// Send `user.created` webhooks for `users` (id, first name) at T0.
pub(super) async fn seed(system: &System, users: &[(&str, &str)]) {
    for (id, first) in users {
        let email = format!("{id}@example.com");
        let body = user_event("user.created", id, T0, Some(&email), Some(first), None);
        let status = system.send(&format!("msg_{id}"), &body).await;
        assert!((200..300).contains(&status), "{status}");
    }
    system.wait_for_log(users.len() as i64, WAIT).await;
}

/// `reconcile` with no request budget (the tests of the budget set one).
pub(super) async fn reconcile(system: &System, clerk: &FakeClerk, args: &[&str]) -> CliOutput {
    let mut all = vec!["reconcile", "--budget", "0"];
    all.extend_from_slice(args);
    system
        .cli(
            &all,
            &[
                ("CLERK_SYNC__CLERK__API_URL", clerk.url.as_str()),
                ("CLERK_SECRET_KEY", KEY),
            ],
        )
        .await
}

pub(super) fn succeeded(output: &CliOutput) {
    assert_eq!(output.code, Some(0), "{output:?}");
}

/// Failed with exit 1 and one line on stderr containing `message`.
pub(super) fn failed_with(output: &CliOutput, message: &str) {
    assert_eq!(output.code, Some(1), "{output:?}");
    assert_eq!(output.stderr.trim().lines().count(), 1, "{output:?}");
    assert!(output.stderr.contains(message), "{output:?}");
    assert!(
        !output.stderr.contains(KEY),
        "the key was printed: {output:?}"
    );
    assert!(output.stdout.is_empty(), "{output:?}");
}

pub(super) async fn logged(system: &System) -> i64 {
    system
        .scalar("SELECT count(*) AS n FROM clerk_sync.events")
        .await
        .unwrap_or(-1)
}

pub(super) async fn synthetic(system: &System, event_type: &str) -> i64 {
    system
        .scalar(&format!(
            "SELECT count(*) AS n FROM clerk_sync.events WHERE svix_id LIKE 'reconcile\\_%' \
             AND event_type = '{event_type}' AND outcome = 'applied' \
             AND payload->'headers'->>'svix-signature' IS NULL"
        ))
        .await
        .unwrap_or(-1)
}

pub(super) fn firsts(rows: &[(String, Option<String>, String, String)]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|(id, _, first, _)| (id.as_str(), first.as_str()))
        .collect()
}

/// Everything reconcile could change, to compare before and after.
pub(super) async fn snapshot(system: &System) -> (i64, i64, String, String) {
    let users = system
        .scalar("SELECT count(*) AS n FROM clerk_sync.users")
        .await
        .unwrap_or(-1);
    (
        logged(system).await,
        users,
        format!("{:?}", system.rows("Student").await),
        format!("{:?}", system.rows("Instructor").await),
    )
}
