//! The `clerk-sync-ingest` service as its command runs it: the runtime,
//! settings, logging, serve until SIGTERM, and the exit code. `main.rs`
//! parses the arguments; the end-to-end and failover benchmarks run this in
//! a process of their own.

use crate::settings::Settings;
use crate::startup::Application;
use clerk_sync_runtime::settings::{Sections, SettingsError};
use clerk_sync_runtime::telemetry;
use std::path::Path;
use std::process::ExitCode;

/// Serve in this process until stopped, on one current-thread runtime.
///
/// The HTTP worker threads run their own runtimes; this one only starts the
/// service and drives the broker link (the AMQP socket's readiness, the
/// link's supervision). One thread is enough for that; a multi-thread
/// runtime's workers wake each other to steal work, which costs CPU on
/// every confirm (docs/src/benchmarks.md, "End to end").
pub fn run_process(config: Option<&Path>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(serve(config)),
        Err(e) => {
            eprintln!("clerk-sync-ingest: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Load the settings (`config`, else `clerk-sync.toml` if any, and the
/// environment), then serve until stopped. A start-up failure is one plain
/// line on stderr naming the setting or the service at fault.
async fn serve(config: Option<&Path>) -> ExitCode {
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
