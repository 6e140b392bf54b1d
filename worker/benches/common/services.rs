//! Restarting the local RabbitMQ node and PostgreSQL cluster (the chaos
//! benchmark's full mode; it needs root), and making sure both run again
//! afterwards, whatever happened.

use anyhow::{Context, Result, bail};
use std::process::Command;
use std::time::{Duration, Instant};

/// The local PostgreSQL cluster `main`, as pg_ctlcluster names it.
#[derive(Debug, Clone)]
pub struct Postgres {
    pub version: String,
}

impl Postgres {
    /// The newest version under /etc/postgresql that has a `main` cluster.
    pub fn detect() -> Result<Self> {
        let entries =
            std::fs::read_dir("/etc/postgresql").context("cannot read /etc/postgresql")?;
        let version = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("main").is_dir())
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .context("no PostgreSQL cluster `main` under /etc/postgresql")?;
        Ok(Self {
            version: version.to_string(),
        })
    }

    fn ctl(&self, action: &str) -> Result<()> {
        run(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", &self.version, "main", action],
        )
    }

    /// `pg_ctlcluster ... restart` (fast shutdown: every connection is cut).
    pub fn restart(&self) -> Result<Duration> {
        let started = Instant::now();
        self.ctl("restart")?;
        Ok(started.elapsed())
    }

    /// Start the cluster unless it runs.
    pub fn ensure_running(&self) -> Result<bool> {
        if self.ctl("status").is_ok() {
            return Ok(false);
        }
        self.ctl("start")?;
        Ok(true)
    }
}

/// How long each step of a RabbitMQ restart took.
#[derive(Debug)]
pub struct RabbitRestart {
    pub stopped_for: Duration,
    pub startup: Duration,
}

/// `rabbitmqctl stop_app`, wait `down`, `start_app`, `await_startup`.
pub fn restart_rabbitmq(down: Duration) -> Result<RabbitRestart> {
    run("rabbitmqctl", &["stop_app"])?;
    let stopped = Instant::now();
    std::thread::sleep(down);
    let starting = Instant::now();
    run("rabbitmqctl", &["start_app"])?;
    run("rabbitmqctl", &["await_startup"])?;
    Ok(RabbitRestart {
        stopped_for: stopped.elapsed(),
        startup: starting.elapsed(),
    })
}

/// `start_app` does nothing on a running node; `await_startup` waits.
pub fn ensure_rabbitmq_running() -> Result<()> {
    run("rabbitmqctl", &["start_app"])?;
    run("rabbitmqctl", &["await_startup"])
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bail!(
            "{program} {} exited with {}: {reason}",
            args.join(" "),
            output.status
        );
    }
    Ok(())
}

/// While armed, dropping it starts RabbitMQ and PostgreSQL again if a
/// restart left either down (an error or a panic on the way).
#[derive(Debug)]
pub struct RestoreOnDrop {
    pub postgres: Option<Postgres>,
}

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        let Some(postgres) = &self.postgres else {
            return;
        };
        if let Err(e) = ensure_rabbitmq_running() {
            eprintln!("RabbitMQ may still be stopped: {e:#}");
        }
        match postgres.ensure_running() {
            Ok(true) => eprintln!("PostgreSQL {} was down: started it", postgres.version),
            Ok(false) => {}
            Err(e) => eprintln!("PostgreSQL may still be stopped: {e:#}"),
        }
    }
}
