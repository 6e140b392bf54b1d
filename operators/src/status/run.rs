//! Running `status`: its arguments and what it does with them.

use super::report::Report;
use crate::dlq::queue::DeadLetterQueue;
use crate::exit;
use clerk_sync_runtime::broker_version;
use clerk_sync_store::repository::database;
use clerk_sync_store::settings::Settings;
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
    let from_broker = super::gather::broker(&queue, &topology).await;
    // Gives the dead letter that was read back.
    queue.close().await;
    let (figures, dead_letters) = from_broker?;
    let (events, tables, reports, workers) = super::gather::database(&mut connection).await?;
    let report = Report {
        shards: super::gather::shards(figures, reports),
        workers,
        rabbitmq_version: broker_version::read(&settings.amqp.url).await,
        cluster: match &settings.status.management_url {
            Some(url) => {
                Some(super::gather::cluster(url, &settings.amqp.url, &settings.amqp.prefix).await)
            }
            None => None,
        },
        dead_letters,
        events,
        tables,
    };
    let crossed = super::report::check(&report, &settings.status);
    if args.json {
        println!(
            "{}",
            super::report::json(&report, &crossed, &settings.status)
        );
    } else {
        println!("{}", super::report::text(&report, &crossed));
    }
    Ok(if crossed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::CHECK_FAILED)
    })
}
