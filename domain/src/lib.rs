//! The pure core of clerk-sync.
//!
//! Everything here is free of I/O and clocks: the event envelope and the user
//! it concerns, how a user is routed to a shard queue, the names of the
//! queue topology, the rules that decide what is written, and the
//! vocabulary both binaries share. What they share at run time (settings,
//! logging, RabbitMQ) is `clerk-sync-runtime`.

pub mod backoff;
pub mod clerk_event;
mod clerk_json;
pub mod email_claims;
pub mod envelope;
pub mod ids;
pub mod message_headers;
pub mod outcome;
pub mod paths;
pub mod privacy;
pub mod projection;
pub mod roles;
pub mod shard;
pub mod storable;
pub mod topology;
pub mod version;
