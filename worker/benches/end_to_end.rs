//! End to end, as users run the system: signed webhooks over HTTP into the
//! real ingest, through RabbitMQ, applied by a real worker to PostgreSQL,
//! all on this machine with the load generator.
//!
//! The load: Clerk-shaped events of about 2 KB (`common/load.rs`) for
//! `users` users, each signed as Svix signs it (distinct svix-ids), in
//! rounds: every user's `user.created`, then two rounds of `user.updated`,
//! then a last round of `user.updated`, or `user.deleted` for one user in
//! ten. The first round (every event a new user, as in a sign-up burst)
//! goes paced at a fixed rate, where the freshness is measured: from the
//! ingest's 2xx to the commit, as an app listening to the worker's `NOTIFY
//! clerk_sync_user` hears it. The other rounds go closed loop (64
//! connections, back to back). Before each phase the benchmark waits for
//! the machine to be quiet, so what the previous load left PostgreSQL and
//! RabbitMQ to do is not counted in the next.
//!
//! Printed, per phase: accepted/s (2xx), applied/s (from the phase's first
//! request to the worker's commit of its last event), latencies, the CPU
//! time per event of each process (load generator, ingest, worker,
//! RabbitMQ, PostgreSQL, the rest of the machine); the peak memory of the
//! ingest and the worker; and, measured in the same run before the system
//! starts, the machine's limits: confirmed publishes straight into
//! RabbitMQ, and the same rows written straight through diesel-async.
//! Afterwards the tables must equal an independent model of the events and
//! the log must hold every svix-id once (a mismatch fails the run).
//! Targets are printed PASS or MISS, never enforced.
//!
//! The ingest runs as a process of its own with exactly the code of
//! `clerk-sync-ingest` (`clerk_sync_ingest::cli::run_process`): this benchmark's
//! executable starts itself with `--serve-ingest`. Both services run with
//! their default settings and log at INFO to files, as users run them.
//!
//! `cargo bench -p clerk-sync-worker --bench end_to_end` (10,000 users,
//! 40,000 events, the last 10,000 at 1,000/s); without `--bench` (as
//! `cargo test --all-targets` runs it) a smoke run of 200 users at 200/s.
//! `BENCH_USERS` and `BENCH_RATE` change both; `BENCH_WRAP` runs the ingest
//! and the worker under a command, e.g. `valgrind --tool=callgrind`. It
//! uses its own database and topology and removes both.

mod common;
#[path = "end_to_end/drive.rs"]
mod drive;
#[path = "end_to_end/freshness.rs"]
mod freshness;
#[path = "end_to_end/limits.rs"]
mod limits;
#[path = "end_to_end/parts.rs"]
mod parts;

use anyhow::{Result, bail};
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::database;
use clerk_sync_store::settings::Settings;
use clerk_sync_testkit::cpu::rabbitmq_pid;
use clerk_sync_testkit::service::Service;
use clerk_sync_testkit::webhook::SECRET;
use clerk_sync_testkit::{http1, speed};
use common::check::{self, LogSpec};
use common::ingest;
use common::load::{generate, modelled};
use common::measure::{machine_quiet, peak_rss_mib};
use common::workers::{self, Worker, free_port};
use drive::{Sent, drive};
use freshness::Listener;
use parts::{Parts, PerEvent};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The argument that makes this executable the ingest.
const CONNECTIONS: usize = 64;
/// Rounds of events per user: the first is paced, the others closed loop.
const ROUNDS: usize = 4;
/// Half of the CPU per applied event measured, over the four processes,
/// when this benchmark's load was first sent with `wrk` at 64 connections
/// (620 µs).
const CPU_TARGET: f64 = 310.0;

fn main() -> Result<ExitCode> {
    if ingest::asked() {
        return Ok(clerk_sync_ingest::cli::run_process(None));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let full = std::env::args().any(|arg| arg == "--bench");
    let (users, rate) = if full {
        (10_000, 1_000.0)
    } else {
        (200, 200.0)
    };
    let users = setting("BENCH_USERS", users)?;
    let rate = setting("BENCH_RATE", rate)?;
    let wrapper: Vec<String> = std::env::var("BENCH_WRAP")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let name = common::unique("bench");
    let db = common::database_url(&name);
    let amqp = SecretUrl::new(common::AMQP_URL);
    let topology = Topology::new(name.clone(), Settings::default().amqp.shards);
    let logs = std::env::temp_dir().join(&name);
    let result = runtime.block_on(async {
        std::fs::create_dir_all(&logs)?;
        let result = bench(users, rate, &wrapper, &db, &name, &logs).await;
        common::cleanup(&amqp, &name, &topology).await;
        result
    });
    match result {
        Ok(true) => {
            let _ = std::fs::remove_dir_all(&logs);
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => Ok(ExitCode::FAILURE),
        Err(e) => {
            eprintln!("the services' logs are in {}", logs.display());
            Err(e)
        }
    }
}

async fn bench(
    users: usize,
    rate: f64,
    wrapper: &[String],
    db: &SecretUrl,
    prefix: &str,
    logs: &Path,
) -> Result<bool> {
    let events = generate(users, users * ROUNDS);
    let closed = users * (ROUNDS - 1);
    let mean = events.iter().map(|e| e.body.len()).sum::<usize>() / events.len();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "clerk-sync end to end: {} events for {users} users (mean body {mean} bytes): {users} at {rate:.0}/s, then {closed} closed loop over {CONNECTIONS} connections; 1 ingest, 1 worker, RabbitMQ, PostgreSQL and the load generator on {cores} cores",
        events.len()
    );
    println!("{}", tokio::task::spawn_blocking(speed::report).await?);
    database::create_if_missing(db).await?;
    database::migrate(db).await?;

    println!("the machine's limits, measured first:");
    let (publishes, publish_cpu) = limits::confirmed_publishes(&events, CONNECTIONS).await?;
    println!(
        "  confirmed publishes straight into RabbitMQ ({CONNECTIONS} in flight): {publishes:>7.0}/s"
    );
    println!("      {publish_cpu}");
    let (rows, rows_cpu) = limits::rows_written(db, &events).await?;
    println!("  the same rows written straight through diesel-async: {rows:>7.0} events/s");
    println!("      {rows_cpu}");

    let signed = limits::sign(&events)?;
    // For readiness and metrics; the load goes through `http1`.
    let client = reqwest::Client::new();
    let port = free_port()?;
    let http = Arc::new(http1::Client::new(([127, 0, 0, 1], port).into()));
    let requests = Arc::new(limits::requests(&http, signed));
    let base = format!("http://127.0.0.1:{port}");
    let mut ingest = spawn_ingest(wrapper, prefix, port, logs)?;
    ingest.wait_ready(&client, &base).await?;
    let worker_env: Vec<(String, String)> = [
        ("DATABASE_URL", db.expose()),
        ("CLERK_WEBHOOK_SECRET", SECRET),
        ("CLERK_SYNC__AMQP__PREFIX", prefix),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut worker = Worker::spawn_under(wrapper, &worker_env, Some(&logs.join("worker.log")))?;
    worker.wait_ready(&client, Duration::from_secs(30)).await?;
    let parts = Parts {
        ingest: ingest.pid(),
        worker: worker.pid(),
        rabbitmq: rabbitmq_pid(common::AMQP_URL),
    };
    let post = |from: usize| {
        let (requests, http) = (requests.clone(), http.clone());
        move |item: usize| {
            let (requests, http) = (requests.clone(), http.clone());
            async move { limits::post(&http, &requests[from + item]).await }
        }
    };

    // Paced first, on a quiet machine: what the previous load leaves
    // PostgreSQL and RabbitMQ to do (vacuum, log writes) is not counted.
    println!(
        "machine quiet after {:.1} s",
        machine_quiet().await.as_secs_f64()
    );
    let listener = Listener::start(db).await?;
    let before = parts.snapshot();
    let batches = worker.batches(&client).await?;
    let started = Instant::now();
    let paced_sent = drive(users, CONNECTIONS, Some(rate), post(0)).await?;
    paced_sent.check("paced")?;
    let applied = wait_applied(&worker, &client, users as u64, started).await?;
    let paced_cpu = parts
        .snapshot()
        .per_event(&before, users as u64, applied.as_secs_f64());
    // The counter moves just after the commit: let the last NOTIFY arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let heard = listener.finish().await?;
    let accepted: Vec<(String, Instant)> = paced_sent
        .answered
        .iter()
        .map(|(item, at)| (events[*item].user.clone(), *at))
        .collect();
    let fresh = freshness::measure(&accepted, &heard)?;
    let paced_applied = users as f64 / applied.as_secs_f64();
    report(
        &format!("paced at {rate:.0}/s"),
        &paced_sent,
        paced_applied,
        &paced_cpu,
        &parts,
    );
    println!("    {}", fresh.report());
    println!("    {}", worker.batches(&client).await?.since(&batches));

    println!(
        "machine quiet after {:.1} s",
        machine_quiet().await.as_secs_f64()
    );
    let before = parts.snapshot();
    let batches = worker.batches(&client).await?;
    let started = Instant::now();
    let sent = drive(closed, CONNECTIONS, None, post(users)).await?;
    sent.check("closed loop")?;
    let applied = wait_applied(&worker, &client, events.len() as u64, started).await?;
    let cpu = parts
        .snapshot()
        .per_event(&before, closed as u64, applied.as_secs_f64());
    let closed_applied = closed as f64 / applied.as_secs_f64();
    report("closed loop", &sent, closed_applied, &cpu, &parts);
    println!("    {}", worker.batches(&client).await?.since(&batches));

    let (ingest_rss, worker_rss) = (peak_rss_mib(parts.ingest), peak_rss_mib(parts.worker));
    println!("peak resident memory: ingest {ingest_rss:.1} MiB, worker {worker_rss:.1} MiB");
    let ingest_exit = ingest.stop().await?;
    let worker_exit = workers::terminate(vec![worker])?;
    if !ingest_exit.success() || !worker_exit.iter().all(|s| s.success()) {
        bail!(
            "after SIGTERM the ingest exited with {ingest_exit}, the worker with {worker_exit:?}"
        );
    }

    let all: BTreeSet<String> = events.iter().map(|e| e.svix_id.clone()).collect();
    let log = LogSpec {
        required: &all,
        allowed: &BTreeSet::new(),
    };
    let differences = check::differences(
        &common::model::expected(&modelled(&events)),
        &log,
        &check::observe(db).await?,
    );
    let verdict = common::verdict;
    println!(
        "\ntables and log equal the model ({} svix-ids each logged once): {}",
        all.len(),
        verdict(differences.is_empty())
    );
    for difference in &differences {
        println!("  {difference}");
    }
    println!(
        "targets (this machine, {cores} cores shared by everything above):\n  \
         CPU per applied event, ingest + worker + RabbitMQ + PostgreSQL, closed loop <= {CPU_TARGET:.0} µs: {} ({:.0} µs; paced at {rate:.0}/s: {:.0} µs)\n  \
         ingest CPU per request, closed loop <= 40 µs: {} ({:.0} µs; paced: {:.0} µs)\n  \
         freshness at {rate:.0}/s p50 < 10 ms: {} ({:.1} ms); p99 < 50 ms: {} ({:.1} ms)\n  \
         the closed loop applied {:.0}% of the raw confirmed publishes and {:.0}% of the rows written straight",
        verdict(cpu.system() <= CPU_TARGET),
        cpu.system(),
        paced_cpu.system(),
        verdict(cpu.ingest <= 40.0),
        cpu.ingest,
        paced_cpu.ingest,
        verdict(fresh.ms(0.5) < 10.0),
        fresh.ms(0.5),
        verdict(fresh.ms(0.99) < 50.0),
        fresh.ms(0.99),
        100.0 * closed_applied / publishes,
        100.0 * closed_applied / rows,
    );
    if fresh.unheard > 0 {
        println!(
            "  {} paced events were never heard committed",
            fresh.unheard
        );
    }
    Ok(differences.is_empty() && fresh.unheard == 0)
}

fn report(phase: &str, sent: &Sent, applied: f64, cpu: &PerEvent, parts: &Parts) {
    println!(
        "{phase}: {} accepted, {:.0}/s ({}); applied {applied:.0}/s end to end",
        sent.ok,
        sent.rate(),
        sent.latencies()
    );
    println!("    {}", cpu.report(parts.rabbitmq.is_some()));
    println!("    {}", cpu.ingest_threads_report());
}

/// A number from the environment variable `name`, else `default`.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}: not a number: {value}")),
        Err(_) => Ok(default),
    }
}

/// This executable as the ingest (run by `wrapper` when not empty), on
/// `port`, logging to `logs`.
fn spawn_ingest(wrapper: &[String], prefix: &str, port: u16, logs: &Path) -> Result<Service> {
    Service::spawn(
        "the ingest",
        &mut ingest::command(wrapper, common::AMQP_URL, prefix, port, logs)?,
    )
}

/// Wait until the worker has committed `events` in all (its
/// `clerk_sync_worker_events_total`): how long since `since`.
async fn wait_applied(
    worker: &Worker,
    client: &reqwest::Client,
    events: u64,
    since: Instant,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if worker.events_logged(client).await? >= events {
            return Ok(since.elapsed());
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the worker had not applied {events} events after 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
