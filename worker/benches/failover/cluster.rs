//! A three-node RabbitMQ cluster of a run's own, through
//! `deploy/local/rabbitmq-cluster.sh` (own node names, ports and data, the
//! machine's node left alone), stopped and removed when dropped. Its
//! commands run as child processes awaited asynchronously, so that the
//! load going on meanwhile never waits for them.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/local/rabbitmq-cluster.sh"
);
pub const NODES: [usize; 3] = [1, 2, 3];

#[derive(Debug)]
pub struct Cluster {
    name: String,
    base_port: u16,
}

impl Cluster {
    /// Start and cluster three nodes named `name-1`..`name-3`, on the first
    /// free block of ports from 20000.
    pub async fn start(name: &str) -> Result<Self> {
        let cluster = Self {
            name: name.to_owned(),
            base_port: free_base_port()?,
        };
        cluster.script(&["start"]).await?;
        Ok(cluster)
    }

    /// Whether this machine can run one: the local RabbitMQ package, root.
    pub fn unavailable() -> Option<String> {
        if !std::path::Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() {
            return Some("the local RabbitMQ package is not installed".to_owned());
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        (!root).then(|| "it needs root".to_owned())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("bash");
        command
            .arg(SCRIPT)
            .args(args)
            .env("RABBITMQ_CLUSTER_NAME", &self.name)
            .env("RABBITMQ_CLUSTER_PORT", self.base_port.to_string());
        command
    }

    async fn script(&self, args: &[&str]) -> Result<String> {
        let output = tokio::process::Command::from(self.command(args))
            .output()
            .await
            .context("cannot run rabbitmq-cluster.sh")?;
        if !output.status.success() {
            bail!(
                "rabbitmq-cluster.sh {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    pub fn port(&self, node: usize) -> u16 {
        self.base_port + node as u16 - 1
    }

    /// `host:port` of a node, as `/readyz` names it.
    pub fn address(&self, node: usize) -> String {
        format!("127.0.0.1:{}", self.port(node))
    }

    pub fn node_of_address(&self, address: &str) -> Option<usize> {
        NODES.into_iter().find(|&n| self.address(n) == address)
    }

    /// The Erlang name of a node.
    pub fn node_name(&self, node: usize) -> String {
        format!("{}-{node}@localhost", self.name)
    }

    /// The three nodes' management API URLs, comma-separated.
    pub fn management_url(&self) -> String {
        NODES
            .iter()
            .map(|&n| format!("http://guest:guest@127.0.0.1:{}", self.port(n) + 10_000))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The nodes' AMQP URLs in the given order, comma-separated.
    pub fn url(&self, order: &[usize]) -> String {
        order
            .iter()
            .map(|&n| format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `kill -9` of the node's Erlang VM.
    pub async fn kill(&self, node: usize) -> Result<()> {
        self.script(&["kill", &node.to_string()]).await.map(drop)
    }

    /// Start a killed node again; how long until it was up.
    pub async fn revive(&self, node: usize) -> Result<Duration> {
        let started = Instant::now();
        self.script(&["revive", &node.to_string()]).await?;
        Ok(started.elapsed())
    }

    /// `rabbitmqctl stop_app` or `start_app` (then `await_startup`).
    pub async fn app(&self, node: usize, command: &str) -> Result<Duration> {
        let started = Instant::now();
        self.script(&["ctl", &node.to_string(), command]).await?;
        if command == "start_app" {
            self.script(&["ctl", &node.to_string(), "await_startup"])
                .await?;
        }
        Ok(started.elapsed())
    }

    /// Quorum queue leaders per node (1-3), of the queues named `prefix.*`,
    /// as a running node reports them.
    pub async fn leaders(&self, prefix: &str, alive: usize) -> Result<BTreeMap<usize, usize>> {
        let json = self
            .script(&[
                "ctl",
                &alive.to_string(),
                "list_queues",
                "-q",
                "--formatter",
                "json",
                "name",
                "leader",
            ])
            .await?;
        let queues: Vec<serde_json::Value> =
            serde_json::from_str(&json).with_context(|| format!("list_queues printed {json}"))?;
        let mut leaders = BTreeMap::new();
        for queue in queues {
            let name = queue["name"].as_str().unwrap_or_default();
            if !name.starts_with(&format!("{prefix}.")) {
                continue;
            }
            let leader = queue["leader"].as_str().unwrap_or_default();
            if let Some(node) = NODES.into_iter().find(|&n| leader == self.node_name(n)) {
                *leaders.entry(node).or_default() += 1;
            }
        }
        Ok(leaders)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        match self.command(&["stop"]).status() {
            Ok(status) if status.success() => {}
            other => eprintln!("stopping RabbitMQ cluster {} failed: {other:?}", self.name),
        }
    }
}

/// A base port whose three AMQP ports, and their management (+10000) and
/// distribution (+20000) ports, are free.
fn free_base_port() -> Result<u16> {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    let seed = std::process::id() as u16 % 300;
    (0..300)
        .map(|i| 20_000 + ((seed + i) % 300) * 10)
        .find(|&base| {
            (0..3).all(|i| free(base + i) && free(base + i + 10_000) && free(base + i + 20_000))
        })
        .context("no free block of ports for a RabbitMQ cluster")
}
