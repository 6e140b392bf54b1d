//! Shared by the benchmarks (throughput, chaos, failover, replay, end to
//! end, reconcile): an independent model of the semantics and the check of
//! the tables against it, real worker processes, and the resources of a run (a database and a topology of its
//! own, removed afterwards).

#![allow(dead_code)]

pub mod check;
pub mod ingest;
pub mod limit;
pub mod load;
pub mod measure;
pub mod model;
pub mod services;
pub mod workers;

use anyhow::{Context, Result};
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::secret_url::SecretUrl;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database name and queue prefix of this run's own: `<kind>_<8 hex>`.
pub fn unique(kind: &str) -> String {
    format!("{kind}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

pub fn database_url(name: &str) -> SecretUrl {
    SecretUrl::new(format!("postgres://postgres@127.0.0.1:5432/{name}"))
}

/// Rows in `clerk_sync.events`, on a connection of its own (so it works
/// across a PostgreSQL restart).
pub async fn logged(url: &SecretUrl) -> Result<i64> {
    scalar(url, "SELECT count(*) AS n FROM clerk_sync.events").await
}

/// The bigint `n` that `sql` returns, on a connection of its own.
pub async fn scalar(url: &SecretUrl, sql: &str) -> Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut connection = AsyncPgConnection::establish(url.expose()).await?;
    let n: N = diesel::sql_query(sql).get_result(&mut connection).await?;
    Ok(n.n)
}

/// Messages in each shard queue and in the dead-letter queue: ready ones
/// only (what a worker holds unacknowledged is not counted).
#[derive(Debug, Default)]
pub struct Depths {
    pub shards: u64,
    pub dead_letters: u64,
}

pub async fn depths(broker: &SecretUrl, topology: &Topology) -> Result<Depths> {
    let connection = amqp::connect(broker, "bench-depths").await?;
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let mut depths = Depths::default();
    for queue in topology.shard_queues() {
        let declared = channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
            .with_context(|| format!("cannot inspect queue {queue}"))?;
        depths.shards += u64::from(declared.message_count());
    }
    let queue = topology.dead_letter_queue();
    let declared = channel
        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
        .await
        .with_context(|| format!("cannot inspect queue {queue}"))?;
    depths.dead_letters = u64::from(declared.message_count());
    let _ = connection.close(200, "inspected".into()).await;
    Ok(depths)
}

/// Empty the log, the sync states and the app's tables.
pub async fn reset(connection: &mut AsyncPgConnection) -> Result<()> {
    diesel::sql_query(r#"TRUNCATE clerk_sync.events, clerk_sync.users, "Enrollment", "Course", "Student", "Instructor""#)
        .execute(connection)
        .await?;
    Ok(())
}

/// Remove the run's topology and database; quietly, as this runs after
/// failures too.
pub async fn cleanup(broker: &SecretUrl, db_name: &str, topology: &Topology) {
    if let Ok(connection) = amqp::connect(broker, "bench-cleanup").await {
        let _ = amqp::delete_topology(&connection, topology).await;
    }
    drop_database(db_name).await;
}

/// Remove a run's database, quietly.
pub async fn drop_database(db_name: &str) {
    if let Ok(mut server) = AsyncPgConnection::establish(SERVER_URL).await {
        let _ = diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
        ))
        .execute(&mut server)
        .await;
    }
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// When each logged event was recorded, from `since_unix_ms` (earlier ones
/// are left out).
pub async fn recorded_since(
    url: &SecretUrl,
    since_unix_ms: i64,
) -> Result<Vec<std::time::Duration>> {
    #[derive(diesel::QueryableByName)]
    struct At {
        #[diesel(sql_type = BigInt)]
        ms: i64,
    }
    let mut connection = AsyncPgConnection::establish(url.expose()).await?;
    let rows: Vec<At> = diesel::sql_query(
        "SELECT (extract(epoch FROM recorded_at) * 1000)::bigint AS ms FROM clerk_sync.events",
    )
    .load(&mut connection)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|at| u64::try_from(at.ms - since_unix_ms).ok())
        .map(std::time::Duration::from_millis)
        .collect())
}
