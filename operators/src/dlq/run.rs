//! Running `dlq`: its arguments and what it does with them.

use clerk_sync_store::settings::Settings;
use std::collections::BTreeSet;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// The dead letters, first dead-lettered first: svix-id, type, user,
    /// reason, deliveries and age.
    List {
        /// Show at most this many (the total is always counted).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// One JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// One dead letter in full: headers, reason, deliveries, age and body.
    Show {
        /// Its svix-id.
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Publish dead letters back to the shard queue of their user, for the
    /// workers to apply again (after fixing what made them fail).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "all"])))]
    Redrive {
        /// svix-ids of the dead letters.
        ids: Vec<String>,
        /// Every message in the dead-letter queue now.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Give dead letters up: log each as `failed` ("discarded by operator")
    /// and remove it from the dead-letter queue.
    Discard {
        /// svix-ids of the dead letters.
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        DlqCommand::List { limit, json } => {
            super::browse::list(&settings, limit as usize, json).await
        }
        DlqCommand::Show { id, json } => super::browse::show(&settings, &id, json).await,
        DlqCommand::Redrive { ids, all, json } => {
            let which = if all {
                Which::All
            } else {
                Which::Ids(ids.into_iter().collect())
            };
            super::redrive::run(&settings, which, json).await
        }
        DlqCommand::Discard { ids, json } => {
            super::discard::run(&settings, &ids.into_iter().collect(), json).await
        }
    }
}

/// The dead letters a command acts on.
#[derive(Debug)]
pub(super) enum Which {
    All,
    Ids(BTreeSet<String>),
}

/// Take the dead letters with these svix-ids for `verb` ("redriven",
/// "discarded"). When one is not there, fail naming it: nothing is acted on,
/// and what was taken goes back with the queue's channel.
pub(super) async fn take_named(
    queue: &super::queue::DeadLetterQueue,
    ids: &BTreeSet<String>,
    verb: &str,
) -> anyhow::Result<Vec<super::queue::Held>> {
    let held = queue
        .take_all(|letter| ids.contains(&letter.svix_id))
        .await?;
    let found: Vec<&str> = held.iter().map(|h| h.letter.svix_id.as_str()).collect();
    let missing = missing(ids, &found);
    if !missing.is_empty() {
        anyhow::bail!(
            "not in the dead-letter queue {}: {}; nothing was {verb}",
            queue.name(),
            missing.join(", ")
        );
    }
    Ok(held)
}

/// The ids of `wanted` that none of `found` has: an operator's typo, or a
/// message another operator already handled.
fn missing<'a>(wanted: &'a BTreeSet<String>, found: &[&str]) -> Vec<&'a str> {
    wanted
        .iter()
        .filter(|id| !found.contains(&id.as_str()))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ids_are_named_in_order() {
        let wanted: BTreeSet<String> = ["b", "a", "c"].iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(missing(&wanted, &["c", "x"]), ["a", "b"]);
        assert!(missing(&wanted, &["a", "b", "c"]).is_empty());
    }
}
