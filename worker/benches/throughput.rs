//! Throughput of the worker against the local PostgreSQL and RabbitMQ, and
//! how it scales out over processes.
//!
//! 100,000 Clerk-shaped events (about 2 KB each: creates, updates, and a
//! delete for one user in ten) for 10,000 users are loaded into the shard
//! queues, then applied by 1, by 2 and by 4 real `clerk-sync-worker`
//! processes sharing the same shards; the rate is measured from the first
//! commit to the last event logged, and each process's share is read from
//! its own `/metrics` (`clerk_sync_worker_events_total`). After each run the
//! tables are compared with an independent model of the semantics computed
//! from the generated events (see `common/model.rs`), and the log must hold
//! every svix-id exactly once: a mismatch prints MISS and fails the run.
//! Beside them, the machine's limit in the same run: the same rows (one log
//! row per event, one Student row per user of the batch) written in batches
//! of the same size straight through diesel-async, with no RabbitMQ and no
//! decision, measured just before and just after the one-worker run (the
//! queues already loaded), which is compared with their mean. Each
//! worker's peak resident memory is read from /proc. Then the second load,
//! a sign-up burst (or a bulk import): as many events, each a new user's
//! `user.created`, applied by one worker, beside its own limit (measured
//! the same way), and checked against the model the same way.
//!
//! `cargo bench -p clerk-sync-worker --bench throughput`; without `--bench`
//! (as `cargo test --all-targets` runs it) a smoke run of 2,000 events.
//! It uses its own database and topology and removes both.

mod common;

use anyhow::{Result, bail};
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::database;
use clerk_sync_testkit::speed;
use common::check::{self, LogSpec};
use common::limit::raw_limit;
use common::load::{Event, generate, modelled, publish};
use common::measure::{cpu_report, cpu_snapshot, peak_rss_mib, rabbitmq_quiet};
use common::model;
use common::verdict;
use common::workers::{self, Worker};
use diesel_async::AsyncPgConnection;
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const BATCH_SIZE: usize = 500;
const SHARDS: u16 = 8;
const WORKERS: [usize; 3] = [1, 2, 4];

struct Run {
    rate: f64,
    seconds: f64,
    peak_rss_mib: Vec<f64>,
    /// Events each process logged, from its own `/metrics`.
    logged_by: Vec<u64>,
    cpu: String,
}

/// Start `workers` processes on the loaded queues; measure until all is logged.
async fn run_workers(workers: usize, db: &SecretUrl, prefix: &str, total: u64) -> Result<Run> {
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db.expose()),
        ("CLERK_WEBHOOK_SECRET", clerk_sync_testkit::webhook::SECRET),
        ("CLERK_SYNC__AMQP__PREFIX", prefix),
        ("CLERK_SYNC__AMQP__SHARDS", &SHARDS.to_string()),
        ("CLERK_SYNC__WORKER__BATCH_SIZE", &BATCH_SIZE.to_string()),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let children: Vec<Worker> = (0..workers)
        .map(|_| Worker::spawn(&env, None))
        .collect::<Result<_>>()?;
    // Progress is read from the workers' own counters, not by counting the
    // log: a count(*) of a table of 100,000 rows every 50 ms cost
    // PostgreSQL about 16 ms each, a quarter of a core taken from the run
    // it measured (and counted in its CPU per event).
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut first, mut logged_at_first) = (None, 0);
    let pids: Vec<u32> = children.iter().map(Worker::pid).collect();
    let mut cpu_at_first = cpu_snapshot(&pids);
    let mut peak = vec![0.0; workers];
    loop {
        let mut logged = 0;
        for worker in &children {
            logged += worker.events_logged(&client).await.unwrap_or(0);
        }
        if first.is_none() && logged > 0 {
            first = Some(Instant::now());
            logged_at_first = logged;
            cpu_at_first = cpu_snapshot(&pids);
        }
        for (i, pid) in pids.iter().enumerate() {
            peak[i] = f64::max(peak[i], peak_rss_mib(*pid));
        }
        if logged >= total {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {logged} of {total} events applied in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    let applied = (total - logged_at_first) as f64;
    let cpu = cpu_report(
        "workers",
        cpu_at_first,
        cpu_snapshot(&pids),
        applied,
        seconds,
    );
    let logged_by = shares(&children, total).await?;
    for status in workers::terminate(children)? {
        if !status.success() {
            bail!("a worker exited with {status}");
        }
    }
    Ok(Run {
        rate: applied / seconds,
        seconds,
        peak_rss_mib: peak,
        logged_by,
        cpu,
    })
}

/// Each worker's count of events logged. A process counts a batch just
/// after its commit, so the counts may trail the log for a moment.
async fn shares(children: &[Worker], total: u64) -> Result<Vec<u64>> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut counts = Vec::with_capacity(children.len());
        for worker in children {
            counts.push(worker.events_logged(&client).await?);
        }
        if counts.iter().sum::<u64>() >= total || Instant::now() > deadline {
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let full = std::env::args().any(|a| a == "--bench");
    let (users, total) = if full {
        (10_000, 100_000)
    } else {
        (200, 2_000)
    };
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (db_name, prefix) = (format!("bench_{id}"), format!("bench_{id}"));
    let db = SecretUrl::new(format!("postgres://postgres@127.0.0.1:5432/{db_name}"));
    let amqp_url = SecretUrl::new("amqp://guest:guest@127.0.0.1:5672/%2f");
    let topology = Topology::new(prefix.clone(), SHARDS);
    let result = bench(users, total, &db, &amqp_url, &prefix, &topology).await;
    common::cleanup(&SecretUrl::new(common::AMQP_URL), &db_name, &topology).await;
    // A mismatch with the model has been printed: fail without more noise.
    Ok(if result? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn bench(
    users: usize,
    total: usize,
    db: &SecretUrl,
    amqp_url: &SecretUrl,
    prefix: &str,
    topology: &Topology,
) -> Result<bool> {
    let events = generate(users, total);
    let mean = events.iter().map(|e| e.body.len()).sum::<usize>() / events.len();
    println!(
        "worker throughput: {total} events for {users} users, mean body {mean} bytes, batch size {BATCH_SIZE}, {SHARDS} shards"
    );
    println!("  {}", tokio::task::spawn_blocking(speed::report).await?);
    database::create_if_missing(db).await?;
    database::migrate(db).await?;
    let connection = amqp::connect(amqp_url, "bench-topology").await?;
    amqp::declare_topology(&connection, topology, 10).await?;
    let _ = connection.close(200, "declared".into()).await;

    let mut pg = database::connect(db).await?;
    let mut raw = 0.0;
    let expected = model::expected(&modelled(&events));
    let all: BTreeSet<String> = events.iter().map(|e| e.svix_id.clone()).collect();
    let log = LogSpec {
        required: &all,
        allowed: &BTreeSet::new(),
    };
    let mut runs = Vec::new();
    let mut misses = Vec::new();
    for workers in WORKERS {
        common::reset(&mut pg).await?;
        publish(amqp_url, topology, &events).await?;
        let (run, observed) = if workers == 1 {
            let (run, observed, limit) = bracketed(&mut pg, &events, db, prefix).await?;
            limit.print("  ");
            raw = limit.mean();
            (run, observed)
        } else {
            let run = run_workers(workers, db, prefix, total as u64).await?;
            (run, check::observe(db).await?)
        };
        let rss: Vec<String> = run.peak_rss_mib.iter().map(|m| format!("{m:.1}")).collect();
        println!(
            "  {workers} worker{}: {:>8.0} events/s ({:.0}% of the limit) in {:.1} s, peak RSS {} MiB",
            if workers == 1 { " " } else { "s" },
            run.rate,
            100.0 * run.rate / raw,
            run.seconds,
            rss.join(" / ")
        );
        println!("      {}", run.cpu);
        println!("      {}", share_line(&run.logged_by, total as u64));
        let differences = check::differences(&expected, &log, &observed);
        println!(
            "      tables and log equal the model: {} (model: {} Student and {} Instructor rows, {} deleted users without rows, {} svix-ids each logged once)",
            verdict(differences.is_empty()),
            expected.students.len(),
            expected.instructors.len(),
            expected.deleted_users,
            all.len()
        );
        for difference in &differences {
            println!("        {difference}");
        }
        if !differences.is_empty() {
            misses.push(workers);
        }
        runs.push(run);
    }
    let (burst_share, burst_equal) = sign_up_burst(total, db, amqp_url, prefix, topology).await?;
    if !burst_equal {
        misses.push(0);
    }
    let one = &runs[0];
    let max_rss = runs
        .iter()
        .flat_map(|r| r.peak_rss_mib.iter().copied())
        .fold(0.0, f64::max);
    println!(
        "  targets: 1 worker >= 70% of the limit on both loads: {} ({:.0}% and {burst_share:.0}%); >= 5,000 events/s: {}; RSS < 64 MiB: {}",
        verdict(one.rate >= 0.7 * raw && burst_share >= 70.0),
        100.0 * one.rate / raw,
        verdict(one.rate >= 5_000.0),
        verdict(max_rss < 64.0)
    );
    let speedup: Vec<String> = runs
        .iter()
        .zip(WORKERS)
        .skip(1)
        .map(|(run, workers)| format!("{workers} workers x{:.2}", run.rate / one.rate))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  scale-out over 1 worker: {} (on {cores} cores shared with PostgreSQL and RabbitMQ)",
        speedup.join(", ")
    );
    if !misses.is_empty() {
        println!(
            "  the tables differ from the model after the run with {misses:?} workers (0: the sign-up burst)"
        );
    }
    Ok(misses.is_empty())
}

/// The second load, a sign-up burst or a bulk import: `total` events, each
/// a new user's `user.created`, applied by one worker, beside the limit for
/// the same rows. The worker's share of the limit (%), and whether the
/// tables then equal the model.
async fn sign_up_burst(
    total: usize,
    db: &SecretUrl,
    amqp_url: &SecretUrl,
    prefix: &str,
    topology: &Topology,
) -> Result<(f64, bool)> {
    let events = generate(total, total);
    let mut pg = database::connect(db).await?;
    common::reset(&mut pg).await?;
    publish(amqp_url, topology, &events).await?;
    let (run, observed, limit) = bracketed(&mut pg, &events, db, prefix).await?;
    let share = 100.0 * run.rate / limit.mean();
    println!("  sign-up burst: {total} events, each a new user's user.created");
    limit.print("    ");
    println!(
        "    1 worker : {:>8.0} events/s ({share:.0}% of the limit) in {:.1} s, peak RSS {:.1} MiB",
        run.rate,
        run.seconds,
        run.peak_rss_mib.iter().copied().fold(0.0, f64::max)
    );
    println!("      {}", run.cpu);
    let all: BTreeSet<String> = events.iter().map(|e| e.svix_id.clone()).collect();
    let log = LogSpec {
        required: &all,
        allowed: &BTreeSet::new(),
    };
    let expected = model::expected(&modelled(&events));
    let differences = check::differences(&expected, &log, &observed);
    println!(
        "      tables and log equal the model: {}",
        verdict(differences.is_empty())
    );
    for difference in &differences {
        println!("        {difference}");
    }
    Ok((share, differences.is_empty()))
}

/// One worker on the loaded queues, between two measures of the limit
/// for `events` (the tables emptied before each): this machine's speed
/// moves by tens of percent from one minute to the next, so the worker is
/// compared with the mean of the limit just before and just after it. The
/// run, the tables it left, and the limit.
async fn bracketed(
    pg: &mut AsyncPgConnection,
    events: &[Event],
    db: &SecretUrl,
    prefix: &str,
) -> Result<(Run, check::Observed, Limit)> {
    rabbitmq_quiet().await;
    let before = raw_limit(pg, events, BATCH_SIZE).await?;
    common::reset(pg).await?;
    let run = run_workers(1, db, prefix, events.len() as u64).await?;
    let observed = check::observe(db).await?;
    common::reset(pg).await?;
    let after = raw_limit(pg, events, BATCH_SIZE).await?;
    Ok((run, observed, Limit { before, after }))
}

/// The limit measured before and after a run: (events/s, CPU report).
struct Limit {
    before: (f64, String),
    after: (f64, String),
}

impl Limit {
    fn mean(&self) -> f64 {
        (self.before.0 + self.after.0) / 2.0
    }

    fn print(&self, indent: &str) {
        println!(
            "{indent}limit: same rows, same batches, diesel-async only: {:>8.0} events/s (mean of {:.0} just before the run and {:.0} just after)",
            self.mean(),
            self.before.0,
            self.after.0
        );
        println!("{indent}    before: {}", self.before.1);
        println!("{indent}    after:  {}", self.after.1);
    }
}

/// "share per process: 51% / 49% (1020 / 980 events)" from the counters.
fn share_line(logged_by: &[u64], total: u64) -> String {
    let counted: u64 = logged_by.iter().sum();
    let percent: Vec<String> = logged_by
        .iter()
        .map(|n| format!("{:.0}%", 100.0 * *n as f64 / counted.max(1) as f64))
        .collect();
    let counts: Vec<String> = logged_by.iter().map(u64::to_string).collect();
    let note = if counted == total {
        String::new()
    } else {
        format!(", {counted} of {total} counted")
    };
    format!(
        "share per process: {} ({} events{note})",
        percent.join(" / "),
        counts.join(" / ")
    )
}
