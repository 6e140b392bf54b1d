//! What the `dlq` tests share.

pub(super) use crate::support::DeadLetters;
pub(super) use crate::support::system::{CliOutput, System, user_event};
pub(super) use crate::support::{DeadLetterSpec, amqp_url};
pub(super) use clerk_sync_domain::topology::Topology;
pub(super) use lapin::options::{BasicGetOptions, BasicRejectOptions};
pub(super) use lapin::{Connection, ConnectionProperties};
pub(super) use serde_json::Value;
pub(super) use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(super) const T0: i64 = 1_700_000_000_000;
pub(super) const WAIT: Duration = Duration::from_secs(30);

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn body(kind: &str, user: &str) -> Vec<u8> {
    user_event(kind, user, T0, None, Some("Ada"), None)
}

pub(super) fn letter<'a>(svix_id: &'a str, body: &'a [u8]) -> DeadLetterSpec<'a> {
    DeadLetterSpec {
        svix_id,
        body,
        reason: "something failed",
        deliveries: 10,
        received_at_ms: now_ms() - 90_000,
    }
}

/// `dlq list --json`, which must succeed.
pub(super) async fn list(system: &System) -> Value {
    let output = system.cli(&["dlq", "list", "--json"], &[]).await;
    assert_eq!(output.code, Some(0), "{output:?}");
    output.json()
}

pub(super) fn ids(listed: &Value) -> Vec<String> {
    listed["dead_letters"]
        .as_array()
        .unwrap_or_else(|| panic!("no dead_letters in {listed}"))
        .iter()
        .map(|l| l["svix_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(super) async fn wait_for_dead_letters(system: &System, count: u64) -> Value {
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

pub(super) fn one_line_error(output: &CliOutput, code: i32, needle: &str) {
    assert_eq!(output.code, Some(code), "{output:?}");
    assert_eq!(output.stderr.trim_end().lines().count(), 1, "{output:?}");
    assert!(output.stderr.contains(needle), "{needle} in {output:?}");
}

pub(super) fn topology(system: &System) -> Topology {
    Topology::new(system.broker.prefix.clone(), system.broker.shards)
}

/// Messages waiting in each shard queue, from `status --json`.
pub(super) async fn shard_depths(system: &System) -> Vec<u64> {
    let status = system.cli(&["status", "--json"], &[]).await;
    assert_eq!(status.code, Some(0), "{status:?}");
    status.json()["shards"]
        .as_array()
        .expect("no shards")
        .iter()
        .map(|s| s["waiting"].as_u64().unwrap_or(u64::MAX))
        .collect()
}
