//! Real `clerk-sync-worker run` processes, each serving `/metrics` and
//! `/readyz` on a port of its own.

use anyhow::{Context, Result, bail};
use clerk_sync_testkit::service::command_under;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Worker {
    child: Child,
    pub port: u16,
}

/// A port nobody listens on now (the worker binds it a moment later).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}

impl Worker {
    /// Start a worker with exactly `env` (plus its own listen port); its
    /// stderr goes to `log` when given.
    pub fn spawn(env: &[(String, String)], log: Option<&Path>) -> Result<Self> {
        Self::spawn_under(&[], env, log)
    }

    /// As [`Worker::spawn`], run by the command `wrapper` when not empty
    /// (a profiler: `valgrind --tool=callgrind`).
    pub fn spawn_under(
        wrapper: &[String],
        env: &[(String, String)],
        log: Option<&Path>,
    ) -> Result<Self> {
        let port = free_port()?;
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => Stdio::null(),
        };
        let worker = env!("CARGO_BIN_EXE_clerk-sync-worker");
        let mut command = command_under(wrapper, worker);
        let child = command
            .arg("run")
            .env_clear()
            .current_dir(std::env::temp_dir())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CLERK_SYNC__WORKER__LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("cannot start clerk-sync-worker")?;
        Ok(Self { child, port })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it exited, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL: no chance to finish a batch or acknowledge anything.
    pub fn kill(mut self) -> Result<()> {
        self.child.kill().context("cannot kill a worker")?;
        self.child.wait().context("cannot reap a worker")?;
        Ok(())
    }

    /// Wait until `/readyz` answers 200 (database and broker connected).
    pub async fn wait_ready(&mut self, client: &reqwest::Client, within: Duration) -> Result<()> {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("a worker exited at start-up with {status}");
            }
            let answer = client.get(&url).send().await.map(|r| r.status().as_u16());
            if answer.ok() == Some(200) {
                return Ok(());
            }
            if started.elapsed() > within {
                bail!("a worker was not ready within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The sum of `clerk_sync_worker_events_total` over its labels: the
    /// events this process logged.
    pub async fn events_logged(&self, client: &reqwest::Client) -> Result<u64> {
        Ok(events_total(&self.metrics(client).await?))
    }

    /// What this process's batches added up to so far.
    pub async fn batches(&self, client: &reqwest::Client) -> Result<Batches> {
        Ok(Batches::of(&self.metrics(client).await?))
    }

    async fn metrics(&self, client: &reqwest::Client) -> Result<String> {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        Ok(client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("cannot read a worker's /metrics")?
            .text()
            .await?)
    }
}

/// A worker's batches so far, from its histograms: how many, their
/// messages, and their time to apply and commit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Batches {
    pub count: f64,
    pub messages: f64,
    pub apply_seconds: f64,
}

impl Batches {
    fn of(metrics: &str) -> Self {
        let value = |name: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Self {
            count: value("clerk_sync_worker_batch_size_count"),
            messages: value("clerk_sync_worker_batch_size_sum"),
            apply_seconds: value("clerk_sync_worker_apply_seconds_sum"),
        }
    }

    /// The batches since `before`, on one line.
    pub fn since(&self, before: &Self) -> String {
        let count = self.count - before.count;
        let per = |total: f64| if count > 0.0 { total / count } else { 0.0 };
        format!(
            "{count:.0} batches of {:.1} messages on average, {:.2} ms each to apply and commit",
            per(self.messages - before.messages),
            1e3 * per(self.apply_seconds - before.apply_seconds)
        )
    }
}

/// Sum of every `clerk_sync_worker_events_total{...} N` line.
pub fn events_total(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("clerk_sync_worker_events_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// How long a worker may take to stop on SIGTERM before it is killed (it
/// finishes the batches in hand first, each within seconds).
const STOP_WITHIN: Duration = Duration::from_secs(60);

/// SIGTERM every worker, then wait for each: their exit statuses. One still
/// running [`STOP_WITHIN`] later is killed (SIGKILL), said on stderr, and
/// its status is the kill's, so that a run ends with a verdict instead of
/// waiting for ever.
pub fn terminate(workers: Vec<Worker>) -> Result<Vec<ExitStatus>> {
    for worker in &workers {
        Command::new("kill")
            .args(["-TERM", &worker.pid().to_string()])
            .status()
            .context("cannot run kill")?;
    }
    let deadline = Instant::now() + STOP_WITHIN;
    workers
        .into_iter()
        .map(|mut w| {
            loop {
                if let Some(status) = w.child.try_wait().context("cannot reap a worker")? {
                    return Ok(status);
                }
                if Instant::now() > deadline {
                    eprintln!(
                        "worker {} did not stop within {STOP_WITHIN:?} of SIGTERM: killed",
                        w.pid()
                    );
                    w.child.kill().context("cannot kill a worker")?;
                    return w.child.wait().context("cannot reap a worker");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .collect()
}

impl Drop for Worker {
    /// A worker left running (an error on the way) is killed.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
