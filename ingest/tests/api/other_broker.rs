//! Reading the queues of a broker or vhost other than the tests' own
//! (a private node, a vhost of the test's own), and posting one event
//! again with the same svix-id, as Svix retries.

use crate::helpers::*;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::secret_url::SecretUrl;
use lapin::options::BasicGetOptions;
use std::collections::BTreeMap;

/// Every message of every queue of `topology` (the dead-letter queue
/// included) at `url`, taken: how many times each message id was queued.
pub async fn drain_at(url: &str, topology: &Topology) -> BTreeMap<String, usize> {
    let connection = amqp::connect(&SecretUrl::new(url), "test-drain")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let channel = connection.create_channel().await.unwrap();
    let mut counts = BTreeMap::new();
    for queue in topology
        .shard_queues()
        .chain([topology.dead_letter_queue()])
    {
        let options = BasicGetOptions { no_ack: true };
        while let Some(message) = channel
            .basic_get(queue.as_str().into(), options)
            .await
            .unwrap()
        {
            let id = message
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.to_string())
                .unwrap_or_default();
            *counts.entry(id).or_default() += 1;
        }
    }
    let _ = connection.close(200, "drained".into()).await;
    counts
}

/// Post `body` signed now under the svix-id `id`.
pub async fn post_as(app: &TestApp, id: &str, body: Vec<u8>) -> reqwest::Response {
    let headers = signed_headers(SECRET, id, now(), &body);
    app.post(&headers, body).await
}
