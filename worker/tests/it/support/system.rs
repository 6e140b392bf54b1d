//! The whole system for a test: its own database and topology, a real
//! in-process ingest, and real `clerk-sync-worker` processes.

use super::{TestDatabase, TestTopology};
use clerk_sync_ingest::settings::Settings;
use clerk_sync_ingest::startup::Application;
use clerk_sync_runtime::settings::WebhookSecrets;
use clerk_sync_testkit::webhook;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use clerk_sync_testkit::webhook::SECRET;

pub struct System {
    pub database: TestDatabase,
    pub broker: TestTopology,
    pub ingest_url: String,
    client: reqwest::Client,
    workers: Vec<Child>,
    worker_env: Vec<(String, String)>,
    worker_args: Vec<String>,
    started: usize,
    metrics_url: String,
    _ingest: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl System {
    /// Ingest and one worker; `worker_env` adds settings for the worker.
    pub async fn start(worker_env: &[(&str, &str)]) -> Self {
        Self::start_with(worker_env, &[]).await
    }

    /// As [`System::start`], with extra command-line arguments for the worker.
    pub async fn start_with(worker_env: &[(&str, &str)], worker_args: &[&str]) -> Self {
        let mut system = Self::without_worker(worker_env, worker_args).await;
        system.start_worker();
        system
    }

    /// The ingest only: the test starts the workers (`start_worker`), after
    /// changing their settings (`set_worker_env`) if it needs to.
    pub async fn without_worker(worker_env: &[(&str, &str)], worker_args: &[&str]) -> Self {
        let database = TestDatabase::named_only();
        let broker = TestTopology::new(4);
        let mut settings = Settings::default();
        settings.webhook.secrets = WebhookSecrets::parse(SECRET);
        settings.amqp.url = clerk_sync_runtime::secret_url::SecretUrl::new(super::amqp_url());
        settings.amqp.prefix = broker.prefix.clone();
        settings.amqp.shards = broker.shards;
        settings.ingest.listen = "127.0.0.1:0".parse().unwrap();
        settings.ingest.http_workers = 2;
        // The ingest declares the queues too: it must agree with the worker.
        if let Some((_, limit)) = worker_env
            .iter()
            .find(|(k, _)| *k == "CLERK_SYNC__AMQP__DELIVERY_LIMIT")
        {
            settings.amqp.delivery_limit = limit.parse().unwrap();
        }
        let application = Application::build(&settings)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let ingest_url = format!("http://127.0.0.1:{}/api/webhooks/clerk", application.port());
        let ingest = tokio::spawn(application.run_until_stopped());
        // The first worker's metrics port; later workers would clash, so
        // tests that start more set their own.
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut worker_env: Vec<(String, String)> = worker_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        worker_env.extend([
            ("DATABASE_URL".to_owned(), database.url.expose().to_owned()),
            ("AMQP_URL".to_owned(), super::amqp_url()),
            ("CLERK_SYNC__AMQP__PREFIX".to_owned(), broker.prefix.clone()),
            (
                "CLERK_SYNC__AMQP__SHARDS".to_owned(),
                broker.shards.to_string(),
            ),
            (
                "CLERK_SYNC__WORKER__LISTEN".to_owned(),
                format!("127.0.0.1:{metrics_port}"),
            ),
            ("CLERK_SYNC__LOG__FORMAT".to_owned(), "json".to_owned()),
            ("CLERK_WEBHOOK_SECRET".to_owned(), SECRET.to_owned()),
        ]);
        Self {
            database,
            broker,
            ingest_url,
            client: reqwest::Client::new(),
            workers: Vec::new(),
            worker_env,
            worker_args: worker_args.iter().map(|a| (*a).to_owned()).collect(),
            started: 0,
            metrics_url: format!("http://127.0.0.1:{metrics_port}"),
            _ingest: ingest,
        }
    }

    pub fn start_worker(&mut self) {
        self.start_worker_without(&[]);
    }

    /// Start a worker with the settings `unset` left to their defaults.
    pub fn start_worker_without(&mut self, unset: &[&str]) {
        // Each worker's log goes to target/tmp/test-logs/, for when a test fails.
        let logs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-logs");
        let _ = std::fs::create_dir_all(&logs);
        let log = std::fs::File::create(self.worker_log(self.started))
            .map_or_else(|_| Stdio::null(), Stdio::from);
        self.started += 1;
        let mut command = Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"));
        command
            .arg("run")
            .args(&self.worker_args)
            .env_clear()
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(log);
        for (name, value) in &self.worker_env {
            command.env(name, value);
        }
        if !self.workers.is_empty() {
            // Only one worker at a time serves metrics on the known port:
            // the first, or the one started when none ran.
            command.env("CLERK_SYNC__WORKER__LISTEN", "127.0.0.1:0");
        }
        for name in unset {
            command.env_remove(name);
        }
        self.workers.push(command.spawn().unwrap());
    }

    /// Every worker's log so far (the last 20 lines of each), for a failure
    /// message.
    pub fn worker_logs(&self) -> String {
        (0..self.started)
            .map(|index| {
                let path = self.worker_log(index);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                format!("== {} ({} lines)\n{tail}", path.display(), lines.len())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The log file of the `index`-th worker started (from 0).
    pub fn worker_log(&self, index: usize) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("test-logs")
            .join(format!("{}-worker-{index}.log", self.broker.prefix))
    }

    /// The `/metrics` text of the worker on the known port.
    pub async fn worker_metrics(&self) -> String {
        let url = format!("{}/metrics", self.metrics_url);
        self.client
            .get(url)
            .send()
            .await
            .map(|r| r.text())
            .unwrap()
            .await
            .unwrap_or_default()
    }

    /// The `/readyz` of the worker on the known port: its status and body (0 and null
    /// while it does not answer).
    pub async fn worker_readiness(&self) -> (u16, serde_json::Value) {
        let url = format!("{}/readyz", self.metrics_url);
        match self.client.get(url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or_default())
            }
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    /// Wait until the `/readyz` of the worker on the known port answers 200.
    pub async fn wait_until_ready(&self) {
        let started = Instant::now();
        let url = format!("{}/readyz", self.metrics_url);
        while self
            .client
            .get(&url)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok()
            != Some(200)
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "worker not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Change a worker setting for the workers started from now on.
    pub fn set_worker_env(&mut self, name: &str, value: &str) {
        self.worker_env.retain(|(n, _)| n != name);
        self.worker_env.push((name.to_owned(), value.to_owned()));
    }

    /// SIGKILL a worker: no chance to finish or acknowledge anything.
    pub fn kill_worker(&mut self, index: usize) {
        let mut worker = self.workers.remove(index);
        let _ = worker.kill();
        let _ = worker.wait();
    }

    /// SIGTERM every worker and return their exit codes.
    pub fn stop_workers(&mut self) -> Vec<Option<i32>> {
        for worker in &self.workers {
            let _ = Command::new("kill")
                .args(["-TERM", &worker.id().to_string()])
                .status();
        }
        self.workers
            .drain(..)
            .map(|mut w| w.wait().ok().and_then(|s| s.code()))
            .collect()
    }

    /// Sign and post `body` with `svix_id`; returns the HTTP status.
    pub async fn send(&self, svix_id: &str, body: &[u8]) -> u16 {
        webhook::post(&self.client, &self.ingest_url, SECRET, svix_id, body).await
    }

    /// Wait until the log holds `count` events (or fail after `within`).
    pub async fn wait_for_log(&self, count: i64, within: Duration) {
        let started = Instant::now();
        loop {
            let logged = self
                .scalar("SELECT count(*) AS n FROM clerk_sync.events")
                .await
                .unwrap_or(0);
            if logged >= count {
                return;
            }
            if started.elapsed() >= within {
                panic!(
                    "only {logged} of {count} events logged after {within:?}; the workers' logs:\n{}",
                    self.worker_logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A single bigint `n` from `sql`, or None while the database is not there yet.
    pub async fn scalar(&self, sql: &str) -> Option<i64> {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut connection =
            <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
                self.database.url.expose(),
            )
            .await
            .ok()?;
        diesel::sql_query(sql)
            .get_result::<N>(&mut connection)
            .await
            .ok()
            .map(|r| r.n)
    }

    /// The text column `v` of every row `sql` returns, in its order.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct V {
            #[diesel(sql_type = Text)]
            v: String,
        }
        let mut connection = self.database.connect().await;
        let rows: Vec<V> = diesel::sql_query(sql)
            .load(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|r| r.v).collect()
    }

    /// `svix_id -> outcome, error` of the log.
    pub async fn outcomes(&self) -> Vec<(String, String, Option<String>)> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            svix_id: String,
            #[diesel(sql_type = Text)]
            outcome: String,
            #[diesel(sql_type = Nullable<Text>)]
            error: Option<String>,
        }
        let mut connection = self.database.connect().await;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT svix_id, outcome, error FROM clerk_sync.events ORDER BY svix_id",
        )
        .load(&mut connection)
        .await
        .unwrap();
        rows.into_iter()
            .map(|r| (r.svix_id, r.outcome, r.error))
            .collect()
    }

    /// Every Student or Instructor row as `(clerkId, email, firstName, lastName)`.
    pub async fn rows(&self, table: &str) -> Vec<(String, Option<String>, String, String)> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            clerk: String,
            #[diesel(sql_type = Nullable<Text>)]
            email: Option<String>,
            #[diesel(sql_type = Text)]
            first: String,
            #[diesel(sql_type = Text)]
            last: String,
        }
        let mut connection = self.database.connect().await;
        let sql = format!(
            r#"SELECT "clerkId" AS clerk, "email" AS email, "firstName" AS first, "lastName" AS last FROM "{table}" ORDER BY "clerkId""#
        );
        let rows: Vec<Row> = diesel::sql_query(sql).load(&mut connection).await.unwrap();
        rows.into_iter()
            .map(|r| (r.clerk, r.email, r.first, r.last))
            .collect()
    }

    /// Run `clerk-sync-worker ARGS...` (an operators' command) with this
    /// system's settings plus `env`, and wait for it to exit.
    pub async fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"));
        command
            .args(args)
            .env_clear()
            .current_dir(std::env::temp_dir())
            .env("CLERK_WEBHOOK_SECRET", SECRET);
        for (name, value) in &self.worker_env {
            command.env(name, value);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        CliOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub async fn execute(&self, sql: &str) {
        let mut connection = self.database.connect().await;
        diesel::sql_query(sql)
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// What an operators' command printed, and its exit code.
#[derive(Debug)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// stdout as JSON (for `--json`); panics with both streams otherwise.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: stdout {:?}, stderr {:?}", self.stdout, self.stderr))
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }
}

/// A Clerk-shaped user event.
pub fn user_event(
    event_type: &str,
    user: &str,
    updated_at_ms: i64,
    email: Option<&str>,
    first: Option<&str>,
    role: Option<&str>,
) -> Vec<u8> {
    let emails: Vec<serde_json::Value> = email
        .map(|e| {
            vec![
                serde_json::json!({"id": "idn_other", "email_address": "other@example.com"}),
                serde_json::json!({"id": "idn_primary", "email_address": e}),
            ]
        })
        .unwrap_or_default();
    let metadata = role.map_or(serde_json::json!({}), |r| serde_json::json!({"role": r}));
    serde_json::to_vec(&serde_json::json!({
        "type": event_type,
        "object": "event",
        "timestamp": updated_at_ms,
        "data": {
            "id": user,
            "object": "user",
            "first_name": first,
            "last_name": first.map(|_| "Lovelace"),
            "image_url": "https://img.clerk.com/x",
            "primary_email_address_id": email.map(|_| "idn_primary"),
            "email_addresses": emails,
            "public_metadata": metadata,
            "unsafe_metadata": {"role": "instructor"},
            "created_at": 1_700_000_000_000_i64,
            "updated_at": updated_at_ms,
        }
    }))
    .unwrap()
}

pub fn deleted_event(user: &str, timestamp_ms: i64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "user.deleted", "object": "event", "timestamp": timestamp_ms,
        "data": {"id": user, "object": "user", "deleted": true}
    }))
    .unwrap()
}
