//! Running replay: batches of users produced in order and rebuilt by a
//! few lanes at once, then the events filed under no user.

use super::batch::rebuild_batch;
use super::report::{Report, Tally, Totals, lock, print_totals};
use crate::{progress, since, synthetic};
use chrono::{DateTime, Utc};
use clerk_sync_domain::clerk_event::ParsedEvent;
use clerk_sync_domain::roles::Role;
use clerk_sync_store::apply::Rules;
use clerk_sync_store::repository::replay as log;
use clerk_sync_store::repository::{self, database};
use clerk_sync_store::settings::Settings;
use diesel_async::AsyncPgConnection;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rebuild only this user (repeat for more).
    #[arg(long = "user", value_name = "ID", value_parser = synthetic::user_id_arg)]
    users: Vec<String>,
    /// Rebuild only users with an event received at or after TIME (each
    /// from all of its events): an RFC 3339 instant, a date or an age (12h).
    #[arg(long, value_name = "TIME", value_parser = since::arg)]
    since: Option<DateTime<Utc>>,
    /// Write nothing; print what would change.
    #[arg(long)]
    dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Users rebuilt per transaction.
    #[arg(long, value_name = "N", default_value_t = 700,
          value_parser = clap::value_parser!(i64).range(1..=100_000))]
    users_per_batch: i64,
}

/// Batches rebuilt at once, each on its own connection, so that one batch's
/// parsing and planning overlaps another's queries.
const LANES: usize = 3;

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let mut connection = database::connect(&settings.database.url).await?;
    let rules = Arc::new(Rules::of(&settings));
    let started = Instant::now();
    let bar = progress::bar(
        None,
        if args.dry_run {
            "replay (dry run): events"
        } else {
            "replay: events"
        },
    );
    let tally = Arc::new(Mutex::new(Tally {
        report: Report {
            dry_run: args.dry_run,
            changes: Vec::new(),
            changes_not_listed: 0,
            totals: Totals::default(),
            seconds: 0.0,
        },
        human: !args.json,
        bar: bar.clone(),
    }));
    let events_filed = file_unfiled(&mut connection, args.since, &args.users, args.dry_run).await?;
    lock(&tally).report.totals.events_filed = events_filed;

    let mut lanes = JoinSet::new();
    let mut senders = Vec::with_capacity(LANES);
    for _ in 0..LANES {
        let (sender, mut pages) = mpsc::channel::<Vec<String>>(1);
        let mut lane = database::connect(&settings.database.url).await?;
        let (rules, tally, dry_run) = (rules.clone(), tally.clone(), args.dry_run);
        lanes.spawn(async move {
            while let Some(users) = pages.recv().await {
                let batch = loop {
                    let mut transaction = lane.build_transaction();
                    if dry_run {
                        transaction = transaction.read_only();
                    }
                    // A worker created a user's sync state meanwhile: run
                    // again, which finds and locks it.
                    match transaction
                        .run(async |c| rebuild_batch(c, &users, &rules, dry_run).await)
                        .await
                    {
                        Err(error) if repository::users::must_rerun(&error) => continue,
                        batch => break batch?,
                    }
                };
                lock(&tally).record(users.len(), batch, dry_run);
            }
            anyhow::Ok(())
        });
        senders.push(sender);
    }
    let produced = produce(&mut connection, &args, &senders).await;
    drop(senders);
    while let Some(lane) = lanes.join_next().await {
        lane??;
    }
    produced?;

    bar.finish_and_clear();
    let mut report = std::mem::replace(&mut lock(&tally).report, Report::empty());
    report.seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_totals(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Hand the users to rebuild to the lanes, a page at a time, round robin.
/// Stops early when a lane has stopped (its error is reported by the caller).
async fn produce(
    connection: &mut AsyncPgConnection,
    args: &Args,
    lanes: &[mpsc::Sender<Vec<String>>],
) -> anyhow::Result<()> {
    let mut next = 0_usize;
    let mut send = async |page: Vec<String>| {
        next += 1;
        lanes[next % lanes.len()].send(page).await.is_ok()
    };
    if !args.users.is_empty() {
        let mut users = args.users.clone();
        users.sort();
        users.dedup();
        for page in users.chunks(usize::try_from(args.users_per_batch).unwrap_or(1000)) {
            if !send(page.to_vec()).await {
                return Ok(());
            }
        }
        return Ok(());
    }
    let mut after = String::new();
    loop {
        let page =
            log::users_with_events(connection, &after, args.since, args.users_per_batch).await?;
        let Some(last) = page.last() else { break };
        after = last.clone();
        if !send(page).await {
            return Ok(());
        }
    }
    // Rows of users the log has never heard of (a full replay only).
    if args.since.is_none() {
        for role in [Role::Student, Role::Instructor] {
            let mut after = String::new();
            loop {
                let page =
                    log::users_without_events(connection, role, &after, args.users_per_batch)
                        .await?;
                let Some(last) = page.last() else { break };
                after = last.clone();
                if !send(page).await {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Events judged `failed`/`ignored` under no user that the parser now files
/// under one get that user, so the batches read them. Returns how many.
async fn file_unfiled(
    connection: &mut AsyncPgConnection,
    since: Option<DateTime<Utc>>,
    only: &[String],
    dry_run: bool,
) -> anyhow::Result<u64> {
    let mut after = String::new();
    let mut filed_total = 0;
    loop {
        let page = log::unfiled_events(connection, &after, since, 1000).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        let filed: Vec<(String, String)> = page
            .into_iter()
            .filter_map(|(svix_id, body)| {
                let event = ParsedEvent::parse(&body).ok()?;
                let user = event.subject_user_id()?.to_owned();
                (only.is_empty() || only.contains(&user)).then_some((svix_id, user))
            })
            .collect();
        filed_total += filed.len() as u64;
        if !dry_run {
            log::file_under(connection, &filed).await?;
        }
    }
    Ok(filed_total)
}
