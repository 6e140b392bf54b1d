//! The machine's limit for the worker: the rows it writes, written
//! without it.

use super::load::{Event, T0};
use super::measure::{cpu_report, cpu_snapshot};
use anyhow::{Context, Result};
use clerk_sync_domain::outcome::Outcome;
use clerk_sync_domain::projection::{Profile, UserState};
use clerk_sync_domain::roles::Role;
use clerk_sync_store::plan::LogRow;
use clerk_sync_store::repository;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use std::collections::BTreeMap;
use std::time::Instant;

/// The same rows the worker writes for `events`, in batches of
/// `batch_size`, straight through diesel-async: no RabbitMQ, no decision.
/// Events per second, and the CPU report.
pub async fn raw_limit(
    connection: &mut AsyncPgConnection,
    events: &[Event],
    batch_size: usize,
) -> Result<(f64, String)> {
    let started = Instant::now();
    let before = cpu_snapshot(&[std::process::id()]);
    for batch in events.chunks(batch_size) {
        let log: Vec<LogRow> = batch
            .iter()
            .map(|e| LogRow {
                svix_id: e.svix_id.clone(),
                event_type: Some("user.updated".to_owned()),
                clerk_user_id: Some(e.user.clone()),
                occurred_at_ms: Some(e.at_ms),
                received_at_ms: e.at_ms,
                outcome: Outcome::Applied,
                error: None,
            })
            .collect();
        let payloads: Vec<String> = batch
            .iter()
            .map(|e| serde_json::json!({"headers": {"svix-id": e.svix_id}, "body": String::from_utf8_lossy(&e.body)}).to_string())
            .collect();
        let users: BTreeMap<String, UserState> = batch
            .iter()
            .map(|e| {
                let profile = Profile {
                    email: Some(format!("{}@example.com", e.user)),
                    first_name: "First".to_owned(),
                    last_name: "Bench".to_owned(),
                    image_url: None,
                    created_at_ms: T0,
                    updated_at_ms: e.at_ms,
                };
                let state = UserState {
                    newest: None,
                    deleted: false,
                    roles: [Role::Student].into(),
                    profile: Some(profile),
                };
                (e.user.clone(), state)
            })
            .collect();
        connection
            .transaction(async |c| {
                repository::events::insert_log(c, &log, &payloads).await?;
                repository::rows::write_rows(c, &users).await
            })
            .await
            .context("raw batch failed")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_report(
        "benchmark",
        before,
        cpu_snapshot(&[std::process::id()]),
        events.len() as f64,
        seconds,
    );
    Ok((events.len() as f64 / seconds, cpu))
}
