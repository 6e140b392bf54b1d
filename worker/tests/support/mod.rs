//! Test resources: a database and a RabbitMQ topology of the test's own,
//! removed when dropped (even on panic).

#![allow(dead_code)]

pub mod system;

use clerk_sync_domain::runtime::amqp;
use clerk_sync_domain::runtime::secret_url::SecretUrl;
use clerk_sync_domain::topology::Topology;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
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
        let mut server = AsyncPgConnection::establish(SERVER_URL)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        diesel::sql_query(format!("CREATE DATABASE \"{}\"", database.name))
            .execute(&mut server)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        database
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(self.url.expose())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
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
        let Ok(connection) = Connection::connect(AMQP_URL, ConnectionProperties::default()).await
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
        let Ok(connection) = Connection::connect(AMQP_URL, ConnectionProperties::default()).await
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
            let url = SecretUrl::new(AMQP_URL);
            if let Ok(connection) = amqp::connect(&url, "test-cleanup").await {
                let _ = amqp::delete_topology(&connection, &topology).await;
            }
        });
    }
}
