//! The faults injected while events are sent: a worker killed with
//! SIGKILL every `KILL_EVERY`, and in the full mode a RabbitMQ and a
//! PostgreSQL restart.

use super::fleet::Fleet;
use super::history::Rng;
use crate::common::services::{self, Postgres};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const KILL_EVERY: Duration = Duration::from_secs(2);
/// How often exited workers are replaced.
const SUPERVISE_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Kills {
    pub count: usize,
    pub errors: Vec<String>,
}

/// Every `KILL_EVERY`: SIGKILL a random worker and start a replacement;
/// in between, replace any worker that exited.
pub async fn kill_workers(
    mut fleet: Fleet,
    mut rng: Rng,
    stop: CancellationToken,
) -> (Fleet, Kills) {
    let mut kills = Kills::default();
    let mut next_kill = Instant::now() + KILL_EVERY;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(SUPERVISE_EVERY) => {}
        }
        if let Err(e) = fleet.fill() {
            kills.errors.push(format!("{e:#}"));
        }
        if Instant::now() < next_kill {
            continue;
        }
        next_kill += KILL_EVERY;
        if !fleet.workers.is_empty() {
            let victim = fleet
                .workers
                .swap_remove(rng.below(fleet.workers.len() as u64) as usize);
            match victim.kill() {
                Ok(()) => kills.count += 1,
                Err(e) => kills.errors.push(format!("{e:#}")),
            }
        }
        if let Err(e) = fleet.fill() {
            kills.errors.push(format!("{e:#}"));
        }
    }
    (fleet, kills)
}

/// Full mode: stop RabbitMQ at a quarter of the sending period (for 3 s),
/// restart PostgreSQL at 60%. Returns what happened, one line each; an
/// error when a restart failed.
pub async fn disrupt(
    postgres: Option<Postgres>,
    send_for: Duration,
) -> Vec<Result<String, String>> {
    let Some(postgres) = postgres else {
        return vec![Ok(
            "RabbitMQ and PostgreSQL: not restarted (smoke run)".to_owned()
        )];
    };
    let start = Instant::now();
    let mut happened = Vec::new();
    tokio::time::sleep(send_for / 4).await;
    let at = start.elapsed().as_secs_f64();
    let restart =
        tokio::task::spawn_blocking(|| services::restart_rabbitmq(Duration::from_secs(3))).await;
    happened.push(match restart {
        Ok(Ok(r)) => Ok(format!(
            "RabbitMQ: stop_app at {at:.1} s; down {:.1} s until await_startup returned \
             (start_app + await_startup {:.1} s)",
            r.stopped_for.as_secs_f64(),
            r.startup.as_secs_f64()
        )),
        Ok(Err(e)) => Err(format!("RabbitMQ restart at {at:.1} s failed: {e:#}")),
        Err(e) => Err(format!("RabbitMQ restart at {at:.1} s failed: {e}")),
    });
    tokio::time::sleep((send_for * 3 / 5).saturating_sub(start.elapsed())).await;
    let at = start.elapsed().as_secs_f64();
    let version = postgres.version.clone();
    let restart = tokio::task::spawn_blocking(move || postgres.restart()).await;
    happened.push(match restart {
        Ok(Ok(took)) => Ok(format!(
            "PostgreSQL {version}: pg_ctlcluster restart at {at:.1} s took {:.1} s",
            took.as_secs_f64()
        )),
        Ok(Err(e)) => Err(format!("PostgreSQL restart at {at:.1} s failed: {e:#}")),
        Err(e) => Err(format!("PostgreSQL restart at {at:.1} s failed: {e}")),
    });
    happened
}
