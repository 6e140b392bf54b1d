//! `clerk-sync-worker migrate`: create the database if it does not exist,
//! run pending migrations, declare the RabbitMQ topology. Idempotent, and
//! safe to run from several processes at once. `run` migrates first (or,
//! with `worker.migrate_on_start = false`, waits for a `migrate` to have
//! run) and waits for a service that does not answer yet
//! ([`run_when_reachable`]).

use crate::serving::metrics::Metrics;
use clerk_sync_domain::backoff::Backoff;
use clerk_sync_runtime::amqp::{self, AmqpError};
use clerk_sync_store::repository::database;
use clerk_sync_store::settings::Settings;

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    database::create_if_missing(&settings.database.url).await?;
    database::migrate(&settings.database.url).await?;
    declare_topology(settings).await
}

/// What `run` does before consuming: migrate; or, where the worker's role
/// may not (`worker.migrate_on_start = false`), check that a `migrate` ran
/// and declare the topology.
async fn prepare(settings: &Settings) -> anyhow::Result<()> {
    if settings.worker.migrate_on_start {
        return run(settings).await;
    }
    database::ensure_migrated(&settings.database.url).await?;
    declare_topology(settings).await
}

/// Migrate (or check the migration: see `prepare`), waiting with back-off
/// while PostgreSQL or every RabbitMQ node is unreachable, and saying so in
/// the log and on `/readyz`, so that a worker started before its services
/// does not exit (an orchestrator would restart it with ever longer delays).
/// Any other failure ends it. Returns when migrated; runs until cancelled
/// while nothing answers.
pub async fn run_when_reachable(settings: &Settings, metrics: &Metrics) -> anyhow::Result<()> {
    let mut backoff = Backoff::SERVICE;
    loop {
        match prepare(settings).await {
            Ok(()) => {
                metrics.starting(None);
                return Ok(());
            }
            Err(e) if unreachable(&e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "waiting for a service to start");
                metrics.starting(Some(format!("waiting: {e:#}")));
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A service that did not answer (or a database not migrated yet), as
/// opposed to one that refused the work.
fn unreachable(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<AmqpError>(),
        Some(AmqpError::Unreachable { .. })
    ) || error.downcast_ref::<diesel::ConnectionError>().is_some()
        || error.downcast_ref::<database::NotMigrated>().is_some()
}

pub async fn declare_topology(settings: &Settings) -> anyhow::Result<()> {
    let topology = settings.amqp.topology();
    let connection = amqp::connect(&settings.amqp.url, "clerk-sync-worker migrate").await?;
    amqp::declare_topology(&connection, &topology, settings.amqp.delivery_limit).await?;
    let _ = connection.close(200, "migrated".into()).await;
    tracing::info!(
        exchange = %topology.exchange(),
        shards = topology.shards(),
        dead_letter_queue = %topology.dead_letter_queue(),
        "RabbitMQ topology declared"
    );
    Ok(())
}
