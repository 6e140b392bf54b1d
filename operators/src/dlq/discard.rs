//! `dlq discard`: give dead letters up. Each is logged in
//! `clerk_sync.events` as `failed` with the error `discarded by operator`
//! (committed first), then removed from the dead-letter queue. A svix-id the
//! log already has keeps its row (the log holds an event once) and its dead
//! letter is removed all the same: the event was dealt with.

use super::queue::{DeadLetterQueue, Held};
use super::run::take_named;
use crate::progress;
use clerk_sync_store::clock::now_ms;
use clerk_sync_store::incoming::Incoming;
use clerk_sync_store::payload;
use clerk_sync_store::plan::{self, DISCARDED, LogRow};
use clerk_sync_store::repository::database;
use clerk_sync_store::repository::{events, users};
use clerk_sync_store::settings::Settings;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use std::collections::BTreeSet;
use std::process::ExitCode;

pub(super) async fn run(
    settings: &Settings,
    ids: &BTreeSet<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut connection = database::connect(&settings.database.url).await?;
    let queue = DeadLetterQueue::open(settings, "clerk-sync-worker dlq discard").await?;
    let outcome = discard(
        &queue,
        &mut connection,
        ids,
        settings.privacy.erase_on_delete,
    )
    .await;
    queue.close().await;
    let outcome = outcome?;
    let failed = outcome.iter().filter(|o| o.error.is_some()).count();
    if json {
        let document = json!({
            "discarded": outcome.len() - failed,
            "failed": failed,
            "messages": outcome.iter().map(|o| json!({
                "svix_id": o.svix_id,
                "logged_before": o.logged_before,
                "removed": o.error.is_none(),
                "error": o.error,
            })).collect::<Vec<_>>(),
        });
        println!("{document}");
    } else {
        for o in &outcome {
            let logged = match &o.logged_before {
                None => format!("logged as failed ({DISCARDED})"),
                Some(previous) => format!("already in the log as {previous}, row kept"),
            };
            match &o.error {
                None => println!(
                    "{}  discarded: {logged}; removed from the dead-letter queue",
                    o.svix_id
                ),
                Some(error) => println!("{}  NOT removed: {error}", o.svix_id),
            }
        }
        match failed {
            0 => println!("{} discarded", outcome.len()),
            _ => println!("{} discarded, {failed} failed", outcome.len() - failed),
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug)]
pub(crate) struct Outcome {
    pub svix_id: String,
    /// The outcome the log had for this svix-id before, if it had one.
    pub logged_before: Option<String>,
    pub error: Option<String>,
}

async fn discard(
    queue: &DeadLetterQueue,
    connection: &mut AsyncPgConnection,
    ids: &BTreeSet<String>,
    erase_on_delete: bool,
) -> anyhow::Result<Vec<Outcome>> {
    let held = take_named(queue, ids, "discarded").await?;
    Ok(discard_held(queue, connection, &held, erase_on_delete).await)
}

/// Discard every message of `held` (each svix-id once, with all its
/// copies), in svix-id order.
pub(crate) async fn discard_held(
    queue: &DeadLetterQueue,
    connection: &mut AsyncPgConnection,
    held: &[Held],
    erase_on_delete: bool,
) -> Vec<Outcome> {
    let ids: BTreeSet<&String> = held.iter().map(|h| &h.letter.svix_id).collect();
    let bar = progress::bar(Some(ids.len() as u64), "discarding");
    let mut outcome = Vec::with_capacity(ids.len());
    for id in ids {
        let copies: Vec<&Held> = held.iter().filter(|h| &h.letter.svix_id == id).collect();
        let Some(first) = copies.first() else {
            continue;
        };
        let message = Incoming::from_delivery(&first.delivery);
        let row = plan::discarded(&message, now_ms());
        let payload = payload::of(&message);
        let logged = connection
            .transaction(async |connection| {
                log_once(connection, &row, &payload, erase_on_delete).await
            })
            .await;
        let result = match logged {
            Ok(before) => {
                let mut removed = Ok(());
                for copy in &copies {
                    if let Err(e) = queue.remove(copy).await {
                        removed = Err(format!("{e:#} (the log row is written; run discard again)"));
                    }
                }
                (before, removed)
            }
            Err(e) => (None, Err(format!("cannot write the log: {e}"))),
        };
        outcome.push(Outcome {
            svix_id: id.clone(),
            logged_before: result.0,
            error: result.1.err(),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    outcome
}

/// Insert `row` unless its svix-id is logged; the outcome logged before, if
/// any. An event of a user already deleted is erased at once when the
/// worker would have: with `privacy.erase_on_delete`, or when the user was
/// erased before.
async fn log_once(
    connection: &mut AsyncPgConnection,
    row: &LogRow,
    payload: &String,
    erase_on_delete: bool,
) -> Result<Option<String>, diesel::result::Error> {
    if let Some(before) = events::outcome_locked(connection, &row.svix_id).await? {
        return Ok(Some(before));
    }
    events::insert_log(
        connection,
        std::slice::from_ref(row),
        std::slice::from_ref(payload),
    )
    .await?;
    if let Some(user) = &row.clerk_user_id {
        let erase =
            users::to_erase(connection, std::slice::from_ref(user), erase_on_delete).await?;
        events::erase_events(connection, &erase).await?;
    }
    Ok(None)
}
