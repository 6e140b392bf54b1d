//! The ingest of a failover run: `clerk-sync-ingest` as a process of its
//! own (`common::ingest`), with two HTTP
//! workers, logging JSON to `ingest.log` in the run's log folder, with its
//! per-event DEBUG line ("event queued", with the svix-id and the queue);
//! and what the run asks of it: the node it names in `/readyz`, watched
//! every 50 ms, and its refusals by reason from `/metrics`.

use crate::cluster::Cluster;
use crate::common::ingest;
use anyhow::{Context, Result};
use clerk_sync_domain::paths;
use clerk_sync_testkit::service::Service;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Each event the ingest queued, and every refusal, with its svix-id.
const RUST_LOG: &str = "info,clerk_sync_ingest=debug";

#[derive(Debug)]
pub struct Ingest {
    service: Service,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Ingest {
    /// Start it on a free port, publishing through `amqp_url`, and wait
    /// until it is ready.
    pub async fn start(
        client: &reqwest::Client,
        amqp_url: &str,
        prefix: &str,
        shards: u16,
        logs: &Path,
    ) -> Result<Self> {
        let port = crate::common::workers::free_port()?;
        let mut service = Service::spawn(
            "clerk-sync-ingest",
            ingest::command(&[], amqp_url, prefix, port, logs)?
                .env("CLERK_SYNC__AMQP__SHARDS", shards.to_string())
                .env("CLERK_SYNC__INGEST__HTTP_WORKERS", "2")
                .env("CLERK_SYNC__LOG__FORMAT", "json")
                .env("RUST_LOG", RUST_LOG),
        )?;
        let base = format!("http://127.0.0.1:{port}");
        service.wait_ready(client, &base).await?;
        Ok(Self { service, base })
    }

    /// SIGTERM, and wait for it to exit.
    pub async fn stop(mut self) -> Result<()> {
        let status = self.service.stop().await?;
        anyhow::ensure!(status.success(), "the ingest exited with {status}");
        Ok(())
    }
}

/// Poll the ingest's `/readyz` every 50 ms until stopped: when, and which
/// node (1-3, of `addresses`) it named (None while not ready).
pub async fn watch(
    client: reqwest::Client,
    base: String,
    addresses: [String; 3],
    stop: CancellationToken,
) -> Vec<(Duration, Option<usize>)> {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let answer = client.get(format!("{base}{}", paths::READY)).send().await;
        let node = match answer {
            Ok(response) => response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|body| {
                    let address = body["rabbitmq_node"].as_str()?.to_owned();
                    addresses.iter().position(|a| *a == address).map(|i| i + 1)
                }),
            Err(_) => None,
        };
        seen.push((started.elapsed(), node));
        tokio::select! {
            () = stop.cancelled() => return seen,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// `clerk_sync_ingest_publish_failures_total` by reason, from its `/metrics`.
pub async fn publish_failures(client: &reqwest::Client, base: &str) -> String {
    let text = match client.get(format!("{base}{}", paths::METRICS)).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(e) => return format!("unknown ({e})"),
    };
    let counts: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("clerk_sync_ingest_publish_failures_total{reason=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    if counts.is_empty() {
        "none".to_owned()
    } else {
        counts.join(", ")
    }
}

/// The node the ingest's `/readyz` names.
pub async fn node(cluster: &Cluster, client: &reqwest::Client, ingest: &str) -> Result<usize> {
    let readiness: serde_json::Value = client
        .get(format!("{ingest}{}", paths::READY))
        .send()
        .await?
        .json()
        .await?;
    let address = readiness["rabbitmq_node"].as_str().unwrap_or_default();
    cluster
        .node_of_address(address)
        .with_context(|| format!("the ingest's /readyz names no node of the cluster: {readiness}"))
}
