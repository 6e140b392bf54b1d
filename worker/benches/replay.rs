//! Replay throughput against the local PostgreSQL.
//!
//! 1,000,000 logged events (about 2 KB each, as the throughput benchmark's:
//! a create, updates, and a delete for one user in ten) for 100,000 users
//! are written into `clerk_sync.events`, then `clerk-sync-worker replay`
//! runs as a real process twice: onto empty tables (every row created) and
//! onto the rebuilt tables (every row checked, none written). Beside it, the
//! limit in the same run: the same events read from the log by the same
//! queries, page by page, with no parsing and no projection work. Memory
//! bounded independent of the log's size is shown by replaying a log a
//! tenth the size first: the peak resident memory must not grow with it.
//!
//! `cargo bench -p clerk-sync-worker --bench replay`; without `--bench` (as
//! `cargo test --all-targets` runs it) a smoke run of 10,000 events.
//! It uses its own databases and removes them.

mod common;

use anyhow::{Context, Result, bail};
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::database;
use clerk_sync_store::repository::replay as log;
use common::measure::peak_rss_mib;
use common::{database_url, drop_database, unique, verdict};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EVENTS_PER_USER: i64 = 10;
const USERS_PER_BATCH: i64 = 700;
const TARGET: f64 = 50_000.0;

#[tokio::main]
async fn main() -> Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let users = if full { 100_000 } else { 1_000 };
    if !full {
        println!(
            "smoke run (cargo bench gives the real one): its figures and verdicts mean nothing"
        );
    }
    println!(
        "replay: {} events for {users} users ({EVENTS_PER_USER} per user, about 2 KB each), \
         {USERS_PER_BATCH} users per transaction",
        users * EVENTS_PER_USER
    );
    let mut peaks = Vec::new();
    for (scale, users) in [("tenth", users / 10), ("full", users)] {
        let name = unique("bench_replay");
        let result = run(scale, users, &name).await;
        drop_database(&name).await;
        peaks.push(result?);
    }
    let [small, big] = peaks[..] else {
        bail!("two runs expected")
    };
    println!(
        "  memory: peak RSS {small:.1} MiB for a tenth of the log, {big:.1} MiB for all of it: {}",
        verdict(big < small * 1.5 + 8.0)
    );
    Ok(())
}

/// Populate, measure the limit and two replays; returns the peak RSS (MiB).
async fn run(scale: &str, users: i64, name: &str) -> Result<f64> {
    let url = database_url(name);
    database::create_if_missing(&url).await?;
    database::migrate(&url).await?;
    let mut connection = database::connect(&url).await?;
    let started = Instant::now();
    populate(&mut connection, users).await?;
    let events = users * EVENTS_PER_USER;
    println!(
        "  [{scale}] {events} events for {users} users logged in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (read_rate, read_seconds) = read_limit(&mut connection).await?;
    println!(
        "  [{scale}] limit: the same pages read from the log, no projection: {read_rate:>8.0} events/s ({read_seconds:.1} s)"
    );
    let mut peak = 0.0_f64;
    for phase in ["onto empty tables", "onto intact tables"] {
        let replay = replay(&url)?;
        peak = peak.max(replay.peak_rss_mib);
        let rate = events as f64 / replay.seconds;
        println!(
            "  [{scale}] replay {phase}: {rate:>8.0} events/s in {:.1} s ({:.0}% of the limit), \
             peak RSS {:.1} MiB; {} rows created, {} updated",
            replay.seconds,
            100.0 * rate / read_rate,
            replay.peak_rss_mib,
            replay.created,
            replay.updated,
        );
        if scale == "full" {
            println!(
                "      target >= {TARGET:.0} events/s: {}",
                verdict(rate >= TARGET)
            );
        }
        check_tables(&mut connection, users).await?;
    }
    Ok(peak)
}

/// Write the log straight into PostgreSQL (generate_series), as the worker
/// would have logged it: user `u`'s step 0 is a create, then updates, and
/// one user in ten ends deleted; one in seven is an instructor.
async fn populate(connection: &mut AsyncPgConnection, users: i64) -> Result<()> {
    for step in 0..EVENTS_PER_USER {
        diesel::sql_query(format!(
            r#"INSERT INTO clerk_sync.events (svix_id, event_type, clerk_user_id, occurred_at, received_at, payload, outcome, recorded_at)
               SELECT 'msg_' || u || '_{step}', kind, 'user_' || lpad(u::text, 7, '0'),
                      to_timestamp((1700000000000 + {step} * 1000) / 1000.0), now(),
                      jsonb_build_object('headers', jsonb_build_object('svix-id', 'msg_' || u || '_{step}',
                          'svix-timestamp', '1700000000', 'svix-signature', 'v1,bm90IHZlcmlmaWVk'),
                        'body', CASE WHEN kind = 'user.deleted' THEN
                          format('{{"type":"user.deleted","object":"event","timestamp":%s,"data":{{"id":"user_%s","object":"user","deleted":true}}}}',
                                 1700000000000 + {step} * 1000, lpad(u::text, 7, '0'))
                        ELSE format('{{"type":"%s","object":"event","timestamp":%s,"data":{{"id":"user_%s","object":"user","first_name":"First{step}","last_name":"Bench","image_url":"https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9","primary_email_address_id":"idn_2","email_addresses":[{{"id":"idn_1","object":"email_address","email_address":"old.user_%s@example.com","verification":{{"status":"verified","strategy":"email_code"}}}},{{"id":"idn_2","object":"email_address","email_address":"user_%s@example.com","verification":{{"status":"verified","strategy":"email_code"}}}}],"phone_numbers":[],"web3_wallets":[],"external_accounts":[],"public_metadata":{{"role":"%s"}},"private_metadata":{{}},"unsafe_metadata":{{"signup_form":"%s"}},"created_at":1700000000000,"updated_at":%s,"last_sign_in_at":%s,"password_enabled":true,"two_factor_enabled":false}}}}',
                                 kind, 1700000000000 + {step} * 1000, lpad(u::text, 7, '0'), lpad(u::text, 7, '0'), lpad(u::text, 7, '0'),
                                 CASE WHEN u % 7 = 0 THEN 'instructor' ELSE 'student' END, repeat('x', 1150),
                                 1700000000000 + {step} * 1000, 1700000000000 + {step} * 1000) END),
                      'applied', now() + interval '1 second' * {step}
               FROM generate_series(0, $1 - 1) AS u,
                    LATERAL (SELECT CASE WHEN {step} = 0 THEN 'user.created'
                                         WHEN {step} = {last} AND u % 10 = 0 THEN 'user.deleted'
                                         ELSE 'user.updated' END AS kind) AS k"#,
            last = EVENTS_PER_USER - 1
        ))
        .bind::<BigInt, _>(users)
        .execute(connection)
        .await
        .context("writing the log")?;
    }
    diesel::sql_query("VACUUM ANALYZE clerk_sync.events")
        .execute(connection)
        .await?;
    Ok(())
}

/// Read every event page by page with replay's own queries, and nothing else.
async fn read_limit(connection: &mut AsyncPgConnection) -> Result<(f64, f64)> {
    let started = Instant::now();
    let mut after = String::new();
    let mut events = 0_usize;
    loop {
        let page = log::users_with_events(connection, &after, None, USERS_PER_BATCH).await?;
        let Some(last) = page.last() else { break };
        after = last.clone();
        events += log::logged_events(connection, &page).await?.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok((events as f64 / seconds, seconds))
}

struct Replay {
    seconds: f64,
    peak_rss_mib: f64,
    created: u64,
    updated: u64,
}

/// Run `clerk-sync-worker replay --json` and watch its memory.
fn replay(url: &SecretUrl) -> Result<Replay> {
    // Its report goes to a file: a pipe nobody reads while it runs would fill.
    let report_path = std::env::temp_dir().join(format!("replay-{}.json", uuid::Uuid::new_v4()));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"))
        .args([
            "replay",
            "--json",
            "--users-per-batch",
            &USERS_PER_BATCH.to_string(),
        ])
        .env_clear()
        .env("DATABASE_URL", url.expose())
        .current_dir(std::env::temp_dir())
        .stdout(std::fs::File::create(&report_path)?)
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut peak = 0.0_f64;
    while child.try_wait()?.is_none() {
        peak = peak.max(peak_rss_mib(child.id()));
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    let status = child.wait()?;
    let output = std::fs::read(&report_path);
    let _ = std::fs::remove_file(&report_path);
    if !status.success() {
        bail!("replay failed: {status:?}");
    }
    let report: serde_json::Value = serde_json::from_slice(&output?)?;
    let total = |key: &str| report["totals"][key].as_u64().unwrap_or(0);
    Ok(Replay {
        seconds,
        peak_rss_mib: peak,
        created: total("rows_created"),
        updated: total("rows_updated"),
    })
}

/// The tables hold what the generator's rules give.
async fn check_tables(connection: &mut AsyncPgConnection, users: i64) -> Result<()> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let alive = |u: &i64| u % 10 != 0;
    let students = (0..users).filter(|u| alive(u) && u % 7 != 0).count() as i64;
    let instructors = (0..users).filter(|u| alive(u) && u % 7 == 0).count() as i64;
    for (table, expected) in [("Student", students), ("Instructor", instructors)] {
        let found: Count = diesel::sql_query(format!(
            r#"SELECT count(*) AS n FROM "{table}" WHERE "firstName" = 'First{}'"#,
            EVENTS_PER_USER - 1
        ))
        .get_result(connection)
        .await?;
        if found.n != expected {
            bail!(
                "{table}: {} rows with the newest profile, expected {expected}",
                found.n
            );
        }
    }
    Ok(())
}
