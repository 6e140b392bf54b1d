//! `clerk-sync-worker migrate`: create the database if it does not exist,
//! run pending migrations, declare the RabbitMQ topology. Idempotent, and
//! safe to run from several processes at once.

use clerk_sync_runtime::amqp;
use clerk_sync_store::repository::database;
use clerk_sync_store::settings::Settings;

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    database::create_if_missing(&settings.database.url).await?;
    database::migrate(&settings.database.url).await?;
    declare_topology(settings).await
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
