//! Phase E: phases A and B again, alternated, with the load generator on a
//! core of its own. A RabbitMQ node of the benchmark's own runs on CPU 0 only (one
//! Erlang scheduler), the ingest runs there beside it (one HTTP worker:
//! it sees that CPU alone), and this
//! process (the raw publisher of A, the HTTP client of B) on CPU 1: what
//! is measured then has one core, and nothing it measures runs on it.
//! Needs 2 CPUs; the node is stopped and its folder removed at the end.

use crate::alternate::{Compared, Setup, raw_and_http};
use crate::phase::{Probe, Stats};
use crate::process::spawn_ingest_on;
use crate::{Load, SHARDS};
use anyhow::{Context, Result};
use clerk_sync_domain::paths;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::settings::AmqpSettings;
use clerk_sync_runtime::{amqp, secret_url::SecretUrl};
use clerk_sync_testkit::cpu::{pin, rabbitmq_pid};
use clerk_sync_testkit::private_node::PrivateNode;
use std::process::ExitStatus;
use std::sync::Arc;

/// Where what is measured runs, and where the load generator runs.
const MEASURED_CPU: &str = "0";
const GENERATOR_CPU: &str = "1";

/// Phase E's figures: the raw limit and the ingest, closed loop.
pub(crate) struct OwnCores {
    pub(crate) raw: Stats,
    pub(crate) http: Stats,
    /// The ingest's exit status after SIGTERM.
    pub(crate) exit: ExitStatus,
}

/// Phase E, or `None` on a machine of fewer than 2 CPUs.
pub(crate) async fn own_cores(
    prefix: &str,
    load: &Arc<Load>,
    client: &reqwest::Client,
    secs: u64,
) -> Result<Option<OwnCores>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        return Ok(None);
    }
    let node = tokio::task::spawn_blocking(|| PrivateNode::start_on_cpus(MEASURED_CPU))
        .await
        .context("starting a RabbitMQ node of the benchmark's own")?;
    let settings = AmqpSettings {
        url: SecretUrl::new(node.amqp_url()),
        prefix: prefix.to_owned(),
        shards: SHARDS,
        ..Default::default()
    };
    let me = std::process::id();
    pin(me, GENERATOR_CPU).context("pinning the load generator")?;
    let measured = measure(&settings, &node, load, client, secs).await;
    pin(me, &format!("0-{}", cores - 1)).context("unpinning the load generator")?;
    tokio::task::spawn_blocking(move || drop(node)).await?;
    measured.map(Some)
}

async fn measure(
    settings: &AmqpSettings,
    node: &PrivateNode,
    load: &Arc<Load>,
    client: &reqwest::Client,
    secs: u64,
) -> Result<OwnCores> {
    let me: Probe = Some(("load generator", std::process::id()));
    let rabbitmq = rabbitmq_pid(&node.amqp_url()).map(|pid| ("rabbitmq", pid));
    let admin = amqp::connect(&settings.url, "clerk-sync-bench").await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    // Started on its CPU, as in a container of one CPU: one HTTP worker.
    let mut ingest = spawn_ingest_on(MEASURED_CPU, settings, port, "warn")?;
    ingest.wait_ready(client, &base).await?;
    let url = format!("{base}{}", paths::WEBHOOK);
    let setup = Setup {
        settings,
        admin: &admin,
        topology: &Topology::new(settings.prefix.clone(), SHARDS),
        load,
        client,
        url: &url,
        raw_probes: &[me, rabbitmq],
        http_probes: &[me, Some(("ingest", ingest.pid())), rabbitmq],
    };
    let compared = raw_and_http(&setup, secs).await;
    let exit = ingest.stop().await?;
    let _ = admin.close(200, "benchmark done".into()).await;
    let Compared { raw, http, .. } = compared?;
    Ok(OwnCores { raw, http, exit })
}
