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
    spawn_ingest_with(Command::new(INGEST), amqp, port, log_filter)
}

/// [`spawn_ingest`] run only on `cpus` (a `taskset` list) from its start:
/// it sees those CPUs alone, and starts one HTTP worker for each.
pub(crate) fn spawn_ingest_on(
    cpus: &str,
    amqp: &AmqpSettings,
    port: u16,
    log_filter: &str,
) -> Result<Service> {
    let mut taskset = Command::new("taskset");
    taskset.args(["-c", cpus, INGEST]);
    spawn_ingest_with(taskset, amqp, port, log_filter)
}

const INGEST: &str = env!("CARGO_BIN_EXE_clerk-sync-ingest");

fn spawn_ingest_with(
    mut command: Command,
    amqp: &AmqpSettings,
    port: u16,
    log_filter: &str,
) -> Result<Service> {
    Service::spawn(
        "clerk-sync-ingest",
        command
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
