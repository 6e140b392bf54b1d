//! The pure core of clerk-sync.
//!
//! Everything here is free of I/O and clocks: the event envelope and the user
//! it concerns, how a user is routed to a shard queue, and the names of the
//! queue topology. The `runtime` feature adds the few I/O-facing definitions
//! both binaries share (settings, telemetry, declaring the topology), so that
//! each exists in exactly one place.

pub mod clerk_event;
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

#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "schema")]
pub mod schema;
