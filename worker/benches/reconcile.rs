//! `clerk-sync-worker reconcile` against a fake Clerk Backend API serving
//! many users (the test's own, `clerk_sync_testkit::fake_clerk`, answering
//! as Clerk does: plain arrays, newest first, the count on its own path):
//!
//! 1. with no budget, onto an empty database (every user imported, as on a
//!    first install): users per second;
//! 2. with no budget again, everything in line: users per second, which is
//!    what paging Clerk's list costs;
//! 3. with a budget of 100 requests per 10 s: the requests' pace, as the
//!    fake saw it, against the budget (target: within 5%), and the most
//!    requests in any 10 s.
//!
//! Each run is the real binary, as an operator runs it. After the import,
//! every user must have its row (a mismatch fails the run); targets are
//! printed PASS or MISS, never enforced.
//!
//! `cargo bench -p clerk-sync-worker --bench reconcile` (100,000 users, 500
//! a page); without `--bench` (as `cargo test --all-targets` runs it) a
//! smoke run of 2,000 users, 100 a page. `BENCH_USERS` changes the number.
//! It uses a database of its own and drops it.

mod common;

use anyhow::{Context, Result, bail};
use clerk_sync_operators::pacing;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::database;
use clerk_sync_testkit::fake_clerk::{FakeClerk, KEY};
use common::load::generate;
use serde_json::Value;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The budget of the third run, requests per 10 s.
const BUDGET: u32 = 100;

fn main() -> Result<ExitCode> {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (users, page) = if full { (100_000, 500) } else { (2_000, 100) };
    let users = match std::env::var("BENCH_USERS") {
        Ok(value) => value.parse().context("BENCH_USERS: not a number")?,
        Err(_) => users,
    };
    let name = common::unique("reconcile");
    let db = common::database_url(&name);
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        let result = bench(users, page, &db).await;
        common::drop_database(&name).await;
        result
    });
    Ok(if result? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn bench(users: usize, page: u32, db: &SecretUrl) -> Result<bool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "clerk-sync reconcile: {users} Clerk users served by a local fake of the Backend API, {page} a page; the fake, the command and PostgreSQL on {cores} cores"
    );
    let clerk = FakeClerk::start(clerk_users(users)?).await;
    database::create_if_missing(db).await?;
    database::migrate(db).await?;

    let import = reconcile(&clerk, db, page, 0).await?;
    println!(
        "{}",
        import.line("onto an empty database, no budget", users)
    );
    let imported = common::scalar(
        db,
        r#"SELECT (SELECT count(*) FROM "Student") + (SELECT count(*) FROM "Instructor") AS n"#,
    )
    .await?;
    let created = import.report["totals"]["created"].as_u64();
    let again = reconcile(&clerk, db, page, 0).await?;
    println!("{}", again.line("everything in line, no budget", users));
    let in_line = again.report["totals"]["in_line"].as_u64();

    clerk.arrivals();
    let paced = reconcile(&clerk, db, page, BUDGET).await?;
    println!(
        "{}",
        paced.line(&format!("budget {BUDGET} per 10 s"), users)
    );
    let arrivals = clerk.arrivals();
    let pace = Pace::of(&arrivals);
    let budget_rate = f64::from(BUDGET) / 10.0;
    println!(
        "    the fake saw {} requests at {:.2}/s (the budget: {budget_rate:.2}/s), at most {} in any 10 s",
        arrivals.len(),
        pace.per_second,
        pace.most_in_a_window
    );

    let complete = created == Some(users as u64) && in_line == Some(users as u64);
    println!(
        "\nevery user imported ({imported} rows for {users} users, the second run found {} in line): {}",
        in_line.unwrap_or(0),
        common::verdict(complete && imported >= users as i64)
    );
    let within = (pace.per_second / budget_rate - 1.0).abs() <= 0.05;
    println!(
        "targets (this machine, {cores} cores shared by everything above):\n  \
         requests paced within 5% of the budget: {} ({:+.1}%); never more than {BUDGET} in 10 s: {}",
        common::verdict(within),
        100.0 * (pace.per_second / budget_rate - 1.0),
        common::verdict(pace.most_in_a_window <= BUDGET as usize),
    );
    Ok(complete && imported >= users as i64)
}

/// Clerk's user objects: the `data` of each user's `user.created` in the
/// benchmarks' load (its first round), newest first as Clerk lists them.
fn clerk_users(users: usize) -> Result<Vec<Value>> {
    let mut objects = generate(users, 2 * users)
        .into_iter()
        .take(users)
        .map(|event| {
            let mut body: Value = serde_json::from_slice(&event.body)?;
            Ok(body["data"].take())
        })
        .collect::<Result<Vec<Value>>>()?;
    objects.reverse();
    Ok(objects)
}

struct Run {
    elapsed: Duration,
    report: Value,
}

impl Run {
    fn line(&self, what: &str, users: usize) -> String {
        let seconds = self.elapsed.as_secs_f64();
        format!(
            "  {what}: {users} users in {seconds:.1} s = {:.0} users/s; {} requests; {} events recorded",
            users as f64 / seconds,
            self.report["requests"],
            self.report["totals"]["events"]
        )
    }
}

/// `clerk-sync-worker reconcile --json`, run to its end.
async fn reconcile(clerk: &FakeClerk, db: &SecretUrl, page: u32, budget: u32) -> Result<Run> {
    let started = Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"))
        .args(["reconcile", "--json", "--page-size", &page.to_string()])
        .args(["--budget", &budget.to_string()])
        .env_clear()
        .env("DATABASE_URL", db.expose())
        .env("CLERK_SECRET_KEY", KEY)
        .env("CLERK_SYNC__CLERK__API_URL", &clerk.url)
        .stdin(Stdio::null())
        .output()
        .await
        .context("cannot run clerk-sync-worker reconcile")?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "reconcile exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let report = serde_json::from_slice(&output.stdout).context("reconcile's --json")?;
    Ok(Run { elapsed, report })
}

/// How the requests were spread: their rate from the first to the last, and
/// the most that fell in any 10 s.
struct Pace {
    per_second: f64,
    most_in_a_window: usize,
}

impl Pace {
    fn of(arrivals: &[Instant]) -> Self {
        let span = match (arrivals.first(), arrivals.last()) {
            (Some(first), Some(last)) => (*last - *first).as_secs_f64(),
            _ => 0.0,
        };
        let per_second = match span {
            0.0 => 0.0,
            span => (arrivals.len() - 1) as f64 / span,
        };
        let most_in_a_window = pacing::most_in_a_window(arrivals);
        Self {
            per_second,
            most_in_a_window,
        }
    }
}
