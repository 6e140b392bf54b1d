//! Node loss under load: a three-node RabbitMQ cluster of the run's own
//! (`deploy/local/rabbitmq-cluster.sh`, each node in a network namespace of
//! its own, joined by a bridge), an in-process ingest given the three nodes'
//! URLs (node 2 first) and three `clerk-sync-worker` processes (node 1
//! first), all with a 5 s AMQP heartbeat. A sender posts signed events at a
//! steady rate, retrying anything but a 2xx as Svix does (see
//! `chaos/sender.rs`). Meanwhile: `kill -9` of the node holding the most
//! quorum queue leaders, restarted after a while (and `status` run while it
//! is down); then `kill -9` of the node the ingest is connected to (its
//! `/readyz` says which), restarted; then `rabbitmqctl stop_app` of the
//! third node and `start_app`; then the node holding the most leaders cut
//! off from its peers and every client (its link to the bridge down: a
//! partition; `pause_minority` pauses it) and plugged back. Then the queues
//! are drained and the run passes when every 2xx'd svix-id is in the log
//! exactly once, nothing else is, the tables equal the model of the 2xx'd
//! events, there are no dead letters and the queues end empty. It prints,
//! per fault, whether the ingest moved and how fast, the refusals, and
//! events/s accepted and applied before, during and after.
//!
//! `cargo bench -p clerk-sync-worker --bench failover`: 130 s at about
//! 220 events/s, each node down 12 s, cut off 25 s. Without `--bench` (as
//! `cargo test --all-targets` runs it) a smoke run: 80 s at about 45
//! events/s, each node down 4 s, cut off 15 s. A fault starts at its
//! planned time, or 3 s after the one before it is over if that is later (a
//! node takes 5-10 s to start). Needs root, iproute2 and the machine's
//! RabbitMQ package (it says so and exits 0 otherwise); the machine's own
//! RabbitMQ node is not used.

#[path = "failover/cluster.rs"]
mod cluster;
mod common;
#[path = "chaos/fleet.rs"]
mod fleet;
#[path = "chaos/history.rs"]
mod history;
#[path = "chaos/sender.rs"]
mod sender;
#[path = "failover/timeline.rs"]
mod timeline;
#[path = "chaos/verdict.rs"]
mod verdict;

use anyhow::{Context, Result};
use clerk_sync_domain::paths;
use clerk_sync_domain::topology::Topology;
use clerk_sync_ingest::settings::Settings;
use clerk_sync_ingest::startup::Application;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_runtime::settings::WebhookSecrets;
use clerk_sync_store::repository::database;
use cluster::{Cluster, NODES};
use fleet::{Fleet, drain};
use history::{Rng, deliveries, histories};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use timeline::{Fault, Flow};
use tokio_util::sync::CancellationToken;

use clerk_sync_testkit::webhook::SECRET;
const SHARDS: u16 = 4;
const WORKERS: usize = 3;
/// How long a node cut off and plugged back may take to run again.
const REJOIN_WITHIN: Duration = Duration::from_secs(60);
/// The least time between one fault's end and the next fault.
const GAP: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct Plan {
    users: usize,
    send_for: Duration,
    /// When each of the four faults starts, at the earliest.
    faults_at: [Duration; 4],
    /// How long a node stays down.
    down_for: Duration,
    /// How long a node stays cut off (its peers need about 10 s to notice).
    cut_for: Duration,
    give_up_after: Duration,
    drain_within: Duration,
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    if let Some(why) = Cluster::unavailable() {
        println!("failover: not run on this machine: {why}");
        return Ok(ExitCode::SUCCESS);
    }
    let plan = if std::env::args().any(|a| a == "--bench") {
        Plan {
            users: 2_600,
            send_for: Duration::from_secs(130),
            faults_at: [15, 40, 65, 90].map(Duration::from_secs),
            down_for: Duration::from_secs(12),
            cut_for: Duration::from_secs(25),
            give_up_after: Duration::from_secs(120),
            drain_within: Duration::from_secs(300),
        }
    } else {
        Plan {
            users: 320,
            send_for: Duration::from_secs(80),
            faults_at: [4, 18, 32, 46].map(Duration::from_secs),
            down_for: Duration::from_secs(4),
            cut_for: Duration::from_secs(15),
            give_up_after: Duration::from_secs(60),
            drain_within: Duration::from_secs(120),
        }
    };
    let name = common::unique("failover");
    let topology = Topology::new(name.clone(), SHARDS);
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("failover-logs")
        .join(&name);
    let started = Instant::now();
    let cluster = Cluster::start(&name.replace('_', "-")).await?;
    println!(
        "failover: a 3-node RabbitMQ cluster started in {:.1} s (nodes {}, {}, {}, each in a network namespace; 2 cores shared by everything)",
        started.elapsed().as_secs_f64(),
        cluster.address(1),
        cluster.address(2),
        cluster.address(3)
    );
    let broker = SecretUrl::new(cluster.url(&NODES));
    let result = run(&plan, &name, &topology, &cluster, &logs).await;
    if !matches!(result, Ok(true)) {
        cluster.save_logs(&logs);
    }
    common::cleanup(&broker, &name, &topology).await;
    drop(cluster);
    match result {
        Ok(true) => {
            let _ = std::fs::remove_dir_all(&logs);
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => {
            println!("  workers' logs kept in {}", logs.display());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.context(format!("workers' logs are in {}", logs.display()))),
    }
}

async fn run(
    plan: &Plan,
    name: &str,
    topology: &Topology,
    cluster: &Cluster,
    logs: &Path,
) -> Result<bool> {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut rng = Rng(seed | 1);
    let events = histories(plan.users, &mut rng);
    let deliveries = deliveries(&events, &mut rng);
    println!(
        "  {} events for {} users, {} deliveries over {:.0} s (about {:.0}/s), {WORKERS} workers, {SHARDS} shards",
        events.len(),
        plan.users,
        deliveries.len(),
        plan.send_for.as_secs_f64(),
        deliveries.len() as f64 / plan.send_for.as_secs_f64()
    );
    let db = common::database_url(name);
    database::create_if_missing(&db).await?;
    database::migrate(&db).await?;
    let mut settings = Settings::default();
    settings.webhook.secrets = WebhookSecrets::parse(SECRET);
    settings.amqp.url = SecretUrl::new(cluster.url(&[2, 3, 1]));
    settings.amqp.prefix = name.to_owned();
    settings.amqp.shards = SHARDS;
    settings.ingest.listen = ([127, 0, 0, 1], 0).into();
    settings.ingest.http_workers = 2;
    let application = Application::build(&settings).await?;
    let base = format!("http://127.0.0.1:{}", application.port());
    let ingest = application.handle();
    let serving = tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db.expose()),
        ("CLERK_WEBHOOK_SECRET", SECRET),
        ("AMQP_URL", &cluster.url(&NODES)),
        ("CLERK_SYNC__AMQP__PREFIX", name),
        ("CLERK_SYNC__AMQP__SHARDS", &SHARDS.to_string()),
        ("CLERK_SYNC__LOG__FORMAT", "json"),
        ("RUST_LOG", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let result = async {
        std::fs::create_dir_all(logs)?;
        let mut fleet = Fleet::new(env.clone(), logs.to_owned());
        fleet.fill()?;
        for worker in &mut fleet.workers {
            worker.wait_ready(&client, Duration::from_secs(60)).await?;
        }
        let leaders = cluster.leaders(name, 1).await?;
        println!("  quorum queue leaders per node at the start: {leaders:?}");
        let sending = Instant::now();
        let sending_unix_ms = common::unix_ms();
        let stop = CancellationToken::new();
        let supervisor = tokio::spawn(supervise(fleet, stop.clone()));
        let addresses = NODES.map(|n| cluster.address(n));
        let watcher = tokio::spawn(watch_ingest(
            client.clone(),
            base.clone(),
            addresses,
            stop.clone(),
        ));
        let faults = inject(plan, cluster, name, &client, &base, &env);
        let webhook = format!("{base}{}", paths::WEBHOOK);
        let sent = sender::send_all(
            &client,
            &webhook,
            &deliveries,
            plan.send_for,
            plan.give_up_after,
        );
        let (faults, outcomes) = tokio::join!(faults, sent);
        let sent_in = sending.elapsed();
        stop.cancel();
        let mut fleet = supervisor.await.context("the supervisor task failed")?;
        let ingest_node = watcher.await.context("the /readyz watcher failed")?;
        println!("  sent: {}", sender::summary(&outcomes, sent_in));
        println!(
            "  the ingest's 503s by reason: {}",
            publish_failures(&client, &base).await
        );
        let sorted = verdict::accepted_and_given_up(&outcomes);
        // Queue depths through a node that was not cut off last: a node's
        // view of a quorum queue's depth can lag for minutes after a
        // partition heals (seen: 0 ready everywhere else, not there).
        let cut = faults
            .as_ref()
            .ok()
            .and_then(|(f, _)| f.last())
            .map(|f| f.node);
        let order: Vec<usize> = NODES
            .into_iter()
            .filter(|&n| Some(n) != cut)
            .chain(cut)
            .collect();
        let broker = SecretUrl::new(cluster.url(&order));
        let drained = drain(
            &mut fleet,
            &broker,
            &db,
            topology,
            sorted.0.len(),
            plan.drain_within,
        )
        .await?;
        let flow = Flow {
            accepted: outcomes.iter().filter_map(|o| o.accepted_at).collect(),
            refused: outcomes
                .iter()
                .flat_map(|o| o.refused_at.iter().copied())
                .collect(),
            applied: common::recorded_since(&db, sending_unix_ms).await?,
            ingest_node,
        };
        let mut differences = drained.problems();
        match &faults {
            Ok((faults, status)) => {
                println!("  status while node {} was down: {status}", faults[0].node);
                for (i, fault) in faults.iter().enumerate() {
                    println!("  {}", flow.line(fault, faults.get(i + 1)));
                }
            }
            Err(e) => differences.push(format!("a fault could not be injected: {e:#}")),
        }
        println!("  {}", drained.line());
        println!(
            "  workers: {} started in all; {} exited on their own and were replaced",
            fleet.started,
            fleet.exited.len()
        );
        let observed = common::check::observe(&db).await?;
        Ok(verdict::check(
            &events,
            &sorted,
            &observed,
            plan.give_up_after,
            differences,
        ))
    }
    .await;
    ingest.stop(true).await;
    let _ = serving.await;
    result
}

/// Replace any worker that exits, as an orchestrator would, until stopped.
async fn supervise(mut fleet: Fleet, stop: CancellationToken) -> Fleet {
    loop {
        tokio::select! {
            () = stop.cancelled() => return fleet,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if let Err(e) = fleet.fill() {
            eprintln!("cannot start a worker: {e:#}");
        }
    }
}

/// Poll the ingest's `/readyz` every 50 ms until stopped: when, and which
/// node (1-3, of `addresses`) it named (None while not ready).
async fn watch_ingest(
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
async fn publish_failures(client: &reqwest::Client, base: &str) -> String {
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

/// The four faults, each at its planned time from now or 3 s after the
/// one before it is over, whichever is later.
async fn inject(
    plan: &Plan,
    cluster: &Cluster,
    prefix: &str,
    client: &reqwest::Client,
    ingest: &str,
    env: &[(String, String)],
) -> Result<(Vec<Fault>, String)> {
    let start = tokio::time::Instant::now();
    let since = || start.elapsed();
    let mut faults: Vec<Fault> = Vec::new();
    let next = |faults: &[Fault], i: usize| {
        let after_last = faults.last().map_or(Duration::ZERO, |f| f.back + GAP);
        start + plan.faults_at[i].max(after_last)
    };

    tokio::time::sleep_until(next(&faults, 0)).await;
    let leaders = cluster.leaders(prefix, 1).await?;
    let ingest_uses = ingest_node(cluster, client, ingest).await.ok();
    // The most leaders; of those, one the ingest does not use, so that the
    // next fault (the ingest's node) hits another node.
    let first = leaders
        .iter()
        .max_by_key(|(node, n)| (**n, Some(**node) != ingest_uses))
        .map_or(1, |(node, _)| *node);
    let what = format!(
        "kill -9 of node {first} (leader of {} of the queues)",
        leaders.get(&first).copied().unwrap_or(0)
    );
    let at = since();
    cluster.kill(first).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = status_with_a_node_down(cluster, env, first).await?;
    tokio::time::sleep(plan.down_for.saturating_sub(Duration::from_secs(2))).await;
    cluster.revive(first).await?;
    faults.push(Fault {
        what,
        node: first,
        at,
        back: since(),
    });

    tokio::time::sleep_until(next(&faults, 1)).await;
    let second = ingest_node(cluster, client, ingest).await?;
    let at = since();
    cluster.kill(second).await?;
    tokio::time::sleep(plan.down_for).await;
    cluster.revive(second).await?;
    faults.push(Fault {
        what: format!("kill -9 of node {second} (the ingest's)"),
        node: second,
        at,
        back: since(),
    });

    tokio::time::sleep_until(next(&faults, 2)).await;
    let third = NODES
        .into_iter()
        .find(|n| *n != first && *n != second)
        .unwrap_or(3);
    let at = since();
    cluster.app(third, "stop_app").await?;
    tokio::time::sleep(plan.down_for).await;
    cluster.app(third, "start_app").await?;
    faults.push(Fault {
        what: format!("stop_app of node {third}"),
        node: third,
        at,
        back: since(),
    });

    tokio::time::sleep_until(next(&faults, 3)).await;
    let leaders = cluster.leaders(prefix, 1).await?;
    let fourth = leaders
        .iter()
        .max_by_key(|(_, n)| **n)
        .map_or(1, |(node, _)| *node);
    let at = since();
    cluster.cut(fourth).await?;
    tokio::time::sleep(plan.cut_for).await;
    // A node that stays paused after the partition heals is restarted, as
    // an operator would; the run says so.
    let rejoined = cluster.heal(fourth, REJOIN_WITHIN).await?;
    if !rejoined {
        cluster.kill(fourth).await?;
        cluster.revive(fourth).await?;
    }
    faults.push(Fault {
        what: format!(
            "node {fourth} cut off (leader of {} of the queues){}",
            leaders.get(&fourth).copied().unwrap_or(0),
            if rejoined {
                ""
            } else {
                ", did NOT rejoin within 60 s of being plugged back: restarted"
            }
        ),
        node: fourth,
        at,
        back: since(),
    });
    Ok((faults, status))
}

/// The node the ingest's `/readyz` names.
async fn ingest_node(cluster: &Cluster, client: &reqwest::Client, ingest: &str) -> Result<usize> {
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

/// `clerk-sync-worker status --json` with the management API while `down`
/// is down: it must name that node not running and every queue with its
/// three members and a majority. One line on what it showed.
async fn status_with_a_node_down(
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
