//! `clerk_sync.workers` (each running worker and where it serves its
//! metrics) and `clerk_sync.shard_heads` (the oldest message each worker
//! holds of each shard queue), written by the workers' reporters and read
//! by `status`.

use diesel::result::Error;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::time::Duration;

/// How long a report counts: a worker that has not reported for longer is
/// taken to be gone (its row stays until pruned, and is ignored).
pub const FRESH_FOR: Duration = Duration::from_secs(30);

/// Remove the rows of workers that have not reported for a day.
pub async fn prune_gone(connection: &mut AsyncPgConnection) -> Result<(), Error> {
    for table in ["clerk_sync.shard_heads", "clerk_sync.workers"] {
        diesel::sql_query(format!(
            "DELETE FROM {table} WHERE reported_at < now() - interval '1 day'"
        ))
        .execute(connection)
        .await?;
    }
    Ok(())
}

/// Record that `worker` runs, serving its metrics at `metrics_url`, and,
/// per queue of `queues`, the oldest message it holds (`oldest_ms`, Unix
/// milliseconds; none when it holds none) and how many (`held`).
pub async fn report(
    connection: &mut AsyncPgConnection,
    worker: &str,
    metrics_url: &str,
    queues: &[String],
    oldest_ms: &[Option<i64>],
    held: &[i32],
) -> Result<(), Error> {
    diesel::sql_query(
        "INSERT INTO clerk_sync.workers (worker, metrics_url) VALUES ($1, $2) \
         ON CONFLICT (worker) DO UPDATE SET metrics_url = EXCLUDED.metrics_url, reported_at = now()",
    )
    .bind::<Text, _>(worker)
    .bind::<Text, _>(metrics_url)
    .execute(connection)
    .await?;
    diesel::sql_query(
        "INSERT INTO clerk_sync.shard_heads (queue, worker, oldest_received_at, held, reported_at) \
         SELECT q, $2, to_timestamp(o / 1000.0), h, now() \
         FROM unnest($1::text[], $3::bigint[], $4::int[]) AS r(q, o, h) \
         ON CONFLICT (queue, worker) DO UPDATE SET oldest_received_at = EXCLUDED.oldest_received_at, \
           held = EXCLUDED.held, reported_at = EXCLUDED.reported_at",
    )
    .bind::<Array<Text>, _>(queues)
    .bind::<Text, _>(worker)
    .bind::<Array<Nullable<BigInt>>, _>(oldest_ms)
    .bind::<Array<Integer>, _>(held)
    .execute(connection)
    .await
    .map(drop)
}

/// Remove `worker`'s rows (it is stopping).
pub async fn forget(connection: &mut AsyncPgConnection, worker: &str) -> Result<(), Error> {
    diesel::sql_query(
        "WITH heads AS (DELETE FROM clerk_sync.shard_heads WHERE worker = $1) \
         DELETE FROM clerk_sync.workers WHERE worker = $1",
    )
    .bind::<Text, _>(worker)
    .execute(connection)
    .await
    .map(drop)
}

/// What the workers that reported within a time say of one shard queue.
#[derive(Debug, diesel::QueryableByName)]
pub struct QueueReport {
    #[diesel(sql_type = Text)]
    pub queue: String,
    /// Seconds since the oldest message held was received.
    #[diesel(sql_type = Nullable<Double>)]
    pub oldest_age: Option<f64>,
    #[diesel(sql_type = BigInt)]
    pub held: i64,
    /// Seconds since the newest report.
    #[diesel(sql_type = Double)]
    pub report_age: f64,
}

/// The shard queues' reports newer than `fresh_for`.
pub async fn queue_reports(
    connection: &mut AsyncPgConnection,
    fresh_for: Duration,
) -> Result<Vec<QueueReport>, Error> {
    diesel::sql_query(
        "SELECT queue, extract(epoch FROM now() - min(oldest_received_at))::float8 AS oldest_age, \
                sum(held)::bigint AS held, extract(epoch FROM now() - max(reported_at))::float8 AS report_age \
         FROM clerk_sync.shard_heads WHERE reported_at > now() - $1 * interval '1 second' GROUP BY queue",
    )
    .bind::<Double, _>(fresh_for.as_secs_f64())
    .load(connection)
    .await
}

/// A worker that reported within a time.
#[derive(Debug, diesel::QueryableByName)]
pub struct RunningWorker {
    #[diesel(sql_type = Text)]
    pub worker: String,
    #[diesel(sql_type = Text)]
    pub metrics_url: String,
    /// Seconds since it started.
    #[diesel(sql_type = Double)]
    pub up: f64,
    /// Seconds since its last report.
    #[diesel(sql_type = Double)]
    pub report_age: f64,
}

/// The workers that reported within `fresh_for`, by metrics URL.
pub async fn running(
    connection: &mut AsyncPgConnection,
    fresh_for: Duration,
) -> Result<Vec<RunningWorker>, Error> {
    diesel::sql_query(
        "SELECT worker, metrics_url, extract(epoch FROM now() - started_at)::float8 AS up, \
                extract(epoch FROM now() - reported_at)::float8 AS report_age \
         FROM clerk_sync.workers WHERE reported_at > now() - $1 * interval '1 second' \
         ORDER BY metrics_url, worker",
    )
    .bind::<Double, _>(fresh_for.as_secs_f64())
    .load(connection)
    .await
}
