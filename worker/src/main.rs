use clap::{Parser, Subcommand};
use clerk_sync_operators::{dlq, forget, reconcile, replay, send, status, verify_log};
use clerk_sync_runtime::settings::{Sections, SettingsError};
use clerk_sync_runtime::telemetry;
use clerk_sync_store::settings::Settings;
use clerk_sync_worker::{migrate, service};
use std::path::PathBuf;
use std::process::ExitCode;

/// Applies Clerk user events from RabbitMQ to the application's tables, and
/// the operators' commands around it.
///
/// Settings come from clerk-sync.toml (or --config), CLERK_SYNC__SECTION__KEY
/// variables and DATABASE_URL, AMQP_URL, CLERK_WEBHOOK_SECRET,
/// CLERK_SECRET_KEY: see docs/src/reference/settings.md. Exit codes: 0
/// done, 1 failed (a service unreachable, say), 2 bad arguments or
/// settings, 3 a check did not pass.
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
    /// Rebuild the projection from the event log (online; --dry-run shows
    /// what would change).
    Replay(replay::Args),
    /// List, show, redrive or discard dead-lettered messages.
    Dlq(dlq::Args),
    /// Queues, dead letters, the event log and the tables at a glance; exits
    /// 3 when a configured threshold is crossed.
    Status(status::Args),
    /// Sign a Clerk-shaped event as Svix does and post it to a running
    /// ingest (instead of a tunnel).
    Send(send::Args),
    /// Compare with Clerk's Backend API and fix users that differ.
    Reconcile(reconcile::Args),
    /// Erase a user's personal data from the log and the tables.
    Forget(forget::Args),
    /// Re-check the stored Svix signatures of logged events.
    VerifyLog(verify_log::Args),
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
    let command = cli.command.unwrap_or(Command::Run);
    // The service logs what it does; a command prints its result and logs
    // only what went wrong (RUST_LOG overrides both). lapin logs a refused
    // operation (a queue that does not exist) that the command reports itself.
    let default_level = match command {
        Command::Run | Command::Migrate => "info",
        _ => "warn,lapin=off",
    };
    let traces = telemetry::init(settings.log.format, default_level, "clerk-sync-worker");
    let result = match command {
        Command::Run => service::run(settings).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate => migrate::run(&settings).await.map(|()| ExitCode::SUCCESS),
        Command::Replay(args) => replay::run(settings, args).await,
        Command::Dlq(args) => dlq::run(settings, args).await,
        Command::Status(args) => status::run(settings, args).await,
        Command::Send(args) => send::run(settings, args).await,
        Command::Reconcile(args) => reconcile::run(settings, args).await,
        Command::Forget(args) => forget::run(settings, args).await,
        Command::VerifyLog(args) => verify_log::run(settings, args).await,
    };
    traces.shutdown();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clerk-sync-worker: {e:#}");
            ExitCode::from(SettingsError::exit_code(e.as_ref()))
        }
    }
}
