//! Throughput of the worker against the local PostgreSQL and RabbitMQ.
//!
//! 100,000 Clerk-shaped events (about 2 KB each: creates, updates, and a
//! delete for one user in ten) for 10,000 users are loaded into the shard
//! queues, then applied by 1 and by 2 real `clerk-sync-worker` processes;
//! the rate is measured from the first commit to the last event logged.
//! Beside them, the machine's limit in the same run: the same rows (one log
//! row per event, one Student row per user of the batch) written in batches
//! of the same size straight through diesel-async, with no RabbitMQ and no
//! decision. Each worker's peak resident memory is read from /proc.
//!
//! `cargo bench -p clerk-sync-worker --bench throughput`; without `--bench`
//! (as `cargo test --all-targets` runs it) a smoke run of 2,000 events.
//! It uses its own database and topology and removes both.

use anyhow::{Context, Result, bail};
use clerk_sync_domain::projection::{Profile, UserState};
use clerk_sync_domain::roles::Role;
use clerk_sync_domain::runtime::amqp;
use clerk_sync_domain::runtime::secret_url::SecretUrl;
use clerk_sync_domain::topology::Topology;
use clerk_sync_testkit::cpu::{beam_pid, cpu_time, cpu_time_of_named};
use clerk_sync_worker::plan::LogRow;
use clerk_sync_worker::{database, repository};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BATCH_SIZE: usize = 500;
const SHARDS: u16 = 8;
const T0: i64 = 1_700_000_000_000;

struct Event {
    svix_id: String,
    user: String,
    at_ms: i64,
    body: Vec<u8>,
}

/// `users` users, `total` events: a create, then updates, and for one user
/// in ten a final delete. Events are interleaved across users, as traffic is.
fn generate(users: usize, total: usize) -> Vec<Event> {
    let per_user = total / users;
    let padding = "x".repeat(1_150);
    let mut events = Vec::with_capacity(total);
    for step in 0..per_user {
        for u in 0..users {
            let user = format!("user_bench{u:06}");
            let at_ms = T0 + (step as i64) * 1_000;
            let svix_id = format!("msg_bench_{u}_{step}");
            let body = if step + 1 == per_user && u % 10 == 0 {
                serde_json::json!({"type": "user.deleted", "object": "event", "timestamp": at_ms,
                    "data": {"id": user, "object": "user", "deleted": true}})
            } else {
                let event_type = if step == 0 {
                    "user.created"
                } else {
                    "user.updated"
                };
                serde_json::json!({"type": event_type, "object": "event", "timestamp": at_ms,
                    "data": {"id": user, "object": "user", "first_name": format!("First{step}"), "last_name": "Bench",
                        "image_url": "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9",
                        "primary_email_address_id": "idn_2",
                        "email_addresses": [
                            {"id": "idn_1", "object": "email_address", "email_address": format!("old.{user}@example.com"), "verification": {"status": "verified", "strategy": "email_code"}},
                            {"id": "idn_2", "object": "email_address", "email_address": format!("{user}@example.com"), "verification": {"status": "verified", "strategy": "email_code"}}],
                        "phone_numbers": [], "web3_wallets": [], "external_accounts": [],
                        "public_metadata": {"role": if u % 7 == 0 { "instructor" } else { "student" }},
                        "private_metadata": {}, "unsafe_metadata": {"signup_form": padding},
                        "created_at": T0, "updated_at": at_ms, "last_sign_in_at": at_ms,
                        "password_enabled": true, "two_factor_enabled": false}})
            };
            events.push(Event {
                svix_id,
                user,
                at_ms,
                body: serde_json::to_vec(&body).unwrap_or_default(),
            });
        }
    }
    events
}

/// The same rows the worker writes, without the queue and the decision.
async fn raw_limit(connection: &mut AsyncPgConnection, events: &[Event]) -> Result<(f64, String)> {
    let started = Instant::now();
    let before = cpu_snapshot(&[std::process::id()]);
    for batch in events.chunks(BATCH_SIZE) {
        let log: Vec<LogRow> = batch
            .iter()
            .map(|e| LogRow {
                svix_id: e.svix_id.clone(),
                event_type: Some("user.updated".to_owned()),
                clerk_user_id: Some(e.user.clone()),
                occurred_at_ms: Some(e.at_ms),
                received_at_ms: e.at_ms,
                payload: serde_json::json!({"headers": {"svix-id": e.svix_id}, "body": String::from_utf8_lossy(&e.body)}),
                outcome: "applied",
                error: None,
            })
            .collect();
        let users: BTreeMap<String, UserState> = batch
            .iter()
            .map(|e| {
                let profile = Profile {
                    email: Some(format!("{}@example.com", e.user)),
                    first_name: "First".to_owned(),
                    last_name: "Bench".to_owned(),
                    image_url: None,
                    created_at_ms: T0,
                    updated_at_ms: e.at_ms,
                };
                let state = UserState {
                    newest: None,
                    deleted: false,
                    roles: [Role::Student].into(),
                    profile: Some(profile),
                };
                (e.user.clone(), state)
            })
            .collect();
        connection
            .transaction(async |c| {
                repository::insert_log(c, &log).await?;
                repository::write_rows(c, &users).await
            })
            .await
            .context("raw batch failed")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_report(
        "benchmark",
        before,
        cpu_snapshot(&[std::process::id()]),
        events.len() as f64,
        seconds,
    );
    Ok((events.len() as f64 / seconds, cpu))
}

async fn publish(url: &SecretUrl, topology: &Topology, events: &[Event]) -> Result<()> {
    let connection = amqp::connect(url, "bench-load").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    for chunk in events.chunks(1_000) {
        let confirms = chunk.iter().map(|e| {
            let mut headers = FieldTable::default();
            headers.insert(
                "svix-timestamp".into(),
                AMQPValue::LongString(LongString::from((e.at_ms / 1000).to_string().as_str())),
            );
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(ShortString::from(e.svix_id.as_str()))
                .with_headers(headers);
            let queue = topology.queue_for(&e.user);
            let channel = channel.clone();
            let exchange = topology.exchange();
            async move {
                channel
                    .basic_publish(
                        exchange.as_str().into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &e.body,
                        properties,
                    )
                    .await?
                    .await
            }
        });
        for confirm in futures::future::join_all(confirms).await {
            if !confirm?.is_ack() {
                bail!("RabbitMQ refused a message");
            }
        }
    }
    let _ = connection.close(200, "loaded".into()).await;
    Ok(())
}

async fn count(connection: &mut AsyncPgConnection) -> Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM clerk_sync.events")
        .get_result(connection)
        .await?;
    Ok(n.n)
}

struct Run {
    rate: f64,
    seconds: f64,
    peak_rss_mib: Vec<f64>,
    cpu: String,
}

/// Start `workers` processes on the loaded queues; measure until all is logged.
async fn run_workers(workers: usize, db: &SecretUrl, prefix: &str, total: i64) -> Result<Run> {
    let mut children: Vec<Child> = (0..workers)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"))
                .arg("run")
                .env_clear()
                .current_dir(std::env::temp_dir())
                .env("DATABASE_URL", db.expose())
                .env("CLERK_SYNC__AMQP__PREFIX", prefix)
                .env("CLERK_SYNC__AMQP__SHARDS", SHARDS.to_string())
                .env("CLERK_SYNC__WORKER__BATCH_SIZE", BATCH_SIZE.to_string())
                .env("CLERK_SYNC__WORKER__LISTEN", "127.0.0.1:0")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut connection = database::connect(db).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut first, mut logged_at_first) = (None, 0);
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let mut cpu_at_first = cpu_snapshot(&pids);
    let mut peak = vec![0.0; workers];
    loop {
        let logged = count(&mut connection).await?;
        if first.is_none() && logged > 0 {
            first = Some(Instant::now());
            logged_at_first = logged;
            cpu_at_first = cpu_snapshot(&pids);
        }
        for (i, child) in children.iter().enumerate() {
            peak[i] = f64::max(peak[i], peak_rss_mib(child.id()));
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
    for child in &children {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    for child in &mut children {
        let status = child.wait()?;
        if !status.success() {
            bail!("a worker exited with {status}");
        }
    }
    Ok(Run {
        rate: applied / seconds,
        seconds,
        peak_rss_mib: peak,
        cpu,
    })
}

/// CPU time so far of: the given processes together, PostgreSQL, RabbitMQ,
/// and the whole machine.
fn cpu_snapshot(pids: &[u32]) -> [Duration; 4] {
    let ours = pids.iter().filter_map(|pid| cpu_time(Some(*pid))).sum();
    let rabbitmq = beam_pid()
        .and_then(|pid| cpu_time(Some(pid)))
        .unwrap_or_default();
    let machine = cpu_time(None).unwrap_or_default();
    [ours, cpu_time_of_named("postgres"), rabbitmq, machine]
}

/// "CPU µs per event: <who> a, postgres b, rabbitmq c (n% of 2 cores busy)".
fn cpu_report(
    who: &str,
    before: [Duration; 4],
    after: [Duration; 4],
    events: f64,
    seconds: f64,
) -> String {
    let per_event = |i: usize| after[i].saturating_sub(before[i]).as_secs_f64() * 1e6 / events;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let busy = 100.0 * after[3].saturating_sub(before[3]).as_secs_f64() / (seconds * cores);
    format!(
        "CPU µs per event: {who} {:.0}, postgres {:.0}, rabbitmq {:.0} ({busy:.0}% of {cores} cores busy)",
        per_event(0),
        per_event(1),
        per_event(2)
    )
}

/// VmHWM (peak resident set) of a process, MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn reset(connection: &mut AsyncPgConnection) -> Result<()> {
    diesel::sql_query(r#"TRUNCATE clerk_sync.events, clerk_sync.users, "Enrollment", "Course", "Student", "Instructor""#)
        .execute(connection)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
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
    cleanup(&db_name, &amqp_url, &topology).await;
    result
}

async fn bench(
    users: usize,
    total: usize,
    db: &SecretUrl,
    amqp_url: &SecretUrl,
    prefix: &str,
    topology: &Topology,
) -> Result<()> {
    let events = generate(users, total);
    let mean = events.iter().map(|e| e.body.len()).sum::<usize>() / events.len();
    println!(
        "worker throughput: {total} events for {users} users, mean body {mean} bytes, batch size {BATCH_SIZE}, {SHARDS} shards"
    );
    database::create_if_missing(db).await?;
    database::migrate(db).await?;
    let connection = amqp::connect(amqp_url, "bench-topology").await?;
    amqp::declare_topology(&connection, topology, 10).await?;
    let _ = connection.close(200, "declared".into()).await;

    let mut pg = database::connect(db).await?;
    let (raw, raw_cpu) = raw_limit(&mut pg, &events).await?;
    println!("  limit: same rows, same batches, diesel-async only: {raw:>8.0} events/s");
    println!("      {raw_cpu}");

    let mut runs = Vec::new();
    for workers in [1, 2] {
        reset(&mut pg).await?;
        publish(amqp_url, topology, &events).await?;
        let run = run_workers(workers, db, prefix, total as i64).await?;
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
        runs.push(run);
    }
    let one = &runs[0];
    let max_rss = runs
        .iter()
        .flat_map(|r| r.peak_rss_mib.iter().copied())
        .fold(0.0, f64::max);
    println!(
        "  targets: 1 worker >= 60% of the limit: {}; >= 5,000 events/s: {}; RSS < 64 MiB: {}",
        verdict(one.rate >= 0.6 * raw),
        verdict(one.rate >= 5_000.0),
        verdict(max_rss < 64.0)
    );
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

async fn cleanup(db_name: &str, amqp_url: &SecretUrl, topology: &Topology) {
    if let Ok(connection) = amqp::connect(amqp_url, "bench-cleanup").await {
        let _ = amqp::delete_topology(&connection, topology).await;
    }
    if let Ok(mut server) =
        AsyncPgConnection::establish("postgres://postgres@127.0.0.1:5432/postgres").await
    {
        let _ = diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
        ))
        .execute(&mut server)
        .await;
    }
}
