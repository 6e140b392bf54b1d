//! The real `clerk-sync-ingest` binary as a child process, and the
//! topology's queues emptied between phases.

use crate::SECRET;
use anyhow::{Context, Result, bail, ensure};
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::settings::AmqpSettings;
use lapin::Connection;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The ingest binary as a child process, killed if dropped while running.
pub(crate) struct Ingest(pub(crate) Child);

impl Ingest {
    pub(crate) fn spawn(amqp: &AmqpSettings, port: u16) -> Result<Self> {
        let child = Command::new(env!("CARGO_BIN_EXE_clerk-sync-ingest"))
            .env("CLERK_WEBHOOK_SECRET", SECRET)
            .env("INGEST_LISTEN", format!("127.0.0.1:{port}"))
            .env("AMQP_URL", amqp.url.expose())
            .env("CLERK_SYNC__AMQP__PREFIX", &amqp.prefix)
            .env("CLERK_SYNC__AMQP__SHARDS", amqp.shards.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .context("starting clerk-sync-ingest")?;
        Ok(Self(child))
    }

    pub(crate) async fn wait_ready(&mut self, client: &reqwest::Client, base: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait()? {
                bail!("clerk-sync-ingest exited before it was ready: {status}");
            }
            let ready = client.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("clerk-sync-ingest was not ready (GET /readyz == 200) within 30 s")
    }

    /// SIGTERM, then wait for the exit (the ingest drains for up to 30 s).
    pub(crate) async fn stop(&mut self) -> Result<ExitStatus> {
        let pid = self.0.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status()?;
        ensure!(kill.success(), "kill -TERM failed: {kill}");
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("clerk-sync-ingest did not exit within 40 s of SIGTERM")
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
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
