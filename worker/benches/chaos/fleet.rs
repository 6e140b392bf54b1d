//! The worker processes of a chaos run, and draining the queues at the end.

use crate::WORKERS;
use crate::common::workers::{self, Worker};
use crate::common::{self, Depths};
use anyhow::Result;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::secret_url::SecretUrl;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// `WORKERS` workers, each logging to a file of its own under `logs`,
/// supervised as a container orchestrator would: one that exits on its own
/// is replaced (and its exit recorded) by the next [`Fleet::fill`].
#[derive(Debug)]
pub struct Fleet {
    env: Vec<(String, String)>,
    logs: PathBuf,
    pub workers: Vec<Worker>,
    /// Workers started so far (names their log files).
    pub started: usize,
    /// Workers that exited without being asked to (none should: `run`
    /// waits for PostgreSQL and RabbitMQ at start-up).
    pub exited: Vec<ExitStatus>,
}

impl Fleet {
    pub fn new(env: Vec<(String, String)>, logs: PathBuf) -> Self {
        Self {
            env,
            logs,
            workers: Vec::new(),
            started: 0,
            exited: Vec::new(),
        }
    }

    /// Replace the workers that exited; start workers until there are `WORKERS`.
    pub fn fill(&mut self) -> Result<()> {
        let mut i = 0;
        while i < self.workers.len() {
            match self.workers[i].exited() {
                Some(status) => {
                    self.exited.push(status);
                    self.workers.swap_remove(i);
                }
                None => i += 1,
            }
        }
        while self.workers.len() < WORKERS {
            self.start()?;
        }
        Ok(())
    }

    fn start(&mut self) -> Result<()> {
        let log = self.logs.join(format!("worker-{}.log", self.started));
        self.started += 1;
        self.workers.push(Worker::spawn(&self.env, Some(&log))?);
        Ok(())
    }
}

#[derive(Debug)]
pub struct Drained {
    seconds: f64,
    rounds: usize,
    complete: bool,
    depths: Depths,
    /// How the workers stopped on SIGTERM, every round.
    exits: Vec<ExitStatus>,
}

impl Drained {
    pub fn line(&self) -> String {
        let clean = self.exits.iter().filter(|e| e.success()).count();
        format!(
            "drained: {} in {:.1} s ({} round{}), {} left in the shard queues, {} dead letters; \
             {clean} of {} workers stopped on SIGTERM with exit 0",
            if self.complete { "yes" } else { "NO" },
            self.seconds,
            self.rounds,
            if self.rounds == 1 { "" } else { "s" },
            self.depths.shards,
            self.depths.dead_letters,
            self.exits.len()
        )
    }

    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.complete || self.depths.shards > 0 {
            problems.push(format!(
                "{} messages left in the shard queues",
                self.depths.shards
            ));
        }
        if self.depths.dead_letters > 0 {
            problems.push(format!("{} dead letters", self.depths.dead_letters));
        }
        let failed = self.exits.iter().filter(|e| !e.success()).count();
        if failed > 0 {
            problems.push(format!("{failed} workers did not stop cleanly on SIGTERM"));
        }
        problems
    }
}

/// Wait until no shard queue has a ready message and the log holds at
/// least `accepted` events; stop the workers (what they held comes back to
/// the queues); done if the queues are then empty, else start them again.
pub async fn drain(
    fleet: &mut Fleet,
    broker: &SecretUrl,
    db: &SecretUrl,
    topology: &Topology,
    accepted: usize,
    within: Duration,
) -> Result<Drained> {
    let started = Instant::now();
    let mut rounds = 0;
    let mut exits = Vec::new();
    loop {
        rounds += 1;
        fleet.fill()?;
        let mut timed_out = false;
        loop {
            fleet.fill()?;
            let depths = common::depths(broker, topology).await.ok();
            let logged = common::logged(db).await.unwrap_or(0);
            if depths.is_some_and(|d| d.shards == 0) && logged >= accepted as i64 {
                break;
            }
            if started.elapsed() > within {
                timed_out = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // One that exited on its own is recorded as such, not as a stop.
        fleet.fill()?;
        let running = fleet.workers.drain(..).collect();
        exits.extend(tokio::task::block_in_place(|| workers::terminate(running))?);
        let depths = common::depths(broker, topology).await?;
        if depths.shards == 0 || timed_out {
            return Ok(Drained {
                seconds: started.elapsed().as_secs_f64(),
                rounds,
                complete: !timed_out,
                depths,
                exits,
            });
        }
    }
}
