//! A service run by a benchmark as a child process: ready once its
//! `/readyz` answers 200, stopped with SIGTERM, killed if dropped while it
//! runs (an error on the way).

use anyhow::{Context, Result, bail, ensure};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Service {
    name: &'static str,
    child: Child,
}

impl Service {
    pub fn spawn(name: &'static str, command: &mut Command) -> Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self { name, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until `GET {base}/readyz` answers 200.
    pub async fn wait_ready(&mut self, client: &reqwest::Client, base: &str) -> Result<()> {
        self.wait_readyz(client, base, reqwest::StatusCode::OK)
            .await
    }

    /// Wait until `GET {base}/readyz` answers `status` (503: serving, but
    /// its broker or database is not there).
    pub async fn wait_readyz(
        &mut self,
        client: &reqwest::Client,
        base: &str,
        status: reqwest::StatusCode,
    ) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(exit) = self.child.try_wait()? {
                bail!("{} exited before it was ready: {exit}", self.name);
            }
            let answer = client.get(format!("{base}/readyz")).send().await;
            if answer.is_ok_and(|r| r.status() == status) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "{} did not answer GET /readyz with {status} within 30 s",
            self.name
        )
    }

    /// SIGTERM, then wait for the exit (the services drain for up to 30 s).
    pub async fn stop(&mut self) -> Result<ExitStatus> {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status()?;
        ensure!(kill.success(), "kill -TERM {pid} failed: {kill}");
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("{} did not exit within 40 s of SIGTERM", self.name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A command for `program`, run by `wrapper` when it is not empty (a
/// profiler: `valgrind --tool=callgrind`).
pub fn command_under(wrapper: &[String], program: impl AsRef<std::ffi::OsStr>) -> Command {
    match wrapper.split_first() {
        Some((wrapping, args)) => {
            let mut command = Command::new(wrapping);
            command.args(args).arg(program);
            command
        }
        None => Command::new(program),
    }
}
