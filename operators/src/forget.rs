//! `clerk-sync-worker forget --user ID`: an erasure request. The user is
//! treated as deleted (a synthetic `user.deleted` is logged and applied, so
//! replay stays exact and no later event brings them back), their rows and
//! what depends on them are removed, and the personal fields of all their
//! logged events are erased, whatever `privacy.erase_on_delete` says. Their
//! dead letters are discarded (logged, so erased, then removed from the
//! dead-letter queue). Events of theirs that arrive later (a Svix retry, a
//! redrive, a message still queued) are erased as they are logged, whatever
//! the setting: an erased user stays erased.

use crate::dlq::discard;
use crate::dlq::queue::DeadLetterQueue;
use crate::synthetic;
use anyhow::Context;
use clerk_sync_store::apply::{Rules, apply_batch};
use clerk_sync_store::clock;
use clerk_sync_store::repository::database;
use clerk_sync_store::repository::{events, rows};
use clerk_sync_store::settings::Settings;
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use std::collections::BTreeSet;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Clerk user id (user_...).
    #[arg(long = "user", value_name = "ID", required = true, value_parser = synthetic::user_id_arg)]
    users: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Forgotten {
    user: String,
    /// Student and Instructor rows removed (with their enrollments and courses).
    rows_removed: i64,
    /// Logged events of the user, all erased now.
    events_erased: i64,
    /// The synthetic `user.deleted` recorded in the log.
    svix_id: String,
    /// Their dead letters, discarded (logged erased) and removed.
    dead_letters_erased: usize,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let mut connection = database::connect(&settings.database.url).await?;
    let rules = Rules {
        erase_on_delete: true,
        ..Rules::of(&settings)
    };
    let mut report = Vec::new();
    for user in &args.users {
        let rows_before = rows::count_of(&mut connection, user).await?;
        let message = synthetic::deleted("forget", user);
        let svix_id = message.svix_id.clone();
        apply_batch(&mut connection, &[message], &rules, clock::now_ms()).await?;
        let events_erased = events::erased_of(&mut connection, user).await?;
        report.push(Forgotten {
            rows_removed: rows_before - rows::count_of(&mut connection, user).await?,
            user: user.clone(),
            events_erased,
            svix_id,
            dead_letters_erased: 0,
        });
    }
    erase_dead_letters(&settings, &mut connection, &mut report)
        .await
        .context(
            "the users are forgotten in the database, but their dead letters could not be \
             erased; run forget again",
        )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report {
            println!(
                "{}: forgotten ({} rows removed, {} logged events erased, {} dead letters erased; recorded as {})",
                f.user, f.rows_removed, f.events_erased, f.dead_letters_erased, f.svix_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Discard the dead letters of the users of `report` (as `dlq discard`
/// does: logged, so erased now that they are erased users, then removed),
/// and count them in `report`.
async fn erase_dead_letters(
    settings: &Settings,
    connection: &mut AsyncPgConnection,
    report: &mut [Forgotten],
) -> anyhow::Result<()> {
    let queue = DeadLetterQueue::open(settings, "clerk-sync-worker forget").await?;
    let users: BTreeSet<&str> = report.iter().map(|f| f.user.as_str()).collect();
    let discarded = match queue
        .take_all(|letter| letter.user.as_deref().is_some_and(|u| users.contains(u)))
        .await
    {
        Ok(held) => {
            let outcome =
                discard::discard_held(&queue, connection, &held, settings.privacy.erase_on_delete)
                    .await;
            Ok((held, outcome))
        }
        Err(e) => Err(e),
    };
    queue.close().await;
    let (held, outcome) = discarded?;
    if let Some(failed) = outcome.iter().find_map(|o| o.error.as_ref()) {
        anyhow::bail!("a dead letter was not removed: {failed}");
    }
    for forgotten in report.iter_mut() {
        let ids: BTreeSet<&str> = held
            .iter()
            .filter(|h| h.letter.user.as_deref() == Some(forgotten.user.as_str()))
            .map(|h| h.letter.svix_id.as_str())
            .collect();
        forgotten.dead_letters_erased = ids.len();
    }
    Ok(())
}
