//! Running `reconcile`: its arguments and what it does with them.

use super::compare::compare;
use super::progress_log::Progress;
use super::report::{Entry, Report, Resumed};
use crate::clerk_api::{ClerkApi, MAX_PAGE_SIZE, user_id_of};
use crate::{progress, synthetic};
use anyhow::{Context, bail};
use clerk_sync_domain::clerk_event::{EventKind, ParsedEvent};
use clerk_sync_domain::outcome::Outcome;
use clerk_sync_runtime::telemetry::fields;
use clerk_sync_store::apply::{Rules, apply_batch};
use clerk_sync_store::clock;
use clerk_sync_store::incoming::Incoming;
use clerk_sync_store::repository::database;
use clerk_sync_store::repository::{self, reconcile as checkpoint, users};
use clerk_sync_store::settings::Settings;
use diesel_async::AsyncPgConnection;
use indicatif::ProgressBar;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

/// The svix-id prefix of the events reconcile records.
pub const ORIGIN: &str = "reconcile";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print what differs and what would be recorded; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also delete the users clerk-sync holds that Clerk no longer has (each
    /// one is checked with Clerk by id first).
    #[arg(long)]
    prune: bool,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    json: bool,
    /// Users asked of Clerk per request (1 to 500).
    #[arg(long, value_name = "N", default_value_t = MAX_PAGE_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE_SIZE)))]
    page_size: u32,
    /// Requests per 10 s this run may send to Clerk's API, paced evenly (0:
    /// no budget) [default: the setting clerk.request_budget, 20].
    #[arg(long, value_name = "N")]
    budget: Option<u32>,
    /// Forget where an unfinished run stopped and start from the top.
    #[arg(long, conflicts_with = "dry_run")]
    restart: bool,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let key = settings.require_clerk_secret_key()?.clone();
    let budget = args.budget.unwrap_or(settings.clerk.request_budget);
    let api = ClerkApi::new(&settings.clerk.api_url, key, budget)?;
    let connection = database::connect(&settings.database.url).await?;
    let mut reconcile = Reconcile {
        report: Report {
            api_url: settings.clerk.api_url.trim_end_matches('/').to_owned(),
            dry_run: args.dry_run,
            prune: args.prune,
            request_budget: budget,
            ..Report::default()
        },
        api,
        rules: Rules::of(&settings),
        connection,
        args,
        seen: HashSet::new(),
        bar: None,
        progress: Progress::new(),
    };
    let done = reconcile.run().await;
    reconcile.report.requests = reconcile.api.requests_sent();
    reconcile.report.seconds = reconcile.progress.started.elapsed().as_secs_f64();
    if let Some(bar) = &reconcile.bar {
        bar.finish_and_clear();
    }
    let Reconcile { report, args, .. } = reconcile;
    if let Err(e) = done {
        return Err(match report.totals.events {
            0 => e,
            n => e.context(format!(
                "stopped after recording {} (they stand; run reconcile again to go on from where it stopped)",
                super::report::plural(n, "event")
            )),
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.human());
    }
    Ok(ExitCode::SUCCESS)
}

struct Reconcile {
    api: ClerkApi,
    rules: Rules,
    connection: AsyncPgConnection,
    args: Args,
    /// Every user id Clerk listed so far.
    seen: HashSet<String>,
    report: Report,
    bar: Option<ProgressBar>,
    progress: Progress,
}

impl Reconcile {
    async fn run(&mut self) -> anyhow::Result<()> {
        let offset = match self.args.dry_run {
            true => 0,
            false => self.resume().await?,
        };
        self.list(offset).await?;
        self.unlisted().await?;
        self.report.listed = self.seen.len() as u64;
        if !self.args.dry_run {
            checkpoint::forget(&mut self.connection)
                .await
                .context("cannot clear reconcile's checkpoint")?;
        }
        Ok(())
    }

    /// Take the run's lock; then where an unfinished run stopped (unless
    /// `--restart`), or a new checkpoint. The offset to list from.
    async fn resume(&mut self) -> anyhow::Result<u64> {
        let locked = checkpoint::try_lock(&mut self.connection)
            .await
            .context("cannot take reconcile's lock")?;
        if !locked {
            bail!("another reconcile is running against this database: wait for it to end");
        }
        let unfinished = checkpoint::checkpoint(&mut self.connection)
            .await
            .context("cannot read reconcile's checkpoint (has `clerk-sync-worker migrate` run?)")?;
        match unfinished {
            Some(at) if !self.args.restart => {
                self.seen
                    .extend(checkpoint::listed(&mut self.connection).await?);
                let offset = u64::try_from(at.next_offset).unwrap_or(0);
                tracing::info!(
                    offset,
                    started_at = %at.started_at.to_rfc3339(),
                    "resuming the reconcile started at {}, from user {offset} of Clerk's list (--restart starts over)",
                    at.started_at.to_rfc3339()
                );
                self.report.resumed = Some(Resumed {
                    started_at: at.started_at.to_rfc3339(),
                    offset,
                });
                Ok(offset)
            }
            _ => {
                checkpoint::start(&mut self.connection).await.context(
                    "cannot write reconcile's checkpoint (has `clerk-sync-worker migrate` run?)",
                )?;
                Ok(0)
            }
        }
    }

    /// Page through Clerk's users, newest first, from `offset`, fixing each
    /// page, and noting after each where the next starts.
    async fn list(&mut self, mut offset: u64) -> anyhow::Result<()> {
        let page_size = self.args.page_size;
        self.progress.from = offset;
        let mut previous: Vec<String> = Vec::new();
        loop {
            let page = self.api.list_users(offset, page_size).await?;
            self.report.pages += 1;
            if self.bar.is_none() {
                let total = match page.total_count {
                    Some(total) => Some(total),
                    None => self.api.user_count().await?,
                };
                self.progress.total = total;
                let bar = progress::bar(total, "Clerk users");
                bar.set_position(offset);
                bar.reset_eta();
                self.bar = Some(bar);
            }
            let ids: Vec<String> = page
                .users
                .iter()
                .filter_map(|user| user_id_of(user).map(str::to_owned))
                .collect();
            if !ids.is_empty() && ids == previous {
                bail!(
                    "Clerk listed the same users again at offset {offset}: its paging does not advance"
                );
            }
            let count = page.users.len();
            self.check(page.users).await?;
            offset += count as u64;
            if !self.args.dry_run {
                checkpoint::advance(&mut self.connection, offset as i64, &ids)
                    .await
                    .context("cannot write reconcile's checkpoint")?;
            }
            self.progress.checked += count as u64;
            self.progress.log();
            if count < page_size as usize {
                return Ok(());
            }
            previous = ids;
        }
    }

    /// Compare Clerk's `users` with clerk-sync's state and record the events
    /// that fix those that differ. Returns how many had not been seen yet.
    async fn check(&mut self, users: Vec<Value>) -> anyhow::Result<usize> {
        let now_ms = clock::now_ms();
        let users_in_page = users.len();
        let fresh: Vec<Value> = users
            .into_iter()
            .filter(|user| user_id_of(user).is_some_and(|id| self.seen.insert(id.to_owned())))
            .collect();
        let ids: Vec<String> = fresh
            .iter()
            .filter_map(|user| user_id_of(user).map(str::to_owned))
            .collect();
        let states = repository::users::user_states(&self.connection, &ids, false).await.context(
            "cannot read clerk-sync's state of the users (has `clerk-sync-worker migrate` run?)",
        )?;
        let mut fixes = Vec::new();
        for (id, user) in ids.iter().zip(fresh) {
            // The API's user object is what a webhook carries as `data`.
            let mut body = json!({
                "type": "user.updated",
                "object": "event",
                "timestamp": now_ms,
                "data": user,
            });
            let Ok(ParsedEvent {
                kind: EventKind::UserUpsert { user, .. },
                ..
            }) = ParsedEvent::parse(body.to_string().as_bytes())
            else {
                continue; // Cannot happen: the id was checked.
            };
            let difference = compare(&user, states.get(id), &self.rules.roles, now_ms);
            match super::report::Entry::of(id, &difference) {
                None => self.report.totals.in_line += 1,
                Some(entry) => {
                    if let (Some(event_type), false) = (difference.event_type(), self.args.dry_run)
                    {
                        body["type"] = json!(event_type);
                        fixes.push((self.report.users.len(), synthetic::event(ORIGIN, &body)));
                    }
                    self.report.add(entry);
                }
            }
        }
        if let Some(bar) = &self.bar {
            bar.inc(users_in_page as u64);
        }
        self.record(fixes).await?;
        Ok(ids.len())
    }

    /// The users clerk-sync holds that Clerk did not list: reported, or with
    /// `--prune` checked by id and deleted when Clerk answers 404.
    async fn unlisted(&mut self) -> anyhow::Result<()> {
        let held = users::held(&mut self.connection)
            .await
            .context("cannot list the users clerk-sync holds")?;
        let unlisted: Vec<String> = held
            .into_iter()
            .filter(|id| !self.seen.contains(id))
            .collect();
        if !self.args.prune {
            for id in &unlisted {
                self.report.add(Entry::not_in_clerk(id, false));
            }
            return Ok(());
        }
        if self.seen.is_empty() && !unlisted.is_empty() {
            bail!(
                "Clerk listed no users at all: refusing to prune all {} users held here \
                 (is CLERK_SECRET_KEY the key of this Clerk instance?)",
                unlisted.len()
            );
        }
        for chunk in unlisted.chunks(MAX_PAGE_SIZE as usize) {
            let mut fixes = Vec::new();
            let mut listed_late = Vec::new();
            for id in chunk {
                match self.api.user(id).await? {
                    // The list moved while it was paged: check it as listed.
                    Some(user) => listed_late.push(user),
                    None => {
                        if !self.args.dry_run {
                            let delete = synthetic::deleted(ORIGIN, id);
                            fixes.push((self.report.users.len(), delete));
                        }
                        self.report.add(Entry::not_in_clerk(id, true));
                    }
                }
            }
            self.record(fixes).await?;
            self.check(listed_late).await?;
        }
        Ok(())
    }

    /// Apply `fixes` (report entry index, synthetic event) in one
    /// transaction, as the worker applies a batch, and note each outcome.
    async fn record(&mut self, fixes: Vec<(usize, Incoming)>) -> anyhow::Result<()> {
        if fixes.is_empty() {
            return Ok(());
        }
        let (indexes, messages): (Vec<usize>, Vec<Incoming>) = fixes.into_iter().unzip();
        let plan = apply_batch(
            &mut self.connection,
            &messages,
            &self.rules,
            clock::now_ms(),
        )
        .await
        .context("cannot record the events that bring these users in line")?;
        for (svix_id, user_id) in &plan.unknown_roles {
            tracing::warn!(
                { fields::SVIX_ID } = svix_id,
                { fields::CLERK_USER_ID } = user_id,
                "role is neither student nor instructor: no row"
            );
        }
        let outcomes: HashMap<&str, Outcome> = plan
            .log
            .iter()
            .map(|row| (row.svix_id.as_str(), row.outcome))
            .collect();
        for (index, message) in indexes.into_iter().zip(&messages) {
            let outcome = outcomes.get(message.svix_id.as_str()).copied();
            self.report
                .recorded(index, message.svix_id.clone(), outcome);
        }
        Ok(())
    }
}
