//! The ingest as a process of its own, with exactly the code of
//! `clerk-sync-ingest` (`clerk_sync_ingest::cli::run_process`): the benchmark's
//! own executable started with [`SERVE_INGEST`] (the end-to-end and
//! failover benchmarks).

use anyhow::{Context, Result};
use clerk_sync_testkit::service::command_under;
use clerk_sync_testkit::webhook::SECRET;
use std::path::Path;
use std::process::{Command, Stdio};

/// The argument that makes the executable the ingest.
pub const SERVE_INGEST: &str = "--serve-ingest";

/// Whether this process was started as the ingest.
pub fn asked() -> bool {
    std::env::args().nth(1).as_deref() == Some(SERVE_INGEST)
}

/// This executable as the ingest (run by `wrapper` when not empty) on
/// `port`, publishing through `amqp_url` to the topology `prefix`, logging
/// to `ingest.log` in `logs`, and run from there, so that no
/// clerk-sync.toml of anyone's is read. Its environment is only this: the
/// caller adds what else its run needs.
pub fn command(
    wrapper: &[String],
    amqp_url: &str,
    prefix: &str,
    port: u16,
    logs: &Path,
) -> Result<Command> {
    let log =
        std::fs::File::create(logs.join("ingest.log")).context("cannot create the ingest's log")?;
    let executable = std::env::current_exe().context("cannot find this executable")?;
    let mut command = command_under(wrapper, executable);
    command
        .arg(SERVE_INGEST)
        .env_clear()
        .current_dir(logs)
        .env("CLERK_WEBHOOK_SECRET", SECRET)
        .env("INGEST_LISTEN", format!("127.0.0.1:{port}"))
        .env("AMQP_URL", amqp_url)
        .env("CLERK_SYNC__AMQP__PREFIX", prefix)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    Ok(command)
}
