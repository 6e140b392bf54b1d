//! The real binary as a process of its own, so its memory can be read
//! from `/proc`; its log goes to a file (a pipe nobody reads would fill
//! and stall it).

use crate::helpers::*;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Ingest {
    child: Child,
    pub address: String,
    pub topology: TestTopology,
    log: PathBuf,
}

/// Resident memory of a process, MiB: now and at its peak.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss: f64,
    pub peak: f64,
}

impl Ingest {
    /// Start the binary with the test's topology and `extra` variables,
    /// and wait until `/readyz` answers 200.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let settings = test_settings();
        let topology = TestTopology::of(&settings);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let listen = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("{}.log", settings.amqp.prefix));
        let mut command = Command::new(env!("CARGO_BIN_EXE_clerk-sync-ingest"));
        command
            .env_clear()
            .current_dir(std::env::temp_dir())
            .env("CLERK_WEBHOOK_SECRET", SECRET)
            .env("INGEST_LISTEN", &listen)
            .env("AMQP_URL", amqp_url())
            .env("CLERK_SYNC__AMQP__PREFIX", &settings.amqp.prefix)
            .env("CLERK_SYNC__AMQP__SHARDS", settings.amqp.shards.to_string())
            .env("CLERK_SYNC__LOG__FORMAT", "json")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let ingest = Self {
            child: command.spawn().unwrap(),
            address: format!("http://{listen}"),
            topology,
            log,
        };
        let started = Instant::now();
        while !reqwest::get(format!("{}/readyz", ingest.address))
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the ingest did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ingest
    }

    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let mib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        Memory {
            rss: mib("VmRSS:"),
            peak: mib("VmHWM:"),
        }
    }

    /// Post one signed event; its svix-id and the status (0 if no answer).
    pub async fn post(&self, client: &reqwest::Client, body: Vec<u8>) -> (String, u16) {
        let id = new_svix_id();
        let mut request = client
            .post(format!(
                "{}{}",
                self.address,
                clerk_sync_domain::paths::WEBHOOK
            ))
            .body(body.clone());
        for (name, value) in signed_headers(SECRET, &id, now(), &body) {
            request = request.header(name, value);
        }
        let status = request
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        (id, status)
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.address))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// SIGTERM, and wait for the exit; its status and its log. (Drain the
    /// topology first: it goes with the process.)
    pub async fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let (status, ingest) = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            (status, self)
        })
        .await
        .unwrap();
        let log = std::fs::read_to_string(&ingest.log).unwrap_or_default();
        (status, log)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // Ours, by its pid; a no-op once it has exited and been waited for.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
