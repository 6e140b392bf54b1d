//! `dlq redrive`: publish dead letters back to the shard queue their user
//! routes to (with the shard count configured now), with a publisher
//! confirm, and only then remove each from the dead-letter queue. A message
//! whose publish is not confirmed stays a dead letter. If the confirm is
//! lost after RabbitMQ took the message, it is both redriven and still a
//! dead letter: harmless, the worker skips a svix-id it has logged.

use super::queue::{DeadLetterQueue, Held};
use super::run::{Which, take_named};
use crate::progress;
use clerk_sync_store::settings::Settings;
use serde_json::json;
use std::process::ExitCode;

pub(super) async fn run(settings: &Settings, which: Which, json: bool) -> anyhow::Result<ExitCode> {
    let mut queue = DeadLetterQueue::open(settings, "clerk-sync-worker dlq redrive").await?;
    let outcome = redrive(&mut queue, &which).await;
    queue.close().await;
    let outcome = outcome?;
    let redriven = outcome.iter().filter(|o| o.error.is_none()).count();
    let failed = outcome.len() - redriven;
    if json {
        let document = json!({
            "redriven": redriven,
            "failed": failed,
            "messages": outcome.iter().map(|o| json!({
                "svix_id": o.svix_id, "queue": o.queue, "error": o.error,
            })).collect::<Vec<_>>(),
        });
        println!("{document}");
    } else {
        for o in &outcome {
            match &o.error {
                None => println!("{}  redriven to {}", o.svix_id, o.queue),
                Some(error) => println!("{}  NOT redriven: {error}", o.svix_id),
            }
        }
        match (redriven, failed) {
            (0, 0) => println!("nothing to redrive: the dead-letter queue is empty"),
            (_, 0) => println!("{redriven} redriven"),
            _ => println!("{redriven} redriven, {failed} failed (still in the dead-letter queue)"),
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug)]
struct Outcome {
    svix_id: String,
    queue: String,
    error: Option<String>,
}

async fn redrive(queue: &mut DeadLetterQueue, which: &Which) -> anyhow::Result<Vec<Outcome>> {
    // Only what is there now: messages dead-lettered meanwhile (perhaps a
    // redriven one failing again) wait for the next run.
    let chosen: Vec<Held> = match which {
        Which::All => queue.take_all(|_| true).await?,
        Which::Ids(ids) => take_named(queue, ids, "redriven").await?,
    };
    let bar = progress::bar(Some(chosen.len() as u64), "redriving");
    let mut outcome = Vec::with_capacity(chosen.len());
    for held in &chosen {
        let result = match queue.publish_to_shard(held).await {
            Ok(()) => queue.remove(held).await.map_err(|e| {
                anyhow::anyhow!(
                    "{e:#} (it was published too: the worker will skip the copy it has logged)"
                )
            }),
            Err(e) => Err(e),
        };
        outcome.push(Outcome {
            svix_id: held.letter.svix_id.clone(),
            queue: held.letter.queue.clone(),
            error: result.err().map(|e| format!("{e:#}")),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(outcome)
}
