//! Node loss under load: a three-node RabbitMQ cluster of the run's own
//! (`deploy/local/rabbitmq-cluster.sh`, each node in a network namespace of
//! its own, joined by a bridge), the ingest given the three nodes' URLs
//! (node 2 first) and three `clerk-sync-worker` processes (node 1 first),
//! all with a 5 s AMQP heartbeat, each logging to the run's log folder
//! (kept when it fails; see `failover/diagnose.rs` for what a missing
//! event prints). A sender posts signed events at a
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

#[path = "failover/broker_view.rs"]
mod broker_view;
#[path = "failover/cluster.rs"]
mod cluster;
mod common;
#[path = "failover/diagnose.rs"]
mod diagnose;
#[path = "chaos/fleet.rs"]
mod fleet;
#[path = "chaos/history.rs"]
mod history;
#[path = "failover/ingest.rs"]
mod ingest;
#[path = "chaos/sender.rs"]
mod sender;
#[path = "failover/status.rs"]
mod status;
#[path = "failover/timeline.rs"]
mod timeline;
#[path = "chaos/verdict.rs"]
mod verdict;

use anyhow::{Context, Result};
use clerk_sync_domain::paths;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::database;
use cluster::{Cluster, NODES};
use fleet::{Fleet, drain};
use history::{Rng, deliveries, histories};
use ingest::Ingest;
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

fn main() -> Result<ExitCode> {
    if common::ingest::asked() {
        return Ok(clerk_sync_ingest::cli::run_process(None));
    }
    tokio::runtime::Runtime::new()?.block_on(failover())
}

async fn failover() -> Result<ExitCode> {
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
            println!(
                "  the logs (ingest, workers, RabbitMQ nodes) kept in {}",
                logs.display()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.context(format!("the logs are in {}", logs.display()))),
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
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    std::fs::create_dir_all(logs)?;
    let ingest = Ingest::start(&client, &cluster.url(&[2, 3, 1]), name, SHARDS, logs).await?;
    let base = ingest.base.clone();
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db.expose()),
        ("CLERK_WEBHOOK_SECRET", SECRET),
        ("AMQP_URL", &cluster.url(&NODES)),
        ("CLERK_SYNC__AMQP__PREFIX", name),
        ("CLERK_SYNC__AMQP__SHARDS", &SHARDS.to_string()),
        ("CLERK_SYNC__LOG__FORMAT", "json"),
        // With each event's line once its batch committed (svix-id, outcome).
        ("RUST_LOG", "info,clerk_sync_worker::taking=debug"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let result = async {
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
        let watcher = tokio::spawn(ingest::watch(
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
            ingest::publish_failures(&client, &base).await
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
        let passed = verdict::check(&events, &sorted, &observed, plan.give_up_after, differences);
        let missing = diagnose::missing(&sorted.0, &observed);
        let run = diagnose::Run {
            cluster,
            logs,
            db: &db,
            topology,
            events: &events,
            outcomes: &outcomes,
            ingest_node: &flow.ingest_node,
            sending_unix_ms,
        };
        diagnose::explain(&run, &missing).await;
        Ok(passed)
    }
    .await;
    if let Err(e) = ingest.stop().await {
        eprintln!("stopping the ingest: {e:#}");
    }
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
    let ingest_uses = ingest::node(cluster, client, ingest).await.ok();
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
    let status = status::with_a_node_down(cluster, env, first).await?;
    tokio::time::sleep(plan.down_for.saturating_sub(Duration::from_secs(2))).await;
    cluster.revive(first).await?;
    faults.push(Fault {
        what,
        node: first,
        at,
        back: since(),
    });

    tokio::time::sleep_until(next(&faults, 1)).await;
    let second = ingest::node(cluster, client, ingest).await?;
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
