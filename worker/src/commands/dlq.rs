//! `clerk-sync-worker dlq`: being built.

use clerk_sync_domain::runtime::settings::Settings;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_settings: Settings, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("dlq is not built yet")
}
