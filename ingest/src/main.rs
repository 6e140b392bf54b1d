use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Receives Clerk's webhooks and queues them durably in RabbitMQ.
///
/// Settings come from clerk-sync.toml (or --config), CLERK_SYNC__SECTION__KEY
/// variables and CLERK_WEBHOOK_SECRET, AMQP_URL, INGEST_LISTEN: see
/// docs/src/reference/settings.md.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Settings file (default: clerk-sync.toml in the working directory, if any).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    clerk_sync_ingest::cli::run_process(cli.config.as_deref())
}
