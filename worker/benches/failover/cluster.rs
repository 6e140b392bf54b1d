//! A three-node RabbitMQ cluster of a run's own, through
//! `deploy/local/rabbitmq-cluster.sh` (own node names, data and cookie, the
//! machine's node left alone), each node in a network namespace of its own
//! (so that one can be cut off), stopped and removed when dropped. Its
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
    /// The namespaces' /24 (`10.77.N`): node n is at `10.77.N.1n`.
    subnet: String,
}

impl Cluster {
    /// Start and cluster three nodes named `name-1`..`name-3`, in a free
    /// subnet of 10.77.0.0/16.
    pub async fn start(name: &str) -> Result<Self> {
        let cluster = Self {
            name: name.to_owned(),
            subnet: free_subnet().await?,
        };
        cluster.script(&["start"]).await?;
        Ok(cluster)
    }

    /// Whether this machine can run one: the local RabbitMQ package, root,
    /// iproute2 (network namespaces).
    pub fn unavailable() -> Option<String> {
        if !std::path::Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() {
            return Some("the local RabbitMQ package is not installed".to_owned());
        }
        if Command::new("ip").args(["netns", "list"]).output().is_err() {
            return Some("iproute2 (ip netns) is not installed".to_owned());
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
            .env("RABBITMQ_CLUSTER_NETNS", &self.subnet)
            .env("RABBITMQ_CLUSTER_DIR", self.dir());
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

    /// `rabbitmqctl` (`tool` "ctl") or `rabbitmq-queues` ("queues") against
    /// a node, with `args`: what it printed.
    pub async fn run(&self, tool: &str, node: usize, args: &[&str]) -> Result<String> {
        let node = node.to_string();
        let mut all = vec![tool, node.as_str()];
        all.extend_from_slice(args);
        self.script(&all).await
    }

    /// Where the nodes keep their data and logs while they run.
    fn dir(&self) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("failover-clusters")
            .join(&self.name)
    }

    /// Copy the nodes' logs to `to` (they go with the cluster).
    pub fn save_logs(&self, to: &std::path::Path) {
        for node in NODES {
            let from = self.dir().join(format!("n{node}/log"));
            let Ok(entries) = std::fs::read_dir(&from) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = format!("rabbitmq-{node}-{}", entry.file_name().to_string_lossy());
                let _ = std::fs::copy(entry.path(), to.join(name));
            }
        }
    }

    pub fn host(&self, node: usize) -> String {
        format!("{}.{}", self.subnet, 10 + node)
    }

    /// `host:port` of a node, as `/readyz` names it.
    pub fn address(&self, node: usize) -> String {
        format!("{}:5672", self.host(node))
    }

    pub fn node_of_address(&self, address: &str) -> Option<usize> {
        NODES.into_iter().find(|&n| self.address(n) == address)
    }

    /// The Erlang name of a node.
    pub fn node_name(&self, node: usize) -> String {
        format!("{}-{node}@{}", self.name, self.host(node))
    }

    /// The three nodes' management API URLs, comma-separated.
    pub fn management_url(&self) -> String {
        NODES
            .iter()
            .map(|&n| format!("http://guest:guest@{}:15672", self.host(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The nodes' AMQP URLs in the given order, comma-separated, with a
    /// 5 s heartbeat: a node cut off sends nothing, not even a reset, so
    /// only missed heartbeats tell a client its connection is dead.
    pub fn url(&self, order: &[usize]) -> String {
        order
            .iter()
            .map(|&n| format!("amqp://guest:guest@{}/%2f?heartbeat=5", self.address(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Unplug a node from the others and from every client.
    pub async fn cut(&self, node: usize) -> Result<()> {
        self.script(&["cut", &node.to_string()]).await.map(drop)
    }

    /// Plug it back, and wait until it runs again (it paused while cut
    /// off): true if it did within `within`.
    pub async fn heal(&self, node: usize, within: Duration) -> Result<bool> {
        let started = Instant::now();
        self.script(&["heal", &node.to_string()]).await?;
        while self
            .script(&["ctl", &node.to_string(), "await_startup", "--timeout", "5"])
            .await
            .is_err()
        {
            if started.elapsed() > within {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(true)
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

/// A `10.77.N` not on any interface yet.
async fn free_subnet() -> Result<String> {
    let output = tokio::process::Command::new("ip")
        .args(["-o", "-4", "addr"])
        .output()
        .await
        .context("cannot run ip addr")?;
    let taken = String::from_utf8_lossy(&output.stdout).into_owned();
    let seed = std::process::id() as usize % 200;
    (0..200)
        .map(|i| format!("10.77.{}", 20 + (seed + i) % 200))
        .find(|subnet| !taken.contains(&format!("{subnet}.")))
        .context("no free 10.77.N.0/24 for the cluster's namespaces")
}
