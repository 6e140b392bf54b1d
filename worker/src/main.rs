use clap::{Parser, Subcommand};
use clerk_sync_domain::runtime::settings::{Settings, SettingsError};
use clerk_sync_domain::runtime::telemetry;
use clerk_sync_worker::{migrate, run};
use std::path::PathBuf;
use std::process::ExitCode;

/// Applies Clerk user events from RabbitMQ to the application's tables.
///
/// Settings come from clerk-sync.toml (or --config), CLERK_SYNC__SECTION__KEY
/// variables and DATABASE_URL, AMQP_URL: see README.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Settings file (default: clerk-sync.toml in the working directory, if any).
    #[arg(long, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, then consume the shard queues until SIGTERM/SIGINT (the
    /// default when no command is given).
    Run,
    /// Create the database if missing, run migrations, declare the RabbitMQ
    /// topology (exchanges, shard queues, dead letters).
    /// Idempotent; safe to run from several processes at once.
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("clerk-sync-worker: {e}");
            return ExitCode::from(SettingsError::exit_code(&e));
        }
    };
    telemetry::init(settings.log.format);
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run::run(settings).await,
        Command::Migrate => migrate::run(&settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clerk-sync-worker: {e:#}");
            ExitCode::from(SettingsError::exit_code(e.as_ref()))
        }
    }
}
