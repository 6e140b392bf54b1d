//! `clerk-sync-worker replay`: rebuild the projection from `clerk_sync.events`.
//!
//! Users are rebuilt a batch at a time, each batch in one transaction that
//! first locks the users' sync states (as a worker does, in the same order),
//! then re-reads and re-parses their logged events, folds them with the live
//! planner and corrects the state, the rows and the log's judgements. So
//! workers may keep running: an event for these users is either committed
//! before the lock (and read) or waits for it (and builds on the result).

use crate::apply::Rules;
use crate::commands::{progress, since, synthetic};
use crate::rebuild::{self, UserDiff};
use crate::repository::database;
use crate::repository::{self, emails, replay as log};
use crate::settings::Settings;
use chrono::{DateTime, Utc};
use clerk_sync_domain::clerk_event::ParsedEvent;
use clerk_sync_domain::email_claims;
use clerk_sync_domain::projection::UserState;
use clerk_sync_domain::roles::Role;
use diesel::result::Error;
use diesel_async::AsyncPgConnection;
use indicatif::ProgressBar;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
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

#[derive(Debug, Default, Serialize)]
struct Totals {
    users: u64,
    events: u64,
    users_changed: u64,
    rows_created: u64,
    rows_updated: u64,
    rows_removed: u64,
    /// Rows the log does not account for, kept because courses or
    /// enrollments refer to them.
    rows_kept: u64,
    /// Sync states (`clerk_sync.users`) that differed from the log's.
    states_corrected: u64,
    /// `failed`/`ignored` events the parser now judges otherwise.
    events_rejudged: u64,
    /// Events filed under no user that the parser now files under one.
    events_filed: u64,
}

#[derive(Debug, Serialize)]
struct Change {
    user: String,
    #[serde(flatten)]
    diff: UserDiff,
}

/// Most changes a `--json` report lists (the totals count them all), so
/// memory stays bounded however many users change.
const MOST_LISTED: usize = 1_000;

#[derive(Debug, Serialize)]
struct Report {
    dry_run: bool,
    /// The first changes, user by user (at most [`MOST_LISTED`]).
    changes: Vec<Change>,
    /// Changes beyond those listed.
    changes_not_listed: u64,
    totals: Totals,
    seconds: f64,
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
                let mut transaction = lane.build_transaction();
                if dry_run {
                    transaction = transaction.read_only();
                }
                let batch = transaction
                    .run(async |c| rebuild_batch(c, &users, &rules, dry_run).await)
                    .await?;
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

/// The report, shared by the lanes.
struct Tally {
    report: Report,
    human: bool,
    bar: ProgressBar,
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    // A lane that panicked cannot leave the counts half-updated in a way
    // that matters more than losing the run: keep going with what is there.
    tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one batch found (and, unless a dry run, corrected).
struct Batch {
    events: usize,
    diffs: Vec<(String, UserDiff)>,
    states_corrected: usize,
    rejudged: usize,
}

impl Report {
    fn empty() -> Self {
        Self {
            dry_run: false,
            changes: Vec::new(),
            changes_not_listed: 0,
            totals: Totals::default(),
            seconds: 0.0,
        }
    }
}

impl Tally {
    fn record(&mut self, users: usize, batch: Batch, dry_run: bool) {
        let totals = &mut self.report.totals;
        totals.users += users as u64;
        totals.events += batch.events as u64;
        totals.states_corrected += batch.states_corrected as u64;
        totals.events_rejudged += batch.rejudged as u64;
        self.bar.inc(batch.events as u64);
        for (user, diff) in batch.diffs {
            totals.users_changed += 1;
            totals.rows_created += diff.created.len() as u64;
            totals.rows_updated += diff.updated.len() as u64;
            totals.rows_removed += diff.removed.len() as u64;
            totals.rows_kept += diff.kept.len() as u64;
            if self.human {
                // Printed as found, not kept.
                self.bar
                    .suspend(|| println!("{}", describe(&user, &diff, dry_run)));
            } else if self.report.changes.len() < MOST_LISTED {
                self.report.changes.push(Change { user, diff });
            } else {
                self.report.changes_not_listed += 1;
            }
        }
    }
}

async fn rebuild_batch(
    connection: &mut AsyncPgConnection,
    users: &[String],
    rules: &Rules,
    dry_run: bool,
) -> Result<Batch, Error> {
    let stored = if dry_run {
        repository::users::user_states(connection, users, false).await?
    } else {
        // A replay's commits need not wait for the disk: one lost in a
        // crash is redone by running replay again, and WAL order keeps any
        // worker's later (synchronous) commit from surviving without it.
        log::commit_without_waiting(connection).await?;
        repository::users::lock_users(connection, users).await?
    };
    let events = log::logged_events(connection, users).await?;
    let existing = log::existing_rows(connection, users).await?;
    let rebuilt = rebuild::rebuild(users, &events, &rules.roles);
    let corrected: BTreeMap<String, UserState> = rebuilt
        .states
        .iter()
        .filter(|(user, state)| stored.get(*user).cloned().unwrap_or_default() != **state)
        .map(|(user, state)| (user.clone(), state.clone()))
        .collect();
    let diff_all = |states: &BTreeMap<String, UserState>| -> Vec<(String, UserDiff)> {
        states
            .iter()
            .map(|(user, state)| {
                let rows = existing.get(user).map_or(&[][..], Vec::as_slice);
                (user.clone(), rebuild::diff(state, rows))
            })
            .filter(|(_, diff)| !diff.is_empty())
            .collect()
    };
    // Every address these users held, claim or show, and who holds each,
    // decided under the locks the workers take when anything is written:
    // when no state is corrected, a look without locks first, since nothing
    // is written when every row is right too (the usual replay).
    let mut emails = email_claims::addresses(stored.values().chain(rebuilt.states.values()));
    emails.extend(
        existing
            .values()
            .flatten()
            .filter_map(|row| row.profile.email.clone()),
    );
    let locked = !dry_run && !corrected.is_empty();
    let mut holders = emails::decide(connection, &emails, &rebuilt.states, locked).await?;
    let mut diffs = diff_all(&email_claims::shown(&rebuilt.states, &holders));
    if !dry_run && !locked && !diffs.is_empty() {
        holders = emails::decide(connection, &emails, &rebuilt.states, true).await?;
        diffs = diff_all(&email_claims::shown(&rebuilt.states, &holders));
    }
    let writes_any = !corrected.is_empty() || !diffs.is_empty();
    let shown = email_claims::shown(&rebuilt.states, &holders);
    if !dry_run {
        let deleted_user = |user: &String| rebuilt.states.get(user).is_some_and(|s| s.deleted);
        repository::users::save_users(connection, &corrected).await?;
        let deleted: Vec<String> = rebuilt
            .states
            .iter()
            .filter(|(_, state)| state.deleted)
            .map(|(user, _)| user.clone())
            .collect();
        let gone: Vec<String> = diffs
            .iter()
            .filter(|(user, diff)| deleted_user(user) && !diff.removed.is_empty())
            .map(|(user, _)| user.clone())
            .collect();
        repository::rows::remove_rows(connection, &gone).await?;
        for role in [Role::Student, Role::Instructor] {
            let stray: Vec<String> = diffs
                .iter()
                .filter(|(user, diff)| !deleted_user(user) && diff.removed.contains(&role))
                .map(|(user, _)| user.clone())
                .collect();
            log::remove_unreferenced(connection, role, &stray).await?;
        }
        let mut touched = BTreeSet::new();
        if writes_any {
            touched.extend(emails::release(connection, &holders).await?);
        }
        let writes: BTreeMap<String, UserState> = diffs
            .iter()
            .filter(|(_, diff)| diff.writes())
            .filter_map(|(user, _)| Some((user.clone(), shown.get(user)?.clone())))
            .collect();
        repository::rows::write_rows(connection, &writes).await?;
        if writes_any {
            let ungranted = email_claims::ungranted(&holders, &writes);
            touched.extend(emails::grant(connection, &ungranted).await?);
        }
        log::rejudge(connection, &rebuilt.rejudged).await?;
        if rules.erase_on_delete {
            repository::events::erase_events(connection, &deleted).await?;
        }
        touched.extend(
            diffs
                .iter()
                .filter(|(_, diff)| diff.writes() || !diff.removed.is_empty())
                .map(|(user, _)| user.clone()),
        );
        repository::users::notify(connection, &touched.into_iter().collect::<Vec<_>>()).await?;
    }
    Ok(Batch {
        events: events.len(),
        diffs,
        states_corrected: corrected.len(),
        rejudged: rebuilt.rejudged.len(),
    })
}

/// One line per user: `user_1: created Student; updated Instructor (firstName, email); removed ...`.
fn describe(user: &str, diff: &UserDiff, dry_run: bool) -> String {
    let tables = |roles: &[Role]| {
        roles
            .iter()
            .map(|r| r.table())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !diff.created.is_empty() {
        parts.push(format!("created {}", tables(&diff.created)));
    }
    for (role, columns) in &diff.updated {
        parts.push(format!("updated {} ({})", role.table(), columns.join(", ")));
    }
    if !diff.removed.is_empty() {
        parts.push(format!("removed {}", tables(&diff.removed)));
    }
    if !diff.kept.is_empty() {
        parts.push(format!(
            "kept {} (not in the log, but courses or enrollments refer to it)",
            tables(&diff.kept)
        ));
    }
    let would = if dry_run { "would be " } else { "" };
    format!("{user}: {would}{}", parts.join("; "))
}

fn print_totals(report: &Report) {
    let t = &report.totals;
    let verb = if report.dry_run {
        "would change"
    } else {
        "changed"
    };
    println!(
        "replay{}: {} users, {} events in {:.1} s ({:.0} events/s); {verb} {} users: \
         {} rows created, {} updated, {} removed, {} kept; {} sync states corrected, \
         {} events rejudged, {} events filed under their user",
        if report.dry_run {
            " (dry run, nothing written)"
        } else {
            ""
        },
        t.users,
        t.events,
        report.seconds,
        t.events as f64 / report.seconds.max(1e-9),
        t.users_changed,
        t.rows_created,
        t.rows_updated,
        t.rows_removed,
        t.rows_kept,
        t.states_corrected,
        t.events_rejudged,
        t.events_filed,
    );
}
