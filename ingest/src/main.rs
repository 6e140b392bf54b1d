use clap::Parser;
use clerk_sync_ingest::settings::Settings;
use clerk_sync_ingest::startup::Application;
use clerk_sync_runtime::settings::{Sections, SettingsError};
use clerk_sync_runtime::telemetry;
use std::path::PathBuf;
use std::process::ExitCode;

/// Receives Clerk's webhooks and queues them durably in RabbitMQ.
///
/// Settings come from clerk-sync.toml (or --config), CLERK_SYNC__SECTION__KEY
/// variables and CLERK_WEBHOOK_SECRET, AMQP_URL, INGEST_LISTEN: see README.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Settings file (default: clerk-sync.toml in the working directory, if any).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("clerk-sync-ingest: {e}");
            return ExitCode::from(SettingsError::exit_code(&e));
        }
    };
    telemetry::init(settings.log.format, "info");
    // A start-up failure is one plain line on stderr: it names the setting
    // or the service at fault.
    let application = match Application::build(&settings).await {
        Ok(application) => application,
        Err(e) => {
            eprintln!("clerk-sync-ingest: {e:#}");
            return ExitCode::from(SettingsError::exit_code(e.as_ref()));
        }
    };
    match application.run_until_stopped().await {
        Ok(()) => {
            tracing::info!("clerk-sync-ingest stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "clerk-sync-ingest failed");
            ExitCode::FAILURE
        }
    }
}
