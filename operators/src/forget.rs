//! `clerk-sync-worker forget --user ID`: an erasure request. The user is
//! treated as deleted (a synthetic `user.deleted` is logged and applied, so
//! replay stays exact and no later event brings them back), their rows and
//! what depends on them are removed, and the personal fields of all their
//! logged events are erased, whatever `privacy.erase_on_delete` says.

use crate::synthetic;
use clerk_sync_store::apply::{Rules, apply_batch};
use clerk_sync_store::clock;
use clerk_sync_store::repository::database;
use clerk_sync_store::repository::{events, rows};
use clerk_sync_store::settings::Settings;
use serde::Serialize;
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
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let mut connection = database::connect(&settings.database.url).await?;
    let rules = Rules {
        erase_on_delete: true,
        ..Rules::of(&settings)
    };
    let mut report = Vec::new();
    for user in args.users {
        let rows_before = rows::count_of(&mut connection, &user).await?;
        let message = synthetic::deleted("forget", &user);
        let svix_id = message.svix_id.clone();
        apply_batch(&mut connection, &[message], &rules, clock::now_ms()).await?;
        let events_erased = events::erased_of(&mut connection, &user).await?;
        report.push(Forgotten {
            rows_removed: rows_before - rows::count_of(&mut connection, &user).await?,
            user,
            events_erased,
            svix_id,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report {
            println!(
                "{}: forgotten ({} rows removed, {} logged events erased; recorded as {})",
                f.user, f.rows_removed, f.events_erased, f.svix_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
