//! `clerk-sync-worker migrate`: bring the broker (and, with the worker
//! issue, the database) to the shape this version needs. Idempotent.

use clerk_sync_domain::runtime::amqp;
use clerk_sync_domain::runtime::settings::Settings;
use clerk_sync_domain::topology::Topology;

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let topology = Topology::new(settings.amqp.prefix.clone(), settings.amqp.shards);
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
