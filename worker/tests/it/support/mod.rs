//! Test resources: a database and a RabbitMQ topology of the test's own,
//! removed when dropped (even on panic).

pub mod system;

use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::secret_url::SecretUrl;
pub use clerk_sync_testkit::broker::amqp_url;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};

const SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn unique(kind: &str) -> String {
    format!(
        "test_{kind}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Runs `work` on a runtime of its own: Drop cannot await.
fn blocking<F: std::future::Future<Output = ()> + Send + 'static>(work: F) {
    let _ = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(work);
        }
    })
    .join();
}

/// `clerk-sync-worker` with nothing but the settings that point it at
/// `database` and `broker`; add the arguments (and any setting).
pub fn worker_command(database: &TestDatabase, broker: &TestBroker) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"));
    command
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", database.url.expose())
        .env("AMQP_URL", amqp_url())
        .env("CLERK_SYNC__AMQP__PREFIX", &broker.prefix)
        .env("CLERK_SYNC__AMQP__SHARDS", broker.shards.to_string());
    command
}

pub struct TestDatabase {
    pub name: String,
    pub url: SecretUrl,
}

impl TestDatabase {
    /// A name only: the code under test creates the database.
    pub fn named_only() -> Self {
        let name = unique("db");
        let url = SecretUrl::new(format!("postgres://postgres@127.0.0.1:5432/{name}"));
        Self { name, url }
    }

    pub async fn created() -> Self {
        let database = Self::named_only();
        let mut server = AsyncPgConnection::establish(SERVER_URL).await.unwrap();
        diesel::sql_query(format!("CREATE DATABASE \"{}\"", database.name))
            .execute(&mut server)
            .await
            .unwrap();
        database
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(self.url.expose())
            .await
            .unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        blocking(async move {
            if let Ok(mut server) = AsyncPgConnection::establish(SERVER_URL).await {
                let _ = diesel::sql_query(drop).execute(&mut server).await;
            }
        });
    }
}

pub struct TestBroker {
    pub prefix: String,
    pub shards: u16,
}

impl TestBroker {
    pub fn new(shards: u16) -> Self {
        Self {
            prefix: unique("q"),
            shards,
        }
    }

    pub fn queues(&self) -> Vec<String> {
        (0..self.shards)
            .map(|i| format!("{}.shard.{i}", self.prefix))
            .chain([format!("{}.dead-letter", self.prefix)])
            .collect()
    }

    /// Declares every queue passively: false if one is missing.
    pub async fn queues_exist(&self) -> bool {
        let Ok(connection) =
            Connection::connect(&amqp_url(), ConnectionProperties::default()).await
        else {
            return false;
        };
        for queue in self.queues() {
            let Ok(channel) = connection.create_channel().await else {
                return false;
            };
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            if channel
                .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

impl TestBroker {
    /// Take every dead letter: its svix-id and its `x-clerk-sync-error`.
    pub async fn take_dead_letters(&self) -> Vec<(Option<String>, Option<String>)> {
        let Ok(connection) =
            Connection::connect(&amqp_url(), ConnectionProperties::default()).await
        else {
            return Vec::new();
        };
        let Ok(channel) = connection.create_channel().await else {
            return Vec::new();
        };
        let queue = format!("{}.dead-letter", self.prefix);
        let mut taken = Vec::new();
        while let Ok(Some(message)) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
        {
            let properties = &message.delivery.properties;
            let error = properties.headers().as_ref().and_then(|h| {
                match h.inner().get("x-clerk-sync-error") {
                    Some(AMQPValue::LongString(text)) => {
                        Some(String::from_utf8_lossy(text.as_bytes()).into_owned())
                    }
                    _ => None,
                }
            });
            taken.push((
                properties.message_id().as_ref().map(|id| id.to_string()),
                error,
            ));
        }
        taken
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let topology = Topology::new(self.prefix.clone(), self.shards);
        blocking(async move {
            let url = SecretUrl::new(amqp_url());
            if let Ok(connection) = amqp::connect(&url, "test-cleanup").await {
                let _ = amqp::delete_topology(&connection, &topology).await;
            }
        });
    }
}

// ---- Dead letters, for the dlq and status tests. ----

/// A message as the ingest published it and the worker then dead-lettered
/// it (same properties and headers, plus the worker's reason and count).
#[derive(Debug, Clone)]
pub struct DeadLetterSpec<'a> {
    pub svix_id: &'a str,
    pub body: &'a [u8],
    pub reason: &'a str,
    pub deliveries: i64,
    pub received_at_ms: u64,
}

impl TestBroker {
    /// Publish `letter` to the dead-letter exchange, as the worker does.
    pub async fn publish_dead_letter(&self, letter: &DeadLetterSpec<'_>) {
        use lapin::BasicProperties;
        use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
        use lapin::types::LongString;
        let text = |s: &str| AMQPValue::LongString(LongString::from(s));
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut headers = FieldTable::default();
        headers
            .insert("svix-id".into(), text(letter.svix_id))
            .insert(
                "svix-timestamp".into(),
                text(&(letter.received_at_ms / 1000).to_string()),
            )
            .insert(
                "svix-signature".into(),
                text(&format!("v1,sig-of-{}", letter.svix_id)),
            )
            .insert(
                "clerk-sync-received-at-ms".into(),
                AMQPValue::Timestamp(letter.received_at_ms),
            )
            .insert("x-clerk-sync-error".into(), text(letter.reason))
            .insert(
                "x-clerk-sync-deliveries".into(),
                AMQPValue::LongLongInt(letter.deliveries),
            );
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(letter.svix_id.into())
            .with_content_type("application/json".into())
            .with_headers(headers);
        let confirmation = channel
            .basic_publish(
                format!("{}.dead-letter", self.prefix).as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                letter.body,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirmation.is_ack(), "dead letter not confirmed");
        let _ = connection.close(200, "done".into()).await;
    }
}
