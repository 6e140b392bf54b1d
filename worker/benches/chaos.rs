//! Chaos: the whole system under crashes and restarts must end with every
//! event Svix saw accepted (a 2xx) in the log exactly once, and the tables
//! equal to an independent model of the semantics (see `common/model.rs`).
//!
//! A database and topology of its own, an in-process ingest and 3 real
//! `clerk-sync-worker` processes. A sender posts signed events through HTTP,
//! paced over the run, retrying anything but a 2xx as Svix does (with
//! shorter back-off: 250 ms doubling to 4 s) and recording every svix-id
//! that got a 2xx. Meanwhile a random worker is killed with SIGKILL every
//! 2 s and a replacement started; in the full mode also RabbitMQ is stopped
//! and started once (`rabbitmqctl stop_app`/`start_app`) and PostgreSQL
//! restarted once (`pg_ctlcluster ... restart`), which needs root. Then the
//! queues are drained and the log and tables checked: PASS or MISS, and a
//! non-zero exit on MISS.
//!
//! `cargo bench -p clerk-sync-worker --bench chaos`: 20,000 events for 2,000
//! users (creates, updates, a delete for one user in five; shuffled, one in
//! ten sent twice) over 60 s. Without `--bench` (as `cargo test
//! --all-targets` runs it) a smoke run of about 1,000 events over 7 s that
//! only kills workers: it never touches RabbitMQ or PostgreSQL themselves.

mod common;
#[path = "chaos/faults.rs"]
mod faults;
#[path = "chaos/fleet.rs"]
mod fleet;
#[path = "chaos/history.rs"]
mod history;
#[path = "chaos/sender.rs"]
mod sender;
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
use common::check;
use common::services::{Postgres, RestoreOnDrop};
use faults::{KILL_EVERY, disrupt, kill_workers};
use fleet::{Fleet, drain};
use history::{Rng, Sent, deliveries, histories};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

use clerk_sync_testkit::webhook::SECRET;
const SHARDS: u16 = 4;
const WORKERS: usize = 3;

#[derive(Debug)]
struct Plan {
    users: usize,
    send_for: Duration,
    /// Restart RabbitMQ and PostgreSQL (full mode only).
    postgres: Option<Postgres>,
    give_up_after: Duration,
    drain_within: Duration,
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full {
        Plan {
            users: 2_000,
            send_for: Duration::from_secs(60),
            postgres: Some(Postgres::detect()?),
            give_up_after: Duration::from_secs(120),
            drain_within: Duration::from_secs(300),
        }
    } else {
        Plan {
            users: 100,
            send_for: Duration::from_secs(7),
            postgres: None,
            give_up_after: Duration::from_secs(20),
            drain_within: Duration::from_secs(60),
        }
    };
    let name = common::unique("chaos");
    let topology = Topology::new(name.clone(), SHARDS);
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("chaos-logs")
        .join(&name);
    let restore = RestoreOnDrop {
        postgres: plan.postgres.clone(),
    };
    let result = chaos(&plan, &name, &topology, &logs).await;
    // Both services must run again before the clean-up needs them.
    drop(restore);
    common::cleanup(&SecretUrl::new(common::AMQP_URL), &name, &topology).await;
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

/// One run; true when everything checked out.
async fn chaos(plan: &Plan, name: &str, topology: &Topology, logs: &Path) -> Result<bool> {
    let started = Instant::now();
    // CHAOS_SEED=<seed> repeats a run's events and choice of victims.
    let seed = match std::env::var("CHAOS_SEED") {
        Ok(seed) => seed.parse().context("CHAOS_SEED must be a number")?,
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    let mut rng = Rng(seed | 1);
    let events = histories(plan.users, &mut rng);
    let deliveries = deliveries(&events, &mut rng);
    println!(
        "chaos: {} events for {} users, {} deliveries (one in ten sent twice) over {:.0} s, \
         {WORKERS} workers, {SHARDS} shards, seed {seed}",
        events.len(),
        plan.users,
        deliveries.len(),
        plan.send_for.as_secs_f64()
    );

    let db = common::database_url(name);
    database::create_if_missing(&db).await?;
    database::migrate(&db).await?;
    let mut settings = Settings::default();
    settings.webhook.secrets = WebhookSecrets::parse(SECRET);
    settings.amqp.prefix = name.to_owned();
    settings.amqp.shards = SHARDS;
    settings.ingest.listen = ([127, 0, 0, 1], 0).into();
    settings.ingest.http_workers = 2;
    let application = Application::build(&settings).await?;
    let url = format!("http://127.0.0.1:{}{}", application.port(), paths::WEBHOOK);
    let ingest = application.handle();
    let serving = tokio::spawn(application.run_until_stopped());

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let env = [
        ("DATABASE_URL", db.expose()),
        ("CLERK_WEBHOOK_SECRET", SECRET),
        ("CLERK_SYNC__AMQP__PREFIX", name),
        ("CLERK_SYNC__AMQP__SHARDS", &SHARDS.to_string()),
        ("CLERK_SYNC__LOG__FORMAT", "json"),
        ("RUST_LOG", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let system = System {
        plan,
        client: &client,
        url: &url,
        db: &db,
        topology,
    };
    let result = async {
        std::fs::create_dir_all(logs)?;
        let mut fleet = Fleet::new(env, logs.to_owned());
        fleet.fill()?;
        for worker in &mut fleet.workers {
            worker.wait_ready(&client, Duration::from_secs(30)).await?;
        }
        system.run(fleet, &events, &deliveries, rng).await
    }
    .await;
    ingest.stop(true).await;
    let _ = serving.await;
    let passed = result?;
    println!("  duration: {:.1} s", started.elapsed().as_secs_f64());
    Ok(passed)
}

/// What a run works with once set up.
#[derive(Debug)]
struct System<'a> {
    plan: &'a Plan,
    client: &'a reqwest::Client,
    /// The ingest's webhook URL.
    url: &'a str,
    db: &'a SecretUrl,
    topology: &'a Topology,
}

impl System<'_> {
    /// Send under chaos, drain, check.
    async fn run(
        &self,
        fleet: Fleet,
        events: &[Sent],
        deliveries: &[&Sent],
        rng: Rng,
    ) -> Result<bool> {
        let (plan, db, topology) = (self.plan, self.db, self.topology);
        let sending = Instant::now();
        let stop = CancellationToken::new();
        let killer = tokio::spawn(kill_workers(fleet, rng, stop.clone()));
        let disruptions = tokio::spawn(disrupt(plan.postgres.clone(), plan.send_for));
        let outcomes = sender::send_all(
            self.client,
            self.url,
            deliveries,
            plan.send_for,
            plan.give_up_after,
        )
        .await;
        let sent_in = sending.elapsed();
        stop.cancel();
        let (mut fleet, kills) = killer.await.context("the killer task failed")?;
        let disrupted = disruptions.await.context("the restart task failed")?;

        let sorted = verdict::accepted_and_given_up(&outcomes);
        println!("  sent: {}", sender::summary(&outcomes, sent_in));
        println!(
            "  kills: {} workers killed with SIGKILL (every {KILL_EVERY:?}, a replacement started each time)",
            kills.count
        );
        for Ok(line) | Err(line) in &disrupted {
            println!("  {line}");
        }

        let broker = SecretUrl::new(common::AMQP_URL);
        let drained = drain(
            &mut fleet,
            &broker,
            db,
            topology,
            sorted.0.len(),
            plan.drain_within,
        )
        .await?;
        println!("  {}", drained.line());
        println!(
            "  workers: {} started in all; {} exited on their own and were replaced{}",
            fleet.started,
            fleet.exited.len(),
            statuses(&fleet.exited)
        );

        let observed = check::observe(db).await?;
        let mut differences = drained.problems();
        // The run did not test what it claims unless every fault happened.
        differences.extend(disrupted.iter().filter_map(|d| d.clone().err()));
        differences.extend(
            kills
                .errors
                .iter()
                .map(|e| format!("killing or starting a worker failed: {e}")),
        );
        Ok(verdict::check(
            events,
            &sorted,
            &observed,
            plan.give_up_after,
            differences,
        ))
    }
}

/// " (exit status: 1 x2)", or nothing for none.
fn statuses(exits: &[ExitStatus]) -> String {
    let mut counted: BTreeMap<String, usize> = BTreeMap::new();
    for status in exits {
        *counted.entry(status.to_string()).or_default() += 1;
    }
    if counted.is_empty() {
        return String::new();
    }
    let list: Vec<String> = counted.iter().map(|(s, n)| format!("{s} x{n}")).collect();
    format!(" ({})", list.join(", "))
}
