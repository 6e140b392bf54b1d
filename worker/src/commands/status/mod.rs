//! `clerk-sync-worker status`: the shard queues (messages waiting,
//! consumers, oldest message), the dead letters, the event log by outcome
//! and its newest event, the users and rows; exit 3 (`exit::CHECK_FAILED`)
//! when a `[status]` threshold is crossed, so it can serve as a probe.
//! Reads only: nothing is taken from a shard queue (see [`gather`]).

mod gather;
pub mod report;
pub mod workers;

use super::dlq::queue::DeadLetterQueue;
use super::exit;
use crate::repository::database;
use crate::settings::Settings;
use clerk_sync_runtime::broker_version;
use report::Report;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON document instead of the summary.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let topology = settings.amqp.topology();
    let mut connection = database::connect(&settings.database.url).await?;
    let queue = DeadLetterQueue::open(&settings, "clerk-sync-worker status").await?;
    let from_broker = gather::broker(&queue, &topology).await;
    // Gives the dead letter that was read back.
    queue.close().await;
    let (figures, dead_letters) = from_broker?;
    let (events, tables, reports, workers) = gather::database(&mut connection).await?;
    let report = Report {
        shards: gather::shards(figures, reports),
        workers,
        rabbitmq_version: broker_version::read(&settings.amqp.url).await,
        dead_letters,
        events,
        tables,
    };
    let crossed = report::check(&report, &settings.status);
    if args.json {
        println!("{}", report::json(&report, &crossed, &settings.status));
    } else {
        println!("{}", report::text(&report, &crossed));
    }
    Ok(if crossed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::CHECK_FAILED)
    })
}
