//! `spawn_app()`: an ingest on a random port with its own topology.

use actix_web::dev::ServerHandle;
use clerk_sync_domain::paths;
use clerk_sync_domain::topology::Topology;
use clerk_sync_ingest::settings::Settings;
use clerk_sync_ingest::startup::Application;
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_runtime::settings::WebhookSecrets;
pub use clerk_sync_testkit::broker::amqp_url;
use clerk_sync_testkit::webhook;
use lapin::options::BasicGetOptions;
use lapin::types::{AMQPValue, FieldTable};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const SHARDS: u16 = 4;

/// Settings for a test: its own prefix, a random port, one secret.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.webhook.secrets = WebhookSecrets::parse(SECRET);
    settings.amqp.url = SecretUrl::new(amqp_url());
    settings.amqp.prefix = format!("test_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    settings.amqp.shards = SHARDS;
    settings.amqp.confirm_timeout_ms = 2_000;
    settings.ingest.listen = "127.0.0.1:0".parse().unwrap();
    settings.ingest.http_workers = 2;
    settings.ingest.shutdown_timeout_secs = 5;
    settings
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn new_svix_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// The headers Svix would send for `body`, signed with `secret` at `timestamp`.
pub fn signed_headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    webhook::signed_headers(secret, id, timestamp, body)
        .unwrap()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// A Clerk-shaped `user.updated` body for `user`.
pub fn user_event(event_type: &str, user: &str, updated_at: i64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": event_type,
        "object": "event",
        "timestamp": updated_at,
        "data": {
            "id": user,
            "object": "user",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "primary_email_address_id": "idn_1",
            "email_addresses": [{"id": "idn_1", "email_address": "ada@example.com"}],
            "updated_at": updated_at,
            "created_at": 1_700_000_000_000_i64,
        }
    }))
    .unwrap()
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub topology: TestTopology,
    handle: ServerHandle,
    _server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command now; the server's threads wind down on their own.
        drop(self.handle.stop(false));
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let topology = TestTopology::of(&settings);
    let application = Application::build(&settings)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let address = format!("http://127.0.0.1:{}", application.port());
    let handle = application.handle();
    let server = tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        topology,
        handle,
        _server: server,
    }
}

impl TestApp {
    pub fn webhook_url(&self) -> String {
        format!("{}{}", self.address, paths::WEBHOOK)
    }

    pub async fn post(&self, headers: &[(String, String)], body: Vec<u8>) -> reqwest::Response {
        let mut request = self.client.post(self.webhook_url()).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }

    /// Post `body` signed now with the test secret; returns the svix-id used.
    pub async fn post_signed(&self, body: Vec<u8>) -> (String, reqwest::Response) {
        let id = new_svix_id();
        let headers = signed_headers(SECRET, &id, now(), &body);
        (id.clone(), self.post(&headers, body).await)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }
}

/// A connection to the test broker and a channel on it, for a test to
/// arrange or inspect queues (keep the connection while using the channel).
pub async fn broker_channel() -> (lapin::Connection, lapin::Channel) {
    let connection = amqp::connect(&SecretUrl::new(amqp_url()), "test")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Why `Application::build` refused these settings: the whole chain, or
/// empty if it started.
pub async fn build_error(settings: &Settings) -> String {
    Application::build(settings)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default()
}

/// A refused request's answer: its status and its `error` text.
pub async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {body}"));
    (status, error.to_owned())
}

/// One message taken from a shard queue.
#[derive(Debug)]
pub struct Queued {
    pub queue: String,
    pub body: Vec<u8>,
    pub message_id: Option<String>,
    pub persistent: bool,
    pub headers: FieldTable,
}

impl Queued {
    pub fn header(&self, name: &str) -> Option<String> {
        match self.headers.inner().get(name)? {
            AMQPValue::LongString(text) => {
                Some(String::from_utf8_lossy(text.as_bytes()).into_owned())
            }
            other => Some(format!("{other:?}")),
        }
    }
}

/// The test's topology; deleted when dropped, even when the test panics.
pub struct TestTopology {
    pub topology: Topology,
}

impl TestTopology {
    pub fn of(settings: &Settings) -> Self {
        Self {
            topology: settings.amqp.topology(),
        }
    }

    /// Take every message from every shard queue, queue by queue, in order.
    pub async fn drain(&self) -> Vec<Queued> {
        let (connection, channel) = broker_channel().await;
        let mut taken = Vec::new();
        for queue in self.topology.shard_queues() {
            let options = BasicGetOptions { no_ack: true };
            while let Some(message) = channel
                .basic_get(queue.as_str().into(), options)
                .await
                .unwrap()
            {
                let properties = &message.delivery.properties;
                taken.push(Queued {
                    queue: queue.clone(),
                    body: message.delivery.data.clone(),
                    message_id: properties.message_id().as_ref().map(|id| id.to_string()),
                    persistent: *properties.delivery_mode() == Some(2),
                    headers: properties.headers().clone().unwrap_or_default(),
                });
            }
        }
        let _ = connection.close(200, "drained".into()).await;
        taken
    }

    /// Drain until `count` messages were seen or `deadline` passes.
    pub async fn drain_until(&self, count: usize, deadline: Duration) -> Vec<Queued> {
        let until = tokio::time::Instant::now() + deadline;
        let mut taken = Vec::new();
        while taken.len() < count && tokio::time::Instant::now() < until {
            taken.extend(self.drain().await);
            if taken.len() < count {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        taken
    }
}

impl Drop for TestTopology {
    fn drop(&mut self) {
        clerk_sync_testkit::topology::remove(self.topology.clone());
    }
}

/// Make the queues `pattern` matches full (`max-length` 0, so RabbitMQ
/// refuses, nacks, what is published to them) with the policy `name`,
/// until the returned guard is dropped. Policies take effect
/// asynchronously: events may still be queued for a moment.
pub fn full_queues(name: &str, pattern: &str) -> ClearPolicy {
    let set = clerk_sync_testkit::broker::rabbitmqctl()
        .args([
            "-q",
            "set_policy",
            name,
            pattern,
            r#"{"max-length": 0}"#,
            "--apply-to",
            "queues",
        ])
        .status()
        .unwrap();
    assert!(set.success(), "rabbitmqctl set_policy failed");
    ClearPolicy(name.to_owned())
}

/// Clears a RabbitMQ policy when dropped, even when the test panics.
pub struct ClearPolicy(String);

impl Drop for ClearPolicy {
    fn drop(&mut self) {
        let _ = clerk_sync_testkit::broker::rabbitmqctl()
            .args(["-q", "clear_policy", &self.0])
            .status();
    }
}

pub fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
