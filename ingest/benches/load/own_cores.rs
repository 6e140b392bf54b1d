//! Phases E and F: phases A and B again, alternated, with the load
//! generator off the ingest's core, against a RabbitMQ node of the
//! benchmark's own that runs on one CPU only (one Erlang scheduler). The
//! ingest runs on the first CPU this process may use (one HTTP worker: it
//! sees that CPU alone), this process (the raw publisher of A, the HTTP
//! client of B) on the second; the node runs beside the ingest in E
//! ([`Placement::BesideRabbitmq`]: what is measured has one core, and
//! nothing it measures runs on it) and beside this process in F
//! ([`Placement::Alone`]: the ingest has a core of its own, as behind a
//! load balancer with RabbitMQ elsewhere). Needs 2 CPUs; the node is
//! stopped and its folder removed at the end.

use crate::alternate::{Compared, Setup, raw_and_http};
use crate::phase::{Probe, Stats};
use crate::process::spawn_ingest_on;
use crate::{Load, SHARDS};
use anyhow::{Context, Result};
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::settings::AmqpSettings;
use clerk_sync_runtime::{amqp, secret_url::SecretUrl};
use clerk_sync_testkit::cpu::{allowed_cpus, pin, rabbitmq_pid};
use clerk_sync_testkit::http1;
use clerk_sync_testkit::private_node::PrivateNode;
use std::process::ExitStatus;
use std::sync::Arc;

/// Phase E's figures: the raw limit and the ingest, closed loop.
pub(crate) struct OwnCores {
    pub(crate) raw: Stats,
    pub(crate) http: Stats,
    /// The ingest's exit status after SIGTERM.
    pub(crate) exit: ExitStatus,
}

/// Whom the ingest shares its CPU with (the first this process may use;
/// the load generator's is the second): where the RabbitMQ node runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement {
    /// E: the node runs on the ingest's CPU.
    BesideRabbitmq,
    /// F: the node runs on the load generator's CPU.
    Alone,
}

/// Phase E or F, or `None` when this process may run on fewer than 2 CPUs.
pub(crate) async fn own_cores(
    placement: Placement,
    prefix: &str,
    load: &Arc<Load>,
    client: &reqwest::Client,
    secs: u64,
) -> Result<Option<OwnCores>> {
    let me = std::process::id();
    let allowed = allowed_cpus(me);
    let (measured, generator) = match allowed[..] {
        [measured, generator, ..] => (measured.to_string(), generator.to_string()),
        _ => return Ok(None),
    };
    let on = match placement {
        Placement::BesideRabbitmq => measured.clone(),
        Placement::Alone => generator.clone(),
    };
    let node = tokio::task::spawn_blocking(move || PrivateNode::start_on_cpus(&on))
        .await
        .context("starting a RabbitMQ node of the benchmark's own")?;
    let settings = AmqpSettings {
        url: SecretUrl::new(node.amqp_url()),
        prefix: prefix.to_owned(),
        shards: SHARDS,
        ..Default::default()
    };
    let all: Vec<String> = allowed.iter().map(u32::to_string).collect();
    pin(me, &generator).context("pinning the load generator")?;
    let figures = measure(&settings, &node, &measured, load, client, secs).await;
    pin(me, &all.join(",")).context("unpinning the load generator")?;
    tokio::task::spawn_blocking(move || drop(node)).await?;
    figures.map(Some)
}

async fn measure(
    settings: &AmqpSettings,
    node: &PrivateNode,
    cpu: &str,
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
    let mut ingest = spawn_ingest_on(cpu, settings, port, "warn")?;
    ingest.wait_ready(client, &base).await?;
    let http = Arc::new(http1::Client::new(([127, 0, 0, 1], port).into()));
    let setup = Setup {
        settings,
        admin: &admin,
        topology: &Topology::new(settings.prefix.clone(), SHARDS),
        load,
        http: &http,
        raw_probes: &[me, rabbitmq],
        http_probes: &[me, Some(("ingest", ingest.pid())), rabbitmq],
    };
    let compared = raw_and_http(&setup, secs).await;
    let exit = ingest.stop().await?;
    let _ = admin.close(200, "benchmark done".into()).await;
    let Compared { raw, http, .. } = compared?;
    Ok(OwnCores { raw, http, exit })
}
