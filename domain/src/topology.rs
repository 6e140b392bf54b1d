//! The names of clerk-sync's RabbitMQ topology, derived from one prefix.
//!
//! ```text
//! {prefix}.events  (direct exchange) ──routing key {prefix}.shard.N──▶ {prefix}.shard.N (quorum)
//! {prefix}.dead-letter (fanout exchange) ─────────────────────────────▶ {prefix}.dead-letter (quorum)
//! ```
//!
//! Declaring it needs a broker connection: `clerk_sync_runtime::amqp`.

use crate::shard::shard_for;

/// The topology of one clerk-sync deployment: its name prefix and shard count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    shards: u16,
}

impl Topology {
    /// `shards` must be at least 1; settings validation guarantees it.
    pub fn new(prefix: impl Into<String>, shards: u16) -> Self {
        Self {
            prefix: prefix.into(),
            shards: shards.max(1),
        }
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The exchange events are published to.
    pub fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// Name of shard queue `shard`; it is also the routing key that reaches it.
    pub fn shard_queue(&self, shard: u16) -> String {
        format!("{}.shard.{shard}", self.prefix)
    }

    /// All shard queue names, in shard order.
    pub fn shard_queues(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.shards).map(|shard| self.shard_queue(shard))
    }

    /// The shard a routing key (the Clerk user id) belongs to.
    pub fn shard_of(&self, routing_key: &str) -> u16 {
        shard_for(routing_key, self.shards)
    }

    /// The shard queue a routing key (the Clerk user id) belongs to.
    pub fn queue_for(&self, routing_key: &str) -> String {
        self.shard_queue(self.shard_of(routing_key))
    }

    /// The exchange dead-lettered messages go through, and its queue.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letter", self.prefix)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letter", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_prefix() {
        let topology = Topology::new("clerk_sync", 3);
        assert_eq!(topology.exchange(), "clerk_sync.events");
        assert_eq!(
            topology.shard_queues().collect::<Vec<_>>(),
            [
                "clerk_sync.shard.0",
                "clerk_sync.shard.1",
                "clerk_sync.shard.2"
            ]
        );
        assert_eq!(topology.dead_letter_queue(), "clerk_sync.dead-letter");
    }

    #[test]
    fn zero_shards_means_one() {
        let topology = Topology::new("p", 0);
        assert_eq!(topology.shards(), 1);
        assert_eq!(topology.queue_for("user_x"), "p.shard.0");
    }
}
