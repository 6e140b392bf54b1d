//! A RabbitMQ topology of the test's own (a unique prefix) on the tests'
//! broker, deleted when the test ends (even on panic).

use crate::broker::amqp_url;
use crate::cleanup::{blocking, unique};
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::secret_url::SecretUrl;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

#[derive(Debug)]
pub struct TestTopology {
    pub prefix: String,
    pub shards: u16,
}

impl TestTopology {
    /// A fresh prefix; the code under test declares the topology.
    pub fn new(shards: u16) -> Self {
        Self {
            prefix: unique("q"),
            shards,
        }
    }

    pub fn topology(&self) -> Topology {
        Topology::new(self.prefix.clone(), self.shards)
    }

    /// Every queue: the shard queues, then the dead-letter queue.
    pub fn queues(&self) -> Vec<String> {
        let topology = self.topology();
        topology
            .shard_queues()
            .chain([topology.dead_letter_queue()])
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

impl Drop for TestTopology {
    fn drop(&mut self) {
        remove(self.topology());
    }
}

/// Delete `topology` from the tests' broker, waiting until it is done.
pub fn remove(topology: Topology) {
    blocking(async move {
        let url = SecretUrl::new(amqp_url());
        if let Ok(connection) = amqp::connect(&url, "test-cleanup").await {
            let _ = amqp::delete_topology(&connection, &topology).await;
            let _ = connection.close(200, "cleaned up".into()).await;
        }
    });
}
