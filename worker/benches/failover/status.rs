//! `clerk-sync-worker status` while a node of the run's cluster is down.

use crate::SHARDS;
use crate::cluster::Cluster;
use anyhow::{Context, Result};

/// `clerk-sync-worker status --json` with the management API while `down`
/// is down: it must name that node not running and every queue with its
/// three members and a majority. One line on what it showed.
pub async fn with_a_node_down(
    cluster: &Cluster,
    env: &[(String, String)],
    down: usize,
) -> Result<String> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"))
        .args(["status", "--json"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(
            "CLERK_SYNC__STATUS__MANAGEMENT_URL",
            cluster.management_url(),
        )
        .output()
        .await
        .context("cannot run clerk-sync-worker status")?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "status printed no JSON: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let nodes = report["cluster"]["nodes"]
        .as_array()
        .with_context(|| format!("status showed no nodes: {}", report["cluster"]))?;
    let shown: Vec<String> = nodes
        .iter()
        .map(|n| {
            format!(
                "{} {} ({} leaders, {} members)",
                n["name"].as_str().unwrap_or("?"),
                if n["running"] == true { "up" } else { "DOWN" },
                n["leaders"],
                n["members"]
            )
        })
        .collect();
    let down_name = cluster.node_name(down);
    let queues = report["cluster"]["queues"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let right = nodes
        .iter()
        .any(|n| n["name"] == down_name.as_str() && n["running"] == false)
        && queues.len() == usize::from(SHARDS) + 1
        && queues
            .iter()
            .all(|q| q["members"].as_array().map(Vec::len) == Some(3) && q["majority"] == true);
    anyhow::ensure!(
        right,
        "status did not show node {down} down and every queue with 3 members and a majority: {}",
        report["cluster"]
    );
    Ok(format!(
        "{}; every queue 3 members, majority kept (exit {:?})",
        shown.join(", "),
        output.status.code()
    ))
}
