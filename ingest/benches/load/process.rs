//! The real `clerk-sync-ingest` binary as a child process, and the
//! topology's queues emptied between phases.

use crate::SECRET;
use anyhow::{Context, Result};
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::settings::AmqpSettings;
use clerk_sync_testkit::service::Service;
use lapin::Connection;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The ingest binary as a child process, logging what `log_filter`
/// (`RUST_LOG`) lets through.
pub(crate) fn spawn_ingest(amqp: &AmqpSettings, port: u16, log_filter: &str) -> Result<Service> {
    Service::spawn(
        "clerk-sync-ingest",
        Command::new(env!("CARGO_BIN_EXE_clerk-sync-ingest"))
            .env("CLERK_WEBHOOK_SECRET", SECRET)
            .env("INGEST_LISTEN", format!("127.0.0.1:{port}"))
            .env("AMQP_URL", amqp.url.expose())
            .env("CLERK_SYNC__AMQP__PREFIX", &amqp.prefix)
            .env("CLERK_SYNC__AMQP__SHARDS", amqp.shards.to_string())
            .env("RUST_LOG", log_filter)
            .stdin(Stdio::null()),
    )
}

/// Empty the topology's queues between phases.
pub(crate) async fn purge(admin: &Connection, topology: &Topology) -> Result<()> {
    let channel = admin.create_channel().await?;
    for queue in topology
        .shard_queues()
        .chain([topology.dead_letter_queue()])
    {
        let purged = channel.queue_purge(queue.as_str().into(), Default::default());
        purged
            .await
            .with_context(|| format!("purging queue {queue}"))?;
    }
    let _ = channel.close(200, "purged".into()).await;
    Ok(())
}

/// Time since the Unix epoch.
pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
