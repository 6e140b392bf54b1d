//! The `clerk-sync-ingest` service as its command runs it: settings,
//! logging, serve until SIGTERM, and the exit code. `main.rs` parses the
//! arguments; the end-to-end benchmark runs this in a process of its own.

use crate::settings::Settings;
use crate::startup::Application;
use clerk_sync_runtime::settings::{Sections, SettingsError};
use clerk_sync_runtime::telemetry;
use std::path::Path;
use std::process::ExitCode;

/// Load the settings (`config`, else `clerk-sync.toml` if any, and the
/// environment), then serve until stopped. A start-up failure is one plain
/// line on stderr naming the setting or the service at fault.
pub async fn serve(config: Option<&Path>) -> ExitCode {
    let settings = match Settings::load(config) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("clerk-sync-ingest: {e}");
            return ExitCode::from(SettingsError::exit_code(&e));
        }
    };
    let traces = telemetry::init(settings.log.format, "info", "clerk-sync-ingest");
    let code = run(&settings).await;
    traces.shutdown();
    code
}

async fn run(settings: &Settings) -> ExitCode {
    let application = match Application::build(settings).await {
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
